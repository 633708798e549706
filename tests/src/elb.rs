//! A fake Elastic Load Balancing v2 (the query protocol, XML answers, as the AWS SDK for Rust
//! speaks it): target health per target group, listeners' forward actions and addresses, and
//! listener rules' conditions.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::aws_fake::{AwsFault, FakeService, Protocol, World};

pub type FakeElb = FakeService<ElbWorld>;

/// One registered target: id, port, state (`healthy`, `unhealthy`, `initial`, `draining`, …),
/// and the reason code when not healthy.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: String,
    pub port: u16,
    pub state: String,
    pub reason: Option<String>,
}

#[derive(Debug, Default)]
pub struct ElbWorld {
    /// Target group ARN → its targets.
    pub targets: BTreeMap<String, Vec<Target>>,
    /// Listener ARN → its default forward action: target group ARN and weight.
    pub listeners: BTreeMap<String, Vec<(String, u32)>>,
    /// Listener ARN → protocol, port and load balancer ARN.
    pub addresses: BTreeMap<String, (String, u16, String)>,
    /// Load balancer ARN → DNS name.
    pub balancers: BTreeMap<String, String>,
    /// Target group name → its ARN.
    pub target_groups: BTreeMap<String, String>,
    /// Listener rule ARN → its conditions (as DescribeRules answers them) and whether it is the
    /// listener's default rule.
    pub rules: BTreeMap<String, (Value, bool)>,
}

impl FakeElb {
    pub async fn start() -> Self {
        Self::launch(Protocol::AwsQuery, ElbWorld::default()).await
    }

    /// `states`: one entry per target, e.g. `["healthy", "unhealthy"]`.
    pub fn set_targets(&self, target_group_arn: &str, states: &[&str]) {
        self.world(|w| {
            w.targets.insert(
                target_group_arn.to_string(),
                states
                    .iter()
                    .enumerate()
                    .map(|(i, state)| Target {
                        id: format!("10.0.1.{}", i + 10),
                        port: 8080,
                        state: state.to_string(),
                        reason: (*state != "healthy").then(|| match *state {
                            "unhealthy" => "Target.ResponseCodeMismatch".to_string(),
                            "initial" => "Elb.RegistrationInProgress".to_string(),
                            _ => "Target.NotInUse".to_string(),
                        }),
                    })
                    .collect(),
            )
        });
    }

    /// Where a listener answers: `protocol` (`HTTP`, `HTTPS`, `TCP`) on `port` of a load balancer
    /// whose DNS name is `dns`.
    pub fn set_listener_address(&self, listener_arn: &str, protocol: &str, port: u16, dns: &str) {
        let balancer = listener_arn
            .split_once(":listener/")
            .map(|(head, path)| {
                let parts: Vec<&str> = path.split('/').take(3).collect();
                format!("{head}:loadbalancer/{}", parts.join("/"))
            })
            .unwrap_or_default();
        self.world(|w| {
            w.addresses.insert(
                listener_arn.to_string(),
                (protocol.to_string(), port, balancer.clone()),
            );
            w.balancers.insert(balancer, dns.to_string());
        });
    }

    /// A target group the load balancer knows by name (`arn:…:targetgroup/NAME/ID`).
    pub fn add_target_group(&self, arn: &str) {
        let name = arn
            .split_once(":targetgroup/")
            .and_then(|(_, path)| path.split('/').next())
            .unwrap_or_default()
            .to_string();
        self.world(|w| w.target_groups.insert(name, arn.to_string()));
    }

    /// A listener rule: `conditions` as DescribeRules answers them (`[{"Field": "http-header",
    /// "HttpHeaderConfig": {"HttpHeaderName": "x-test", "Values": ["1"]}}]`).
    pub fn add_rule(&self, rule_arn: &str, conditions: Value, is_default: bool) {
        self.world(|w| {
            w.rules
                .insert(rule_arn.to_string(), (conditions, is_default))
        });
    }

    pub fn set_listener(&self, listener_arn: &str, forwards: &[(&str, u32)]) {
        self.world(|w| {
            w.listeners.insert(
                listener_arn.to_string(),
                forwards
                    .iter()
                    .map(|(tg, weight)| (tg.to_string(), *weight))
                    .collect(),
            )
        });
    }
}

impl World for ElbWorld {
    fn call(&mut self, operation: &str, input: &Value) -> Result<Value, AwsFault> {
        match operation {
            "DescribeTargetHealth" => {
                let arn = input["TargetGroupArn"].as_str().unwrap_or_default();
                let targets = self.targets.get(arn).ok_or_else(|| {
                    AwsFault::new(
                        400,
                        "TargetGroupNotFound",
                        format!("One or more target groups not found: {arn}"),
                    )
                })?;
                let descriptions: Vec<Value> = targets
                    .iter()
                    .map(|t| {
                        let mut health = json!({"State": t.state});
                        if let Some(reason) = &t.reason {
                            health["Reason"] = json!(reason);
                            health["Description"] = json!(format!("{reason} (the fake ELB)"));
                        }
                        json!({"Target": {"Id": t.id, "Port": t.port}, "HealthCheckPort": t.port.to_string(), "TargetHealth": health})
                    })
                    .collect();
                Ok(json!({"TargetHealthDescriptions": descriptions}))
            }
            "DescribeListeners" => {
                let arn = input["ListenerArns.member.1"].as_str().unwrap_or_default();
                let forwards = self.listeners.get(arn);
                let address = self.addresses.get(arn);
                if forwards.is_none() && address.is_none() {
                    return Err(AwsFault::new(
                        400,
                        "ListenerNotFound",
                        format!("One or more listeners not found: {arn}"),
                    ));
                }
                let groups: Vec<Value> = forwards
                    .into_iter()
                    .flatten()
                    .map(|(tg, weight)| json!({"TargetGroupArn": tg, "Weight": weight}))
                    .collect();
                let (protocol, port, balancer) = address
                    .cloned()
                    .unwrap_or_else(|| ("HTTPS".into(), 443, String::new()));
                Ok(json!({"Listeners": [{
                    "ListenerArn": arn,
                    "LoadBalancerArn": balancer,
                    "Port": port,
                    "Protocol": protocol,
                    "DefaultActions": [{"Type": "forward", "Order": 1, "ForwardConfig": {"TargetGroups": groups}}],
                }]}))
            }
            "DescribeRules" => {
                let arn = input["RuleArns.member.1"].as_str().unwrap_or_default();
                let (conditions, is_default) = self.rules.get(arn).ok_or_else(|| {
                    AwsFault::new(
                        400,
                        "RuleNotFound",
                        format!("One or more rules not found: {arn}"),
                    )
                })?;
                Ok(json!({"Rules": [{
                    "RuleArn": arn,
                    "Priority": if *is_default { "default" } else { "10" },
                    "IsDefault": is_default,
                    "Conditions": conditions,
                    "Actions": [{"Type": "forward", "Order": 1}],
                }]}))
            }
            "DescribeTargetGroups" => {
                let name = input["Names.member.1"].as_str().unwrap_or_default();
                let arn = self.target_groups.get(name).ok_or_else(|| {
                    AwsFault::new(
                        400,
                        "TargetGroupNotFound",
                        format!("One or more target groups not found: {name}"),
                    )
                })?;
                Ok(
                    json!({"TargetGroups": [{"TargetGroupArn": arn, "TargetGroupName": name, "Protocol": "HTTP", "Port": 8080}]}),
                )
            }
            "DescribeLoadBalancers" => {
                let arn = input["LoadBalancerArns.member.1"]
                    .as_str()
                    .unwrap_or_default();
                let dns = self.balancers.get(arn).ok_or_else(|| {
                    AwsFault::new(
                        400,
                        "LoadBalancerNotFound",
                        format!("One or more load balancers not found: {arn}"),
                    )
                })?;
                Ok(
                    json!({"LoadBalancers": [{"LoadBalancerArn": arn, "DNSName": dns, "Type": "application", "Scheme": "internal"}]}),
                )
            }
            other => Err(AwsFault::new(
                400,
                "InvalidAction",
                format!("the fake ELB does not implement {other}"),
            )),
        }
    }
}
