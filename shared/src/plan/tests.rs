use super::*;
use crate::env::Env;

fn env() -> Env {
    Env::from_pairs([
        ("SMOKE_TOKEN", "tok-123456"),
        ("GREEN_URL", "http://127.0.0.1:9999"),
    ])
}

fn test_url(url: &str) -> Setting {
    Setting::new(url, "GREENLIGHT_TEST_URL")
}

fn unresolved(spec: &PlanSpec, target: Option<&str>) -> Vec<String> {
    match spec.resolve(target.map(test_url).as_ref(), &env()) {
        Err(PlanError::Unresolved(errors)) => errors.iter().map(|e| e.to_string()).collect(),
        other => panic!("expected problems filling in the plan, got {other:?}"),
    }
}

fn invalid(text: &str) -> Vec<String> {
    match PlanSpec::parse(text) {
        Err(PlanError::Invalid(errors)) => errors.iter().map(|e| e.to_string()).collect(),
        other => panic!("expected an invalid plan, got {other:?}"),
    }
}

const DESIGN_EXAMPLE: &str = r#"
version: 1
budget: 60s
defaults:
  timeout: 5s
  retries: 2
  retry_delay: 200ms
  headers: {x-smoke: "1"}
checks:
  - name: health
    method: GET
    path: /health
    headers: {Authorization: "Bearer ${SMOKE_TOKEN}"}
    timeout: 2s
    retries: 3
    expect:
      status: 200
      latency: 300ms
      body_contains: UP
      json: {"$.color": green}
"#;

#[test]
fn the_design_example_parses_with_every_field_applied() {
    let spec = PlanSpec::parse(DESIGN_EXAMPLE).unwrap();
    assert_eq!(spec.budget, Duration::from_secs(60));
    let check = &spec.checks[0];
    assert_eq!(check.name, "health");
    assert_eq!(check.timeout, Duration::from_secs(2));
    let Probe::Exchange(exchange) = &check.probe else {
        panic!("one exchange: {:?}", check.probe)
    };
    assert_eq!(exchange.retries, 3);
    assert_eq!(exchange.retry_delay, Duration::from_millis(200));
    assert_eq!(check.expect.status.to_string(), "200");
    assert_eq!(check.expect.latency, Some(Duration::from_millis(300)));
    assert_eq!(check.expect.body_contains, vec!["UP".to_string()]);
    assert_eq!(check.expect.json[0].expression, "$.color");
    let names: Vec<&str> = check.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["x-smoke", "authorization"]);
}

#[test]
fn json_plans_parse_too() {
    let spec =
        PlanSpec::parse(r#"{"version": 1, "checks": [{"name": "a", "path": "/"}]}"#).unwrap();
    assert_eq!(spec.checks[0].timeout, DEFAULT_TIMEOUT);
    assert_eq!(
        spec.checks[0].probe.describe(),
        format!("{DEFAULT_RETRIES} retries")
    );
    assert_eq!(spec.checks[0].expect.status.to_string(), "200-399");
}

#[test]
fn resolving_substitutes_variables_joins_the_target_and_collects_secrets() {
    let plan = PlanSpec::parse(DESIGN_EXAMPLE)
        .unwrap()
        .resolve(Some(&test_url("http://127.0.0.1:8080/base/")), &env())
        .unwrap();
    let check = &plan.checks[0];
    assert_eq!(check.url.as_str(), "http://127.0.0.1:8080/base/health");
    assert_eq!(check.request_line, "GET http://127.0.0.1:8080/base/health");
    assert_eq!(check.headers["authorization"], "Bearer tok-123456");
    assert_eq!(
        crate::secrets::global().redact("echo: Bearer tok-123456"),
        "echo: ***"
    );
}

#[test]
fn the_target_may_come_from_the_plan_and_paths_may_be_full_urls() {
    let text = "version: 1\ntarget: ${GREEN_URL}\nchecks:\n  - {name: a, path: /a}\n  - {name: b, path: 'http://127.0.0.1:1/b'}\n";
    let plan = PlanSpec::parse(text)
        .unwrap()
        .resolve(None, &env())
        .unwrap();
    assert_eq!(plan.checks[0].url.as_str(), "http://127.0.0.1:9999/a");
    assert_eq!(plan.checks[0].request_line, "GET ${GREEN_URL}/a");
    assert_eq!(plan.checks[1].url.as_str(), "http://127.0.0.1:1/b");
}

#[test]
fn a_relative_path_without_a_target_is_an_error_that_says_what_to_set() {
    let err = PlanSpec::parse("version: 1\nchecks: [{name: a, path: /a}]")
        .unwrap()
        .resolve(None, &env())
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "checks[0].path: \"/a\" is relative but no target is set: set GREENLIGHT_TEST_URL"
        ),
        "{err}"
    );
}

#[test]
fn an_unset_variable_is_an_error_at_its_field() {
    let text = "version: 1\nchecks: [{name: a, path: /a, headers: {X-Key: '${NOPE}'}}]";
    let err = PlanSpec::parse(text)
        .unwrap()
        .resolve(Some(&test_url("http://h")), &env())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("checks[0].headers.x-key: environment variable NOPE is not set"),
        "{err}"
    );
}

#[test]
fn unknown_fields_are_errors_with_their_path() {
    let errors =
        invalid("version: 1\nchecks:\n  - name: a\n    path: /\n    expect: {stauts: 200}\n");
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]
            .starts_with("checks[0].expect.stauts: unknown field `stauts`; did you mean `status`?"),
        "{errors:?}"
    );
    let errors = invalid("version: 1\nbudgett: 5s\nchecks: []\n");
    assert!(errors[0].contains("budgett"), "{errors:?}");
}

#[test]
fn bad_values_are_errors_with_their_path() {
    let cases = [
        (
            "version: 1\nchecks: [{name: a, path: /, expect: {status: abc}}]",
            "checks[0].expect.status: \"abc\" is not a status code",
        ),
        (
            "version: 1\nchecks: [{name: a, path: /, timeout: 5}]",
            "checks[0].timeout: 5 has no unit",
        ),
        (
            "version: 1\nchecks: [{name: a, path: /, expect: {latency: 3 seconds}}]",
            "checks[0].expect.latency:",
        ),
        (
            "version: 2\nchecks: [{name: a, path: /}]",
            "version: this greenlight reads plan version 1; found 2",
        ),
        (
            "version: 1\nchecks: []",
            "checks: a plan needs at least one check",
        ),
        (
            "version: 1\nchecks: [{name: a, path: /, method: FETCH}]",
            "checks[0].method: \"FETCH\" is not one of",
        ),
        (
            "version: 1\nchecks: [{name: a, path: /, expect: {body_matches: '(('}}]",
            "checks[0].expect.body_matches: \"((\" is not a valid regular expression",
        ),
        (
            "version: 1\nchecks: [{name: a, path: /, expect: {json: {'$.[': 1}}}]",
            "checks[0].expect.json.$.[: \"$.[\" is not a valid JSONPath",
        ),
        (
            "version: 1\nchecks: [{name: a, path: /}, {name: a, path: /b}]",
            "checks[1].name: \"a\" is used by an earlier check",
        ),
        (
            "version: 1\nchecks: [{name: a, path: health}]",
            "checks[0].path: \"health\" must start with \"/\"",
        ),
        (
            "version: 1\nchecks: [{name: a, path: /, headers: {'bad header': x}}]",
            "checks[0].headers.bad header: \"bad header\" is not a valid header name",
        ),
        (
            "version: 1\nchecks: [{name: a, path: /, retries: 99}]",
            "checks[0].retries: at most 20",
        ),
        (
            "version: 1\nconcurrency: 0\nchecks: [{name: a, path: /}]",
            "concurrency: must be between 1 and 64",
        ),
        (
            "version: 1\nchecks: [{path: /}]",
            "checks[0]: missing field `name`",
        ),
    ];
    for (text, expected) in cases {
        let errors = invalid(text);
        assert!(
            errors.iter().any(|e| e.starts_with(expected)),
            "plan:\n{text}\nexpected an error starting {expected:?}, got {errors:?}"
        );
    }
}

#[test]
fn several_problems_are_reported_together() {
    let errors = invalid(
        "version: 1\nchecks:\n  - {name: a, path: /, method: FETCH}\n  - {name: b, path: nope}\n",
    );
    assert_eq!(errors.len(), 2, "{errors:?}");
}

#[test]
fn syntax_errors_are_not_crashes() {
    assert!(matches!(
        PlanSpec::parse("version: 1\nchecks: [\n"),
        Err(PlanError::Syntax(_))
    ));
    assert!(matches!(
        PlanSpec::parse("{\"version\": 1,"),
        Err(PlanError::Syntax(_))
    ));
    assert!(matches!(
        PlanSpec::parse("- a\n- b\n"),
        Err(PlanError::Invalid(_))
    ));
    assert!(PlanSpec::parse("").is_err());
}

#[test]
fn defaults_expect_applies_field_by_field() {
    let text = "version: 1\ndefaults: {expect: {latency: 100ms, status: 2xx}}\nchecks:\n  - {name: a, path: /, expect: {status: 204}}\n";
    let check = &PlanSpec::parse(text).unwrap().checks[0];
    assert_eq!(check.expect.status.to_string(), "204");
    assert_eq!(check.expect.latency, Some(Duration::from_millis(100)));
}

#[test]
fn settings_choose_the_source_and_treat_empty_as_unset() {
    let env = Env::from_pairs([
        ("GREENLIGHT_TEST_URL", "http://127.0.0.1:1"),
        ("GREENLIGHT_PLAN", ""),
    ]);
    let settings = PlanSettings::from_env(&env).unwrap();
    let plan = settings.load(&env).unwrap();
    assert_eq!(plan.checks.len(), 1, "the default plan has one check");
    assert_eq!(plan.checks[0].url.as_str(), "http://127.0.0.1:1/");
    assert_eq!(plan.checks[0].expect.status.to_string(), "200-399");

    assert_eq!(
        PlanSettings::default().load(&env).unwrap_err(),
        PlanError::Missing
    );
    let both = PlanSettings {
        inline: Some(Setting::new("x", "GREENLIGHT_PLAN")),
        file: Some(Setting::new("y", "--plan")),
        ..Default::default()
    };
    assert_eq!(
        both.load_spec().unwrap_err().to_string(),
        "plan: both GREENLIGHT_PLAN and --plan are set; set only one"
    );
    let missing = PlanSettings {
        file: Some(Setting::new("/nonexistent/plan.yaml", "--plan")),
        ..Default::default()
    };
    assert_eq!(
        missing.load_spec().unwrap_err().to_string(),
        "plan: --plan: /nonexistent/plan.yaml: no such file"
    );
}

#[test]
fn a_plan_variable_that_is_not_utf8_is_an_error_not_the_default_plan() {
    use std::os::unix::ffi::OsStringExt;
    let env = Env::from_os_fn(|name| match name {
        "GREENLIGHT_TEST_URL" => Some("http://127.0.0.1:1".into()),
        "GREENLIGHT_PLAN" => Some(std::ffi::OsString::from_vec(b"version: 1\xff".to_vec())),
        _ => None,
    });
    let err = PlanSettings::from_env(&env).unwrap_err();
    assert_eq!(
        err.to_string(),
        "plan: environment variable GREENLIGHT_PLAN is not valid UTF-8 text; set it to plain text"
    );
}

#[test]
fn a_fragment_in_the_target_is_refused_instead_of_swallowing_paths() {
    let spec = PlanSpec::parse("version: 1\nchecks: [{name: a, path: /boom}]").unwrap();
    for target in ["http://green/#", "http://green/#frag"] {
        let errors = unresolved(&spec, Some(target));
        assert!(errors[0].contains("has a fragment"), "{errors:?}");
    }
}

#[test]
fn a_query_in_the_target_is_merged_with_the_paths_query() {
    let spec =
        PlanSpec::parse("version: 1\nchecks: [{name: a, path: /boom}, {name: b, path: '/v?x=2'}]")
            .unwrap();
    let plan = spec
        .resolve(Some(&test_url("http://green/?tenant=1")), &env())
        .unwrap();
    assert_eq!(plan.checks[0].url.as_str(), "http://green/boom?tenant=1");
    assert_eq!(plan.checks[1].url.as_str(), "http://green/v?tenant=1&x=2");
}

#[test]
fn structural_url_problems_are_found_without_an_environment() {
    for (text, expected) in [
        (
            "path: 'ftp://x/y'",
            "checks[0].path: \"ftp://x/y\" uses ftp",
        ),
        ("path: 'http://'", "checks[0].path: \"http://\" has no host"),
        (
            "path: '/b/${'",
            "checks[0].path: \"/b/${\" has a \"${\" without its closing",
        ),
        ("path: '/a#b'", "checks[0].path: \"/a#b\" has a fragment"),
    ] {
        let errors = invalid(&format!("version: 1\nchecks: [{{name: a, {text}}}]"));
        assert!(
            errors.iter().any(|e| e.starts_with(expected)),
            "{text}: {errors:?}"
        );
    }
    let errors = invalid("version: 1\ntarget: not a url\nchecks: [{name: a, path: /}]");
    assert!(
        errors[0].starts_with("target: \"not a url\" is not a URL"),
        "{errors:?}"
    );
}

#[test]
fn an_unset_variable_in_the_target_is_an_environment_problem() {
    let spec =
        PlanSpec::parse("version: 1\ntarget: ${UNSET}\nchecks: [{name: a, path: /}]").unwrap();
    let errors = unresolved(&spec, None);
    assert!(
        errors[0].starts_with("target: environment variable UNSET is not set"),
        "{errors:?}"
    );
}

#[test]
fn a_json_key_written_twice_is_refused_with_its_path() {
    let err = PlanSpec::parse(
        r#"{"version": 1, "checks": [{"name": "a", "path": "/", "expect": {"status": 200, "status": 500}}]}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("the key \"status\" is written twice in checks[0].expect"),
        "{err}"
    );
    let err =
        PlanSpec::parse(r#"{"version": 1, "checks": [{"name": "a", "path": "/"}], "checks": []}"#)
            .unwrap_err();
    assert!(
        err.to_string().contains("\"checks\" is written twice"),
        "{err}"
    );
}

#[test]
fn every_typo_is_named_at_once() {
    let errors = invalid(
        "version: 1\nbudgett: 5s\nchecks:\n  - {name: a, path: /, expect: {stauts: 200}}\n  - {name: b, path: /, retires: 2}\n",
    );
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[0].starts_with("budgett: unknown field"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("checks[0].expect.stauts"),
        "{errors:?}"
    );
    assert!(errors[2].contains("did you mean `retries`"), "{errors:?}");
}

#[test]
fn a_budget_longer_than_lambda_allows_is_a_warning() {
    let spec = PlanSpec::parse("version: 1\nbudget: 20m\nchecks: [{name: a, path: /}]").unwrap();
    assert_eq!(spec.warnings.len(), 1);
    assert!(
        spec.warnings[0]
            .to_string()
            .starts_with("budget: 20m is longer than a Lambda invocation can run (15m)"),
        "{:?}",
        spec.warnings
    );
}

#[test]
fn secrets_are_registered_with_their_encoded_forms_unless_listed_as_not_secret() {
    let env = Env::from_pairs([
        ("API_TOKEN", "tok \"quoted\" value"),
        ("EXPECTED_VERSION", "2.0.0-visible"),
    ]);
    let text = "version: 1\nnot_secret: [EXPECTED_VERSION, x-visible]\nchecks:\n  - {name: a, path: /, headers: {authorization: 'Bearer ${API_TOKEN}', x-visible: on-display}, expect: {json: {'$.v': '${EXPECTED_VERSION}'}}}\n";
    PlanSpec::parse(text)
        .unwrap()
        .resolve(Some(&test_url("http://user:pa55word@h")), &env)
        .unwrap();
    let secrets = crate::secrets::global();
    assert_eq!(
        secrets.redact("tok \\\"quoted\\\" value"),
        "***",
        "JSON-escaped"
    );
    assert_eq!(secrets.redact("pa55word"), "***", "userinfo");
    assert_eq!(secrets.redact("2.0.0-visible"), "2.0.0-visible");
    assert_eq!(secrets.redact("on-display"), "on-display");
}

#[test]
fn every_example_plan_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/plans");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        PlanSpec::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
    }
}

#[test]
fn expected_values_may_come_from_the_environment() {
    let text = "version: 1\nchecks: [{name: v, path: /v, expect: {body_contains: '${SMOKE_TOKEN}', json: {'$.url': '${GREEN_URL}', '$.n': 1}}}]";
    let plan = PlanSpec::parse(text)
        .unwrap()
        .resolve(Some(&test_url("http://h")), &env())
        .unwrap();
    let expect = &plan.checks[0].expect;
    assert_eq!(expect.body_contains, vec!["tok-123456".to_string()]);
    assert_eq!(
        expect
            .json
            .iter()
            .map(|j| j.expected.clone())
            .collect::<Vec<_>>(),
        vec![
            serde_json::json!(1),
            serde_json::json!("http://127.0.0.1:9999")
        ]
    );
}

#[test]
fn a_plan_whose_regular_expressions_would_fill_the_function_is_refused() {
    let checks: Vec<String> = (0..12)
        .map(|i| {
            format!(
                "  - {{name: c{i}, path: /, expect: {{body_matches: '(\\w+\\s?){{1,100}}X{i}'}}}}"
            )
        })
        .collect();
    let errors = invalid(&format!("version: 1\nchecks:\n{}\n", checks.join("\n")));
    // About 5.5 MiB each: the fifth goes past 24 MiB; compiling stops there, one error says so.
    assert_eq!(
        errors,
        vec![format!(
            "checks[4].expect.body_matches: with this one, the plan's regular expressions take more than 24 MiB once compiled, more than fits beside the work in a 128 MB function; simplify them (for example (?-u:\\w) instead of \\w, smaller repetitions) or use fewer distinct ones"
        )]
    );
}

#[test]
fn the_same_regular_expression_in_many_checks_is_compiled_once() {
    let checks: Vec<String> = (0..40)
        .map(|i| {
            format!("  - {{name: c{i}, path: /, expect: {{body_matches: '(\\w+\\s?){{1,100}}X'}}}}")
        })
        .collect();
    let plan = PlanSpec::parse(&format!("version: 1\nchecks:\n{}\n", checks.join("\n"))).unwrap();
    assert_eq!(plan.checks.len(), 40);
}

#[test]
fn assertion_variables_are_filled_in_and_checked_when_the_plan_is_resolved() {
    let spec = PlanSpec::parse(
        "version: 1\nnot_secret: [WANT, PREFIX]\nchecks:\n  - name: v\n    path: /\n    expect:\n      assert:\n        - {json: $.version, semver: '${WANT}'}\n        - {json: $.id, matches: '^${PREFIX}[0-9]+$'}\n",
    )
    .unwrap();
    let env = |want: &str| Env::from_pairs([("WANT", want), ("PREFIX", "ord_")]);
    let plan = spec
        .resolve(Some(&test_url("http://127.0.0.1:9")), &env("2.0.0"))
        .unwrap();
    assert_eq!(plan.checks[0].expect.assertions.len(), 2);
    match spec.resolve(Some(&test_url("http://127.0.0.1:9")), &env("banana")) {
        Err(PlanError::Unresolved(errors)) => assert_eq!(
            errors[0].to_string(),
            "checks[0].expect.assert[0]: \"banana\" is not a semantic version such as 2.0.0 or 2.1.0-rc.1"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn assertion_and_capture_patterns_share_the_plans_pattern_memory() {
    let checks: Vec<String> = (0..12)
        .map(|i| {
            format!(
                "  - {{name: c{i}, path: /, expect: {{assert: [{{json: $.a, matches: '(\\w+\\s?){{1,100}}X{i}'}}]}}}}"
            )
        })
        .collect();
    let errors = invalid(&format!("version: 1\nchecks:\n{}\n", checks.join("\n")));
    assert!(
        errors[0].starts_with("checks[4].expect.assert[0].matches: with this one, the plan's regular expressions take more than 24 MiB"),
        "{errors:?}"
    );
    let captures: Vec<String> = (0..12)
        .map(|i| {
            format!(
                "  - {{name: c{i}, path: /, capture: {{v: {{body: '(\\w+\\s?){{1,100}}X{i}'}}}}}}"
            )
        })
        .collect();
    let errors = invalid(&format!("version: 1\nchecks:\n{}\n", captures.join("\n")));
    assert!(
        errors[0].starts_with("checks[4].capture.v: with this one, the plan's regular expressions take more than 24 MiB"),
        "{errors:?}"
    );
}
