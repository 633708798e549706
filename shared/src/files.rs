//! Reading configuration files (a plan, the AWS config file, a CA bundle) with bounds: only
//! regular files, at most a given size, within a given time. A path that names a FIFO, a device
//! or a directory is refused without opening it for a blocking read, and a read that hangs (a
//! stuck network file system) is abandoned at the time limit, so start-up and reporting never
//! wait on a file.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a configuration file may take to read.
pub const READ_TIME_LIMIT: Duration = Duration::from_secs(2);

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("{path}: no such file")]
    NotFound { path: PathBuf },
    #[error("{path}: is {kind}, not a regular file")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{path}: is larger than {limit} bytes")]
    TooLarge { path: PathBuf, limit: usize },
    #[error("{path}: reading it took longer than {seconds}s")]
    TooSlow { path: PathBuf, seconds: u64 },
    #[error("{path}: is not UTF-8 text")]
    NotText { path: PathBuf },
    #[error("{path}: cannot read it: {reason}")]
    Io { path: PathBuf, reason: String },
}

/// Reads a regular file of at most `limit` bytes as text, within `time_limit`.
pub fn read_text(path: &Path, limit: usize, time_limit: Duration) -> Result<String, FileError> {
    let bytes = read_bytes(path, limit, time_limit)?;
    String::from_utf8(bytes).map_err(|_| FileError::NotText {
        path: path.to_path_buf(),
    })
}

/// Reads a regular file of at most `limit` bytes, within `time_limit`.
pub fn read_bytes(path: &Path, limit: usize, time_limit: Duration) -> Result<Vec<u8>, FileError> {
    let owned = path.to_path_buf();
    let (sender, receiver) = std::sync::mpsc::channel();
    // The read runs on its own thread so that a hang (a stuck network mount) costs a thread,
    // not the caller.
    let spawned = std::thread::Builder::new()
        .name("greenlight-read".into())
        .spawn(move || {
            let _ = sender.send(read_now(&owned, limit));
        });
    if let Err(e) = spawned {
        return Err(FileError::Io {
            path: path.to_path_buf(),
            reason: format!("cannot start a reader thread: {e}"),
        });
    }
    match receiver.recv_timeout(time_limit) {
        Ok(result) => result,
        Err(_) => Err(FileError::TooSlow {
            path: path.to_path_buf(),
            seconds: time_limit.as_secs().max(1),
        }),
    }
}

fn read_now(path: &Path, limit: usize) -> Result<Vec<u8>, FileError> {
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => FileError::NotFound {
            path: path.to_path_buf(),
        },
        _ => FileError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    };
    // Looking at the metadata never blocks, even for a FIFO nobody writes to.
    let metadata = std::fs::metadata(path).map_err(io)?;
    check_kind(path, &metadata)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: if the path was swapped for a FIFO after the check, opening it does not wait
        // for a writer.
        options.custom_flags(NONBLOCK);
    }
    let file = options.open(path).map_err(io)?;
    check_kind(path, &file.metadata().map_err(io)?)?;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > limit {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(bytes)
}

#[cfg(all(unix, target_os = "linux"))]
const NONBLOCK: i32 = 0o4000;
#[cfg(all(unix, not(target_os = "linux")))]
const NONBLOCK: i32 = 0x0004;

fn check_kind(path: &Path, metadata: &std::fs::Metadata) -> Result<(), FileError> {
    if metadata.is_file() {
        return Ok(());
    }
    let kind = describe_kind(metadata);
    Err(FileError::NotAFile {
        path: path.to_path_buf(),
        kind,
    })
}

fn describe_kind(metadata: &std::fs::Metadata) -> &'static str {
    if metadata.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = metadata.file_type();
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
    }
    "not a regular file"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("greenlight-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn reads_a_small_regular_file() {
        let path = scratch("plan.yaml");
        std::fs::write(&path, "version: 1\n").unwrap();
        assert_eq!(
            read_text(&path, 100, READ_TIME_LIMIT).unwrap(),
            "version: 1\n"
        );
    }

    #[test]
    fn refuses_a_fifo_without_blocking() {
        let path = scratch("fifo");
        let _ = std::fs::remove_file(&path);
        let made = std::process::Command::new("mkfifo").arg(&path).status();
        if !made.is_ok_and(|s| s.success()) {
            return; // no mkfifo on this machine; the binary-level test covers it where there is
        }
        let started = std::time::Instant::now();
        let err = read_text(&path, 100, READ_TIME_LIMIT).unwrap_err();
        assert!(matches!(err, FileError::NotAFile { kind, .. } if kind.contains("FIFO")));
        assert!(started.elapsed() < READ_TIME_LIMIT);
    }

    #[test]
    fn names_what_is_wrong_with_other_paths() {
        let dir = scratch("");
        assert!(read_text(&dir, 100, READ_TIME_LIMIT)
            .unwrap_err()
            .to_string()
            .contains("is a directory, not a regular file"));
        let missing = scratch("missing.yaml");
        assert!(matches!(
            read_text(&missing, 100, READ_TIME_LIMIT),
            Err(FileError::NotFound { .. })
        ));
        let big = scratch("big.yaml");
        std::fs::write(&big, "x".repeat(101)).unwrap();
        assert!(matches!(
            read_text(&big, 100, READ_TIME_LIMIT),
            Err(FileError::TooLarge { limit: 100, .. })
        ));
        let binary = scratch("binary");
        std::fs::write(&binary, [0xff, 0xfe]).unwrap();
        assert!(matches!(
            read_text(&binary, 100, READ_TIME_LIMIT),
            Err(FileError::NotText { .. })
        ));
    }
}
