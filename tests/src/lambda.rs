//! A fake AWS Lambda API: `Invoke`, recorded (a hook that continues in a new invocation invokes
//! itself asynchronously; the test hands the payload on).

use serde_json::{json, Value};

use crate::aws_fake::{AwsFault, FakeService, Protocol, World};

pub type FakeLambda = FakeService<LambdaWorld>;

#[derive(Debug, Default)]
pub struct LambdaWorld {
    /// Function name, invocation type and payload of every `Invoke`.
    pub invocations: Vec<(String, String, Value)>,
}

impl FakeLambda {
    pub async fn start() -> Self {
        Self::launch(Protocol::LambdaInvoke, LambdaWorld::default()).await
    }
}

impl World for LambdaWorld {
    fn call(&mut self, operation: &str, input: &Value) -> Result<Value, AwsFault> {
        match operation {
            "Invoke" => {
                self.invocations.push((
                    input["FunctionName"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    input["InvocationType"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    input["Payload"].clone(),
                ));
                Ok(json!({}))
            }
            other => Err(AwsFault::new(
                400,
                "UnknownOperationException",
                format!("the fake Lambda does not implement {other}"),
            )),
        }
    }
}
