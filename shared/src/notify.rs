//! Telling a deployment's owners: when `GREENLIGHT_NOTIFY_TOPIC_ARN` names an SNS topic, it
//! receives alarm-rollback's decision record whenever a deployment was stopped or a stop failed,
//! and a CodeDeploy hook's verdict whenever it reported `Failed`. The message passes through the
//! secrets rule like every other output. Publishing never delays what matters: it happens after
//! the stops or the report, within a few seconds at most, and a failure to publish is logged.

use std::time::Duration;

use crate::aws::{call_until, Prepared};
use crate::deadline::Deadline;
use crate::env::Env;

/// Publishing may take at most this long.
const PUBLISH_LIMIT: Duration = Duration::from_secs(3);
/// SNS subjects are at most 100 characters.
const SUBJECT_CHARS: usize = 100;

/// An SNS topic and a client for it.
pub struct Notifier {
    topic: String,
    client: aws_sdk_sns::Client,
}

impl Notifier {
    pub fn new(topic: impl Into<String>, sdk_config: &aws_config::SdkConfig) -> Self {
        Notifier {
            topic: topic.into(),
            client: crate::aws_client!(aws_sdk_sns, sdk_config),
        }
    }

    /// The topic from `GREENLIGHT_NOTIFY_TOPIC_ARN`, with its client built in the background;
    /// `None` when no topic is set (or the variable cannot be read, which is logged).
    pub fn from_env(env: &Env) -> Option<Prepared<Notifier>> {
        let topic = match env.setting("GREENLIGHT_NOTIFY_TOPIC_ARN") {
            Ok(topic) => topic?,
            Err(e) => {
                tracing::error!(error = %e, "no notifications will be sent");
                return None;
            }
        };
        Some(Prepared::in_background(move || {
            let topic = topic.clone();
            async move { Notifier::new(topic, &crate::aws::load_sdk_config().await) }
        }))
    }

    /// Publishes `message` (masked) with `subject`, by `deadline` and within a few seconds.
    pub async fn publish(&self, subject: &str, message: &str, deadline: Deadline) {
        let secrets = crate::secrets::global();
        let subject: String = secrets
            .redact(subject)
            .chars()
            .filter(|c| c.is_ascii() && !c.is_ascii_control())
            .take(SUBJECT_CHARS)
            .collect();
        let message = secrets.redact(message).into_owned();
        let by = deadline.earliest(Deadline::after(PUBLISH_LIMIT));
        let published = call_until("Publish", by, || {
            self.client
                .publish()
                .topic_arn(&self.topic)
                .subject(&subject)
                .message(&message)
                .send()
        })
        .await;
        match published {
            Ok(_) => tracing::info!(topic = %self.topic, subject, "notification sent"),
            Err(e) => {
                tracing::warn!(topic = %self.topic, error = %e, "could not send the notification (sns:Publish)")
            }
        }
    }
}
