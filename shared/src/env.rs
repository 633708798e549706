//! Reading configuration from the environment, strictly: a variable whose value is not UTF-8 is
//! an error that names it, never "unset" (an unreadable `GREENLIGHT_PLAN` must not fall back to
//! the default plan and pass). Settings treat empty values as unset, because SAM passes empty
//! parameters as empty strings; `${VAR}` substitution does not (an empty value is a value).

use std::ffi::OsString;
use std::sync::Arc;

/// A variable could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {name} is not valid UTF-8 text; set it to plain text")]
pub struct EnvError {
    pub name: String,
}

type Lookup = dyn Fn(&str) -> Option<OsString> + Send + Sync;

/// Where variables come from: the process environment, or a map in tests.
#[derive(Clone)]
pub struct Env {
    lookup: Arc<Lookup>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Env")
    }
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Env {
            lookup: Arc::new(|name| std::env::var_os(name)),
        }
    }

    /// Variables from a function returning text (tests, and callers that already have a map).
    pub fn from_fn(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Env {
            lookup: Arc::new(move |name| lookup(name).map(OsString::from)),
        }
    }

    /// Variables from raw values, which may not be UTF-8.
    pub fn from_os_fn(lookup: impl Fn(&str) -> Option<OsString> + Send + Sync + 'static) -> Self {
        Env {
            lookup: Arc::new(lookup),
        }
    }

    /// These variables and no others.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let map: std::collections::HashMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::from_fn(move |name| map.get(name).cloned())
    }

    /// These variables first, then this environment's.
    pub fn with_values(&self, values: Vec<(String, String)>) -> Env {
        let base = self.lookup.clone();
        Env {
            lookup: Arc::new(move |name| {
                values
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| OsString::from(v))
                    .or_else(|| base(name))
            }),
        }
    }

    /// A variable's value, `None` when unset.
    pub fn var(&self, name: &str) -> Result<Option<String>, EnvError> {
        match (self.lookup)(name) {
            None => Ok(None),
            Some(raw) => raw.into_string().map(Some).map_err(|_| EnvError {
                name: name.to_string(),
            }),
        }
    }

    /// A setting: like [`Env::var`], with empty and blank values counted as unset.
    pub fn setting(&self, name: &str) -> Result<Option<String>, EnvError> {
        Ok(self.var(name)?.filter(|v| !v.trim().is_empty()))
    }

    /// Whether a variable is present at all (even empty or not UTF-8).
    pub fn is_present(&self, name: &str) -> bool {
        (self.lookup)(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn a_value_that_is_not_utf8_is_an_error_naming_the_variable() {
        let env = Env::from_os_fn(|name| {
            (name == "GREENLIGHT_PLAN").then(|| OsString::from_vec(vec![b'v', 0xff]))
        });
        let err = env.setting("GREENLIGHT_PLAN").unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable GREENLIGHT_PLAN is not valid UTF-8 text; set it to plain text"
        );
        assert!(env.is_present("GREENLIGHT_PLAN"));
        assert_eq!(env.var("OTHER"), Ok(None));
    }

    #[test]
    fn settings_count_blank_values_as_unset_but_variables_do_not() {
        let env = Env::from_pairs([("A", "  "), ("B", "x")]);
        assert_eq!(env.setting("A"), Ok(None));
        assert_eq!(env.var("A"), Ok(Some("  ".into())));
        assert_eq!(env.setting("B"), Ok(Some("x".into())));
    }
}
