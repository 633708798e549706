//! The AWS configuration every function shares, loaded once at start-up through the standard
//! chain: `AWS_REGION`, credentials, and endpoints from `AWS_ENDPOINT_URL` /
//! `AWS_ENDPOINT_URL_<SERVICE>`.

pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}
