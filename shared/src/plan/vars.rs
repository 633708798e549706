//! `${VAR}` substitution from the environment, so secrets never have to be written into a plan.
//!
//! `${NAME}` takes the variable's value and fails if it is unset; `${NAME:-fallback}` uses the
//! fallback when it is unset or empty; `$$` writes a literal `$`.

/// The result of substituting variables into one plan string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substituted {
    /// The text with every variable replaced: what is sent.
    pub value: String,
    /// The text with variables left as written: what is shown in logs and messages.
    pub display: String,
    /// The values that came from the environment (they may be secrets).
    pub inserted: Vec<String>,
}

/// Replaces `${VAR}` references in `text` using `lookup`.
pub fn substitute(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Substituted, String> {
    let mut value = String::with_capacity(text.len());
    let mut inserted = Vec::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        value.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            value.push('$');
            rest = tail;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            value.push('$');
            rest = after;
            continue;
        };
        let close = body
            .find('}')
            .ok_or_else(|| format!("\"{text}\" has an unclosed \"${{\""))?;
        let reference = &body[..close];
        let (name, fallback) = match reference.split_once(":-") {
            Some((name, fallback)) => (name, Some(fallback)),
            None => (reference, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "\"${{{reference}}}\" is not a valid variable reference"
            ));
        }
        let found = lookup(name).filter(|v| fallback.is_none() || !v.is_empty());
        match (found, fallback) {
            (Some(found), _) => {
                value.push_str(&found);
                inserted.push(found);
            }
            (None, Some(fallback)) => value.push_str(fallback),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (referenced as ${{{name}}}; use ${{{name}:-default}} for a fallback)"
                ))
            }
        }
        rest = &body[close + 1..];
    }
    value.push_str(rest);
    Ok(Substituted {
        value,
        display: text.replace("$$", "$"),
        inserted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cr3t".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn replaces_variables_and_keeps_the_written_form_for_display() {
        let s = substitute("Bearer ${TOKEN}", &env).unwrap();
        assert_eq!(s.value, "Bearer s3cr3t");
        assert_eq!(s.display, "Bearer ${TOKEN}");
        assert_eq!(s.inserted, vec!["s3cr3t".to_string()]);
    }

    #[test]
    fn fallbacks_apply_when_unset_or_empty() {
        assert_eq!(substitute("${NOPE:-x}", &env).unwrap().value, "x");
        assert_eq!(substitute("${EMPTY:-y}", &env).unwrap().value, "y");
        assert_eq!(substitute("${EMPTY}", &env).unwrap().value, "");
    }

    #[test]
    fn an_unset_variable_is_named_in_the_error() {
        let err = substitute("/orders?key=${API_KEY}", &env).unwrap_err();
        assert!(err.contains("API_KEY is not set"), "{err}");
    }

    #[test]
    fn dollars_that_are_not_references_pass_through() {
        assert_eq!(
            substitute("$.price and $$5", &env).unwrap().value,
            "$.price and $5"
        );
        assert!(substitute("${UNCLOSED", &env)
            .unwrap_err()
            .contains("unclosed"));
        assert!(substitute("${bad-name}", &env)
            .unwrap_err()
            .contains("not a valid"));
    }
}
