//! A fake Amazon SNS (the query protocol, as the AWS SDK for Rust speaks it): messages published
//! to topics.

use serde_json::{json, Value};

use crate::aws_fake::{AwsFault, FakeService, Protocol, World};

pub type FakeSns = FakeService<SnsWorld>;

/// One message published.
#[derive(Debug, Clone)]
pub struct Published {
    pub topic: String,
    pub subject: String,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct SnsWorld {
    pub published: Vec<Published>,
}

impl FakeSns {
    pub async fn start() -> Self {
        Self::launch(Protocol::AwsQuery, SnsWorld::default()).await
    }

    pub fn published(&self) -> Vec<Published> {
        self.world(|w| w.published.clone())
    }
}

impl World for SnsWorld {
    fn call(&mut self, operation: &str, input: &Value) -> Result<Value, AwsFault> {
        match operation {
            "Publish" => {
                let text = |field: &str| input[field].as_str().unwrap_or_default().to_string();
                if text("TopicArn").is_empty() || text("Message").is_empty() {
                    return Err(AwsFault::new(
                        400,
                        "InvalidParameter",
                        "TopicArn and Message are required",
                    ));
                }
                self.published.push(Published {
                    topic: text("TopicArn"),
                    subject: text("Subject"),
                    message: text("Message"),
                });
                Ok(json!({"MessageId": format!("m-{}", self.published.len())}))
            }
            other => Err(AwsFault::new(
                400,
                "InvalidAction",
                format!("the fake SNS does not implement {other}"),
            )),
        }
    }
}
