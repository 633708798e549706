//! The one rule for secrets, and the one place it is enforced.
//!
//! **The rule.** A value is secret when it comes from the environment through `${VAR}` (unless
//! the plan lists the variable in `not_secret`), when it is a request header's value (unless the
//! plan lists the header in `not_secret`), when it is a request body, or when it is the userinfo
//! of a URL (`http://user:pass@host`). Each secret is also recognised in its encoded forms: JSON
//! string escaping, URL (percent and form) encoding, base64 (standard and URL-safe, with and
//! without padding, at every byte alignment), and, for userinfo, the `Authorization: Basic`
//! value derived from it. Values shorter than [`MIN_SECRET_CHARS`] characters cannot be told
//! apart from ordinary text and are not searched for; greenlight never prints header values or
//! bodies it sends, so they are not shown either.
//!
//! **The place.** Secrets are registered with the process-wide [`Secrets`] registry when a plan
//! is resolved, before anything from it runs. Everything greenlight emits passes through it:
//! log lines (the log writer, `crate::logging`), invocation answers and `hookDetails`
//! (`crate::lambda`), CLI text and JSON (the CLI's output module), and excerpts of bodies, which
//! are redacted before they are cut.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use serde_json::Value;

/// What replaces a secret.
pub const MASK: &str = "***";
/// Shorter values are not searched for: every "1" or "true" would be masked.
pub const MIN_SECRET_CHARS: usize = 4;
/// Base64 fragments of a secret embedded at an offset are only searched for when at least this
/// long, so that a short fragment cannot mask ordinary text.
const MIN_FRAGMENT_CHARS: usize = 8;

/// The secrets this process knows, with a matcher over all their forms.
#[derive(Default)]
pub struct Secrets {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Every form of every secret.
    needles: BTreeSet<String>,
    matcher: Option<Arc<AhoCorasick>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.inner.read().map(|i| i.needles.len()).unwrap_or(0);
        write!(f, "Secrets({count} forms)")
    }
}

/// The process-wide registry every output passes through.
pub fn global() -> &'static Secrets {
    static GLOBAL: OnceLock<Secrets> = OnceLock::new();
    GLOBAL.get_or_init(Secrets::default)
}

impl Secrets {
    /// Registers secret values, with their encoded forms.
    pub fn add<I, S>(&self, values: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut forms = Vec::new();
        for value in values {
            forms.extend(encoded_forms(value.as_ref()));
        }
        self.add_forms(forms);
    }

    /// Registers the userinfo of a URL (`user:pass`), its parts, and the `Basic` credential
    /// derived from it.
    pub fn add_userinfo(&self, username: &str, password: Option<&str>) {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .to_string()
        };
        let user = decode(username);
        let mut values = vec![username.to_string(), user.clone()];
        if let Some(password) = password {
            let pass = decode(password);
            let pair = format!("{user}:{pass}");
            values.push(base64::engine::general_purpose::STANDARD.encode(&pair));
            values.extend([password.to_string(), pass, pair]);
        }
        self.add(values);
    }

    fn add_forms(&self, forms: Vec<String>) {
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        let before = inner.needles.len();
        inner.needles.extend(forms);
        if inner.needles.len() != before {
            inner.matcher = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&inner.needles)
                .ok()
                .map(Arc::new);
        }
    }

    fn matcher(&self) -> Option<Arc<AhoCorasick>> {
        self.inner.read().ok().and_then(|i| i.matcher.clone())
    }

    /// The text with every secret form replaced by `***`.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.matcher() {
            Some(matcher) if matcher.is_match(text) => {
                Cow::Owned(matcher.replace_all(text, &vec![MASK; matcher.patterns_len()]))
            }
            _ => Cow::Borrowed(text),
        }
    }

    /// Redacts every string value (not the keys) of a JSON document in place.
    pub fn redact_json(&self, value: &mut Value) {
        let Some(matcher) = self.matcher() else {
            return;
        };
        let masks = vec![MASK; matcher.patterns_len()];
        let mut stack = vec![value];
        while let Some(value) = stack.pop() {
            match value {
                Value::String(text) if matcher.is_match(text.as_str()) => {
                    *text = matcher.replace_all(text, &masks);
                }
                Value::Array(items) => stack.extend(items.iter_mut()),
                Value::Object(map) => stack.extend(map.values_mut()),
                _ => {}
            }
        }
    }

    /// The head of `text` that an excerpt of `chars` characters can show, with secrets masked,
    /// and whether text was left out: only the head is redacted, in a window long enough that any
    /// secret starting inside the excerpt lies wholly within it.
    fn redacted_head<'a>(&self, text: &'a str, chars: usize) -> (Cow<'a, str>, bool) {
        let longest = self
            .inner
            .read()
            .map(|i| i.needles.iter().map(|n| n.len()).max().unwrap_or(0))
            .unwrap_or(0);
        let window_bytes = chars
            .saturating_mul(4)
            .saturating_add(longest)
            .saturating_add(4);
        let window = cut_at_char_boundary(text, window_bytes);
        (self.redact(window), window.len() < text.len())
    }

    /// At most `chars` characters of `text` as written (whitespace kept): secrets are masked
    /// first, then the text is cut, never inside a mask, so a cut can never expose part of a
    /// secret. `…` marks a cut.
    pub fn excerpt_verbatim(&self, text: &str, chars: usize) -> String {
        let (redacted, left_out) = self.redacted_head(text, chars);
        if !left_out && redacted.chars().count() <= chars {
            return redacted.into_owned();
        }
        let mut end = redacted
            .char_indices()
            .nth(chars)
            .map_or(redacted.len(), |(at, _)| at);
        // A mask the cut would split is left out whole.
        if let Some(start) = redacted[..end].rfind('*') {
            let run_start = redacted[..=start].trim_end_matches('*').len();
            if redacted[run_start..].starts_with(MASK) && run_start + MASK.len() > end {
                end = run_start;
            }
        }
        let mut out = redacted[..end].to_string();
        out.push('…');
        out
    }

    /// A one-line excerpt of at most `chars` characters: secrets are masked first, then
    /// whitespace is collapsed and the text is cut, so a cut can never expose part of a secret.
    pub fn excerpt(&self, text: &str, chars: usize) -> String {
        let (redacted, left_out) = self.redacted_head(text, chars);
        let mut out = String::new();
        let mut count = 0;
        let mut cut = false;
        for word in redacted.split_whitespace() {
            let needed = word.chars().count() + usize::from(!out.is_empty());
            if count + needed > chars {
                let room = chars.saturating_sub(count + usize::from(!out.is_empty()));
                if room > 0 && !word.contains(MASK) {
                    if !out.is_empty() {
                        out.push(' ');
                    }
                    out.extend(word.chars().take(room));
                }
                cut = true;
                break;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
            count += needed;
        }
        if cut || left_out {
            out.push('…');
        }
        out
    }
}

fn cut_at_char_boundary(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A secret and the forms it takes when echoed, escaped or encoded.
pub fn encoded_forms(value: &str) -> Vec<String> {
    if value.chars().count() < MIN_SECRET_CHARS {
        return Vec::new();
    }
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut forms = vec![value.to_string()];
    // JSON string escaping, as in a JSON log line or an echoed JSON body.
    if let Ok(json) = serde_json::to_string(value) {
        forms.push(json[1..json.len() - 1].to_string());
    }
    // Escaping that keeps non-ASCII characters as \u sequences.
    let ascii_json: String = value
        .chars()
        .map(|c| match c {
            '"' => "\\\"".to_string(),
            '\\' => "\\\\".to_string(),
            c if c.is_ascii() && !c.is_ascii_control() => c.to_string(),
            c => c
                .encode_utf16(&mut [0; 2])
                .iter()
                .map(|u| format!("\\u{u:04x}"))
                .collect(),
        })
        .collect();
    forms.push(ascii_json);
    // URL encoding: percent-encoded (upper and lower case hex, every byte or only the reserved
    // ones), and form-encoded (space as +).
    for set in [UNRESERVED_KEPT, percent_encoding::NON_ALPHANUMERIC] {
        let percent = percent_encoding::utf8_percent_encode(value, set).to_string();
        forms.push(lowercase_escapes(&percent));
        forms.push(percent.replace("%20", "+"));
        forms.push(percent);
    }
    // Base64, and the parts of a base64 text that do not depend on what precedes or follows
    // the secret (as when it is embedded in a token).
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(value));
    }
    for offset in 1..3usize {
        let mut padded = vec![0u8; offset];
        padded.extend_from_slice(value.as_bytes());
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&padded);
            let tail = usize::from(!padded.len().is_multiple_of(3)) * 4;
            if encoded.len() > 4 + tail {
                let fragment = &encoded[4..encoded.len() - tail];
                if fragment.len() >= MIN_FRAGMENT_CHARS {
                    forms.push(fragment.to_string());
                }
            }
        }
    }
    {
        let tail = usize::from(!value.len().is_multiple_of(3)) * 4;
        let encoded = STANDARD_NO_PAD.encode(value);
        if encoded.len() > tail && encoded.len() - tail >= MIN_FRAGMENT_CHARS {
            forms.push(encoded[..encoded.len() - tail].to_string());
        }
    }
    forms.retain(|f| f.chars().count() >= MIN_SECRET_CHARS);
    forms.sort();
    forms.dedup();
    forms
}

/// What URL encoders leave as it is: letters, digits and `-._~`.
const UNRESERVED_KEPT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `%2F` → `%2f`: some encoders write lowercase hex.
fn lowercase_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '%' {
            out.extend(chars.by_ref().take(2).map(|h| h.to_ascii_lowercase()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn registry(values: &[&str]) -> Secrets {
        let secrets = Secrets::default();
        secrets.add(values.iter().copied());
        secrets
    }

    #[test]
    fn masks_every_occurrence_and_the_longest_form() {
        let s = registry(&["Bearer abc123", "abc123"]);
        assert_eq!(
            s.redact("sent Bearer abc123, token abc123 echoed"),
            "sent ***, token *** echoed"
        );
    }

    #[test]
    fn leaves_short_values_alone() {
        let s = registry(&["1"]);
        assert_eq!(s.redact("status 401"), "status 401");
    }

    #[test]
    fn masks_encoded_forms() {
        let secret = r#"p@ss "word"\x"#;
        let s = registry(&[secret]);
        let json = serde_json::to_string(secret).unwrap();
        assert_eq!(s.redact(&json), "\"***\"");
        let url = percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
        assert_eq!(s.redact(&format!("?q={url}")), "?q=***");
        assert_eq!(s.redact(&STANDARD.encode(secret)), "***");
        let embedded = STANDARD.encode(format!("xy{secret}and more"));
        assert!(s.redact(&embedded).contains(MASK), "{embedded}");
    }

    #[test]
    fn userinfo_masks_the_basic_credential() {
        let s = Secrets::default();
        s.add_userinfo("alice", Some("s3cr%40t"));
        let basic = STANDARD.encode("alice:s3cr@t");
        assert_eq!(s.redact(&format!("Basic {basic}")), "Basic ***");
        assert_eq!(s.redact("pw s3cr@t"), "pw ***");
    }

    #[test]
    fn excerpts_are_redacted_before_they_are_cut() {
        let token = "t".repeat(350);
        let s = registry(&[&token]);
        let body = format!("{{\"echo\": \"{token}\"}}");
        let excerpt = s.excerpt(&body, 160);
        assert!(!excerpt.contains("tttt"), "{excerpt}");
        assert_eq!(excerpt, "{\"echo\": \"***\"}");
    }

    #[test]
    fn verbatim_excerpts_keep_whitespace_mask_first_and_never_split_a_mask() {
        let secrets = Secrets::default();
        secrets.add(["s3cr3t-value"]);
        assert_eq!(secrets.excerpt_verbatim("a  b", 10), "a  b");
        assert_eq!(secrets.excerpt_verbatim("abcdef", 3), "abc…");
        // Masked first: the cut lands inside the mask, which is left out whole.
        assert_eq!(secrets.excerpt_verbatim("xy s3cr3t-value z", 5), "xy …");
        assert_eq!(secrets.excerpt_verbatim("xy s3cr3t-value z", 7), "xy *** …");
    }

    #[test]
    fn excerpts_collapse_whitespace_and_mark_a_cut() {
        let s = Secrets::default();
        assert_eq!(s.excerpt("a\n  b\tc", 160), "a b c");
        assert_eq!(s.excerpt(&"word ".repeat(100), 12), "word word wo…");
    }

    #[test]
    fn json_documents_have_their_string_values_redacted_not_their_keys() {
        let s = registry(&["hunter22"]);
        let mut doc = serde_json::json!({"hunter22": ["x hunter22 y", 1, {"k": "hunter22"}]});
        s.redact_json(&mut doc);
        assert_eq!(
            doc,
            serde_json::json!({"hunter22": ["x *** y", 1, {"k": "***"}]})
        );
    }
}
