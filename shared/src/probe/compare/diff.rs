//! Response diffs: green's answer against blue's for the same request (status, chosen headers,
//! the JSON document value by value), in the spirit of Diffy. Noise is learnt from blue itself:
//! a place where two of blue's answers to the same request differ (a timestamp, a request id)
//! says nothing about green, and is left out. Places are written as the report shows them, with
//! array indices as `[*]` (`$.items[*].total`), so one difference repeated in every item is one
//! line, and a plan's `ignore:` and `tolerance:` use the same form.

use serde_json::Value;

use crate::expect::assertion::json_type;

/// What kind of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Status,
    Header,
    /// A value changed (numbers beyond their tolerance, texts, booleans).
    Value,
    /// The value's type changed (a number became a string).
    Type,
    /// Blue has it, green does not.
    Missing,
    /// The same items in another order.
    Order,
    /// More or fewer items.
    Length,
    /// Bodies that are not JSON differ.
    Body,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Status => "status",
            Kind::Header => "header",
            Kind::Value => "value",
            Kind::Type => "type",
            Kind::Missing => "missing in green",
            Kind::Order => "order changed",
            Kind::Length => "length",
            Kind::Body => "body",
        }
    }
}

/// One difference between blue's answer and green's.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// `$.items[*].total`, `status`, `header content-type`, `body`.
    pub place: String,
    pub kind: Kind,
    pub blue: String,
    pub green: String,
}

/// What the plan says to leave out or allow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// Places never compared, each with everything below it.
    pub ignore: Vec<String>,
    /// Numeric tolerances by place: differences up to this much are equal.
    pub tolerance: Vec<(String, f64)>,
    /// Response headers compared (lower case).
    pub headers: Vec<String>,
}

impl Options {
    pub fn ignores(&self, place: &str) -> bool {
        self.ignore.iter().any(|i| covers(i, place))
    }

    fn tolerance(&self, place: &str) -> f64 {
        self.tolerance
            .iter()
            .filter(|(p, _)| covers(p, place))
            .map(|(_, t)| *t)
            .fold(0.0, f64::max)
    }
}

/// `$.a` covers `$.a`, `$.a.b` and `$.a[*]`, not `$.ab`; `$..at` covers an `at` at any depth
/// (`$.at`, `$.items[*].at.zone`).
pub fn covers(pattern: &str, place: &str) -> bool {
    let boundary = |rest: &str| rest.is_empty() || rest.starts_with('.') || rest.starts_with('[');
    let Some((head, tail)) = pattern.split_once("..") else {
        return place.strip_prefix(pattern).is_some_and(boundary);
    };
    let Some(rest) = place.strip_prefix(head) else {
        return false;
    };
    let needle = if tail.starts_with('[') {
        tail.to_string()
    } else {
        format!(".{tail}")
    };
    rest.match_indices(needle.as_str())
        .any(|(at, _)| boundary(&rest[at + needle.len()..]))
}

/// Whether `pattern` names places as the report writes them: `status`, `body`, `header NAME`, or
/// `$` followed by `.name`, `['name']`, `[*]` (every item) and at most one `..` (any depth).
pub fn check_place(pattern: &str) -> Result<(), String> {
    if matches!(pattern, "status" | "body") || pattern.starts_with("header ") {
        return Ok(());
    }
    let how = "write it as the report does: $.meta, $.items[*].total, $..updated_at, $['odd key']";
    let Some(mut rest) = pattern.strip_prefix('$') else {
        return Err(format!("\"{pattern}\" is not a place in the answer; {how}"));
    };
    if pattern.matches("..").count() > 1 {
        return Err(format!("\"{pattern}\" has more than one `..`; {how}"));
    }
    let name = |text: &str| {
        text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(text.len())
    };
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("[*]") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("['") {
            let Some(end) = r.find("']") else {
                return Err(format!("\"{pattern}\" has an unclosed ['; {how}"));
            };
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix("..").or_else(|| rest.strip_prefix('.')) {
            if r.starts_with("['") {
                rest = r;
                continue;
            }
            let n = name(r);
            if n == 0 {
                return Err(format!(
                    "\"{pattern}\" has an empty name after a dot; {how}"
                ));
            }
            rest = &r[n..];
        } else if rest.starts_with('[') {
            return Err(format!(
                "\"{pattern}\": array items are written [*] (a place stands for every item); indices and filters do not name places; {how}"
            ));
        } else {
            return Err(format!("\"{pattern}\" is not a place in the answer; {how}"));
        }
    }
    Ok(())
}

/// At most this many differences are kept per pair of answers.
pub const MAX_PER_ANSWER: usize = 32;
/// Values are shown up to this many characters.
const SHOWN: usize = 60;

/// An answer, as far as diffs go.
pub struct Seen<'a> {
    pub status: u16,
    pub headers: &'a reqwest::header::HeaderMap,
    pub body: &'a [u8],
}

/// Every difference between `blue` and `green` (at most [`MAX_PER_ANSWER`]), leaving out what
/// `options` ignores. Differences are found the same way between two of blue's answers to learn
/// noise.
pub fn differences(blue: &Seen<'_>, green: &Seen<'_>, options: &Options) -> Vec<Difference> {
    let mut out = Vec::new();
    if blue.status != green.status {
        out.push(Difference {
            place: "status".into(),
            kind: Kind::Status,
            blue: blue.status.to_string(),
            green: green.status.to_string(),
        });
    }
    for name in &options.headers {
        let value = |seen: &Seen<'_>| {
            seen.headers
                .get(name.as_str())
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let (b, g) = (value(blue), value(green));
        if b != g {
            out.push(Difference {
                place: format!("header {name}"),
                kind: Kind::Header,
                blue: b.unwrap_or_else(|| "(none)".into()),
                green: g.unwrap_or_else(|| "(none)".into()),
            });
        }
    }
    if blue.body == green.body {
        return out;
    }
    match (
        serde_json::from_slice::<Value>(blue.body),
        serde_json::from_slice::<Value>(green.body),
    ) {
        (Ok(b), Ok(g)) => json("$".to_string(), &b, &g, options, &mut out),
        _ => {
            if !options.ignores("body") {
                out.push(Difference {
                    place: "body".into(),
                    kind: Kind::Body,
                    blue: excerpt_bytes(blue.body),
                    green: excerpt_bytes(green.body),
                });
            }
        }
    }
    out.truncate(MAX_PER_ANSWER);
    out
}

fn json(place: String, blue: &Value, green: &Value, options: &Options, out: &mut Vec<Difference>) {
    if out.len() >= MAX_PER_ANSWER || options.ignores(&place) {
        return;
    }
    let mut push = |place: String, kind: Kind, b: String, g: String| {
        out.push(Difference {
            place,
            kind,
            blue: b,
            green: g,
        })
    };
    match (blue, green) {
        (Value::Object(b), Value::Object(g)) => {
            for (key, bv) in b {
                let below = child(&place, key);
                match g.get(key) {
                    Some(gv) => json(below, bv, gv, options, out),
                    None if !options.ignores(&below) && out.len() < MAX_PER_ANSWER => {
                        out.push(Difference {
                            place: below,
                            kind: Kind::Missing,
                            blue: shown(bv),
                            green: "(absent)".into(),
                        })
                    }
                    None => {}
                }
            }
            // Fields only green has are additions: clients that do not know them ignore them.
        }
        (Value::Array(b), Value::Array(g)) => {
            let items = format!("{place}[*]");
            if b.len() == g.len() && b != g && same_items(b, g) {
                push(
                    place,
                    Kind::Order,
                    format!("{} items in one order", b.len()),
                    "the same items in another order".into(),
                );
                return;
            }
            if b.len() != g.len() {
                push(
                    place.clone(),
                    Kind::Length,
                    format!("{} items", b.len()),
                    format!("{} items", g.len()),
                );
            }
            for (bv, gv) in b.iter().zip(g) {
                json(items.clone(), bv, gv, options, out);
            }
        }
        (Value::Number(b), Value::Number(g)) => {
            let (bf, gf) = (
                b.as_f64().unwrap_or(f64::NAN),
                g.as_f64().unwrap_or(f64::NAN),
            );
            let tolerance = options.tolerance(&place);
            // Without a tolerance, equal means equal (21.3 is not 21.299999999999997); with one,
            // the tolerance itself is not lost to rounding (|19.99 − 20.0| is 0.01).
            let beyond = if tolerance == 0.0 {
                bf != gf
            } else {
                (bf - gf).abs() > tolerance * (1.0 + 1e-9)
            };
            if beyond || bf.is_nan() != gf.is_nan() {
                push(place, Kind::Value, b.to_string(), g.to_string());
            }
        }
        (b, g) if std::mem::discriminant(b) != std::mem::discriminant(g) => push(
            place,
            Kind::Type,
            format!("{} {}", json_type(b), shown(b)),
            format!("{} {}", json_type(g), shown(g)),
        ),
        (b, g) => {
            if b != g {
                push(place, Kind::Value, shown(b), shown(g));
            }
        }
    }
}

/// The same items, whatever their order (compared by their JSON text, sorted).
fn same_items(b: &[Value], g: &[Value]) -> bool {
    let texts = |items: &[Value]| {
        let mut t: Vec<String> = items.iter().map(Value::to_string).collect();
        t.sort_unstable();
        t
    };
    texts(b) == texts(g)
}

fn child(place: &str, key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        format!("{place}.{key}")
    } else {
        format!("{place}['{}']", key.replace('\'', "\\'"))
    }
}

fn shown(value: &Value) -> String {
    cut(value.to_string())
}

fn excerpt_bytes(body: &[u8]) -> String {
    format!(
        "{} bytes: {}",
        body.len(),
        cut(String::from_utf8_lossy(body).into_owned())
    )
}

/// Secrets masked before the cut, so a cut cannot show part of one (see `crate::secrets`).
fn cut(text: String) -> String {
    crate::secrets::global().excerpt_verbatim(&text, SHOWN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(blue: &str, green: &str, options: &Options) -> Vec<String> {
        let headers = reqwest::header::HeaderMap::new();
        let seen = |body: &'static str| Seen {
            status: 200,
            headers: &headers,
            body: body.as_bytes(),
        };
        let blue: &'static str = Box::leak(blue.to_string().into_boxed_str());
        let green: &'static str = Box::leak(green.to_string().into_boxed_str());
        differences(&seen(blue), &seen(green), options)
            .into_iter()
            .map(|d| format!("{} {}: {} → {}", d.place, d.kind.label(), d.blue, d.green))
            .collect()
    }

    #[test]
    fn float_sums_lost_precision_type_changes_and_missing_fields_are_named() {
        let options = Options::default();
        assert_eq!(
            diff(
                r#"{"items":[{"total":21.3},{"total":19.99}],"id":"a"}"#,
                r#"{"items":[{"total":21.299999999999997},{"total":20.0}]}"#,
                &options
            ),
            [
                "$.id missing in green: \"a\" → (absent)",
                "$.items[*].total value: 21.3 → 21.299999999999997",
                "$.items[*].total value: 19.99 → 20.0",
            ]
        );
        assert_eq!(
            diff(r#"{"n":12.5}"#, r#"{"n":"12.5"}"#, &options),
            ["$.n type: number 12.5 → string \"12.5\""]
        );
    }

    #[test]
    fn a_reordered_list_is_reported_as_such_and_additions_are_not_differences() {
        let options = Options::default();
        assert_eq!(
            diff(
                r#"{"ids":[1,2,3]}"#,
                r#"{"ids":[3,2,1],"new":true}"#,
                &options
            ),
            ["$.ids order changed: 3 items in one order → the same items in another order"]
        );
        assert_eq!(
            diff(r#"{"ids":[1,2,3]}"#, r#"{"ids":[1,2]}"#, &options),
            ["$.ids length: 3 items → 2 items"]
        );
        assert_eq!(
            diff(r#"{"n":20}"#, r#"{"n":20.0}"#, &options),
            Vec::<String>::new()
        );
    }

    #[test]
    fn ignored_places_and_tolerances_are_respected() {
        let options = Options {
            ignore: vec!["$.meta".into()],
            tolerance: vec![("$.items[*].total".into(), 0.01)],
            headers: Vec::new(),
        };
        assert_eq!(
            diff(
                r#"{"meta":{"at":"10:00"},"items":[{"total":19.99}],"name":"x y"}"#,
                r#"{"meta":{"at":"10:01"},"items":[{"total":20.0}],"name":"x  y"}"#,
                &options
            ),
            ["$.name value: \"x y\" → \"x  y\""]
        );
        assert!(covers("$.a", "$.a[*].b") && !covers("$.a", "$.ab"));
        assert!(covers("$..at", "$.items[*].at") && covers("$..at", "$.at.zone"));
        assert!(!covers("$..at", "$.items[*].attic") && !covers("$.x..at", "$.y.at"));
    }

    #[test]
    fn places_in_a_plan_are_checked_as_the_report_writes_them() {
        for good in [
            "$",
            "$.meta",
            "$.items[*].total",
            "$..updated_at",
            "$['odd key'].x",
            "status",
            "header etag",
        ] {
            assert_eq!(check_place(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("meta", "is not a place in the answer"),
            ("$.items[0].total", "array items are written [*]"),
            ("$.items[?@.x].y", "array items are written [*]"),
            ("$..a..b", "more than one `..`"),
            ("$.", "an empty name after a dot"),
            ("$['x", "an unclosed ['"),
        ] {
            let message = check_place(bad).unwrap_err();
            assert!(message.contains(why), "{bad}: {message}");
        }
    }

    #[test]
    fn a_secret_in_a_shown_value_is_masked_before_the_value_is_cut() {
        let token = "diff-secret-7f3a9c2e5b1d4f6a8c0e2b4d6f8a1c3e";
        crate::secrets::global().add([token]);
        // The token straddles the 60-character cut: cut first, its head would be shown.
        let padding = "p".repeat(40);
        let found = diff(
            &format!(r#"{{"note":"{padding} {token}"}}"#),
            r#"{"note":"other"}"#,
            &Options::default(),
        );
        assert_eq!(
            found,
            [format!("$.note value: \"{padding} ***\" → \"other\"")],
            "masked first, the value fits and is shown whole"
        );
        assert!(!found[0].contains("diff-secret"));
    }

    #[test]
    fn bodies_that_are_not_json_differ_as_text_and_huge_diffs_are_bounded() {
        assert_eq!(
            diff("plain one", "plain two", &Options::default()),
            ["body body: 9 bytes: plain one → 9 bytes: plain two"]
        );
        let blue: Vec<String> = (0..100).map(|i| format!("\"k{i}\":{i}")).collect();
        let green: Vec<String> = (0..100).map(|i| format!("\"k{i}\":{}", i + 1)).collect();
        let found = diff(
            &format!("{{{}}}", blue.join(",")),
            &format!("{{{}}}", green.join(",")),
            &Options::default(),
        );
        assert_eq!(found.len(), MAX_PER_ANSWER);
    }
}
