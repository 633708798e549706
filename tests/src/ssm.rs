//! A fake AWS Systems Manager Parameter Store (awsJson1.1, `X-Amz-Target: AmazonSSM.*`):
//! `GetParameter`, from parameters the test puts.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::aws_fake::{AwsFault, FakeService, Protocol, World};

pub type FakeSsm = FakeService<SsmWorld>;

/// The parameters by name: type (`String`, `SecureString`, `StringList`), value and version.
#[derive(Debug, Default)]
pub struct SsmWorld {
    pub parameters: BTreeMap<String, (String, String, u64)>,
}

pub const TARGET_PREFIX: &str = "AmazonSSM";

impl FakeSsm {
    pub async fn start() -> Self {
        Self::launch(
            Protocol::AwsJson11 {
                target_prefix: TARGET_PREFIX,
            },
            SsmWorld::default(),
        )
        .await
    }

    /// Puts (or overwrites, raising its version) a `String` parameter.
    pub fn put(&self, name: &str, value: &str) {
        self.put_typed(name, "String", value)
    }

    pub fn put_typed(&self, name: &str, kind: &str, value: &str) {
        self.world(|w| w.put(name, kind, value))
    }
}

impl SsmWorld {
    pub fn put(&mut self, name: &str, kind: &str, value: &str) {
        let version = self.parameters.get(name).map_or(1, |(_, _, v)| v + 1);
        self.parameters
            .insert(name.into(), (kind.into(), value.into(), version));
    }
}

impl World for SsmWorld {
    fn call(&mut self, operation: &str, input: &Value) -> Result<Value, AwsFault> {
        match operation {
            "GetParameter" => {
                let name = input["Name"].as_str().unwrap_or_default();
                // Parameter Store's own rule: letters, digits, `_.-/`, a leading `/` for a path.
                let valid = !name.is_empty()
                    && name.len() <= 2048
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
                if !valid {
                    return Err(AwsFault::new(
                        400,
                        "ValidationException",
                        format!("parameter name {name:?} failed to satisfy the constraint"),
                    ));
                }
                let Some((kind, value, version)) = self.parameters.get(name) else {
                    return Err(AwsFault::new(400, "ParameterNotFound", ""));
                };
                if kind == "SecureString" && input["WithDecryption"] != true {
                    return Ok(
                        json!({"Parameter": {"Name": name, "Type": kind, "Value": "AQICAHh-encrypted", "Version": version}}),
                    );
                }
                Ok(json!({"Parameter": {
                    "Name": name,
                    "Type": kind,
                    "Value": value,
                    "Version": version,
                    "DataType": "text",
                    "ARN": format!("arn:aws:ssm:us-east-1:123456789012:parameter{name}"),
                }}))
            }
            other => Err(AwsFault::new(
                400,
                "UnknownOperationException",
                format!("the fake Parameter Store does not implement {other}"),
            )),
        }
    }
}
