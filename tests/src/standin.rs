//! The local AWS stand-in: CodeDeploy, ECS, CloudWatch, SNS, ELB, Parameter Store and Lambda Invoke, the same fakes the tests use,
//! on one port, with their state in memory. Point `AWS_ENDPOINT_URL` at it and every AWS call a
//! greenlight function makes stays on this machine. `greenlight aws-standin` serves it.
//!
//! It starts with the world the sample events in `events/` expect: deployment `d-AB12CD34E` in
//! flight for `checkout/checkout-prod`, the alarm `checkout-5xx` tagged for that deployment
//! group, and ECS service deployments in flight for `prod/checkout`.

use std::sync::Arc;

use bytes::Bytes;
use hyper::Request;

use crate::aws_fake::{AwsCall, CallObserver, FakeService, Protocol};
use crate::cloudwatch::CloudWatchWorld;
use crate::codedeploy::{CodeDeployWorld, EcsBlueGreen};
use crate::ecs::EcsWorld;
use crate::elb::ElbWorld;
use crate::lambda::LambdaWorld;
use crate::server::{respond, LoopbackServer};
use crate::sns::SnsWorld;
use crate::ssm::SsmWorld;
use crate::{FakeCloudWatch, FakeCodeDeploy, FakeEcs, FakeElb, FakeLambda, FakeSns, FakeSsm};

/// The port the stand-in listens on unless told otherwise.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:4566";

/// Told of every call: the service's name and the call.
pub type Observer = Arc<dyn Fn(&str, &AwsCall) + Send + Sync>;

pub struct AwsStandIn {
    pub codedeploy: Arc<FakeCodeDeploy>,
    pub ecs: Arc<FakeEcs>,
    pub cloudwatch: Arc<FakeCloudWatch>,
    pub sns: Arc<FakeSns>,
    pub lambda: Arc<FakeLambda>,
    pub elb: Arc<FakeElb>,
    pub ssm: Arc<FakeSsm>,
    server: LoopbackServer,
}

impl AwsStandIn {
    /// Serves on `address` (`127.0.0.1:0` for any free port).
    pub async fn start(address: &str, observer: Option<Observer>) -> std::io::Result<Self> {
        let tell = |service: &'static str| -> Option<CallObserver> {
            observer.clone().map(|o| {
                Box::new(move |call: &AwsCall| o(service, call))
                    as Box<dyn Fn(&AwsCall) + Send + Sync>
            })
        };
        let codedeploy = Arc::new(FakeService::detached(
            Protocol::AwsJson11 {
                target_prefix: "CodeDeploy_20141006",
            },
            CodeDeployWorld::default(),
            tell("CodeDeploy"),
        ));
        let ecs = Arc::new(FakeService::detached(
            Protocol::AwsJson11 {
                target_prefix: "AmazonEC2ContainerServiceV20141113",
            },
            EcsWorld::default(),
            tell("ECS"),
        ));
        let cloudwatch = Arc::new(FakeService::detached(
            Protocol::RpcV2Cbor,
            CloudWatchWorld::default(),
            tell("CloudWatch"),
        ));
        let sns = Arc::new(FakeService::detached(
            Protocol::AwsQuery,
            SnsWorld::default(),
            tell("SNS"),
        ));
        let lambda = Arc::new(FakeService::detached(
            Protocol::LambdaInvoke,
            LambdaWorld::default(),
            tell("Lambda"),
        ));
        let elb = Arc::new(FakeService::detached(
            Protocol::AwsQuery,
            ElbWorld::default(),
            tell("ELB"),
        ));
        let ssm = Arc::new(FakeService::detached(
            Protocol::AwsJson11 {
                target_prefix: crate::ssm::TARGET_PREFIX,
            },
            SsmWorld::default(),
            tell("SSM"),
        ));
        seed(&codedeploy, &ecs, &cloudwatch);
        let (c, e, w, n, l, b, m) = (
            codedeploy.clone(),
            ecs.clone(),
            cloudwatch.clone(),
            sns.clone(),
            lambda.clone(),
            elb.clone(),
            ssm.clone(),
        );
        let server = LoopbackServer::start_on(address, move |request: Request<Bytes>| {
            let target = request
                .headers()
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let path = request.uri().path().to_string();
            let form = request.body().starts_with(b"Action=") || request.body().windows(7).any(|w| w == b"&Action");
            // Both SNS and ELB speak the query protocol; ELB v2's API version tells them apart.
            let elb_v2 = form && request.body().windows(18).any(|w| w == b"Version=2015-12-01");
            let answer: std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>> =
                if target.starts_with("CodeDeploy_20141006.") {
                    Box::pin(c.handle(request))
                } else if target.starts_with("AmazonEC2ContainerServiceV20141113.") {
                    Box::pin(e.handle(request))
                } else if target.starts_with("AmazonSSM.") {
                    Box::pin(m.handle(request))
                } else if path.starts_with("/2015-03-31/functions/") {
                    Box::pin(l.handle(request))
                } else if path.starts_with("/service/") {
                    Box::pin(w.handle(request))
                } else if elb_v2 {
                    Box::pin(b.handle(request))
                } else if form {
                    Box::pin(n.handle(request))
                } else {
                    Box::pin(async move {
                        respond(
                            400,
                            "text/plain",
                            format!("the AWS stand-in serves CodeDeploy, ECS, CloudWatch, SNS, ELB, Parameter Store and Lambda Invoke; not this request ({path}, X-Amz-Target {target:?})"),
                        )
                    })
                };
            answer
        })
        .await?;
        Ok(AwsStandIn {
            codedeploy,
            ecs,
            cloudwatch,
            sns,
            lambda,
            elb,
            ssm,
            server,
        })
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// An SDK configuration that reaches every service of the stand-in, with dummy credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(self.url())
            .credentials_provider(aws_credential_types::Credentials::for_tests())
            .load()
            .await
    }

    /// Makes `deployment_id` (of checkout/checkout-prod, the sample events' deployment) an ECS
    /// blue/green deployment behind an Application Load Balancer: its group's service and
    /// listeners, its task sets (the replacement labelled Green unless `green_labelled` is false),
    /// and their target groups in ECS.
    pub fn seed_blue_green(&self, deployment_id: &str, green_labelled: bool) -> BlueGreenArns {
        let arns = BlueGreenArns::default();
        self.codedeploy.add_ecs_blue_green(
            deployment_id,
            "checkout",
            "checkout-prod",
            EcsBlueGreen {
                cluster: "prod".into(),
                service: "checkout".into(),
                production_listener: arns.production_listener.clone(),
                test_listener: arns.test_listener.clone(),
                target_groups: ["checkout-blue".into(), "checkout-green".into()],
                task_sets: vec![
                    ("ecs-svc/111".into(), "Blue".into(), "checkout-blue".into()),
                    (
                        "ecs-svc/222".into(),
                        if green_labelled { "Green" } else { "Blue" }.into(),
                        "checkout-green".into(),
                    ),
                ],
            },
        );
        self.ecs.add_task_sets(
            "prod",
            "checkout",
            &[
                ("ecs-svc/111", &arns.blue_target_group),
                ("ecs-svc/222", &arns.green_target_group),
            ],
        );
        self.elb.add_target_group(&arns.blue_target_group);
        self.elb.add_target_group(&arns.green_target_group);
        arns
    }
}

/// The ARNs [`AwsStandIn::seed_blue_green`] sets up.
#[derive(Debug, Clone)]
pub struct BlueGreenArns {
    pub production_listener: String,
    pub test_listener: String,
    pub blue_target_group: String,
    pub green_target_group: String,
}

impl BlueGreenArns {
    /// CloudWatch's dimension values for green: `targetgroup/…` and `app/…`.
    pub const GREEN_TARGET_GROUP: &'static str = "targetgroup/checkout-green/0123456789abcdef";
    pub const BLUE_TARGET_GROUP: &'static str = "targetgroup/checkout-blue/1111222233334444";
    pub const LOAD_BALANCER: &'static str = "app/checkout/fedcba9876543210";
}

impl Default for BlueGreenArns {
    fn default() -> Self {
        let arn =
            |path: &str| format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:{path}");
        BlueGreenArns {
            production_listener: arn(&format!(
                "listener/{}/aaaa1111bbbb2222",
                Self::LOAD_BALANCER
            )),
            test_listener: arn(&format!(
                "listener/{}/cccc3333dddd4444",
                Self::LOAD_BALANCER
            )),
            blue_target_group: arn(Self::BLUE_TARGET_GROUP),
            green_target_group: arn(Self::GREEN_TARGET_GROUP),
        }
    }
}

/// What the sample events expect to find.
fn seed(codedeploy: &FakeCodeDeploy, ecs: &FakeEcs, cloudwatch: &FakeCloudWatch) {
    codedeploy.add_deployment("d-AB12CD34E", "checkout", "checkout-prod", "InProgress");
    codedeploy.add_group(
        "checkout",
        "checkout-prod",
        &["checkout-5xx", "checkout-latency"],
    );
    ecs.add_deployment("prod", "checkout", "sample", "IN_PROGRESS");
    for alarm in ["checkout-5xx", "checkout-health"] {
        cloudwatch.tag_alarm(
            &format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm}"),
            &[
                ("greenlight:codedeploy-application", "checkout"),
                ("greenlight:codedeploy-deployment-group", "checkout-prod"),
            ],
        );
    }
}
