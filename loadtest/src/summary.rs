//! The JSON summary of the CLI contract, computed from what the run observed.

use std::time::Duration;

use hdrhistogram::{Counter, Histogram};
use serde::Serialize;

use crate::stats::Counts;

/// Latency percentiles in milliseconds (to the microsecond); `null` when there is no sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest sample.
    pub max: Option<f64>,
}

impl Percentiles {
    /// The percentiles of a histogram of microseconds.
    pub fn of<T: Counter>(histogram: &Histogram<T>) -> Self {
        Self {
            p50: quantile_ms(histogram, 0.50),
            p95: quantile_ms(histogram, 0.95),
            p99: quantile_ms(histogram, 0.99),
            max: (!histogram.is_empty()).then(|| us_to_ms(histogram.max())),
        }
    }
}

/// The `quantile` of a histogram of microseconds, in milliseconds; `None` when it is empty.
pub fn quantile_ms<T: Counter>(histogram: &Histogram<T>, quantile: f64) -> Option<f64> {
    (!histogram.is_empty()).then(|| us_to_ms(histogram.value_at_quantile(quantile)))
}

fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1_000.0
}

/// The summary line: exactly the fields of the CLI contract, in its order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The arrival rate asked for, in events per second.
    pub target_rate: f64,
    /// Requests that left per second, over the scheduled duration or, when the tester fell
    /// behind, until the last request left.
    pub achieved_rate: f64,
    /// Requests that left.
    pub sent: u64,
    /// Requests answered `202`.
    pub accepted: u64,
    /// Requests refused with a status below 500 other than `202`.
    pub rejected: u64,
    /// `5xx` answers, timeouts and broken connections.
    pub errors: u64,
    /// Distinct events that reached the receiver.
    pub delivered: u64,
    /// Accepted events that had not reached the receiver 10 s after the last send.
    pub lost: u64,
    /// Scheduled send to `202`.
    pub ingest_ms: Percentiles,
    /// Scheduled send to the first webhook arrival.
    pub e2e_ms: Percentiles,
}

impl Summary {
    /// The summary of a run at `target_rate` scheduled over `duration`, whose last request left
    /// `last_send` after the start.
    pub fn compute(
        target_rate: f64,
        duration: Duration,
        last_send: Duration,
        counts: &Counts,
        ingest: &Histogram<u64>,
        e2e: &Histogram<u64>,
    ) -> Self {
        // When the tester keeps up, n events over d seconds is n / d whatever the instant the last
        // one left; when it fell behind, the requests took until the last one left.
        let window = duration.max(last_send).as_secs_f64();
        let achieved_rate = if window > 0.0 { round_to(counts.sent as f64 / window, 2) } else { 0.0 };
        Self {
            target_rate,
            achieved_rate,
            sent: counts.sent,
            accepted: counts.accepted,
            rejected: counts.rejected,
            errors: counts.errors,
            delivered: counts.delivered,
            lost: counts.lost,
            ingest_ms: Percentiles::of(ingest),
            e2e_ms: Percentiles::of(e2e),
        }
    }

    /// The summary as one line of JSON.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("a summary of numbers always serialises")
    }
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{record, run_histogram};

    fn histogram(values_us: &[u64]) -> Histogram<u64> {
        let mut histogram = run_histogram();
        for &value in values_us {
            record(&mut histogram, value);
        }
        histogram
    }

    fn counts(sent: u64) -> Counts {
        Counts { sent, accepted: sent - 3, rejected: 2, errors: 1, delivered: sent - 4, lost: 1, ..Counts::default() }
    }

    #[test]
    fn percentiles_are_milliseconds_of_the_recorded_microseconds() {
        let values: Vec<u64> = (1..=1_000).map(|ms| ms * 1_000).collect();
        let p = Percentiles::of(&histogram(&values));
        // 3 significant digits: within 0.1% of the exact figure.
        let near = |got: Option<f64>, want: f64| (got.unwrap() - want).abs() <= want * 0.001;
        assert!(near(p.p50, 500.0), "{p:?}");
        assert!(near(p.p95, 950.0), "{p:?}");
        assert!(near(p.p99, 990.0), "{p:?}");
        assert!(near(p.max, 1_000.0), "{p:?}");
    }

    #[test]
    fn no_sample_gives_nulls_not_zeros() {
        let p = Percentiles::of(&run_histogram());
        assert_eq!(p, Percentiles { p50: None, p95: None, p99: None, max: None });
        let json = serde_json::to_value(p).unwrap();
        assert_eq!(json, serde_json::json!({"p50": null, "p95": null, "p99": null, "max": null}));
    }

    #[test]
    fn achieved_rate_is_over_the_duration_when_the_tester_kept_up() {
        let s = Summary::compute(
            1_000.0,
            Duration::from_secs(60),
            Duration::from_micros(59_999_000),
            &counts(60_000),
            &histogram(&[1]),
            &histogram(&[1]),
        );
        assert_eq!(s.achieved_rate, 1_000.0);
    }

    #[test]
    fn achieved_rate_is_over_the_send_window_when_the_tester_fell_behind() {
        let s = Summary::compute(
            10_000.0,
            Duration::from_secs(60),
            Duration::from_secs(90),
            &counts(600_000),
            &histogram(&[1]),
            &histogram(&[1]),
        );
        assert!((s.achieved_rate - 6_666.67).abs() < 1e-9, "{}", s.achieved_rate);
    }

    #[test]
    fn the_json_line_has_exactly_the_contract_fields_in_order() {
        let s = Summary::compute(
            20.0,
            Duration::from_secs(3),
            Duration::from_millis(2_950),
            &counts(60),
            &histogram(&[1_000, 1_500, 2_000]),
            &run_histogram(),
        );
        let line = s.to_json_line();
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        let fields = [
            "target_rate",
            "achieved_rate",
            "sent",
            "accepted",
            "rejected",
            "errors",
            "delivered",
            "lost",
            "ingest_ms",
            "e2e_ms",
        ];
        let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut wanted = fields.to_vec();
        wanted.sort_unstable();
        assert_eq!(keys, wanted);
        let positions: Vec<usize> = fields.iter().map(|field| line.find(&format!("\"{field}\":")).unwrap()).collect();
        assert!(positions.is_sorted(), "fields out of the contract's order: {line}");
        assert_eq!(value["sent"], 60);
        assert_eq!(value["accepted"], 57);
        assert_eq!(value["rejected"], 2);
        assert_eq!(value["errors"], 1);
        assert_eq!(value["delivered"], 56);
        assert_eq!(value["lost"], 1);
        assert_eq!(value["achieved_rate"], 20.0);
        assert!(line.contains(r#""ingest_ms":{"p50":1.5,"p95":2.0,"p99":2.0,"max":2.0}"#), "{line}");
        assert_eq!(value["e2e_ms"]["p99"], serde_json::Value::Null);
    }
}
