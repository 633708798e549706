//! Loopback stand-ins for everything greenlight talks to, shared by the tests and the local
//! rehearsal: blue/green HTTP services, fakes of CodeDeploy, ECS and Parameter Store (awsJson1.1) and CloudWatch
//! (RPC v2 CBOR), and a Lambda Runtime API emulator that drives the real function binaries. All of
//! them listen on 127.0.0.1 only and stop when dropped.

pub mod alb;
pub mod aws_fake;
pub mod cloudwatch;
pub mod codedeploy;
pub mod ecs;
pub mod ecs_loop;
pub mod elb;
pub mod green;
pub mod hook_harness;
pub mod hook_scenarios;
pub mod https;
pub mod lambda;
pub mod runtime_api;
pub mod server;
pub mod sns;
pub mod ssm;
pub mod standin;

pub use aws_fake::{AwsCall, AwsFault, FakeAnswer};
pub use cloudwatch::FakeCloudWatch;
pub use codedeploy::FakeCodeDeploy;
pub use ecs::FakeEcs;
pub use elb::FakeElb;
pub use green::{Behaviour, GreenServer, Route};
pub use lambda::FakeLambda;
pub use runtime_api::{FunctionProcess, InvocationResult, RuntimeApi};
pub use server::LoopbackServer;
pub use sns::FakeSns;
pub use ssm::FakeSsm;

/// A loopback address where nothing listens (the port was bound, then released).
pub fn unused_local_url() -> String {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port on 127.0.0.1");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}
