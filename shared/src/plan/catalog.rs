//! Which plan a deployment runs. In order: the service's key in `GREENLIGHT_PLANS` (the exact
//! key, else the longest `prefix*`), else its Parameter Store parameter
//! (`<prefix>/<application>/<group>` or `<prefix>/ecs/<cluster>/<service>`, when
//! `GREENLIGHT_PLANS_PARAMETER_PREFIX` is set), else the plan of every deployment.
//!
//! A parameter's plan is cached for `GREENLIGHT_PLANS_TTL` (60 s by default) across warm
//! invocations, and so is its absence. A broken parameter plan fails only its service's
//! deployments, with the reason. When Parameter Store cannot be read, the service's last plan is
//! used if one was ever read (and the log says so), else the deployment fails with the reason:
//! never the plan of every deployment in place of a service's own.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::services::best_match;
use super::{PlanError, PlanSpec, MAX_PLAN_BYTES};
use crate::aws::{call_until, LazyClient};
use crate::deadline::Deadline;
use crate::env::Env;

/// How long a parameter's plan (or its absence) is used before Parameter Store is asked again.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// The longest TTL a setting may ask for.
const MAX_TTL: Duration = Duration::from_secs(3600);
/// At most this many services' parameter plans are kept (the oldest read goes first).
const MAX_CACHED: usize = 256;

/// Reads one parameter: its value, `None` when there is no such parameter.
pub trait ParameterStore: Send + Sync {
    fn get<'a>(
        &'a self,
        name: &'a str,
        deadline: Deadline,
    ) -> Pin<Box<dyn Future<Output = Result<Option<String>, String>> + Send + 'a>>;
}

/// Parameter Store through the AWS SDK (`GetParameter`, decrypted: a plan may be a
/// `SecureString`), its client built on first use.
pub struct SsmParameters {
    client: LazyClient<aws_sdk_ssm::Client>,
}

impl SsmParameters {
    /// From the process's AWS configuration, loaded when first needed.
    pub fn from_env() -> Self {
        Self::with(None)
    }

    pub fn new(sdk_config: &aws_config::SdkConfig) -> Self {
        Self::with(Some(sdk_config))
    }

    fn with(config: Option<&aws_config::SdkConfig>) -> Self {
        SsmParameters {
            client: LazyClient::new(config, |c| crate::aws_client!(aws_sdk_ssm, c)),
        }
    }
}

impl ParameterStore for SsmParameters {
    fn get<'a>(
        &'a self,
        name: &'a str,
        deadline: Deadline,
    ) -> Pin<Box<dyn Future<Output = Result<Option<String>, String>> + Send + 'a>> {
        Box::pin(async move {
            let client = self.client.get().await;
            let answer = call_until("GetParameter", deadline, || {
                client
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
            })
            .await;
            match answer {
                Ok(output) => Ok(output.parameter.and_then(|p| p.value)),
                Err(e) if e.code() == Some("ParameterNotFound") => Ok(None),
                Err(e) if e.is_access_denied() => Err(format!(
                    "GetParameter was refused ({e}): the function's role needs ssm:GetParameter on {name} (and kms:Decrypt on its key when it is a SecureString under a customer managed key)"
                )),
                Err(e) => Err(format!("GetParameter: {e}")),
            }
        })
    }
}

/// `GREENLIGHT_PLANS_PARAMETER_PREFIX` and `GREENLIGHT_PLANS_TTL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterSettings {
    /// Starts with `/`, no `/` at the end.
    pub prefix: String,
    pub ttl: Duration,
}

impl ParameterSettings {
    /// `None` when no prefix is set (Parameter Store is not read).
    pub fn from_env(env: &Env) -> Result<Option<Self>, PlanError> {
        let problem = |message: String| PlanError::Source(message);
        let Some(prefix) = env
            .setting("GREENLIGHT_PLANS_PARAMETER_PREFIX")
            .map_err(|e| problem(e.to_string()))?
        else {
            return Ok(None);
        };
        let prefix = prefix.trim().trim_end_matches('/').to_string();
        if !prefix.starts_with('/')
            || prefix.len() > 200
            || prefix.contains("//")
            || !prefix.chars().all(parameter_name_char)
        {
            return Err(problem(format!(
                "GREENLIGHT_PLANS_PARAMETER_PREFIX: {prefix:?} is not a Parameter Store path such as /greenlight/plans (a leading /, letters, digits and _.-/)"
            )));
        }
        let ttl = match env
            .setting("GREENLIGHT_PLANS_TTL")
            .map_err(|e| problem(e.to_string()))?
        {
            None => DEFAULT_TTL,
            Some(text) => crate::duration::parse_duration(&text)
                .map_err(|e| problem(format!("GREENLIGHT_PLANS_TTL: {e}")))
                .and_then(|ttl| {
                    if ttl > MAX_TTL {
                        Err(problem(format!(
                            "GREENLIGHT_PLANS_TTL: at most 1h (a plan fixed in Parameter Store should take effect soon), found {text}"
                        )))
                    } else {
                        Ok(ttl)
                    }
                })?,
        };
        Ok(Some(ParameterSettings { prefix, ttl }))
    }

    /// The parameter that holds `service`'s plan, or why it cannot be named.
    pub fn name_of(&self, service: &str) -> Result<String, String> {
        if service.is_empty()
            || service.starts_with('/')
            || service.contains("//")
            || !service.chars().all(parameter_name_char)
        {
            return Err(format!(
                "{service:?} cannot be part of a Parameter Store name (letters, digits and _.-/ only)"
            ));
        }
        let name = format!("{}/{service}", self.prefix);
        if name.len() > 1011 {
            return Err(format!("{name} is longer than Parameter Store allows"));
        }
        Ok(name)
    }
}

fn parameter_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.-/".contains(c)
}

/// Where a deployment's plan came from, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The plan of every deployment (`GREENLIGHT_PLAN`, `GREENLIGHT_PLAN_FILE`, the default plan).
    Every,
    /// `GREENLIGHT_PLANS`, by this key.
    Mapped(String),
    /// Parameter Store, this parameter.
    Parameter(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Every => f.write_str("the plan of every deployment"),
            Origin::Mapped(key) => write!(f, "GREENLIGHT_PLANS[{key}]"),
            Origin::Parameter(name) => write!(f, "parameter {name}"),
        }
    }
}

/// Turns a plan read from Parameter Store into what a hook runs (its stages resolved, its tools
/// chosen).
pub type Prepare<T> = Box<dyn Fn(Result<PlanSpec, PlanError>) -> T + Send + Sync>;

/// The plans a hook chooses from, each prepared once (`T`: what the hook runs).
pub struct Catalog<T> {
    every: Arc<T>,
    mapped: Vec<(String, Arc<T>)>,
    parameters: Option<Parameters<T>>,
}

struct Parameters<T> {
    settings: ParameterSettings,
    store: Arc<dyn ParameterStore>,
    prepare: Prepare<T>,
    cache: Mutex<HashMap<String, Cached<T>>>,
}

struct Cached<T> {
    read_at: Instant,
    /// `None`: there is no such parameter.
    plan: Option<Arc<T>>,
}

impl<T> Catalog<T> {
    /// One plan for every deployment.
    pub fn single(every: T) -> Self {
        Catalog {
            every: Arc::new(every),
            mapped: Vec::new(),
            parameters: None,
        }
    }

    /// Replaces the plan of every deployment (a configuration problem fails them all).
    pub fn set_every(&mut self, every: T) {
        self.every = Arc::new(every);
    }

    pub fn add_mapped(&mut self, pattern: String, plan: T) {
        self.mapped.push((pattern, Arc::new(plan)));
    }

    /// Parameters under `settings.prefix`, read through `store` and prepared by `prepare`.
    pub fn set_parameters(
        &mut self,
        settings: ParameterSettings,
        store: Arc<dyn ParameterStore>,
        prepare: Prepare<T>,
    ) {
        self.parameters = Some(Parameters {
            settings,
            store,
            prepare,
            cache: Mutex::new(HashMap::new()),
        });
    }

    /// Parameter Store is read through `store` instead (its cache starts empty); nothing when it
    /// is not read at all.
    pub fn use_store(&mut self, store: Arc<dyn ParameterStore>) {
        if let Some(parameters) = &mut self.parameters {
            parameters.store = store;
            parameters.cache = Mutex::new(HashMap::new());
        }
    }

    /// Whether the plan depends on the service (so the hook must find out which one it is).
    pub fn per_service(&self) -> bool {
        !self.mapped.is_empty() || self.parameters.is_some()
    }

    pub fn every(&self) -> &Arc<T> {
        &self.every
    }

    /// The mapped plans and their keys.
    pub fn mapped(&self) -> impl Iterator<Item = (&str, &Arc<T>)> {
        self.mapped.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The plan of `service` (`APPLICATION/GROUP` or `ecs/CLUSTER/SERVICE`), or why none can be
    /// chosen.
    pub async fn choose(
        &self,
        service: &str,
        deadline: Deadline,
    ) -> Result<(Arc<T>, Origin), String> {
        if let Some(i) = best_match(self.mapped.iter().map(|(p, _)| p.as_str()), service) {
            let (pattern, plan) = &self.mapped[i];
            return Ok((plan.clone(), Origin::Mapped(pattern.clone())));
        }
        let Some(parameters) = &self.parameters else {
            return Ok((self.every.clone(), Origin::Every));
        };
        let name = match parameters.settings.name_of(service) {
            Ok(name) => name,
            Err(why) => {
                tracing::warn!(service, why, "no Parameter Store plan for this service");
                return Ok((self.every.clone(), Origin::Every));
            }
        };
        let fresh = |cached: &Cached<T>| cached.read_at.elapsed() < parameters.settings.ttl;
        let stale = {
            let cache = parameters.cache.lock().unwrap_or_else(|p| p.into_inner());
            match cache.get(&name) {
                Some(cached) if fresh(cached) => {
                    return Ok(self.found(&name, cached.plan.clone()));
                }
                Some(cached) => cached.plan.clone(),
                None => None,
            }
        };
        match parameters.store.get(&name, deadline).await {
            Ok(text) => {
                let plan = text.map(|text| {
                    let spec = if text.len() > MAX_PLAN_BYTES {
                        Err(PlanError::Source(format!(
                            "parameter {name}: larger than {MAX_PLAN_BYTES} bytes"
                        )))
                    } else {
                        PlanSpec::parse(&text).map_err(|e| e.of(&format!("parameter {name}")))
                    };
                    if let Err(e) = &spec {
                        tracing::error!(parameter = name, error = %e, "this service's plan is unusable; its deployments fail until it is fixed");
                    }
                    Arc::new((parameters.prepare)(spec))
                });
                let mut cache = parameters.cache.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= MAX_CACHED && !cache.contains_key(&name) {
                    let ttl = parameters.settings.ttl;
                    cache.retain(|_, c| c.read_at.elapsed() < ttl);
                    if cache.len() >= MAX_CACHED {
                        if let Some(oldest) = cache
                            .iter()
                            .min_by_key(|(_, c)| c.read_at)
                            .map(|(k, _)| k.clone())
                        {
                            cache.remove(&oldest);
                        }
                    }
                }
                cache.insert(
                    name.clone(),
                    Cached {
                        read_at: Instant::now(),
                        plan: plan.clone(),
                    },
                );
                Ok(self.found(&name, plan))
            }
            Err(why) => {
                match stale {
                    Some(plan) => {
                        tracing::warn!(parameter = name, error = why, "Parameter Store could not be read: the plan read from it before is used");
                        Ok((plan, Origin::Parameter(name)))
                    }
                    None => Err(format!(
                    "this service's plan would be parameter {name}, which could not be read: {why}"
                )),
                }
            }
        }
    }

    fn found(&self, name: &str, plan: Option<Arc<T>>) -> (Arc<T>, Origin) {
        match plan {
            Some(plan) => (plan, Origin::Parameter(name.to_string())),
            None => (self.every.clone(), Origin::Every),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Parameters in memory, counting reads; `None` in `fail` means the store answers.
    struct Memory {
        values: Mutex<HashMap<String, String>>,
        reads: AtomicUsize,
        fail: Mutex<Option<String>>,
    }

    impl ParameterStore for Memory {
        fn get<'a>(
            &'a self,
            name: &'a str,
            _deadline: Deadline,
        ) -> Pin<Box<dyn Future<Output = Result<Option<String>, String>> + Send + 'a>> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let answer = match self.fail.lock().unwrap().clone() {
                Some(why) => Err(why),
                None => Ok(self.values.lock().unwrap().get(name).cloned()),
            };
            Box::pin(async move { answer })
        }
    }

    fn settings(ttl: Duration) -> ParameterSettings {
        ParameterSettings {
            prefix: "/greenlight/plans".into(),
            ttl,
        }
    }

    /// A catalog whose plans are their checks' names (or the error).
    fn catalog(store: Arc<Memory>, ttl: Duration) -> Catalog<Result<Vec<String>, String>> {
        let mut catalog = Catalog::single(Ok(vec!["every".to_string()]));
        catalog.add_mapped("shop/*".into(), Ok(vec!["mapped".to_string()]));
        catalog.set_parameters(
            settings(ttl),
            store,
            Box::new(|spec| {
                spec.map(|s| s.checks.iter().map(|c| c.name.clone()).collect())
                    .map_err(|e| e.to_string())
            }),
        );
        catalog
    }

    fn memory(values: &[(&str, &str)]) -> Arc<Memory> {
        Arc::new(Memory {
            values: Mutex::new(
                values
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            reads: AtomicUsize::new(0),
            fail: Mutex::new(None),
        })
    }

    fn deadline() -> Deadline {
        Deadline::after(Duration::from_secs(5))
    }

    #[tokio::test]
    async fn the_mapping_then_the_parameter_then_the_plan_of_every_deployment() {
        let store = memory(&[(
            "/greenlight/plans/checkout/prod",
            "version: 1\nchecks: [{name: from-ssm, path: /}]",
        )]);
        let catalog = catalog(store.clone(), DEFAULT_TTL);
        let (plan, origin) = catalog.choose("shop/prod", deadline()).await.unwrap();
        assert_eq!(
            (plan.as_ref().clone().unwrap(), origin),
            (vec!["mapped".to_string()], Origin::Mapped("shop/*".into()))
        );
        assert_eq!(
            store.reads.load(Ordering::SeqCst),
            0,
            "a mapped service never reads Parameter Store"
        );
        let (plan, origin) = catalog.choose("checkout/prod", deadline()).await.unwrap();
        assert_eq!(plan.as_ref().clone().unwrap(), ["from-ssm"]);
        assert_eq!(
            origin,
            Origin::Parameter("/greenlight/plans/checkout/prod".into())
        );
        let (plan, origin) = catalog.choose("payments/prod", deadline()).await.unwrap();
        assert_eq!(
            (plan.as_ref().clone().unwrap(), origin),
            (vec!["every".to_string()], Origin::Every)
        );
    }

    #[tokio::test]
    async fn a_plan_and_its_absence_are_cached_for_the_ttl() {
        let store = memory(&[(
            "/greenlight/plans/a/b",
            "version: 1\nchecks: [{name: one, path: /}]",
        )]);
        let catalog = catalog(store.clone(), Duration::from_secs(60));
        for _ in 0..3 {
            catalog.choose("a/b", deadline()).await.unwrap();
            catalog.choose("a/none", deadline()).await.unwrap();
        }
        assert_eq!(store.reads.load(Ordering::SeqCst), 2);
        // A TTL of zero reads every time, and sees a changed plan at once.
        let catalog = self::catalog(store.clone(), Duration::ZERO);
        catalog.choose("a/b", deadline()).await.unwrap();
        store.values.lock().unwrap().insert(
            "/greenlight/plans/a/b".into(),
            "version: 1\nchecks: [{name: two, path: /}]".into(),
        );
        let (plan, _) = catalog.choose("a/b", deadline()).await.unwrap();
        assert_eq!(plan.as_ref().clone().unwrap(), ["two"]);
    }

    #[tokio::test]
    async fn a_broken_parameter_plan_fails_only_its_service() {
        let store = memory(&[(
            "/greenlight/plans/a/broken",
            "version: 1\nchecks: [{name: x, expect: {status: 999}}]",
        )]);
        let catalog = catalog(store, DEFAULT_TTL);
        let (plan, _) = catalog.choose("a/broken", deadline()).await.unwrap();
        let why = plan.as_ref().clone().unwrap_err();
        assert!(
            why.contains("parameter /greenlight/plans/a/broken"),
            "{why}"
        );
        let (plan, _) = catalog.choose("a/fine", deadline()).await.unwrap();
        assert!(plan.is_ok());
    }

    #[tokio::test]
    async fn an_unreadable_store_uses_the_last_plan_read_or_fails_never_the_plan_of_every_deployment(
    ) {
        let store = memory(&[(
            "/greenlight/plans/a/b",
            "version: 1\nchecks: [{name: own, path: /}]",
        )]);
        let catalog = catalog(store.clone(), Duration::ZERO);
        catalog.choose("a/b", deadline()).await.unwrap();
        *store.fail.lock().unwrap() = Some("ThrottlingException: Rate exceeded".into());
        let (plan, _) = catalog.choose("a/b", deadline()).await.unwrap();
        assert_eq!(plan.as_ref().clone().unwrap(), ["own"]);
        let why = catalog
            .choose("a/never-read", deadline())
            .await
            .unwrap_err();
        assert!(why.contains("parameter /greenlight/plans/a/never-read, which could not be read: ThrottlingException"), "{why}");
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let store = memory(&[]);
        let catalog = catalog(store, DEFAULT_TTL);
        for i in 0..(MAX_CACHED + 50) {
            catalog
                .choose(&format!("app/g{i}"), deadline())
                .await
                .unwrap();
        }
        let parameters = catalog.parameters.as_ref().unwrap();
        assert_eq!(parameters.cache.lock().unwrap().len(), MAX_CACHED);
    }

    #[test]
    fn settings_name_what_is_wrong() {
        let from = |pairs: &[(&str, &str)]| {
            ParameterSettings::from_env(&Env::from_pairs(pairs.iter().copied()))
        };
        assert_eq!(from(&[]).unwrap(), None);
        assert_eq!(
            from(&[("GREENLIGHT_PLANS_PARAMETER_PREFIX", "/greenlight/plans/")]).unwrap(),
            Some(settings(DEFAULT_TTL))
        );
        for bad in ["greenlight/plans", "/a b", "/a//b", "/a$"] {
            let e = from(&[("GREENLIGHT_PLANS_PARAMETER_PREFIX", bad)])
                .unwrap_err()
                .to_string();
            assert!(e.contains("is not a Parameter Store path"), "{bad}: {e}");
        }
        let e = from(&[
            ("GREENLIGHT_PLANS_PARAMETER_PREFIX", "/p"),
            ("GREENLIGHT_PLANS_TTL", "2h"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("GREENLIGHT_PLANS_TTL: at most 1h"), "{e}");
        let e = from(&[
            ("GREENLIGHT_PLANS_PARAMETER_PREFIX", "/p"),
            ("GREENLIGHT_PLANS_TTL", "60"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("GREENLIGHT_PLANS_TTL"), "{e}");
        let s = settings(DEFAULT_TTL);
        assert_eq!(
            s.name_of("ecs/prod/checkout").unwrap(),
            "/greenlight/plans/ecs/prod/checkout"
        );
        assert!(s
            .name_of("app/../x y")
            .unwrap_err()
            .contains("cannot be part of a Parameter Store name"));
    }
}
