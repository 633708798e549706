//! Finding the function binaries a rehearsal runs: in `--functions-dir` (or
//! `GREENLIGHT_FUNCTIONS_DIR`), else next to this `greenlight`, else in the current checkout's
//! `target/debug` and `target/lambda`. Both layouts are understood: cargo's (`DIR/<function>`)
//! and cargo-lambda's (`DIR/<function>/bootstrap`).

use std::path::{Path, PathBuf};

/// The binaries every rehearsal needs.
pub const FUNCTIONS: [&str; 4] = [
    "after-allow-test-traffic",
    "before-allow-traffic",
    "after-allow-traffic",
    "alarm-rollback",
];

/// Where each function's binary is.
#[derive(Debug, Clone)]
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    /// The first directory that has every function, or a message that says where greenlight
    /// looked and how to build them.
    pub fn find(explicit: Option<PathBuf>) -> Result<Self, String> {
        let candidates: Vec<PathBuf> = match &explicit {
            Some(dir) => vec![dir.clone()],
            None => {
                let mut dirs = Vec::new();
                if let Some(own) = std::env::current_exe()
                    .ok()
                    .and_then(|e| e.parent().map(Path::to_path_buf))
                {
                    dirs.push(own);
                }
                dirs.push(PathBuf::from("target/debug"));
                dirs.push(PathBuf::from("target/lambda"));
                dirs
            }
        };
        for dir in &candidates {
            if FUNCTIONS.iter().all(|f| locate(dir, f).is_some()) {
                return Ok(Binaries { dir: dir.clone() });
            }
        }
        let looked: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
        let missing: Vec<&str> = FUNCTIONS
            .iter()
            .copied()
            .filter(|f| candidates.iter().all(|d| locate(d, f).is_none()))
            .collect();
        let what = if missing.is_empty() {
            format!("no single directory has all of {}", FUNCTIONS.join(", "))
        } else {
            format!("cannot find the {} binary", missing.join(", "))
        };
        Err(format!(
            "{what} in {}: build the functions first, from a checkout of greenlight: `cargo build --workspace` (they land in target/debug) or `cargo lambda build --release` (target/lambda/<function>/bootstrap), then pass --functions-dir DIR",
            looked.join(", ")
        ))
    }

    /// The path of one function's binary.
    pub fn path(&self, function: &str) -> Option<PathBuf> {
        locate(&self.dir, function)
    }
}

/// `DIR/<function>` (cargo) or `DIR/<function>/bootstrap` (cargo-lambda).
fn locate(dir: &Path, function: &str) -> Option<PathBuf> {
    [dir.join(function), dir.join(function).join("bootstrap")]
        .into_iter()
        .find(|p| p.is_file())
}
