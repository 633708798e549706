//! Keeps secrets out of logs: header values from the plan and values substituted from the
//! environment are replaced by `***` in anything shown to people (messages, body excerpts).

/// Values shorter than this are not scrubbed: `x-smoke: 1` is not a secret, and scrubbing
/// every "1" would make messages unreadable.
const MIN_SECRET_LEN: usize = 4;

#[derive(Debug, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|s| s.chars().count() >= MIN_SECRET_LEN)
            .collect();
        // Longest first, so a secret that contains another is scrubbed whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_every_occurrence_of_every_secret() {
        let r = Redactor::new(["Bearer abc123".to_string(), "abc123".to_string()]);
        assert_eq!(
            r.redact("sent Bearer abc123, token abc123 echoed"),
            "sent ***, token *** echoed"
        );
    }

    #[test]
    fn leaves_short_values_alone() {
        let r = Redactor::new(["1".to_string()]);
        assert_eq!(r.redact("status 401"), "status 401");
    }
}
