//! Turning a validated plan into runnable checks: `${VAR}` substitution, joining paths to the
//! target, building headers, and collecting the values that must never be shown.

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::Url;

use super::{vars, Check, CheckSpec, FieldError};

pub(super) fn resolve_check(
    spec: &CheckSpec,
    target: Option<&(String, String)>,
    lookup: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Vec<String>,
) -> Result<Check, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut error = |path: &str, message: String| {
        errors.push(FieldError {
            path: path.into(),
            message,
        })
    };

    let (url, display) = match vars::substitute(&spec.path, lookup) {
        Err(message) => {
            error(".path", message);
            (None, String::new())
        }
        Ok(path) => {
            secrets.extend(path.inserted);
            let joined = if is_absolute(&path.value) {
                Some((path.value.clone(), path.display.clone()))
            } else {
                target.map(|(value, display)| {
                    (
                        join_url(value, &path.value),
                        join_url(display, &path.display),
                    )
                })
            };
            match joined {
                None => {
                    error(
                        ".path",
                        format!(
                            "\"{}\" is relative but no target is set: set GREENLIGHT_TEST_URL (or the plan's `target`, or --target)",
                            spec.path
                        ),
                    );
                    (None, String::new())
                }
                Some((value, display)) => match Url::parse(&value) {
                    Ok(url) if matches!(url.scheme(), "http" | "https") => (Some(url), display),
                    Ok(url) => {
                        error(
                            ".path",
                            format!(
                                "\"{display}\" uses {}: only http and https are supported",
                                url.scheme()
                            ),
                        );
                        (None, display)
                    }
                    Err(e) => {
                        error(".path", format!("\"{display}\" is not a valid URL: {e}"));
                        (None, display)
                    }
                },
            }
        }
    };

    let mut headers = HeaderMap::new();
    for (name, template) in &spec.headers {
        match vars::substitute(template, lookup) {
            Ok(s) => match HeaderValue::from_str(&s.value) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    secrets.extend(s.inserted);
                    headers.insert(name.clone(), value);
                }
                Err(_) => error(
                    &format!(".headers.{name}"),
                    "the value (after substitution) is not a valid header value".into(),
                ),
            },
            Err(message) => error(&format!(".headers.{name}"), message),
        }
    }

    let body = match &spec.body {
        None => None,
        Some(template) => match vars::substitute(template, lookup) {
            Ok(s) => {
                secrets.extend(s.inserted);
                Some(s.value)
            }
            Err(message) => {
                error(".body", message);
                None
            }
        },
    };

    let mut expect = spec.expect.clone();
    for (i, needle) in expect.body_contains.iter_mut().enumerate() {
        match vars::substitute(needle, lookup) {
            Ok(s) => *needle = s.value,
            Err(message) => error(&format!(".expect.body_contains[{i}]"), message),
        }
    }
    for j in &mut expect.json {
        if let serde_json::Value::String(text) = &j.expected {
            match vars::substitute(text, lookup) {
                Ok(s) => j.expected = serde_json::Value::String(s.value),
                Err(message) => error(&format!(".expect.json.{}", j.expression), message),
            }
        }
    }

    match (url, errors.is_empty()) {
        (Some(url), true) => Ok(Check {
            name: spec.name.clone(),
            request_line: format!("{} {display}", spec.method),
            method: spec.method.clone(),
            url,
            headers,
            body,
            timeout: spec.timeout,
            retries: spec.retries,
            retry_delay: spec.retry_delay,
            expect,
        }),
        _ => Err(errors),
    }
}

pub(super) fn is_absolute(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.contains("://")
}

/// Joins without dropping a base path: `http://h:8080/base` + `/health` = `http://h:8080/base/health`.
fn join_url(base: &str, path: &str) -> String {
    if path.is_empty() {
        return base.to_string();
    }
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}
