//! `metric:` — a gate on CloudWatch. A hook's own requests show what the hook sends; what real
//! users meet on green shows in its metrics (the target group's 5xx count, its p99 response
//! time). A metric check asks CloudWatch `GetMetricData` for one metric, or a metric-math
//! expression over several, over a window that ends when the check runs, and judges every
//! datapoint in it against a threshold:
//!
//! ```yaml
//! - name: green serves without 5xx
//!   metric:
//!     namespace: AWS/ApplicationELB
//!     name: HTTPCode_Target_5XX_Count
//!     dimensions: {TargetGroup: "${GREEN_TARGET_GROUP}", LoadBalancer: "${LOAD_BALANCER}"}
//!     stat: Sum
//!     wait: 3m            # bake: judge the first three minutes after the hook started
//!     threshold: "< 1"
//! ```
//!
//! Missing data never passes by accident: fewer datapoints than `min_datapoints` is judged by
//! `no_data` (`inconclusive` unless the plan says `fail` or `pass`). With `wait`, the check
//! first waits until that long after the verification started (for the ECS hook: after the
//! stage was first invoked, so a bake can span invocations); a wait that would outlast the
//! invocation is `Inconclusive`, which the ECS hook answers with `IN_PROGRESS`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::deadline::Deadline;
use crate::duration::format_duration;
use crate::expect::Failure;
use crate::green::{FindGreen, GreenTargetGroup};
use crate::plan::problems::Problems;
use crate::plan::vars::Template;
use crate::plan::Check;
use crate::verdict::{CheckReport, Outcome};

/// Queries (metrics and the expression over them) in one check.
pub const MAX_QUERIES: usize = 10;
/// Datapoints judged per check: a window of a day at one minute.
pub const MAX_DATAPOINTS: u64 = 1_440;
/// Pages of `GetMetricData` answers read per check.
const MAX_PAGES: usize = 10;
/// Datapoints kept in the report (the latest).
const SHOWN_DATAPOINTS: usize = 30;
/// A query is not started with less time than this left.
const MIN_QUERY_TIME: Duration = Duration::from_millis(500);
/// The id of the query a check judges when it has `metrics:` and an `expression`.
const EXPRESSION_ID: &str = "greenlight";
/// The id of the one metric of a check without an expression.
const METRIC_ID: &str = "m";

/// What a metric check asks CloudWatch and how it judges the answer.
#[derive(Debug, Clone)]
pub struct Metric {
    /// Every query sent; the one whose id is `judged` is judged.
    pub queries: Vec<Query>,
    pub judged: String,
    /// The length of each datapoint.
    pub period: Duration,
    /// How far back from the end of the wait (or from when the check runs) datapoints count.
    pub window: Duration,
    /// Judge only once this long has passed since the verification (or the stage) started.
    pub wait: Option<Duration>,
    pub threshold: Threshold,
    pub no_data: NoData,
    pub min_datapoints: u64,
}

/// One `MetricDataQuery`.
#[derive(Debug, Clone)]
pub struct Query {
    pub id: String,
    pub source: Source,
}

#[derive(Debug, Clone)]
pub enum Source {
    /// `namespace`, `name`, `dimensions`, `stat` (`Sum`, `Average`, `p99`, …).
    Stat {
        namespace: String,
        name: String,
        dimensions: Vec<Dimension>,
        stat: String,
        /// `target_group: green`: the `TargetGroup` and `LoadBalancer` dimensions are green's,
        /// found from the deployment when the check runs.
        green_target_group: bool,
    },
    /// Metric math over the other queries (`100 * errors / requests`).
    Expression(Filled),
}

/// A dimension: its name and its value as written (with `${VAR}`s) and, once resolved, filled in.
#[derive(Debug, Clone)]
pub struct Dimension {
    pub name: String,
    pub value: Filled,
}

/// A text of the plan that may hold `${VAR}`s: as written, and its value once resolved.
#[derive(Debug, Clone)]
pub struct Filled {
    pub template: Template,
    pub value: Option<String>,
}

impl Filled {
    pub(crate) fn new(template: Template) -> Self {
        let value = template.literal();
        Filled { template, value }
    }

    /// What is sent: the filled-in value (the text as written until then).
    pub fn value(&self) -> &str {
        self.value
            .as_deref()
            .unwrap_or_else(|| self.template.written())
    }
}

/// Which way a threshold bounds the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Below,
    AtMost,
    Above,
    AtLeast,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Below => "<",
            Op::AtMost => "<=",
            Op::Above => ">",
            Op::AtLeast => ">=",
        }
    }
}

/// `< 1`, `<= 0.5`, `>= 2`, `< 300ms` (durations in seconds, CloudWatch's unit for response
/// times); a bare number means "at most".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub op: Op,
    pub limit: f64,
}

impl Threshold {
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let (op, rest) = [
            ("<=", Op::AtMost),
            (">=", Op::AtLeast),
            ("<", Op::Below),
            (">", Op::Above),
        ]
        .iter()
        .find_map(|(symbol, op)| trimmed.strip_prefix(symbol).map(|rest| (*op, rest.trim())))
        .unwrap_or((Op::AtMost, trimmed));
        if rest.ends_with('%') {
            return Err(format!(
                "\"{text}\": write the number the query returns (for a rate computed as `100 * errors / requests`, \"< 1\"); a percent sign would leave it unclear whether 1% is 1 or 0.01"
            ));
        }
        let limit = match rest.parse::<f64>() {
            Ok(n) if n.is_finite() => n,
            Ok(_) => return Err(format!("\"{text}\" is not a finite number")),
            Err(_) => match crate::duration::parse_duration(rest) {
                Ok(d) => d.as_secs_f64(),
                Err(_) => {
                    return Err(format!(
                        "\"{text}\" is not a threshold; write a comparison and a number, such as \"< 1\", \">= 2\" or \"< 300ms\" (durations are compared in seconds)"
                    ))
                }
            },
        };
        Ok(Threshold { op, limit })
    }

    pub fn holds(&self, value: f64) -> bool {
        match self.op {
            Op::Below => value < self.limit,
            Op::AtMost => value <= self.limit,
            Op::Above => value > self.limit,
            Op::AtLeast => value >= self.limit,
        }
    }
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.op.symbol(), number(self.limit))
    }
}

/// What fewer datapoints than `min_datapoints` mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NoData {
    Fail,
    Inconclusive,
    Pass,
}

#[derive(Debug, serde::Deserialize)]
struct MetricDocument {
    /// `green`: green's ALB target group, found from the deployment.
    #[serde(default)]
    target_group: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::plan::document::scalar_map")]
    dimensions: BTreeMap<String, String>,
    #[serde(default)]
    stat: Option<String>,
    /// Metric math over `metrics`.
    #[serde(default)]
    expression: Option<String>,
    #[serde(default)]
    metrics: Option<BTreeMap<String, Value>>,
    #[serde(default, deserialize_with = "crate::duration::serde_text::deserialize")]
    period: Option<Duration>,
    #[serde(default, deserialize_with = "crate::duration::serde_text::deserialize")]
    window: Option<Duration>,
    #[serde(default, deserialize_with = "crate::duration::serde_text::deserialize")]
    wait: Option<Duration>,
    #[serde(default)]
    threshold: Option<Value>,
    #[serde(default)]
    no_data: Option<String>,
    #[serde(default)]
    min_datapoints: Option<u64>,
}

/// One metric under `metrics:`.
#[derive(Debug, serde::Deserialize)]
struct StatDocument {
    /// `green`: green's ALB target group, found from the deployment.
    #[serde(default)]
    target_group: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::plan::document::scalar_map")]
    dimensions: BTreeMap<String, String>,
    #[serde(default)]
    stat: Option<String>,
}

const DEFAULT_PERIOD: Duration = Duration::from_secs(60);
const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

/// Reads `metric:` at `at`.
pub(crate) fn validate(value: Value, at: &str, p: &mut Problems) -> Option<Metric> {
    let document: MetricDocument = p.read(value, at)?;
    let errors_before = p.errors.len();
    let period = document.period.unwrap_or(DEFAULT_PERIOD);
    let secs = period.as_secs();
    if period.subsec_nanos() != 0
        || !(matches!(secs, 1 | 5 | 10 | 30) || (secs >= 60 && secs.is_multiple_of(60)))
    {
        p.error(
            format!("{at}.period"),
            format!(
                "{}: CloudWatch periods are 1s, 5s, 10s, 30s or a multiple of 60s",
                format_duration(period)
            ),
        );
    }
    let window = document.window.or(document.wait).unwrap_or(DEFAULT_WINDOW);
    if window < period {
        p.error(
            format!("{at}.window"),
            format!(
                "{} is shorter than one period ({}): no datapoint would fit",
                format_duration(window),
                format_duration(period)
            ),
        );
    } else if secs > 0 && window.as_secs() / secs > MAX_DATAPOINTS {
        p.error(
            format!("{at}.window"),
            format!(
                "{} at {} periods is {} datapoints; at most {MAX_DATAPOINTS} are judged (use a longer period)",
                format_duration(window),
                format_duration(period),
                window.as_secs() / secs
            ),
        );
    }
    let threshold = match document.threshold {
        None => {
            p.error(
                format!("{at}.threshold"),
                "missing: say what every datapoint must be, such as \"< 1\" (5xx count) or \"< 300ms\" (a response time in seconds)",
            );
            None
        }
        Some(Value::Number(n)) => n.as_f64().map(|limit| Threshold {
            op: Op::AtMost,
            limit,
        }),
        Some(Value::String(text)) => Threshold::parse(&text)
            .map_err(|m| p.error(format!("{at}.threshold"), m))
            .ok(),
        Some(other) => {
            p.error(
                format!("{at}.threshold"),
                format!("expected a comparison such as \"< 1\", got {other}"),
            );
            None
        }
    };
    let no_data = match document.no_data.as_deref() {
        None | Some("inconclusive") => NoData::Inconclusive,
        Some("fail") => NoData::Fail,
        Some("pass") => NoData::Pass,
        Some(other) => {
            p.error(
                format!("{at}.no_data"),
                format!("\"{other}\": one of fail, inconclusive (the default) or pass"),
            );
            NoData::Inconclusive
        }
    };
    let min_datapoints = document.min_datapoints.unwrap_or(1);
    if min_datapoints == 0 {
        p.error(
            format!("{at}.min_datapoints"),
            "at least 1: a check with no datapoint has judged nothing (say `no_data: pass` to let missing data pass)",
        );
    }

    let single = StatDocument {
        target_group: document.target_group,
        namespace: document.namespace,
        name: document.name,
        dimensions: document.dimensions,
        stat: document.stat,
    };
    let has_single = single.target_group.is_some()
        || single.namespace.is_some()
        || single.name.is_some()
        || !single.dimensions.is_empty()
        || single.stat.is_some();
    let (queries, judged) = match (document.expression, document.metrics) {
        (Some(expression), Some(metrics)) => {
            if has_single {
                p.error(
                    at,
                    "either one metric (namespace, name, dimensions, stat) or an `expression` over `metrics`, not both",
                );
            }
            if metrics.len() + 1 > MAX_QUERIES {
                p.error(
                    format!("{at}.metrics"),
                    format!(
                        "at most {} metrics in one check, found {}",
                        MAX_QUERIES - 1,
                        metrics.len()
                    ),
                );
            }
            let mut queries = Vec::new();
            for (id, value) in metrics {
                let query_at = format!("{at}.metrics.{id}");
                if !valid_id(&id) {
                    p.error(
                        &query_at,
                        "a metric's id starts with a lowercase letter and has only letters, digits and _ (CloudWatch's rule), so the expression can name it",
                    );
                    continue;
                }
                if let Some(stat) = p.read::<StatDocument>(value, &query_at) {
                    if let Some(source) = stat_source(stat, &query_at, p) {
                        queries.push(Query { id, source });
                    }
                }
            }
            let expression_at = format!("{at}.expression");
            if let Some(template) = p.template(&expression_at, &expression) {
                if expression.trim().is_empty() {
                    p.error(&expression_at, "must not be empty");
                }
                queries.push(Query {
                    id: EXPRESSION_ID.into(),
                    source: Source::Expression(Filled::new(template)),
                });
            }
            (queries, EXPRESSION_ID.to_string())
        }
        (Some(_), None) => {
            p.error(
                format!("{at}.metrics"),
                "an expression computes over metrics named here: `metrics: {errors: {namespace: …, name: …, stat: Sum}}`, then `expression: errors / requests`",
            );
            return None;
        }
        (None, Some(_)) => {
            p.error(
                format!("{at}.expression"),
                "`metrics` are the inputs of an `expression`; add one (such as `100 * errors / requests`), or judge one metric with namespace, name and stat",
            );
            return None;
        }
        (None, None) => {
            let source = stat_source(single, at, p)?;
            (
                vec![Query {
                    id: METRIC_ID.into(),
                    source,
                }],
                METRIC_ID.to_string(),
            )
        }
    };
    if p.errors.len() > errors_before {
        return None;
    }
    Some(Metric {
        queries,
        judged,
        period,
        window,
        wait: document.wait,
        threshold: threshold?,
        no_data,
        min_datapoints,
    })
}

fn stat_source(document: StatDocument, at: &str, p: &mut Problems) -> Option<Source> {
    let green_target_group = match document.target_group.as_deref() {
        None => false,
        Some("green") => true,
        Some(other) => {
            p.error(
                format!("{at}.target_group"),
                format!("\"{other}\": `green` (green's ALB target group, found from the CodeDeploy deployment) is the one target group greenlight finds; name others in `dimensions`"),
            );
            false
        }
    };
    if green_target_group {
        if document
            .namespace
            .as_deref()
            .is_some_and(|n| n != ALB_NAMESPACE)
        {
            p.error(
                format!("{at}.namespace"),
                format!("target_group: green is a target group of an Application Load Balancer: its metrics are in {ALB_NAMESPACE} (leave namespace out)"),
            );
        }
        for taken in ["TargetGroup", "LoadBalancer"] {
            if document.dimensions.contains_key(taken) {
                p.error(
                    format!("{at}.dimensions.{taken}"),
                    "target_group: green fills in TargetGroup and LoadBalancer from the deployment; remove this dimension (or target_group)",
                );
            }
        }
    }
    let namespace = document
        .namespace
        .filter(|n| !n.trim().is_empty())
        .or_else(|| green_target_group.then(|| ALB_NAMESPACE.to_string()));
    let name = document.name.filter(|n| !n.trim().is_empty());
    let stat = document.stat.filter(|s| !s.trim().is_empty());
    let mut missing = |field: &str, example: &str| {
        p.error(
            format!("{at}.{field}"),
            format!("missing, for example `{field}: {example}`"),
        );
    };
    if namespace.is_none() {
        missing("namespace", "AWS/ApplicationELB");
    }
    if name.is_none() {
        missing("name", "HTTPCode_Target_5XX_Count");
    }
    if stat.is_none() {
        missing("stat", "Sum (or Average, Maximum, p99, …)");
    }
    if let Some(stat) = &stat {
        if !valid_stat(stat) {
            p.error(
                format!("{at}.stat"),
                format!("\"{stat}\" is not a CloudWatch statistic: SampleCount, Average, Sum, Minimum, Maximum, a percentile such as p99 or p99.9, or tm90, wm90, tc90, ts90, TM(10%:90%), IQM"),
            );
        }
    }
    if document.dimensions.len() > 30 {
        p.error(
            format!("{at}.dimensions"),
            "CloudWatch allows at most 30 dimensions",
        );
    }
    let mut dimensions = Vec::new();
    for (name, value) in document.dimensions {
        let value = p.template(&format!("{at}.dimensions.{name}"), &value)?;
        dimensions.push(Dimension {
            name,
            value: Filled::new(value),
        });
    }
    Some(Source::Stat {
        namespace: namespace?,
        name: name?,
        dimensions,
        stat: stat?,
        green_target_group,
    })
}

/// Where an Application Load Balancer's metrics are.
const ALB_NAMESPACE: &str = "AWS/ApplicationELB";

fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && id.len() <= 255
}

fn valid_stat(stat: &str) -> bool {
    const NAMED: [&str; 6] = ["SampleCount", "Average", "Sum", "Minimum", "Maximum", "IQM"];
    if NAMED.contains(&stat) {
        return true;
    }
    // p99, p99.9, tm90, wm99, tc90, ts90, pr(…), TM(10%:90%), …
    let lower = stat.to_ascii_lowercase();
    let numeric = |rest: &str| {
        rest.parse::<f64>()
            .is_ok_and(|n| (0.0..=100.0).contains(&n))
    };
    for prefix in ["p", "tm", "wm", "tc", "ts"] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            if numeric(rest) {
                return true;
            }
        }
    }
    ["tm(", "wm(", "tc(", "ts(", "pr("]
        .iter()
        .any(|prefix| lower.starts_with(prefix) && lower.ends_with(')'))
}

impl Metric {
    /// Some query names `target_group: green`.
    pub fn uses_green_target_group(&self) -> bool {
        self.queries.iter().any(|q| {
            matches!(
                q.source,
                Source::Stat {
                    green_target_group: true,
                    ..
                }
            )
        })
    }

    /// The queries with green's target group and load balancer filled in.
    fn with_green(&self, green: &GreenTargetGroup) -> Vec<Query> {
        let mut queries = self.queries.clone();
        for query in &mut queries {
            if let Source::Stat {
                dimensions,
                green_target_group: true,
                ..
            } = &mut query.source
            {
                for (name, value) in [
                    ("TargetGroup", &green.target_group),
                    ("LoadBalancer", &green.load_balancer),
                ] {
                    dimensions.push(Dimension {
                        name: name.to_string(),
                        value: Filled {
                            template: Template::empty(),
                            value: Some(value.clone()),
                        },
                    });
                }
            }
        }
        queries
    }

    /// One sentence for `greenlight plan check`.
    pub fn describe(&self) -> String {
        let wait = match self.wait {
            Some(wait) => format!(
                "after waiting until {} since the start, ",
                format_duration(wait)
            ),
            None => String::new(),
        };
        format!(
            "asks CloudWatch for {} {wait}over the last {} at {} periods; every datapoint must be {} ({}: {})",
            self.query_line(),
            format_duration(self.window),
            format_duration(self.period),
            self.threshold,
            match self.min_datapoints {
                1 => "no datapoint".to_string(),
                n => format!("fewer than {n} datapoints"),
            },
            match self.no_data {
                NoData::Fail => "failed",
                NoData::Inconclusive => "inconclusive",
                NoData::Pass => "passed",
            }
        )
    }

    /// What is queried, as written (`${VAR}`s as written): for the report's `request`.
    pub fn query_line(&self) -> String {
        let describe = |source: &Source, display: &dyn Fn(&Filled) -> String| match source {
            Source::Stat {
                namespace,
                name,
                dimensions,
                stat,
                green_target_group,
            } => {
                let green = green_target_group.then(|| "target group green".to_string());
                let dimensions = green
                    .into_iter()
                    .chain(
                        dimensions
                            .iter()
                            .map(|d| format!("{}={}", d.name, display(&d.value))),
                    )
                    .collect::<Vec<_>>()
                    .join(",");
                if dimensions.is_empty() {
                    format!("{namespace} {name} {stat}")
                } else {
                    format!("{namespace} {name} {stat} {{{dimensions}}}")
                }
            }
            Source::Expression(expression) => display(expression),
        };
        let written = |f: &Filled| f.template.written().to_string();
        let judged = self.queries.iter().find(|q| q.id == self.judged);
        match judged.map(|q| &q.source) {
            Some(Source::Expression(expression)) => {
                let inputs = self
                    .queries
                    .iter()
                    .filter(|q| q.id != self.judged)
                    .map(|q| format!("{} = {}", q.id, describe(&q.source, &written)))
                    .collect::<Vec<_>>()
                    .join("; ");
                format!("{} where {inputs}", written(expression))
            }
            Some(source) => describe(source, &written),
            None => String::new(),
        }
    }

    /// Fills in the `${VAR}`s of dimensions and expressions with `fill` (which records what is
    /// secret and what is wrong).
    pub(crate) fn fill_in(&mut self, fill: &mut dyn FnMut(&Template, &str) -> Option<String>) {
        for query in &mut self.queries {
            match &mut query.source {
                Source::Stat { dimensions, .. } => {
                    for d in dimensions {
                        d.value.value = fill(&d.value.template, &format!("dimensions.{}", d.name));
                    }
                }
                Source::Expression(expression) => {
                    expression.value = fill(&expression.template, "expression");
                }
            }
        }
    }
}

/// A `GetMetricData` request: the queries, the time range and the period.
#[derive(Debug, Clone)]
pub struct MetricRequest {
    pub queries: Vec<Query>,
    pub start: SystemTime,
    pub end: SystemTime,
    pub period: Duration,
}

/// One query's answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub id: String,
    /// Seconds since the epoch, with the value of each.
    pub points: Vec<(i64, f64)>,
    /// `Complete`, `PartialData`, `InternalError`, `Forbidden`.
    pub status: String,
    pub messages: Vec<String>,
}

/// Where metric checks read metrics: CloudWatch, or a stand-in in unit tests.
pub trait MetricSource: Send + Sync {
    /// Every page of the answer to `request`, each series' points in time order, by `deadline`.
    fn fetch<'a>(
        &'a self,
        request: &'a MetricRequest,
        deadline: Deadline,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Series>, String>> + Send + 'a>>;
}

/// CloudWatch `GetMetricData`, retried (throttling, 5xx, network) until the deadline. The client
/// is built on first use: a hook whose plan reads no metric never loads it.
#[derive(Debug)]
pub struct CloudWatchMetrics {
    client: crate::aws::LazyClient<aws_sdk_cloudwatch::Client>,
}

impl CloudWatchMetrics {
    /// From the process's AWS configuration (`AWS_ENDPOINT_URL_CLOUDWATCH` / `AWS_ENDPOINT_URL`
    /// are honoured), loaded when the first metric is read.
    pub fn from_env() -> Self {
        Self::with(None)
    }

    pub fn new(sdk_config: &aws_config::SdkConfig) -> Self {
        Self::with(Some(sdk_config))
    }

    fn with(config: Option<&aws_config::SdkConfig>) -> Self {
        CloudWatchMetrics {
            client: crate::aws::LazyClient::new(config, |c| {
                crate::aws_client!(aws_sdk_cloudwatch, c)
            }),
        }
    }

    async fn client(&self) -> &aws_sdk_cloudwatch::Client {
        self.client.get().await
    }
}

impl MetricSource for CloudWatchMetrics {
    fn fetch<'a>(
        &'a self,
        request: &'a MetricRequest,
        deadline: Deadline,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Series>, String>> + Send + 'a>> {
        Box::pin(async move {
            use aws_sdk_cloudwatch::primitives::DateTime;
            use aws_sdk_cloudwatch::types as cw;
            let period = request.period.as_secs().max(1) as i32;
            let queries: Vec<cw::MetricDataQuery> = request
                .queries
                .iter()
                .map(|q| {
                    let builder = cw::MetricDataQuery::builder().id(&q.id).return_data(true);
                    match &q.source {
                        Source::Stat {
                            namespace,
                            name,
                            dimensions,
                            stat,
                            green_target_group: _,
                        } => {
                            let mut metric =
                                cw::Metric::builder().namespace(namespace).metric_name(name);
                            for d in dimensions {
                                metric = metric.dimensions(
                                    cw::Dimension::builder()
                                        .name(&d.name)
                                        .value(d.value.value())
                                        .build(),
                                );
                            }
                            builder.metric_stat(
                                cw::MetricStat::builder()
                                    .metric(metric.build())
                                    .period(period)
                                    .stat(stat)
                                    .build(),
                            )
                        }
                        Source::Expression(expression) => {
                            builder.expression(expression.value()).period(period)
                        }
                    }
                    .build()
                })
                .collect();
            let start = DateTime::from(request.start);
            let end = DateTime::from(request.end);
            let mut series: BTreeMap<String, Series> = BTreeMap::new();
            let client = self.client().await;
            let max_datapoints = (MAX_DATAPOINTS as usize * queries.len()).min(100_800) as i32;
            let mut token: Option<String> = None;
            for _ in 0..MAX_PAGES {
                let call = || {
                    client
                        .get_metric_data()
                        .set_metric_data_queries(Some(queries.clone()))
                        .start_time(start)
                        .end_time(end)
                        .scan_by(cw::ScanBy::TimestampAscending)
                        // A bound on each page's size, whatever the service sends.
                        .max_datapoints(max_datapoints)
                        .set_next_token(token.clone())
                        .send()
                };
                let page = crate::aws::call_until("GetMetricData", deadline, call)
                    .await
                    .map_err(|e| {
                        if e.is_access_denied() {
                            format!("CloudWatch refused GetMetricData ({e}): the function's role needs cloudwatch:GetMetricData")
                        } else {
                            format!("CloudWatch GetMetricData failed: {e}")
                        }
                    })?;
                for result in page.metric_data_results() {
                    let id = result.id().unwrap_or_default().to_string();
                    let entry = series.entry(id.clone()).or_insert_with(|| Series {
                        id,
                        ..Series::default()
                    });
                    // However much an answer holds, a series keeps at most twice what a
                    // window can judge: memory stays flat in a 128 MB function.
                    let room = (2 * MAX_DATAPOINTS as usize).saturating_sub(entry.points.len());
                    entry.points.extend(
                        result
                            .timestamps()
                            .iter()
                            .zip(result.values())
                            .map(|(t, v)| (t.secs(), *v))
                            .take(room),
                    );
                    entry.status = result
                        .status_code()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default();
                    entry.messages.extend(result.messages().iter().map(|m| {
                        format!("{}: {}", m.code().unwrap_or("?"), m.value().unwrap_or(""))
                    }));
                }
                let messages: Vec<String> = page
                    .messages()
                    .iter()
                    .map(|m| format!("{}: {}", m.code().unwrap_or("?"), m.value().unwrap_or("")))
                    .collect();
                if !messages.is_empty() {
                    for s in series.values_mut() {
                        s.messages.extend(messages.iter().cloned());
                    }
                }
                token = page
                    .next_token()
                    .filter(|t| !t.is_empty())
                    .map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            let mut series: Vec<Series> = series.into_values().collect();
            for s in &mut series {
                s.points.sort_by_key(|(t, _)| *t);
                s.points.dedup_by_key(|(t, _)| *t);
            }
            Ok(series)
        })
    }
}

/// What a metric check measured, for the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MetricMeasurement {
    /// The window judged, as RFC 3339 times.
    pub from: String,
    pub to: String,
    /// Datapoints in the window.
    pub datapoints: u64,
    /// The datapoint furthest on the wrong side of the threshold (or nearest to it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst: Option<Point>,
    /// Datapoints that did not meet the threshold.
    pub breaching: u64,
    /// The latest datapoints, oldest first.
    pub latest: Vec<Point>,
    pub threshold: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Point {
    pub at: String,
    pub value: f64,
}

impl MetricMeasurement {
    /// A few words for a report line.
    pub fn line(&self) -> String {
        match &self.worst {
            None => format!("no datapoints from {} to {}", self.from, self.to),
            Some(worst) if self.breaching == 0 => format!(
                "{} datapoints, worst {} at {}",
                self.datapoints,
                number(worst.value),
                worst.at
            ),
            Some(worst) => format!(
                "{} of {} datapoints breach {}, worst {} at {}",
                self.breaching,
                self.datapoints,
                self.threshold,
                number(worst.value),
                worst.at
            ),
        }
    }
}

/// Runs a metric check: waits as the plan says, asks `source`, judges the judged series.
/// `since`: when the verification (or the ECS stage) started.
pub async fn run(
    source: Option<&dyn MetricSource>,
    green: Option<&dyn FindGreen>,
    since: SystemTime,
    check: &Check,
    metric: &Metric,
    deadline: Deadline,
) -> CheckReport {
    let started = tokio::time::Instant::now();
    let report = |outcome: Outcome, measured: crate::probe::Measured, attempts: u32| CheckReport {
        name: check.name.clone(),
        request: check.request_line.clone(),
        outcome,
        attempts,
        measured,
        elapsed: started.elapsed(),
        ready: false,
        captured: Vec::new(),
    };
    let Some(source) = source else {
        return report(
            Outcome::Errored {
                cause: "metric checks need CloudWatch, and this run has no CloudWatch client"
                    .into(),
            },
            crate::probe::Measured::nothing(),
            0,
        );
    };
    if let Some(wait) = metric.wait {
        let until = since + wait;
        let now = SystemTime::now();
        if let Ok(left) = until.duration_since(now) {
            if left + MIN_QUERY_TIME > deadline.remaining() {
                return report(
                    Outcome::Inconclusive {
                        cause: format!(
                            "the metric is judged {} after the start ({} from now), after this verification's deadline ({} left): the hooks go on waiting in later invocations; `greenlight verify` needs a budget above the wait",
                            format_duration(wait),
                            format_duration(left),
                            format_duration(deadline.remaining())
                        ),
                    },
                    crate::probe::Measured::nothing(),
                    0,
                );
            }
            tokio::time::sleep(left).await;
        }
    }
    if deadline.remaining() < MIN_QUERY_TIME {
        return report(
            Outcome::Errored {
                cause: "the verification deadline came before CloudWatch could be asked".into(),
            },
            crate::probe::Measured::nothing(),
            0,
        );
    }
    let end = whole_seconds(SystemTime::now());
    let start = end.checked_sub(metric.window).unwrap_or(UNIX_EPOCH);
    let queries = if metric.uses_green_target_group() {
        let Some(green) = green else {
            return report(
                Outcome::Errored {
                    cause: "target_group: green is found from a CodeDeploy deployment, and this run has none (the ECS hook and `greenlight verify` cannot tell which target group is green's): name TargetGroup and LoadBalancer in `dimensions`".into(),
                },
                crate::probe::Measured::nothing(),
                0,
            );
        };
        match green.find(deadline).await {
            Ok(found) => metric.with_green(&found),
            Err(cause) => {
                return report(
                    Outcome::Errored {
                        cause: format!("green's target group could not be found: {cause}"),
                    },
                    crate::probe::Measured::nothing(),
                    0,
                )
            }
        }
    } else {
        metric.queries.clone()
    };
    let request = MetricRequest {
        queries,
        start,
        end,
        period: metric.period,
    };
    let series = match source.fetch(&request, deadline).await {
        Ok(series) => series,
        Err(cause) => {
            return report(
                Outcome::Errored { cause },
                crate::probe::Measured::nothing(),
                1,
            )
        }
    };
    let judged = series.into_iter().find(|s| s.id == metric.judged);
    let (outcome, measurement) = judge(metric, judged, start, end);
    report(
        outcome,
        crate::probe::Measured::Metric {
            metric: Box::new(measurement),
        },
        1,
    )
}

fn whole_seconds(time: SystemTime) -> SystemTime {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Judges the answer for the judged query over `[start, end]`.
pub fn judge(
    metric: &Metric,
    series: Option<Series>,
    start: SystemTime,
    end: SystemTime,
) -> (Outcome, MetricMeasurement) {
    let secs = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    };
    let (from, to) = (secs(start), secs(end));
    let series = series.unwrap_or_default();
    // Only finite values inside the window count: metric math can yield NaN or infinity (a
    // division by zero), which is missing data, not a value.
    let points: Vec<(i64, f64)> = series
        .points
        .iter()
        .copied()
        .filter(|(t, v)| v.is_finite() && *t >= from - metric.period.as_secs() as i64 && *t <= to)
        .collect();
    let point = |(t, v): (i64, f64)| Point {
        at: crate::timestamp::format(UNIX_EPOCH + Duration::from_secs(t.max(0) as u64)),
        value: v,
    };
    let breaching: Vec<(i64, f64)> = points
        .iter()
        .copied()
        .filter(|(_, v)| !metric.threshold.holds(*v))
        .collect();
    // The worst: furthest on the wrong side of the bound (highest for an upper bound).
    let upper = matches!(metric.threshold.op, Op::Below | Op::AtMost);
    let worst = points
        .iter()
        .copied()
        .max_by(|a, b| {
            let order = a.1.total_cmp(&b.1);
            if upper {
                order
            } else {
                order.reverse()
            }
        })
        .map(point);
    let measurement = MetricMeasurement {
        from: crate::timestamp::format(start),
        to: crate::timestamp::format(end),
        datapoints: points.len() as u64,
        worst,
        breaching: breaching.len() as u64,
        latest: points
            .iter()
            .copied()
            .skip(points.len().saturating_sub(SHOWN_DATAPOINTS))
            .map(point)
            .collect(),
        threshold: metric.threshold.to_string(),
    };
    let notes = if series.messages.is_empty() {
        String::new()
    } else {
        format!(" (CloudWatch: {})", series.messages.join("; "))
    };
    match series.status.as_str() {
        "Forbidden" => {
            return (
                Outcome::Errored {
                    cause: format!("CloudWatch did not allow reading the metric{notes}: the function's role needs cloudwatch:GetMetricData (and access to the metric's account)"),
                },
                measurement,
            )
        }
        "InternalError" => {
            return (
                Outcome::Errored {
                    cause: format!("CloudWatch could not compute the metric{notes}"),
                },
                measurement,
            )
        }
        _ => {}
    }
    let window = format!(
        "{} datapoints from {} to {}",
        points.len(),
        measurement.from,
        measurement.to
    );
    if let Some(&(t, v)) = breaching.iter().max_by(|a, b| {
        let order = a.1.total_cmp(&b.1);
        if upper {
            order
        } else {
            order.reverse()
        }
    }) {
        let others = match breaching.len() {
            1 => format!("the only breach among {window}"),
            n => format!("{n} breaches among {window}"),
        };
        return (
            Outcome::Failed {
                failures: vec![Failure {
                    expectation: format!("metric {}", metric.query_line()),
                    expected: format!(
                        "every {} datapoint {}",
                        format_duration(metric.period),
                        metric.threshold
                    ),
                    measured: format!("{} at {} ({others}){notes}", number(v), point((t, v)).at),
                }],
            },
            measurement,
        );
    }
    if (points.len() as u64) < metric.min_datapoints {
        let partial = if series.status == "PartialData" {
            ", and CloudWatch had more it did not send"
        } else {
            ""
        };
        let cause = format!(
            "not enough data: {window}, at least {} needed{partial}{notes}",
            metric.min_datapoints
        );
        let outcome = match metric.no_data {
            NoData::Fail => Outcome::Failed {
                failures: vec![Failure {
                    expectation: format!("metric {}", metric.query_line()),
                    expected: format!(
                        "at least {} datapoints (no_data: fail)",
                        metric.min_datapoints
                    ),
                    measured: window,
                }],
            },
            NoData::Inconclusive => Outcome::Inconclusive { cause },
            NoData::Pass => {
                tracing::warn!(%cause, "metric check passed without data, as its plan says (no_data: pass)");
                Outcome::Passed
            }
        };
        return (outcome, measurement);
    }
    (Outcome::Passed, measurement)
}

/// A number as a person writes it: `7`, `0.25`, `1.5e-7`.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        let text = format!("{value:.6}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        if text == "0" || text == "-0" {
            format!("{value:e}")
        } else {
            text.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn metric(value: Value) -> Result<Metric, Vec<String>> {
        let mut p = Problems::default();
        let metric = validate(value, "checks[0].metric", &mut p);
        if p.errors.is_empty() {
            Ok(metric.expect("no errors, a metric"))
        } else {
            Err(p.errors.iter().map(|e| e.to_string()).collect())
        }
    }

    fn five_xx() -> Metric {
        metric(json!({
            "namespace": "AWS/ApplicationELB",
            "name": "HTTPCode_Target_5XX_Count",
            "dimensions": {"TargetGroup": "targetgroup/green/1"},
            "stat": "Sum",
            "threshold": "< 1",
        }))
        .unwrap()
    }

    fn at(minute: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs((1_800_000_000 + minute * 60) as u64)
    }

    fn series(values: &[(i64, f64)]) -> Option<Series> {
        Some(Series {
            id: METRIC_ID.into(),
            points: values
                .iter()
                .map(|(m, v)| (1_800_000_000 + m * 60, *v))
                .collect(),
            status: "Complete".into(),
            messages: Vec::new(),
        })
    }

    #[test]
    fn thresholds_read_as_written() {
        let t = |text: &str| Threshold::parse(text).unwrap();
        assert_eq!(
            t("< 1"),
            Threshold {
                op: Op::Below,
                limit: 1.0
            }
        );
        assert_eq!(
            t(">= 2"),
            Threshold {
                op: Op::AtLeast,
                limit: 2.0
            }
        );
        assert_eq!(
            t("0.5"),
            Threshold {
                op: Op::AtMost,
                limit: 0.5
            }
        );
        assert_eq!(
            t("< 300ms"),
            Threshold {
                op: Op::Below,
                limit: 0.3
            }
        );
        assert!(t("> 0").holds(1.0) && !t("> 0").holds(0.0));
        let err = Threshold::parse("< 1%").unwrap_err();
        assert!(err.contains("write the number the query returns"), "{err}");
        assert!(Threshold::parse("< lots")
            .unwrap_err()
            .contains("is not a threshold"));
        assert!(Threshold::parse("< NaN").is_err());
    }

    #[test]
    fn a_clean_window_passes_and_a_breach_fails_with_when_and_how_much() {
        let m = five_xx();
        let (outcome, measured) = judge(&m, series(&[(0, 0.0), (1, 0.0), (2, 0.0)]), at(-1), at(3));
        assert_eq!(outcome, Outcome::Passed);
        assert_eq!(measured.datapoints, 3);
        let (outcome, measured) = judge(&m, series(&[(0, 0.0), (1, 7.0), (2, 2.0)]), at(-1), at(3));
        let Outcome::Failed { failures } = outcome else {
            panic!("expected a failure, got {outcome:?}")
        };
        assert_eq!(failures[0].expected, "every 1m datapoint < 1");
        assert!(
            failures[0].measured.starts_with("7 at ")
                && failures[0]
                    .measured
                    .contains("2 breaches among 3 datapoints"),
            "{}",
            failures[0].measured
        );
        assert_eq!(
            failures[0].expectation,
            "metric AWS/ApplicationELB HTTPCode_Target_5XX_Count Sum {TargetGroup=targetgroup/green/1}"
        );
        assert_eq!(measured.breaching, 2);
        assert_eq!(measured.worst.unwrap().value, 7.0);
    }

    #[test]
    fn missing_data_never_passes_unless_the_plan_says_so() {
        let m = five_xx();
        let (outcome, _) = judge(&m, series(&[]), at(-5), at(0));
        assert!(
            matches!(&outcome, Outcome::Inconclusive { cause } if cause.starts_with("not enough data: 0 datapoints")),
            "{outcome:?}"
        );
        let (outcome, _) = judge(&m, None, at(-5), at(0));
        assert!(matches!(outcome, Outcome::Inconclusive { .. }));
        let fail = Metric {
            no_data: NoData::Fail,
            ..m.clone()
        };
        assert!(matches!(
            judge(&fail, series(&[]), at(-5), at(0)).0,
            Outcome::Failed { .. }
        ));
        let pass = Metric {
            no_data: NoData::Pass,
            ..m.clone()
        };
        assert_eq!(judge(&pass, series(&[]), at(-5), at(0)).0, Outcome::Passed);
        // NaN and infinity (metric math dividing by zero) are missing data, not values.
        let nan = series(&[(0, f64::NAN), (1, f64::INFINITY)]);
        assert!(matches!(
            judge(&m, nan, at(-1), at(3)).0,
            Outcome::Inconclusive { .. }
        ));
        let few = Metric {
            min_datapoints: 3,
            ..m
        };
        assert!(matches!(
            judge(&few, series(&[(0, 0.0), (1, 0.0)]), at(-1), at(3)).0,
            Outcome::Inconclusive { .. }
        ));
    }

    #[test]
    fn lower_bounds_report_the_lowest_value() {
        let m = Metric {
            threshold: Threshold::parse(">= 2").unwrap(),
            ..five_xx()
        };
        let (outcome, measured) = judge(&m, series(&[(0, 3.0), (1, 1.0), (2, 0.0)]), at(-1), at(3));
        assert!(matches!(outcome, Outcome::Failed { .. }));
        assert_eq!(measured.worst.unwrap().value, 0.0);
    }

    #[test]
    fn cloudwatch_refusals_are_errors_not_verdicts() {
        let m = five_xx();
        let mut s = series(&[(0, 0.0)]).unwrap();
        s.status = "Forbidden".into();
        s.messages.push("AccessDenied: no".into());
        let (outcome, _) = judge(&m, Some(s), at(-1), at(3));
        assert!(
            matches!(&outcome, Outcome::Errored { cause } if cause.contains("cloudwatch:GetMetricData") && cause.contains("AccessDenied: no")),
            "{outcome:?}"
        );
    }

    #[test]
    fn expressions_name_their_inputs() {
        let m = metric(json!({
            "metrics": {
                "errors": {"namespace": "AWS/ApplicationELB", "name": "HTTPCode_Target_5XX_Count", "stat": "Sum"},
                "requests": {"namespace": "AWS/ApplicationELB", "name": "RequestCount", "stat": "Sum"},
            },
            "expression": "100 * errors / requests",
            "threshold": "< 1",
            "wait": "3m",
        }))
        .unwrap();
        assert_eq!(m.queries.len(), 3);
        assert_eq!(m.judged, EXPRESSION_ID);
        assert_eq!(
            m.window,
            Duration::from_secs(180),
            "the window defaults to the wait"
        );
        assert_eq!(
            m.query_line(),
            "100 * errors / requests where errors = AWS/ApplicationELB HTTPCode_Target_5XX_Count Sum; requests = AWS/ApplicationELB RequestCount Sum"
        );
    }

    #[test]
    fn what_is_wrong_is_named() {
        let errors = metric(json!({"namespace": "AWS/ApplicationELB", "name": "X", "stat": "p100.5", "threshold": "< 1", "period": "90s", "nodata": "fail"})).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("checks[0].metric.nodata: unknown field")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e
                .starts_with("checks[0].metric.stat: \"p100.5\" is not a CloudWatch statistic")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("checks[0].metric.period: 1m30s")),
            "{errors:?}"
        );
        let errors = metric(json!({"name": "X", "threshold": "< 1"})).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("checks[0].metric.namespace: missing")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("checks[0].metric.stat: missing")),
            "{errors:?}"
        );
        let errors = metric(json!({"namespace": "N", "name": "X", "stat": "Sum"})).unwrap_err();
        assert!(
            errors[0].starts_with("checks[0].metric.threshold: missing"),
            "{errors:?}"
        );
        let errors = metric(json!({"expression": "a / b", "threshold": "< 1"})).unwrap_err();
        assert!(
            errors[0].starts_with("checks[0].metric.metrics: an expression computes"),
            "{errors:?}"
        );
        let errors = metric(json!({"metrics": {"Bad-Id": {"namespace": "N", "name": "X", "stat": "Sum"}}, "expression": "1", "threshold": "< 1"})).unwrap_err();
        assert!(
            errors[0].starts_with("checks[0].metric.metrics.Bad-Id: a metric's id"),
            "{errors:?}"
        );
        let errors = metric(json!({"namespace": "N", "name": "X", "stat": "Sum", "threshold": "< 1", "window": "5h", "period": "10s"})).unwrap_err();
        assert!(
            errors[0].contains("1800 datapoints; at most 1440"),
            "{errors:?}"
        );
        let errors = metric(json!({"namespace": "N", "name": "X", "stat": "Sum", "threshold": "< 1", "min_datapoints": 0, "no_data": "maybe"})).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
    }

    #[test]
    fn target_group_green_is_an_alb_target_group_whose_dimensions_are_found() {
        let m = metric(json!({"target_group": "green", "name": "RequestCount", "stat": "Sum", "dimensions": {"AvailabilityZone": "eu-west-1a"}, "threshold": "> 0"})).unwrap();
        assert!(m.uses_green_target_group());
        assert_eq!(
            m.query_line(),
            "AWS/ApplicationELB RequestCount Sum {target group green,AvailabilityZone=eu-west-1a}"
        );
        let filled = m.with_green(&GreenTargetGroup {
            target_group: "targetgroup/g/1".into(),
            load_balancer: "app/lb/2".into(),
            target_group_arn: "arn:aws:elasticloadbalancing:x:1:targetgroup/g/1".into(),
            production_listener_arn: "arn:aws:elasticloadbalancing:x:1:listener/app/lb/2/3".into(),
        });
        let Source::Stat { dimensions, .. } = &filled[0].source else {
            panic!("a stat")
        };
        let sent: Vec<(&str, &str)> = dimensions
            .iter()
            .map(|d| (d.name.as_str(), d.value.value()))
            .collect();
        assert_eq!(
            sent,
            [
                ("AvailabilityZone", "eu-west-1a"),
                ("TargetGroup", "targetgroup/g/1"),
                ("LoadBalancer", "app/lb/2")
            ]
        );
        let errors = metric(json!({"target_group": "blue", "namespace": "AWS/NetworkELB", "name": "X", "stat": "Sum", "threshold": "< 1"})).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("checks[0].metric.target_group: \"blue\"")),
            "{errors:?}"
        );
        let errors = metric(json!({"target_group": "green", "namespace": "AWS/NetworkELB", "name": "X", "stat": "Sum", "dimensions": {"TargetGroup": "t"}, "threshold": "< 1"})).unwrap_err();
        assert!(errors.iter().any(|e| e.starts_with("checks[0].metric.namespace: target_group: green is a target group of an Application Load Balancer")), "{errors:?}");
        assert!(
            errors.iter().any(|e| e.starts_with(
                "checks[0].metric.dimensions.TargetGroup: target_group: green fills in"
            )),
            "{errors:?}"
        );
    }

    #[test]
    fn numbers_read_as_written() {
        assert_eq!(number(7.0), "7");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(0.3333333333), "0.333333");
        assert_eq!(number(1.5e-9), "1.5e-9");
    }
}
