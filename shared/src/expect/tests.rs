use super::*;
use reqwest::header::HeaderValue;

fn observed<'a>(status: u16, headers: &'a HeaderMap, body: &'a str) -> Observed<'a> {
    Observed {
        status,
        headers,
        body: body.as_bytes(),
        body_truncated: false,
        latency: Duration::from_millis(40),
    }
}

/// Judges with no bound: these tests are about what is judged, not how long it may take.
trait JudgeAll {
    fn judged(&self, seen: &Observed<'_>) -> Vec<Failure>;
}

impl JudgeAll for Expectations {
    fn judged(&self, seen: &Observed<'_>) -> Vec<Failure> {
        self.judge(seen, &mut crate::judge::Budget::unlimited())
            .expect("judging finishes")
    }
}

fn expect(yaml_expect: &str) -> Expectations {
    let text = format!("version: 1\nchecks: [{{name: a, path: /, expect: {yaml_expect}}}]");
    crate::plan::PlanSpec::parse(&text)
        .unwrap()
        .checks
        .remove(0)
        .expect
}

#[test]
fn a_matching_answer_has_no_failures() {
    let headers = HeaderMap::new();
    let e = expect("{status: 200, body_contains: [UP, green], body_matches: 'v\\d+', json: {'$.color': green, '$.n': 2}}");
    assert!(e
        .judged(&observed(
            200,
            &headers,
            r#"{"status":"UP","color":"green","v":"v12","n":2.0}"#
        ))
        .is_empty());
}

#[test]
fn a_wrong_status_shows_the_status_and_the_body() {
    let headers = HeaderMap::new();
    let failures = expect("{status: 2xx}").judged(&observed(500, &headers, "boom"));
    assert_eq!(
        failures[0].to_string(),
        "status: expected 2xx, got 500 (body: \"boom\")"
    );
}

#[test]
fn latency_is_compared_with_its_limit() {
    let headers = HeaderMap::new();
    let failures = expect("{latency: 10ms}").judged(&observed(200, &headers, ""));
    assert_eq!(
        failures[0].to_string(),
        "latency: expected at most 10ms, got 40ms"
    );
}

#[test]
fn body_expectations_show_an_excerpt_of_what_came() {
    let headers = HeaderMap::new();
    let failures = expect("{body_contains: green, body_matches: '^v2'}").judged(&observed(
        200,
        &headers,
        "I am blue v1",
    ));
    assert_eq!(failures[0].to_string(), "body_contains: expected the body to contain \"green\", got a body of 12 bytes: \"I am blue v1\"");
    assert_eq!(failures[1].expectation, "body_matches");
}

#[test]
fn header_expectations_look_for_a_substring() {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("text/html"));
    let failures = expect("{headers: {content-type: json, x-version: '2'}}")
        .judged(&observed(200, &headers, ""));
    assert_eq!(
        failures[0].to_string(),
        "header content-type: expected a value containing \"json\", got \"text/html\""
    );
    assert_eq!(
        failures[1].to_string(),
        "header x-version: expected a value containing \"2\", got no such header"
    );
}

#[test]
fn json_expectations_show_the_value_found() {
    let headers = HeaderMap::new();
    let e = expect("{json: {'$.color': green, '$.missing': 1, '$.items[*].id': [1, 2]}}");
    let failures = e.judged(&observed(
        200,
        &headers,
        r#"{"color":"blue","items":[{"id":1},{"id":2}]}"#,
    ));
    let text: Vec<String> = failures.iter().map(|f| f.to_string()).collect();
    assert_eq!(
        text,
        vec![
            "json $.color: expected \"green\", got \"blue\"".to_string(),
            "json $.missing: expected 1, got nothing (the path matched no value)".to_string(),
        ]
    );
}

#[test]
fn json_expectations_fail_on_a_body_that_is_not_json() {
    let headers = HeaderMap::new();
    let failures = expect("{json: {'$.color': green}}").judged(&observed(200, &headers, "<html>"));
    assert!(
        failures[0].measured.starts_with("a body that is not JSON"),
        "{failures:?}"
    );
    let truncated = Observed {
        body_truncated: true,
        ..observed(200, &headers, "{\"a\":")
    };
    assert!(expect("{json: {'$.a': 1}}").judged(&truncated)[0]
        .measured
        .contains("1 MiB cap"));
}
