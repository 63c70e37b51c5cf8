//! The Markdown report of a run (`--report-dir`): the parameters, the summary, the latency
//! percentiles, the plot, and the run second by second.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::LoadtestError;
use crate::plot;
use crate::stats::{Counts, Latencies, Second, Timeline};
use crate::summary::{Percentiles, Summary, quantile_ms};

/// The report's file name inside the report folder.
pub const REPORT_FILE: &str = "report.md";
/// The plot's file name inside the report folder.
pub const PLOT_FILE: &str = "latency.png";

/// What the run was asked to do, as the report lists it.
#[derive(Debug, Clone)]
pub struct Parameters {
    /// The run's id (its customers are named `loadtest-<run>-<n>`).
    pub run: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// The public API.
    pub url: String,
    /// The admin API.
    pub admin_url: String,
    /// Events per second.
    pub rate: f64,
    /// Seconds.
    pub duration_secs: u64,
    /// Bytes per request body.
    pub event_bytes: usize,
    /// Customers created.
    pub customers: u32,
    /// Connections.
    pub connections: u32,
    /// Where the subscriptions point.
    pub webhook_url: String,
}

/// Everything a report shows.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    /// The parameters.
    pub parameters: &'a Parameters,
    /// The summary line's figures.
    pub summary: &'a Summary,
    /// The counters, including those the summary line has no field for.
    pub counts: &'a Counts,
    /// The histograms and the timeline.
    pub latencies: &'a Latencies,
}

/// The files a report consists of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The Markdown report.
    pub report: PathBuf,
    /// The PNG plot.
    pub plot: PathBuf,
}

/// Writes the report and its plot into `dir` (created if missing).
pub fn write(dir: &Path, report: &Report<'_>) -> Result<Written, LoadtestError> {
    let failed = |path: &Path, detail: String| LoadtestError::Report { path: path.to_owned(), detail };
    std::fs::create_dir_all(dir).map_err(|error| failed(dir, error.to_string()))?;
    let plot_path = dir.join(PLOT_FILE);
    plot::draw(&rows(&report.latencies.timeline), &plot_path).map_err(|detail| failed(&plot_path, detail))?;
    let report_path = dir.join(REPORT_FILE);
    std::fs::write(&report_path, render(report)).map_err(|error| failed(&report_path, error.to_string()))?;
    Ok(Written { report: report_path, plot: plot_path })
}

/// One second of the run, ready to print or plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Seconds since the start.
    pub second: usize,
    /// The counts of that second.
    pub sent: u64,
    /// `202`s that arrived in it.
    pub accepted: u64,
    /// Refusals that arrived in it.
    pub rejected: u64,
    /// Errors in it.
    pub errors: u64,
    /// First arrivals at the receiver in it.
    pub delivered: u64,
    /// Ingest latency of the events scheduled in it.
    pub ingest: Percentiles,
    /// End-to-end latency of the events scheduled in it.
    pub e2e: Percentiles,
}

/// The timeline as rows, one per second.
pub fn rows(timeline: &Timeline) -> Vec<Row> {
    timeline.seconds().iter().enumerate().map(|(second, s)| row(second, s)).collect()
}

fn row(second: usize, s: &Second) -> Row {
    Row {
        second,
        sent: s.sent,
        accepted: s.accepted,
        rejected: s.rejected,
        errors: s.errors,
        delivered: s.delivered,
        ingest: Percentiles::of(&s.ingest),
        e2e: Percentiles::of(&s.e2e),
    }
}

/// The Markdown text of the report.
pub fn render(report: &Report<'_>) -> String {
    let (p, s, c, l) = (report.parameters, report.summary, report.counts, report.latencies);
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = writeln!(out, "# Load test report\n");
    let _ = writeln!(out, "Run `{}`, started {}.\n", p.run, p.started_at);

    let _ = writeln!(out, "## Parameters\n");
    let _ = writeln!(out, "| parameter | value |\n| --- | --- |");
    let _ = writeln!(out, "| public API | {} |", p.url);
    let _ = writeln!(out, "| admin API | {} |", p.admin_url);
    let _ = writeln!(out, "| target rate | {} events/s |", p.rate);
    let _ = writeln!(out, "| duration | {} s |", p.duration_secs);
    let _ = writeln!(out, "| event size | {} bytes |", p.event_bytes);
    let _ = writeln!(out, "| customers | {} |", p.customers);
    let _ = writeln!(out, "| connections | {} |", p.connections);
    let _ = writeln!(out, "| webhook receiver | {} |\n", p.webhook_url);

    let _ = writeln!(out, "## Summary\n");
    let _ = writeln!(out, "| target rate | achieved rate | sent | accepted | rejected | errors | delivered | lost |");
    let _ = writeln!(out, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
        s.target_rate, s.achieved_rate, s.sent, s.accepted, s.rejected, s.errors, s.delivered, s.lost
    );
    let _ = writeln!(
        out,
        "`lost` counts accepted events that had not reached the receiver 10 s after the last send. \
         Duplicate deliveries (counted once): {}. Webhooks with a bad signature (refused): {}. \
         Webhooks that were not this run's: {}.\n",
        c.duplicates, c.bad_signatures, c.strays
    );

    let _ = writeln!(out, "## Latency (ms)\n");
    let _ = writeln!(out, "Measured from each event's scheduled send time, so queueing in the tester counts.\n");
    let _ = writeln!(
        out,
        "| | samples | p50 | p90 | p95 | p99 | p99.9 | max |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for (name, histogram) in
        [("ingest (scheduled send → 202)", &l.ingest), ("end to end (scheduled send → webhook)", &l.e2e)]
    {
        let q = |quantile| ms(quantile_ms(histogram, quantile));
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            histogram.len(),
            q(0.5),
            q(0.9),
            q(0.95),
            q(0.99),
            q(0.999),
            ms(Percentiles::of(histogram).max)
        );
    }
    let _ = writeln!(out, "\n![latency percentiles over time]({PLOT_FILE})\n");

    let _ = writeln!(out, "## Second by second\n");
    let _ =
        writeln!(out, "Counts are what happened in that second; latencies are those of the events scheduled in it.\n");
    let _ = writeln!(
        out,
        "| second | sent | accepted | rejected | errors | delivered | ingest p50 | ingest p99 | e2e p50 | e2e p99 |"
    );
    let _ = writeln!(out, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in rows(&l.timeline) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.second,
            r.sent,
            r.accepted,
            r.rejected,
            r.errors,
            r.delivered,
            ms(r.ingest.p50),
            ms(r.ingest.p99),
            ms(r.e2e.p50),
            ms(r.e2e.p99)
        );
    }
    out
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |ms| format!("{ms:.2}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::stats::{Outcome, Tally};

    fn parameters() -> Parameters {
        Parameters {
            run: "abc".into(),
            started_at: "2026-11-26T15:04:05.123Z".into(),
            url: "http://127.0.0.1:8080".into(),
            admin_url: "http://127.0.0.1:8081".into(),
            rate: 2.0,
            duration_secs: 2,
            event_bytes: 256,
            customers: 1,
            connections: 2,
            webhook_url: "http://127.0.0.1:9999/hook".into(),
        }
    }

    /// Two seconds at 2 events/s: three accepted and delivered, one refused. The latencies are
    /// below 256 µs, which both histogram precisions hold exactly.
    fn tally() -> Tally {
        let tally = Tally::new(4);
        for (seq, scheduled, latency, outcome) in [
            (0, 0, 100, Outcome::Accepted),
            (1, 500_000, 150, Outcome::Accepted),
            (2, 1_000_000, 175, Outcome::Rejected),
            (3, 1_500_000, 200, Outcome::Accepted),
        ] {
            tally.on_sent(scheduled);
            tally.on_answer(seq, scheduled, scheduled, scheduled + latency, outcome);
            if outcome == Outcome::Accepted {
                tally.on_delivery(seq, scheduled, scheduled + latency + 100);
            }
        }
        tally
    }

    #[test]
    fn the_report_holds_parameters_summary_percentiles_and_seconds() {
        let tally = tally();
        let (counts, latencies) = (tally.counts(), tally.latencies());
        let summary = Summary::compute(
            2.0,
            Duration::from_secs(2),
            Duration::from_millis(1_500),
            &counts,
            &latencies.ingest,
            &latencies.e2e,
        );
        let text =
            render(&Report { parameters: &parameters(), summary: &summary, counts: &counts, latencies: &latencies });

        assert!(text.starts_with("# Load test report\n"), "{text}");
        assert!(text.contains("| target rate | 2 events/s |"), "{text}");
        assert!(text.contains("| connections | 2 |"), "{text}");
        assert!(text.contains("| 2 | 2 | 4 | 3 | 1 | 0 | 3 | 0 |"), "summary row: {text}");
        assert!(
            text.contains("| ingest (scheduled send → 202) | 3 | 0.15 | 0.20 | 0.20 | 0.20 | 0.20 | 0.20 |"),
            "{text}"
        );
        assert!(
            text.contains("| end to end (scheduled send → webhook) | 3 | 0.25 | 0.30 | 0.30 | 0.30 | 0.30 | 0.30 |"),
            "{text}"
        );
        assert!(text.contains(&format!("![latency percentiles over time]({PLOT_FILE})")));
        assert!(text.contains("| 0 | 2 | 2 | 0 | 0 | 2 | 0.10 | 0.15 | 0.20 | 0.25 |"), "second 0: {text}");
        assert!(text.contains("| 1 | 2 | 1 | 1 | 0 | 1 | 0.20 | 0.20 | 0.30 | 0.30 |"), "second 1: {text}");
    }

    #[test]
    fn a_run_with_nothing_accepted_renders_dashes() {
        let tally = Tally::new(1);
        tally.on_sent(0);
        tally.on_answer(0, 0, 0, 1_000, Outcome::Error);
        let (counts, latencies) = (tally.counts(), tally.latencies());
        let summary =
            Summary::compute(1.0, Duration::from_secs(1), Duration::ZERO, &counts, &latencies.ingest, &latencies.e2e);
        let text =
            render(&Report { parameters: &parameters(), summary: &summary, counts: &counts, latencies: &latencies });
        assert!(text.contains("| ingest (scheduled send → 202) | 0 | – | – | – | – | – | – |"), "{text}");
        assert!(text.contains("| 0 | 1 | 0 | 0 | 1 | 0 | – | – | – | – |"), "{text}");
    }

    #[test]
    fn writes_the_report_and_a_decodable_plot() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("nested/report");
        let tally = tally();
        let (counts, latencies) = (tally.counts(), tally.latencies());
        let summary =
            Summary::compute(2.0, Duration::from_secs(2), Duration::ZERO, &counts, &latencies.ingest, &latencies.e2e);
        let written = write(
            &folder,
            &Report { parameters: &parameters(), summary: &summary, counts: &counts, latencies: &latencies },
        )
        .unwrap();
        assert_eq!(written, Written { report: folder.join(REPORT_FILE), plot: folder.join(PLOT_FILE) });
        assert!(std::fs::read_to_string(&written.report).unwrap().contains("## Second by second"));
        let (width, height) = crate::plot::tests::decode(&written.plot);
        assert_eq!((width, height), plot::SIZE);
    }
}
