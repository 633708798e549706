//! Finding targets and acting on them: every source runs at once, and each target is acted on,
//! concurrently, as soon as a source names it.

use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::*;

impl AlarmRollback {
    /// Finds the alarm's targets and acts on each; everything goes into `decision`.
    pub(super) async fn find_and_act(
        &self,
        event: &AlarmEvent,
        deadline: Deadline,
        decision: &mut Decision,
    ) {
        let (found, mut sources) = self.find_targets(event, deadline);
        self.act_on_found(event, found, &mut sources, deadline, decision)
            .await;
    }

    /// Starts every source; targets arrive on the channel as each source finds them.
    fn find_targets(
        &self,
        event: &AlarmEvent,
        deadline: Deadline,
    ) -> (mpsc::UnboundedReceiver<Found>, JoinSet<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut sources = JoinSet::new();
        // Tags in the event and the mapping need no call: their targets go first.
        if let Some(tags) = &event.tags {
            let (targets, problems) = targets::targets_from_tags(tags);
            let _ = tx.send(Found::Targets(targets, Source::EventTags));
            let _ = tx.send(Found::Problems(problems));
        }
        match &self.inner.settings.mapping {
            Some(Ok(mapping)) => {
                let _ = tx.send(Found::Targets(
                    mapping.targets_for(&event.alarm_name),
                    Source::Mapping,
                ));
            }
            Some(Err(problem)) => {
                let _ = tx.send(Found::Problems(vec![problem.clone()]));
            }
            None => {}
        }
        if event.tags.is_none() {
            if let Some(arn) = event.alarm_arn.clone() {
                let (inner, tx) = (self.inner.clone(), tx.clone());
                let by = deadline.earliest(Deadline::after(TAG_LOOKUP_LIMIT));
                sources.spawn(async move {
                    let found = match inner.ports.get().await.directory.tags(&arn, by).await {
                        Ok(tags) => {
                            let (targets, problems) = targets::targets_from_tags(&tags);
                            let _ = tx.send(Found::Problems(problems));
                            Found::Targets(targets, Source::AlarmTags)
                        }
                        Err(e) => Found::Problems(vec![format!(
                            "could not read the alarm's tags (cloudwatch:ListTagsForResource on {arn}): {e}"
                        )]),
                    };
                    let _ = tx.send(found);
                });
            }
        }
        if self.inner.settings.discovery != Discovery::Off {
            let (inner, tx) = (self.inner.clone(), tx.clone());
            let alarm = event.alarm_name.clone();
            let by = deadline.minus(ACT_RESERVE);
            sources.spawn(async move {
                let ports = inner.ports.get().await;
                let (targets, problems) = ports
                    .directory
                    .groups_watching(&alarm, &inner.settings.discovery, by)
                    .await;
                let _ = tx.send(Found::Problems(problems));
                let _ = tx.send(Found::Targets(targets, Source::Discovery));
            });
        }
        (rx, sources)
    }

    /// Acts on each target as soon as it is found, concurrently; waits for every action.
    async fn act_on_found(
        &self,
        event: &AlarmEvent,
        mut found: mpsc::UnboundedReceiver<Found>,
        sources: &mut JoinSet<()>,
        deadline: Deadline,
        decision: &mut Decision,
    ) {
        let mut actions = JoinSet::new();
        let mut receive = true;
        while receive || !sources.is_empty() {
            tokio::select! {
                message = found.recv(), if receive => match message {
                    Some(Found::Problems(problems)) => decision.problems.extend(problems),
                    Some(Found::Targets(targets, source)) => {
                        for target in targets {
                            if decision.targets.iter().any(|t| t.target == target) {
                                continue;
                            }
                            let index = decision.targets.len();
                            decision.targets.push(FoundTarget { target: target.clone(), source });
                            if self.inner.settings.allowed.as_ref().is_some_and(|a| !a.allows(&target)) {
                                decision.actions.push(Action { target, deployment: String::new(), act: Act::Skipped(Skip::NotAllowed) });
                                continue;
                            }
                            let inner = self.inner.clone();
                            let alarm_at = event.entered_at;
                            actions.spawn(async move { (index, act_on(&inner, &target, alarm_at, deadline).await) });
                        }
                    }
                    None => receive = false,
                },
                Some(_) = sources.join_next(), if !sources.is_empty() => {}
            }
        }
        let mut done = Vec::new();
        while let Some(joined) = actions.join_next().await {
            match joined {
                Ok(result) => done.push(result),
                Err(e) => decision
                    .problems
                    .push(format!("acting on a target failed: {e}")),
            }
        }
        done.sort_by_key(|(index, _)| *index);
        decision
            .actions
            .extend(done.into_iter().flat_map(|(_, actions)| actions));
    }
}

/// What a source found.
enum Found {
    Targets(Vec<Target>, Source),
    Problems(Vec<String>),
}

/// Everything done for one target.
async fn act_on(
    inner: &Inner,
    target: &Target,
    alarm_at: Option<SystemTime>,
    deadline: Deadline,
) -> Vec<Action> {
    let action = |deployment: &str, act: Act| Action {
        target: target.clone(),
        deployment: deployment.to_string(),
        act,
    };
    let ports = inner.ports.get().await;
    let controller = ports.controller(target);
    let deployments = match controller.in_flight(target, deadline).await {
        Ok(d) => d,
        Err(e) => {
            return vec![action(
                "",
                Act::Failed(format!("could not list in-flight deployments: {e}")),
            )]
        }
    };
    if deployments.is_empty() {
        return vec![action("", Act::Skipped(Skip::NothingInFlight))];
    }
    let mut actions = Vec::new();
    for deployment in deployments {
        let id = deployment.id.as_str();
        if let Some(alarm_at) = alarm_at {
            match &deployment.created {
                Ok(created) if *created > alarm_at => {
                    actions.push(action(
                        id,
                        Act::Skipped(Skip::CreatedAfterAlarm {
                            created: *created,
                            alarm_at,
                        }),
                    ));
                    continue;
                }
                Ok(_) => {}
                Err(why) => {
                    // Fail closed: a deployment that may be newer than the alarm is not stopped.
                    actions.push(action(id, Act::Failed(format!("not stopped: could not tell whether it started before the alarm ({why})"))));
                    continue;
                }
            }
        }
        let key = format!("{target}#{id}");
        if let Some(ago) = inner.history.stopped_recently(&key) {
            actions.push(action(id, Act::Skipped(Skip::StoppedEarlier(ago))));
            continue;
        }
        if inner.settings.dry_run.stops_nothing() {
            actions.push(action(id, Act::WouldStop));
            continue;
        }
        let act = match controller.stop(id, deadline).await {
            Ok(StopOutcome::Requested(status)) => {
                inner.history.remember_stop(key);
                Act::Stopped(status)
            }
            Ok(StopOutcome::AlreadyCompleted) => {
                inner.history.remember_stop(key);
                Act::Skipped(Skip::AlreadyCompleted)
            }
            Ok(StopOutcome::NotFound) => Act::Skipped(Skip::Gone),
            Err(e) if e.is_access_denied() => Act::Failed(format!(
                "access denied: {e}; the function's role needs the stop permission on this target"
            )),
            Err(e) => Act::Failed(e.to_string()),
        };
        actions.push(action(id, act));
    }
    actions
}
