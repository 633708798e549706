//! `${VAR}` templates, so secrets never have to be written into a plan.
//!
//! `${NAME}` takes the variable's value and fails if it is unset; `${NAME:-fallback}` uses the
//! fallback when it is unset or empty; `$$` writes a literal `$`. A template's syntax is checked
//! when the plan is parsed (an unclosed `${` is a plan error wherever the plan runs); its values
//! are filled in when the plan is resolved against an environment.

use crate::env::Env;

/// A plan string with its `${VAR}` references found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    written: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var {
        name: String,
        fallback: Option<String>,
    },
}

/// The result of filling in one template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substituted {
    /// The text with every variable replaced: what is sent.
    pub value: String,
    /// The text with variables left as written: what is shown in logs and messages.
    pub display: String,
    /// The variables that were filled in, with their values (they may be secrets).
    pub inserted: Vec<(String, String)>,
}

impl Template {
    /// Finds the references in `text`; a malformed reference is an error that quotes it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(dollar) = rest.find('$') {
            literal.push_str(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                literal.push('$');
                rest = tail;
                continue;
            }
            let Some(body) = after.strip_prefix('{') else {
                literal.push('$');
                rest = after;
                continue;
            };
            let close = body.find('}').ok_or_else(|| {
                format!("\"{text}\" has a \"${{\" without its closing \"}}\" (write $$ for a literal $)")
            })?;
            let reference = &body[..close];
            let (name, fallback) = match reference.split_once(":-") {
                Some((name, fallback)) => (name, Some(fallback.to_string())),
                None => (reference, None),
            };
            // `${captured.NAME}`: a value an earlier check captured (see `plan::capture`).
            let bare = name.strip_prefix(super::capture::PREFIX).unwrap_or(name);
            if bare.is_empty()
                || !bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || bare.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(format!(
                    "\"${{{reference}}}\" is not a variable reference: a name is letters, digits and _ (write $$ for a literal $)"
                ));
            }
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            parts.push(Part::Var {
                name: name.to_string(),
                fallback,
            });
            rest = &body[close + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template {
            written: text.to_string(),
            parts,
        })
    }

    /// The empty text.
    pub fn empty() -> Self {
        Template {
            written: String::new(),
            parts: Vec::new(),
        }
    }

    /// The text as written in the plan.
    pub fn written(&self) -> &str {
        &self.written
    }

    /// True when there is nothing to fill in.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// The literal text, when there is nothing to fill in.
    pub fn literal(&self) -> Option<String> {
        self.is_literal().then(|| self.render_display())
    }

    /// The text before the first variable (all of it for a literal).
    pub fn literal_prefix(&self) -> String {
        match self.parts.first() {
            Some(Part::Text(text)) => text.clone(),
            _ => String::new(),
        }
    }

    /// The names this template refers to.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var { name, .. } => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    fn render_display(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                Part::Var {
                    name,
                    fallback: None,
                } => format!("${{{name}}}"),
                Part::Var {
                    name,
                    fallback: Some(f),
                } => format!("${{{name}:-{f}}}"),
            })
            .collect()
    }

    /// Fills in the variables from `env`.
    pub fn substitute(&self, env: &Env) -> Result<Substituted, String> {
        let mut value = String::new();
        let mut inserted = Vec::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => value.push_str(text),
                Part::Var { name, fallback } => {
                    if CREDENTIALS.contains(&name.as_str()) {
                        return Err(format!(
                            "${{{name}}} names the AWS credentials greenlight runs with: no plan may send them (a plan kept in Parameter Store or GREENLIGHT_PLANS could otherwise hand the function's role to anyone)"
                        ));
                    }
                    let found = env.var(name).map_err(|e| e.to_string())?;
                    let found = found.filter(|v| fallback.is_none() || !v.is_empty());
                    match (found, fallback) {
                        (Some(found), _) => {
                            value.push_str(&found);
                            inserted.push((name.clone(), found));
                        }
                        (None, Some(fallback)) => value.push_str(fallback),
                        (None, None) => {
                            return Err(format!(
                                "environment variable {name} is not set (referenced as ${{{name}}}; use ${{{name}:-default}} for a fallback)"
                            ))
                        }
                    }
                }
            }
        }
        Ok(Substituted {
            value,
            display: self.render_display(),
            inserted,
        })
    }
}

/// The variables that hold the process's own AWS credentials (Lambda sets the first three).
const CREDENTIALS: [&str; 5] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

/// Parses and fills in `text` in one step.
pub fn substitute(text: &str, env: &Env) -> Result<Substituted, String> {
    Template::parse(text)?.substitute(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env::from_pairs([("TOKEN", "s3cr3t"), ("EMPTY", "")])
    }

    #[test]
    fn the_processs_aws_credentials_are_never_filled_in() {
        let env = Env::from_pairs([
            ("AWS_SESSION_TOKEN", "IQoJb3JpZ2luX2Vj"),
            ("AWS_REGION", "eu-west-1"),
        ]);
        let e = substitute("x-token: ${AWS_SESSION_TOKEN}", &env).unwrap_err();
        assert!(
            e.contains("${AWS_SESSION_TOKEN} names the AWS credentials"),
            "{e}"
        );
        assert!(!e.contains("IQoJb3JpZ2luX2Vj"));
        // Even with a fallback, and whether or not it is set.
        assert!(substitute("${AWS_SECRET_ACCESS_KEY:-x}", &env).is_err());
        assert_eq!(
            substitute("${AWS_REGION}", &env).unwrap().value,
            "eu-west-1"
        );
    }

    #[test]
    fn replaces_variables_and_keeps_the_written_form_for_display() {
        let s = substitute("Bearer ${TOKEN}", &env()).unwrap();
        assert_eq!(s.value, "Bearer s3cr3t");
        assert_eq!(s.display, "Bearer ${TOKEN}");
        assert_eq!(
            s.inserted,
            vec![("TOKEN".to_string(), "s3cr3t".to_string())]
        );
    }

    #[test]
    fn fallbacks_apply_when_unset_or_empty() {
        assert_eq!(substitute("${NOPE:-x}", &env()).unwrap().value, "x");
        assert_eq!(substitute("${EMPTY:-y}", &env()).unwrap().value, "y");
        assert_eq!(substitute("${EMPTY}", &env()).unwrap().value, "");
    }

    #[test]
    fn an_unset_variable_is_named_in_the_error() {
        let err = substitute("/orders?key=${API_KEY}", &env()).unwrap_err();
        assert!(err.contains("API_KEY is not set"), "{err}");
    }

    #[test]
    fn a_variable_that_is_not_utf8_is_an_error_not_unset() {
        use std::os::unix::ffi::OsStringExt;
        let env = Env::from_os_fn(|name| {
            (name == "TOKEN").then(|| std::ffi::OsString::from_vec(vec![0xc3, 0x28]))
        });
        let err = substitute("${TOKEN:-fallback}", &env).unwrap_err();
        assert!(err.contains("TOKEN is not valid UTF-8"), "{err}");
    }

    #[test]
    fn dollars_that_are_not_references_pass_through() {
        assert_eq!(
            substitute("$.price and $$5", &env()).unwrap().value,
            "$.price and $5"
        );
        assert_eq!(
            substitute("$.price and $$5", &env()).unwrap().display,
            "$.price and $$5".replace("$$", "$")
        );
        assert!(Template::parse("/b/${")
            .unwrap_err()
            .contains("without its closing"));
        assert!(Template::parse("${bad-name}")
            .unwrap_err()
            .contains("not a variable reference"));
    }

    #[test]
    fn syntax_is_known_without_an_environment() {
        let t = Template::parse("http://${HOST}:${PORT:-80}/x").unwrap();
        assert_eq!(t.names().collect::<Vec<_>>(), vec!["HOST", "PORT"]);
        assert_eq!(t.literal_prefix(), "http://");
        assert!(!t.is_literal());
        assert_eq!(Template::parse("/a$$b").unwrap().literal().unwrap(), "/a$b");
    }
}
