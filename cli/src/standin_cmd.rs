//! `greenlight aws-standin`: the local AWS stand-in (CodeDeploy, ECS, CloudWatch, SNS) on one
//! port, printing each call as it arrives, until Ctrl-C.

use std::sync::Arc;

use greenlight_fakes::standin::{AwsStandIn, Observer};

use crate::{output, style};

pub async fn run(bind: String) -> u8 {
    let observer: Observer = Arc::new(|service, call| {
        let body = call.body.to_string();
        let body: String = body.chars().take(300).collect();
        output::line(format!(
            "{} {:<10} {} {}",
            style::dim(&greenlight::timestamp::format(std::time::SystemTime::now())[11..23]),
            service,
            call.operation,
            style::dim(&body)
        ));
    });
    let standin = match AwsStandIn::start(&bind, Some(observer)).await {
        Ok(standin) => standin,
        Err(e) => {
            output::error(format!(
                "greenlight: cannot listen on {bind}: {e} (another stand-in running? pass --bind 127.0.0.1:PORT)"
            ));
            return 2;
        }
    };
    output::line(format!(
        "AWS stand-in on {url}: CodeDeploy, ECS, CloudWatch, SNS, ELB, Parameter Store and Lambda Invoke, state in memory, each call printed below.\n\
         Point the functions at it: AWS_ENDPOINT_URL={url} AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local\n\
         It holds what the sample events expect: deployment d-AB12CD34E in flight for checkout/checkout-prod, alarm checkout-5xx tagged for it,\n\
         an ECS service deployment in flight for prod/checkout. Ctrl-C stops it.",
        url = standin.url()
    ));
    let _ = tokio::signal::ctrl_c().await;
    0
}
