//! A fake CloudWatch (Smithy RPC v2 CBOR, as the AWS SDK for Rust speaks it): alarm tags.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::aws_fake::{AwsFault, FakeService, Protocol, World};

pub type FakeCloudWatch = FakeService<CloudWatchWorld>;

#[derive(Debug, Default)]
pub struct CloudWatchWorld {
    /// Alarm ARN → tags.
    pub tags: BTreeMap<String, Vec<(String, String)>>,
}

impl FakeCloudWatch {
    pub async fn start() -> Self {
        Self::launch(Protocol::RpcV2Cbor, CloudWatchWorld::default()).await
    }

    pub fn tag_alarm(&self, arn: &str, tags: &[(&str, &str)]) {
        self.world(|w| {
            w.tags.insert(
                arn.to_string(),
                tags.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        });
    }
}

impl World for CloudWatchWorld {
    fn call(&mut self, operation: &str, input: &Value) -> Result<Value, AwsFault> {
        match operation {
            "ListTagsForResource" => {
                let arn = input["ResourceARN"].as_str().unwrap_or_default();
                let tags = self.tags.get(arn).ok_or_else(|| {
                    AwsFault::new(400, "ResourceNotFoundException", format!("no alarm {arn}"))
                })?;
                Ok(
                    json!({"Tags": tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()}),
                )
            }
            other => Err(AwsFault::new(
                400,
                "UnknownOperationException",
                format!("the fake CloudWatch does not implement {other}"),
            )),
        }
    }
}
