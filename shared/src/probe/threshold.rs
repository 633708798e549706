//! Thresholds on a sample population, written the way k6 users write them: `errors: "< 1%"`,
//! `p95: "< 300ms"`, `max: "2s"` (a bare value means "at most").

use std::time::Duration;

use serde::Serialize;

use crate::duration::{format_duration, parse_duration};

/// `<` or `<=`: thresholds bound from above; a population is never judged "at least".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Below,
    AtMost,
}

impl Bound {
    fn symbol(self) -> &'static str {
        match self {
            Bound::Below => "<",
            Bound::AtMost => "<=",
        }
    }

    fn holds<T: PartialOrd>(self, measured: T, limit: T) -> bool {
        match self {
            Bound::Below => measured < limit,
            Bound::AtMost => measured <= limit,
        }
    }
}

fn split_bound(text: &str) -> (Bound, &str) {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix("<=") {
        (Bound::AtMost, rest.trim())
    } else if let Some(rest) = text.strip_prefix('<') {
        (Bound::Below, rest.trim())
    } else {
        (Bound::AtMost, text)
    }
}

/// The error-rate threshold: a fraction of the samples that may fail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub bound: Bound,
    /// 0.01 for 1%.
    pub fraction: f64,
}

impl RateLimit {
    /// No sample may fail: the default when a check samples without an `errors` threshold.
    pub const NONE: RateLimit = RateLimit {
        bound: Bound::AtMost,
        fraction: 0.0,
    };

    pub fn parse(text: &str) -> Result<Self, String> {
        let (bound, rest) = split_bound(text);
        let Some(number) = rest.strip_suffix('%') else {
            return Err(format!(
                "\"{text}\" is not an error rate; write a percentage such as \"< 1%\" or \"0%\""
            ));
        };
        let percent: f64 = number.trim().parse().map_err(|_| {
            format!("\"{text}\" is not an error rate: \"{number}\" is not a number")
        })?;
        if !(0.0..=100.0).contains(&percent) {
            return Err(format!(
                "\"{text}\" is not an error rate: it must be between 0% and 100%"
            ));
        }
        if bound == Bound::Below && percent == 0.0 {
            return Err(format!(
                "\"{text}\" can never hold (no rate is below 0%); write \"0%\" for no errors"
            ));
        }
        Ok(RateLimit {
            bound,
            fraction: percent / 100.0,
        })
    }

    pub fn holds(&self, errors: u64, count: u64) -> bool {
        let rate = if count == 0 {
            0.0
        } else {
            errors as f64 / count as f64
        };
        self.bound.holds(rate, self.fraction)
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}",
            self.bound.symbol(),
            format_percent(self.fraction)
        )
    }
}

/// A latency threshold: `p95: "< 300ms"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyLimit {
    pub bound: Bound,
    pub limit: Duration,
}

impl LatencyLimit {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (bound, rest) = split_bound(text);
        let limit = parse_duration(rest).map_err(|e| format!("{e} (in \"{text}\")"))?;
        if limit.is_zero() {
            return Err(format!("\"{text}\" can never hold; latencies are above 0s"));
        }
        Ok(LatencyLimit { bound, limit })
    }

    pub fn holds(&self, measured: Duration) -> bool {
        self.bound.holds(measured, self.limit)
    }
}

impl std::fmt::Display for LatencyLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.bound.symbol(), format_duration(self.limit))
    }
}

/// Which latency statistic a threshold bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Statistic {
    P50,
    P90,
    P95,
    P99,
    Max,
}

impl Statistic {
    pub const ALL: [Statistic; 5] = [
        Statistic::P50,
        Statistic::P90,
        Statistic::P95,
        Statistic::P99,
        Statistic::Max,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Statistic::P50 => "p50",
            Statistic::P90 => "p90",
            Statistic::P95 => "p95",
            Statistic::P99 => "p99",
            Statistic::Max => "max",
        }
    }

    pub fn percent(self) -> f64 {
        match self {
            Statistic::P50 => 50.0,
            Statistic::P90 => 90.0,
            Statistic::P95 => 95.0,
            Statistic::P99 => 99.0,
            Statistic::Max => 100.0,
        }
    }
}

/// Everything a sampled check is judged by.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    pub errors: RateLimit,
    pub latency: Vec<(Statistic, LatencyLimit)>,
    /// Fewer answered samples than this and the check is inconclusive.
    pub min_samples: Option<u64>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            errors: RateLimit::NONE,
            latency: Vec::new(),
            min_samples: None,
        }
    }
}

/// One threshold as judged, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Judged {
    /// `errors`, `p95`, …
    pub name: String,
    pub threshold: String,
    pub measured: String,
    pub passed: bool,
}

pub fn format_percent(fraction: f64) -> String {
    let percent = fraction * 100.0;
    if percent == percent.trunc() {
        format!("{percent:.0}%")
    } else if percent >= 1.0 {
        format!("{percent:.1}%")
    } else {
        format!("{percent:.2}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_like_k6() {
        let r = RateLimit::parse("< 1%").unwrap();
        assert_eq!(r.to_string(), "< 1%");
        assert!(r.holds(1, 200));
        assert!(!r.holds(2, 200));
        let zero = RateLimit::parse("0%").unwrap();
        assert!(zero.holds(0, 10));
        assert!(!zero.holds(1, 1000));
        assert_eq!(RateLimit::parse("<= 0.5%").unwrap().fraction, 0.005);
        assert!(RateLimit::parse("1").unwrap_err().contains("percentage"));
        assert!(RateLimit::parse("< 0%").unwrap_err().contains("never hold"));
        assert!(RateLimit::parse("150%").unwrap_err().contains("between"));
        assert!(RateLimit::parse("< abc%")
            .unwrap_err()
            .contains("not a number"));
    }

    #[test]
    fn latencies_read_like_plans() {
        let l = LatencyLimit::parse("< 300ms").unwrap();
        assert!(l.holds(Duration::from_millis(299)));
        assert!(!l.holds(Duration::from_millis(300)));
        let at_most = LatencyLimit::parse("1s").unwrap();
        assert!(at_most.holds(Duration::from_secs(1)));
        assert_eq!(at_most.to_string(), "<= 1s");
        assert!(LatencyLimit::parse("< 300")
            .unwrap_err()
            .contains("no unit"));
    }
}
