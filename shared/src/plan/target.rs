//! The base URL checks go to, and how a check's path is joined to it.
//!
//! A target is an http(s) URL with a host. Its path is a prefix (`http://alb:8080/base` +
//! `/health` = `http://alb:8080/base/health`); its query is kept and merged with a check's own
//! (`?tenant=a` + `/orders?page=2` = `/orders?tenant=a&page=2`). A fragment is refused, in the
//! target and in paths: it is never sent, and before this rule `http://green/#` sent every check
//! to `/`. Userinfo (`http://user:pass@host`) is allowed, sent as Basic authentication, and
//! secret: shown as `***`.

use url::Url;

use crate::secrets::MASK;

/// A validated target: the URL requests go to, and how it is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    url: Url,
    display: String,
}

impl Target {
    /// Validates `value` (already substituted). `display` is how it is shown (the text as
    /// written, with `${VAR}`s); `named` says where it came from for messages, e.g.
    /// `GREENLIGHT_TEST_URL` or `--target`.
    pub fn parse(value: &str, display: &str, named: &str) -> Result<Self, String> {
        let written = if display == value {
            mask_userinfo(value)
        } else {
            mask_userinfo(display)
        };
        let url = parse_http_url(value).map_err(|why| {
            let suggestion = suggest_scheme(value)
                .map(|s| format!(" (did you mean {}?)", mask_userinfo(&s)))
                .unwrap_or_default();
            format!("{named} {written:?} {why}{suggestion}")
        })?;
        // A literal target is shown as parsed, so that userinfo is masked however it was
        // written (`http:/u:p@h` parses as `http://u:p@h/`).
        let shown = if display == value {
            mask_url(&url)
        } else {
            written
        };
        Ok(Target {
            url,
            display: shown.trim_end_matches('/').to_string(),
        })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The userinfo of the target, if any: `(username, password)`.
    pub fn userinfo(&self) -> Option<(&str, Option<&str>)> {
        userinfo(&self.url)
    }

    /// Joins a check's path (already substituted; `display` as written) to this target.
    pub fn join(&self, path: &str, display: &str) -> Result<(Url, String), String> {
        if path.is_empty() {
            return Ok((self.url.clone(), self.display.clone()));
        }
        if !path.starts_with('/') {
            return Err(format!(
                "{display:?} must start with \"/\" or be a full http(s) URL"
            ));
        }
        let (path_part, query) = split_path(path).map_err(|why| format!("{display:?} {why}"))?;
        let base_path = self.url.path().trim_end_matches('/');
        let mut joined = format!(
            "{}{base_path}/{}",
            &self.url[..url::Position::BeforePath],
            path_part.strip_prefix('/').unwrap_or(path_part)
        );
        let queries: Vec<&str> = [self.url.query(), query]
            .into_iter()
            .flatten()
            .filter(|q| !q.is_empty())
            .collect();
        if !queries.is_empty() {
            joined.push('?');
            joined.push_str(&queries.join("&"));
        }
        let url =
            Url::parse(&joined).map_err(|e| format!("{display:?} is not a valid path: {e}"))?;
        let (display_path, display_query) = match display.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (display, None),
        };
        let (target_display, target_query) = match self.display.split_once('?') {
            Some((t, q)) => (t.trim_end_matches('/'), Some(q)),
            None => (self.display.as_str(), None),
        };
        let mut shown = format!(
            "{target_display}/{}",
            display_path.strip_prefix('/').unwrap_or(display_path)
        );
        let shown_queries: Vec<&str> = [target_query, display_query]
            .into_iter()
            .flatten()
            .filter(|q| !q.is_empty())
            .collect();
        if !shown_queries.is_empty() {
            shown.push('?');
            shown.push_str(&shown_queries.join("&"));
        }
        Ok((url, shown))
    }
}

/// A full URL written as a check's path.
pub fn parse_absolute(value: &str, display: &str) -> Result<(Url, String), String> {
    let written = mask_userinfo(display);
    let url = parse_http_url(value).map_err(|why| format!("{written:?} {why}"))?;
    let shown = if display == value {
        mask_url(&url)
    } else {
        written
    };
    Ok((url, shown))
}

/// A parsed URL as text, with its userinfo masked.
fn mask_url(url: &Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut masked = url.clone();
    let _ = masked.set_password(None);
    let _ = masked.set_username("");
    let text = masked.to_string();
    match text.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{MASK}@{rest}"),
        None => text,
    }
}

/// True for text that is meant as a full URL (has a scheme), whatever the scheme.
pub fn has_scheme(text: &str) -> bool {
    match text.split_once("://") {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

fn parse_http_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value.trim()).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => {
            "is not a URL (it has no http:// or https://)".to_string()
        }
        url::ParseError::EmptyHost => "has no host".to_string(),
        url::ParseError::InvalidPort => "has an invalid port".to_string(),
        other => format!("is not a valid URL: {other}"),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "uses {}: only http and https are supported",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if url.fragment().is_some() {
        return Err(
            "has a fragment (#…): fragments are never sent to the server, so remove it".into(),
        );
    }
    Ok(url)
}

/// `path?query`, refusing a fragment.
fn split_path(path: &str) -> Result<(&str, Option<&str>), String> {
    if path.contains('#') {
        return Err(
            "has a fragment (#…): fragments are never sent to the server; write # as %23 if it belongs in the path"
                .into(),
        );
    }
    Ok(match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    })
}

fn userinfo(url: &Url) -> Option<(&str, Option<&str>)> {
    (!url.username().is_empty() || url.password().is_some())
        .then(|| (url.username(), url.password()))
}

/// `http://user:pass@host/x` → `http://***@host/x`, for any text that looks like a URL.
pub fn mask_userinfo(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{MASK}{}", &rest[at..]),
        None => text.to_string(),
    }
}

/// `127.0.0.1:8080` → `http://127.0.0.1:8080`, when the text looks like a host without a scheme.
fn suggest_scheme(value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() || has_scheme(value) || value.contains(char::is_whitespace) {
        return None;
    }
    let host = value.split(['/', '?']).next().unwrap_or_default();
    let looks_like_host = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '@'));
    let candidate = format!("http://{value}");
    (looks_like_host && parse_http_url(&candidate).is_ok()).then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(text: &str) -> Target {
        Target::parse(text, text, "GREENLIGHT_TEST_URL").unwrap()
    }

    fn joined(base: &str, path: &str) -> String {
        target(base).join(path, path).unwrap().0.to_string()
    }

    #[test]
    fn paths_join_under_the_target_path() {
        assert_eq!(
            joined("http://h:8080/base/", "/health"),
            "http://h:8080/base/health"
        );
        assert_eq!(joined("http://h:8080", "/health"), "http://h:8080/health");
        assert_eq!(joined("http://h", ""), "http://h/");
        assert_eq!(joined("http://h/a", "//x/y"), "http://h/a//x/y");
    }

    #[test]
    fn queries_merge_target_first() {
        assert_eq!(
            joined("http://h/?tenant=a", "/orders?page=2"),
            "http://h/orders?tenant=a&page=2"
        );
        assert_eq!(joined("http://h/?x=1", "/health"), "http://h/health?x=1");
        let (_, shown) = target("http://h/?x=1").join("/v?y=2", "/v?y=2").unwrap();
        assert_eq!(shown, "http://h/v?x=1&y=2");
    }

    #[test]
    fn fragments_are_refused_where_they_would_swallow_the_path() {
        let err =
            Target::parse("http://green/#", "http://green/#", "GREENLIGHT_TEST_URL").unwrap_err();
        assert!(err.contains("has a fragment"), "{err}");
        let err = target("http://green").join("/a#b", "/a#b").unwrap_err();
        assert!(err.contains("has a fragment"), "{err}");
    }

    #[test]
    fn a_host_without_a_scheme_gets_a_suggestion() {
        let err = Target::parse("127.0.0.1:18080", "127.0.0.1:18080", "--target").unwrap_err();
        assert_eq!(
            err,
            "--target \"127.0.0.1:18080\" is not a URL (it has no http:// or https://) (did you mean http://127.0.0.1:18080?)"
        );
        let err = Target::parse("not a url", "not a url", "target").unwrap_err();
        assert!(!err.contains("did you mean"), "{err}");
    }

    #[test]
    fn other_schemes_and_hostless_urls_are_refused() {
        for (text, why) in [
            ("ftp://x/y", "uses ftp"),
            ("http://", "has no host"),
            ("http://h:99999", "invalid port"),
        ] {
            let err = Target::parse(text, text, "target").unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn userinfo_is_kept_for_sending_and_masked_for_showing() {
        let t = target("http://alice:pw@h:1/base");
        assert_eq!(t.userinfo(), Some(("alice", Some("pw"))));
        let (url, shown) = t.join("/x", "/x").unwrap();
        assert_eq!(url.as_str(), "http://alice:pw@h:1/base/x");
        assert_eq!(shown, "http://***@h:1/base/x");
        assert_eq!(mask_userinfo("https://u@h/p@x"), "https://***@h/p@x");
    }
}
