//! The SAM template's security and wiring properties, read from `template.yaml` itself, so no
//! later change can quietly widen a permission, rename a hook out of CodeDeploy's reach, or
//! loosen the alarm rule. (`sam validate --lint` and `sam build` run in CI: scripts/check-package.)

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

fn template() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
        .expect("read template.yaml");
    serde_saphyr::from_str(&text).expect("template.yaml is plain YAML (long-form intrinsics only)")
}

fn functions(t: &Value) -> BTreeMap<String, Value> {
    t["Resources"]
        .as_object()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(name, r)| (name.clone(), r.clone()))
        .collect()
}

fn as_list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// A statement written under `Fn::If: [condition, statement, AWS::NoValue]`: the statement,
/// so that every grant the template can make is checked.
fn unconditional(statement: &Value) -> Option<&Value> {
    match statement.get("Fn::If") {
        Some(branches) => branches
            .get(1)
            .filter(|b| b.get("Ref") != Some(&json!("AWS::NoValue"))),
        None => Some(statement),
    }
}

/// Every (action, resource) a function's inline policies allow.
fn grants(function: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for policy in as_list(&function["Properties"]["Policies"]) {
        for statement in as_list(&policy["Statement"])
            .iter()
            .filter_map(unconditional)
        {
            assert_eq!(statement["Effect"], "Allow");
            for action in as_list(&statement["Action"]) {
                for resource in as_list(&statement["Resource"]) {
                    out.push((
                        action.as_str().expect("actions are strings").to_string(),
                        resource,
                    ));
                }
            }
        }
    }
    out
}

/// The text of an `Fn::Sub` (its first element when it is a list, with `${Name}` the function
/// name prefix, else the stack name).
fn sub_text(value: &Value) -> String {
    let sub = &value["Fn::Sub"];
    match sub {
        Value::String(text) => text.clone(),
        Value::Array(parts) => {
            assert_eq!(
                parts[1]["Name"],
                json!({"Fn::If": ["HasFunctionNamePrefix", {"Ref": "FunctionNamePrefix"}, {"Ref": "AWS::StackName"}]})
            );
            parts[0].as_str().unwrap_or_default().to_string()
        }
        _ => String::new(),
    }
}

fn binary(function: &Value) -> String {
    function["Metadata"]["BuildProperties"]["Binary"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn every_function_is_built_by_cargo_lambda_from_its_own_binary() {
    let t = template();
    let binaries: BTreeSet<String> = functions(&t).values().map(binary).collect();
    let expected: BTreeSet<String> = [
        "after-allow-test-traffic",
        "before-allow-traffic",
        "after-allow-traffic",
        "ecs-lifecycle-hook",
        "alarm-rollback",
    ]
    .map(String::from)
    .into();
    assert_eq!(binaries, expected);
    for (name, f) in functions(&t) {
        assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda", "{name}");
    }
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Handler"], "bootstrap");
    assert_eq!(globals["LoggingConfig"]["LogFormat"], "JSON");
    assert_eq!(globals["Architectures"], json!([{"Ref": "Architecture"}]));
    assert_eq!(t["Parameters"]["Architecture"]["Default"], "x86_64");
}

#[test]
fn codedeploy_hooks_are_named_for_the_managed_codedeploy_role_and_the_stack() {
    let t = template();
    for (name, f) in functions(&t) {
        if matches!(
            binary(&f).as_str(),
            "after-allow-test-traffic" | "before-allow-traffic" | "after-allow-traffic"
        ) {
            let function_name = sub_text(&f["Properties"]["FunctionName"]);
            assert!(
                function_name.starts_with("CodeDeployHook_"),
                "{name}: {function_name}"
            );
            assert!(
                function_name.contains("${Name}"),
                "{name}: two stacks must not collide"
            );
            // 64 characters at most: the 32 that are not the stack name leave 32 for it.
            assert!(
                function_name.replace("${Name}", "").len() <= 32,
                "{name}: {function_name}"
            );
        }
    }
}

#[test]
fn no_write_action_is_granted_on_every_resource() {
    let t = template();
    for (name, f) in functions(&t) {
        for (action, resource) in grants(&f) {
            let verb = action.split(':').nth(1).unwrap_or_default();
            assert!(
                !verb.contains('*') && !action.ends_with(":*") && action != "*",
                "{name}: wildcard action {action}"
            );
            if resource == "*" {
                assert!(
                    ["List", "Get", "Describe", "BatchGet"]
                        .iter()
                        .any(|p| verb.starts_with(p)),
                    "{name}: write action {action} on Resource \"*\""
                );
            }
        }
    }
}

#[test]
fn each_function_gets_exactly_the_actions_it_uses() {
    let t = template();
    let expected: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::from([
        (
            "after-allow-test-traffic",
            BTreeSet::from([
                "codedeploy:PutLifecycleEventHookExecutionStatus",
                "sns:Publish",
                "cloudwatch:GetMetricData",
                "codedeploy:GetDeployment",
                "codedeploy:GetDeploymentGroup",
                "codedeploy:ListDeploymentTargets",
                "codedeploy:GetDeploymentTarget",
                "elasticloadbalancing:DescribeTargetGroups",
                "lambda:InvokeFunction",
                "elasticloadbalancing:DescribeTargetHealth",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeLoadBalancers",
                "ssm:GetParameter",
            ]),
        ),
        (
            "before-allow-traffic",
            BTreeSet::from([
                "codedeploy:PutLifecycleEventHookExecutionStatus",
                "sns:Publish",
                "cloudwatch:GetMetricData",
                "codedeploy:GetDeployment",
                "codedeploy:GetDeploymentGroup",
                "codedeploy:ListDeploymentTargets",
                "codedeploy:GetDeploymentTarget",
                "elasticloadbalancing:DescribeTargetGroups",
                "lambda:InvokeFunction",
                "elasticloadbalancing:DescribeTargetHealth",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeLoadBalancers",
                "ssm:GetParameter",
            ]),
        ),
        (
            "after-allow-traffic",
            BTreeSet::from([
                "codedeploy:PutLifecycleEventHookExecutionStatus",
                "sns:Publish",
                "cloudwatch:GetMetricData",
                "codedeploy:GetDeployment",
                "codedeploy:GetDeploymentGroup",
                "codedeploy:ListDeploymentTargets",
                "codedeploy:GetDeploymentTarget",
                "elasticloadbalancing:DescribeTargetGroups",
                "lambda:InvokeFunction",
                "elasticloadbalancing:DescribeTargetHealth",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeLoadBalancers",
                "ssm:GetParameter",
            ]),
        ),
        (
            "ecs-lifecycle-hook",
            BTreeSet::from([
                "ssm:GetParameter",
                "ecs:DescribeServiceRevisions",
                "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeLoadBalancers",
                "cloudwatch:GetMetricData",
                "elasticloadbalancing:DescribeTargetHealth",
                "elasticloadbalancing:DescribeListeners",
            ]),
        ),
        (
            "alarm-rollback",
            BTreeSet::from([
                "sns:Publish",
                "codedeploy:ListDeployments",
                "codedeploy:GetDeployment",
                "codedeploy:StopDeployment",
                "codedeploy:ListApplications",
                "codedeploy:ListDeploymentGroups",
                "codedeploy:BatchGetDeploymentGroups",
                "ecs:ListServiceDeployments",
                "ecs:StopServiceDeployment",
                "cloudwatch:ListTagsForResource",
            ]),
        ),
    ]);
    for (_, f) in functions(&t) {
        let actions: BTreeSet<String> = grants(&f).into_iter().map(|(a, _)| a).collect();
        let actions: BTreeSet<&str> = actions.iter().map(String::as_str).collect();
        assert_eq!(actions, expected[binary(&f).as_str()], "{}", binary(&f));
    }
}

#[test]
fn hooks_report_only_to_the_configured_deployment_groups() {
    let t = template();
    for (_, f) in functions(&t) {
        for (action, resource) in grants(&f) {
            if action == "codedeploy:PutLifecycleEventHookExecutionStatus"
                || action == "codedeploy:StopDeployment"
                || action == "codedeploy:GetDeployment"
            {
                assert_eq!(
                    resource["Fn::Sub"],
                    "arn:${AWS::Partition}:codedeploy:${AWS::Region}:${AWS::AccountId}:deploymentgroup:${CodeDeployApplication}/${CodeDeployDeploymentGroup}"
                );
            }
        }
    }
}

#[test]
fn the_rule_sends_alarm_and_ok_transitions() {
    let t = template();
    let rollback = functions(&t)
        .into_values()
        .find(|f| binary(f) == "alarm-rollback")
        .expect("alarm-rollback");
    let events = rollback["Properties"]["Events"]
        .as_object()
        .expect("events");
    assert_eq!(events.len(), 1);
    let event = events.values().next().expect("one event");
    assert_eq!(event["Type"], "EventBridgeRule");
    let pattern = &event["Properties"]["Pattern"];
    assert_eq!(pattern["source"], json!(["aws.cloudwatch"]));
    assert_eq!(
        pattern["detail-type"],
        json!(["CloudWatch Alarm State Change"])
    );
    // OK too: an ALARM delivered after a later OK is recognised as stale.
    assert_eq!(pattern["detail"]["state"]["value"], json!(["ALARM", "OK"]));
    assert_eq!(
        pattern["detail"]["alarmName"]["Fn::If"][1],
        json!([{"prefix": {"Ref": "AlarmNamePrefix"}}])
    );
}

#[test]
fn ecs_may_invoke_only_the_ecs_hook() {
    let t = template();
    let role = &t["Resources"]["EcsHookInvokeRole"]["Properties"];
    assert_eq!(
        role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"],
        json!({"Service": "ecs.amazonaws.com"})
    );
    let statements = as_list(&role["Policies"][0]["PolicyDocument"]["Statement"]);
    assert_eq!(statements.len(), 1);
    assert_eq!(statements[0]["Action"], "lambda:InvokeFunction");
    assert_eq!(
        statements[0]["Resource"],
        json!({"Fn::GetAtt": ["EcsLifecycleHookFunction", "Arn"]})
    );
}

#[test]
fn functions_get_the_documented_environment() {
    let t = template();
    let expected: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::from([
        (
            "after-allow-test-traffic",
            BTreeSet::from([
                "GREENLIGHT_TEST_URL",
                "GREENLIGHT_PRODUCTION_URL",
                "GREENLIGHT_PLAN",
                "GREENLIGHT_PLANS",
                "GREENLIGHT_PLANS_PARAMETER_PREFIX",
                "GREENLIGHT_NOTIFY_TOPIC_ARN",
            ]),
        ),
        (
            "before-allow-traffic",
            BTreeSet::from([
                "GREENLIGHT_TEST_URL",
                "GREENLIGHT_PRODUCTION_URL",
                "GREENLIGHT_PLAN",
                "GREENLIGHT_PLANS",
                "GREENLIGHT_PLANS_PARAMETER_PREFIX",
                "GREENLIGHT_NOTIFY_TOPIC_ARN",
            ]),
        ),
        (
            "after-allow-traffic",
            BTreeSet::from([
                "GREENLIGHT_PRODUCTION_URL",
                "GREENLIGHT_PLAN",
                "GREENLIGHT_PLANS",
                "GREENLIGHT_PLANS_PARAMETER_PREFIX",
                "GREENLIGHT_NOTIFY_TOPIC_ARN",
            ]),
        ),
        (
            "ecs-lifecycle-hook",
            BTreeSet::from([
                "GREENLIGHT_TEST_URL",
                "GREENLIGHT_PRODUCTION_URL",
                "GREENLIGHT_PLAN",
                "GREENLIGHT_PLANS",
                "GREENLIGHT_PLANS_PARAMETER_PREFIX",
            ]),
        ),
        (
            "alarm-rollback",
            BTreeSet::from([
                "GREENLIGHT_DRY_RUN",
                "GREENLIGHT_ACCOUNT_ID",
                "GREENLIGHT_ALARM_ACCOUNTS",
                "GREENLIGHT_ALARM_TARGETS",
                "GREENLIGHT_DISCOVERY_APPLICATIONS",
                "GREENLIGHT_ALLOWED_TARGETS",
                "GREENLIGHT_NOTIFY_TOPIC_ARN",
            ]),
        ),
    ]);
    for (_, f) in functions(&t) {
        let vars: BTreeSet<&str> = f["Properties"]["Environment"]["Variables"]
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(vars, expected[binary(&f).as_str()], "{}", binary(&f));
    }
}

fn alarm_rollback(t: &Value) -> Value {
    functions(t)
        .into_values()
        .find(|f| binary(f) == "alarm-rollback")
        .expect("alarm-rollback")
}

#[test]
fn ecs_deployments_are_out_of_reach_unless_a_cluster_is_named() {
    let t = template();
    assert_eq!(t["Parameters"]["EcsCluster"]["Default"], "");
    let statements = as_list(&alarm_rollback(&t)["Properties"]["Policies"][0]["Statement"]);
    for statement in statements {
        let text = statement.to_string();
        if text.contains("ecs:") {
            let branches = &statement["Fn::If"];
            assert_eq!(branches[0], "HasEcsCluster", "{text}");
            assert_eq!(branches[2], json!({"Ref": "AWS::NoValue"}), "{text}");
        }
    }
    assert_eq!(
        t["Conditions"]["HasEcsCluster"],
        json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "EcsCluster"}, ""]}]})
    );
}

#[test]
fn failed_rollbacks_are_kept_and_stale_events_dropped() {
    let t = template();
    let config = &alarm_rollback(&t)["Properties"]["EventInvokeConfig"];
    assert_eq!(
        config["MaximumEventAgeInSeconds"],
        json!({"Ref": "MaxEventAgeSeconds"})
    );
    assert!(
        t["Parameters"]["MaxEventAgeSeconds"]["MaxValue"]
            .as_u64()
            .unwrap()
            <= 21600
    );
    assert_eq!(config["MaximumRetryAttempts"], 2);
    assert_eq!(config["DestinationConfig"]["OnFailure"]["Type"], "SQS");
    assert_eq!(
        t["Resources"]["AlarmRollbackFailureQueue"]["Type"],
        "AWS::SQS::Queue"
    );
    assert_eq!(
        t["Resources"]["AlarmRollbackFailureQueue"]["Condition"],
        "CreateFailureQueue"
    );
}

#[test]
fn every_function_logs_to_a_group_with_a_retention() {
    let t = template();
    assert_eq!(t["Parameters"]["LogRetentionDays"]["Default"], 30);
    for (name, f) in functions(&t) {
        let group = f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} names its log group"));
        let resource = &t["Resources"][group];
        assert_eq!(resource["Type"], "AWS::Logs::LogGroup", "{name}");
        assert_eq!(
            resource["Properties"]["RetentionInDays"],
            json!({"Ref": "LogRetentionDays"}),
            "{name}"
        );
        let log_name = sub_text(&resource["Properties"]["LogGroupName"]);
        let function_name = sub_text(&f["Properties"]["FunctionName"]);
        assert!(!function_name.is_empty(), "{name}");
        assert_eq!(log_name, format!("/aws/lambda/{function_name}"), "{name}");
    }
}

#[test]
fn notifications_go_only_to_the_named_topic_and_only_when_one_is_named() {
    let t = template();
    for (name, f) in functions(&t) {
        for statement in as_list(&f["Properties"]["Policies"][0]["Statement"]) {
            if statement.to_string().contains("sns:") {
                let branches = &statement["Fn::If"];
                assert_eq!(branches[0], "HasNotificationTopic", "{name}");
                assert_eq!(
                    branches[1]["Resource"],
                    json!({"Ref": "NotificationTopicArn"}),
                    "{name}"
                );
            }
        }
    }
}

#[test]
fn a_codedeploy_hook_may_invoke_only_itself_to_continue_a_bake() {
    let t = template();
    for (name, f) in functions(&t) {
        let invokes: Vec<Value> = grants(&f)
            .into_iter()
            .filter(|(action, _)| action == "lambda:InvokeFunction")
            .map(|(_, resource)| resource)
            .collect();
        if !binary(&f).starts_with("after-allow") && binary(&f) != "before-allow-traffic" {
            assert!(invokes.is_empty(), "{name}");
            continue;
        }
        let own_name = sub_text(&f["Properties"]["FunctionName"]);
        assert_eq!(invokes.len(), 1, "{name}");
        let resource = sub_text(&invokes[0]);
        assert!(
            resource.ends_with(&format!(":function:{own_name}")),
            "{name} may invoke {resource}, not only itself ({own_name})"
        );
    }
}

#[test]
fn services_plans_are_read_only_under_the_prefix_and_only_when_one_is_set() {
    let t = template();
    for (_, f) in functions(&t) {
        if binary(&f) == "alarm-rollback" {
            continue;
        }
        let statements = as_list(&f["Properties"]["Policies"][0]["Statement"]);
        let reads: Vec<&Value> = statements
            .iter()
            .filter(|s| s.to_string().contains("ssm:GetParameter"))
            .collect();
        assert_eq!(reads.len(), 1, "{}", binary(&f));
        let read = reads[0];
        assert_eq!(
            read["Fn::If"][0],
            "HasPlansParameterPrefix",
            "{}",
            binary(&f)
        );
        assert_eq!(read["Fn::If"][1]["Action"], "ssm:GetParameter");
        assert_eq!(
            read["Fn::If"][1]["Resource"]["Fn::Sub"],
            "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${PlansParameterPrefix}/*"
        );
    }
    assert_eq!(
        t["Parameters"]["PlansParameterPrefix"]["Default"],
        "/greenlight/plans"
    );
}

#[test]
fn alarm_rollback_acts_only_on_this_accounts_alarms_and_those_listed() {
    let t = template();
    let f = alarm_rollback(&t);
    let vars = &f["Properties"]["Environment"]["Variables"];
    assert_eq!(
        vars["GREENLIGHT_ACCOUNT_ID"],
        json!({"Ref": "AWS::AccountId"})
    );
    assert_eq!(
        vars["GREENLIGHT_ALARM_ACCOUNTS"],
        json!({"Ref": "AlarmAccounts"})
    );
    assert_eq!(t["Parameters"]["AlarmAccounts"]["Default"], "");
    let rule = &f["Properties"]["Events"]["AlarmStateChange"]["Properties"];
    assert_eq!(rule["EventBusName"], json!({"Ref": "AlarmEventBusName"}));
    assert_eq!(t["Parameters"]["AlarmEventBusName"]["Default"], "default");
}
