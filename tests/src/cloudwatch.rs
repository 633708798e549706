//! A fake CloudWatch (Smithy RPC v2 CBOR, as the AWS SDK for Rust speaks it): alarm tags, and
//! `GetMetricData` over datapoints the test puts (statistics per period, as CloudWatch computes
//! them; expressions answer with the series a test gives for their text).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::aws_fake::{AwsFault, FakeService, Protocol, World};

pub type FakeCloudWatch = FakeService<CloudWatchWorld>;

#[derive(Debug, Default)]
pub struct CloudWatchWorld {
    /// Alarm ARN → tags.
    pub tags: BTreeMap<String, Vec<(String, String)>>,
    /// Raw datapoints, as `PutMetricData` would have stored them.
    pub data: Vec<Datum>,
    /// Metric-math expression text → its series (seconds, value).
    pub expressions: BTreeMap<String, Vec<(i64, f64)>>,
    /// Every result of `GetMetricData` gets this `StatusCode` (default `Complete`).
    pub status_code: Option<String>,
}

/// One raw datapoint of a metric.
#[derive(Debug, Clone)]
pub struct Datum {
    pub namespace: String,
    pub name: String,
    pub dimensions: BTreeMap<String, String>,
    /// Seconds since the epoch.
    pub at: i64,
    pub value: f64,
}

impl FakeCloudWatch {
    pub async fn start() -> Self {
        Self::launch(Protocol::RpcV2Cbor, CloudWatchWorld::default()).await
    }

    pub fn tag_alarm(&self, arn: &str, tags: &[(&str, &str)]) {
        self.world(|w| {
            w.tags.insert(
                arn.to_string(),
                tags.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        });
    }
}

impl FakeCloudWatch {
    /// Records `value` for the metric at `at` (seconds since the epoch).
    pub fn put(
        &self,
        namespace: &str,
        name: &str,
        dimensions: &[(&str, &str)],
        at: i64,
        value: f64,
    ) {
        self.world(|w| {
            w.data.push(Datum {
                namespace: namespace.into(),
                name: name.into(),
                dimensions: dimensions
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                at,
                value,
            })
        });
    }
}

impl CloudWatchWorld {
    fn metric_data(&self, input: &Value) -> Result<Value, AwsFault> {
        let seconds = |v: &Value| v.as_f64().map(|f| f as i64);
        let (Some(start), Some(end)) = (seconds(&input["StartTime"]), seconds(&input["EndTime"]))
        else {
            return Err(AwsFault::new(
                400,
                "ValidationError",
                "StartTime and EndTime are required",
            ));
        };
        if start >= end {
            return Err(AwsFault::new(
                400,
                "ValidationError",
                "The parameter StartTime must be less than the parameter EndTime.",
            ));
        }
        let queries = input["MetricDataQueries"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut results = Vec::new();
        for query in &queries {
            let id = query["Id"].as_str().unwrap_or_default();
            let points: Vec<(i64, f64)> = if let Some(expression) = query["Expression"].as_str() {
                self.expressions
                    .get(expression)
                    .cloned()
                    .unwrap_or_default()
            } else {
                let stat = &query["MetricStat"];
                let metric = &stat["Metric"];
                let period = stat["Period"].as_i64().unwrap_or(60).max(1);
                let dimensions: BTreeMap<String, String> = metric["Dimensions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| {
                        (
                            d["Name"].as_str().unwrap_or_default().to_string(),
                            d["Value"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect();
                let mut buckets: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
                for datum in &self.data {
                    if datum.namespace == metric["Namespace"].as_str().unwrap_or_default()
                        && datum.name == metric["MetricName"].as_str().unwrap_or_default()
                        && datum.dimensions == dimensions
                    {
                        buckets
                            .entry(datum.at - datum.at.rem_euclid(period))
                            .or_default()
                            .push(datum.value);
                    }
                }
                let stat_name = stat["Stat"].as_str().unwrap_or_default();
                buckets
                    .into_iter()
                    .filter_map(|(at, values)| Some((at, statistic(stat_name, values)?)))
                    .collect()
            };
            let points: Vec<(i64, f64)> = points
                .into_iter()
                .filter(|(at, _)| *at >= start - start.rem_euclid(60) && *at < end)
                .collect();
            results.push(json!({
                "Id": id,
                "Label": id,
                "Timestamps": points.iter().map(|(at, _)| json!({"$timestamp": at})).collect::<Vec<_>>(),
                "Values": points.iter().map(|(_, v)| v).collect::<Vec<_>>(),
                "StatusCode": self.status_code.clone().unwrap_or_else(|| "Complete".into()),
            }));
        }
        Ok(json!({"MetricDataResults": results, "Messages": []}))
    }
}

/// CloudWatch's statistics of one period's raw values.
fn statistic(stat: &str, mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    Some(match stat {
        "Sum" => values.iter().sum(),
        "Average" => values.iter().sum::<f64>() / n,
        "Maximum" => values[values.len() - 1],
        "Minimum" => values[0],
        "SampleCount" => n,
        p if p.starts_with('p') => {
            let q: f64 = p[1..].parse().ok()?;
            let rank = ((q / 100.0) * n).ceil().max(1.0) as usize;
            values[rank.min(values.len()) - 1]
        }
        _ => return None,
    })
}

impl World for CloudWatchWorld {
    fn call(&mut self, operation: &str, input: &Value) -> Result<Value, AwsFault> {
        match operation {
            "ListTagsForResource" => {
                let arn = input["ResourceARN"].as_str().unwrap_or_default();
                let tags = self.tags.get(arn).ok_or_else(|| {
                    AwsFault::new(400, "ResourceNotFoundException", format!("no alarm {arn}"))
                })?;
                Ok(
                    json!({"Tags": tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()}),
                )
            }
            "GetMetricData" => self.metric_data(input),
            other => Err(AwsFault::new(
                400,
                "UnknownOperationException",
                format!("the fake CloudWatch does not implement {other}"),
            )),
        }
    }
}
