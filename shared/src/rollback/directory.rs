//! The alarm directory backed by AWS: an alarm's tags from CloudWatch, the deployment groups that
//! list it from CodeDeploy.

use super::codedeploy::CodeDeployController;
use super::controller::Pending;
use super::settings::Discovery;
use super::targets::Target;
use crate::aws::{call_until, AwsError};
use crate::deadline::Deadline;

/// Alarm tags from CloudWatch, deployment groups from CodeDeploy.
pub struct AwsDirectory {
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub codedeploy: CodeDeployController,
}

impl super::controller::AlarmDirectory for AwsDirectory {
    fn tags<'a>(
        &'a self,
        alarm_arn: &'a str,
        deadline: Deadline,
    ) -> Pending<'a, Result<std::collections::BTreeMap<String, String>, AwsError>> {
        Box::pin(async move {
            let out = call_until("ListTagsForResource", deadline, || {
                self.cloudwatch
                    .list_tags_for_resource()
                    .resource_arn(alarm_arn)
                    .send()
            })
            .await?;
            Ok(out
                .tags()
                .iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_string(),
                        t.value().unwrap_or_default().to_string(),
                    ))
                })
                .collect())
        })
    }

    fn groups_watching<'a>(
        &'a self,
        alarm_name: &'a str,
        discovery: &'a Discovery,
        deadline: Deadline,
    ) -> Pending<'a, (Vec<Target>, Vec<String>)> {
        Box::pin(
            self.codedeploy
                .groups_watching(alarm_name, discovery, deadline),
        )
    }
}
