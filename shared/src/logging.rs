//! Logs, for every function: the runtime's standard subscriber (`AWS_LAMBDA_LOG_FORMAT`,
//! `AWS_LAMBDA_LOG_LEVEL` / `RUST_LOG`), writing each line through the secrets rule
//! (`crate::secrets`) before it reaches standard output. A JSON line has its string values
//! masked and stays valid JSON; any other line is masked as text.

use std::io::Write;

use lambda_runtime::tracing::subscriber::fmt::MakeWriter;

/// Installs the subscriber. Call once, first thing in `main`.
pub fn init() {
    lambda_runtime::tracing::init_default_subscriber_with_writer(RedactingStdout);
}

/// Hands each log event a buffer; the event is masked and written when it is complete.
#[derive(Clone, Copy)]
pub struct RedactingStdout;

impl<'a> MakeWriter<'a> for RedactingStdout {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(Vec::with_capacity(256))
    }
}

/// One log event being formatted.
pub struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let masked = mask_line(&String::from_utf8_lossy(&self.0));
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(masked.as_bytes());
        let _ = out.flush();
    }
}

/// One formatted log event (with its line break) as it may be shown.
pub fn mask_line(line: &str) -> String {
    let secrets = crate::secrets::global();
    let body = line.trim_end_matches('\n');
    if body.starts_with('{') {
        if let Ok(mut value) = serde_json::from_str::<serde_json::Value>(body) {
            secrets.redact_json(&mut value);
            return format!("{value}\n");
        }
    }
    let mut masked = secrets.redact(body).into_owned();
    masked.push('\n');
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_stay_json_with_their_values_masked() {
        crate::secrets::global().add(["log-secret-9876"]);
        let line =
            "{\"level\":\"INFO\",\"fields\":{\"message\":\"sent log-secret-9876\",\"ok\":true}}\n";
        let masked = mask_line(line);
        let value: serde_json::Value = serde_json::from_str(&masked).unwrap();
        assert_eq!(value["fields"]["message"], "sent ***");
        assert_eq!(value["fields"]["ok"], true);
        assert_eq!(
            mask_line("plain log-secret-9876 text\n"),
            "plain *** text\n"
        );
    }
}
