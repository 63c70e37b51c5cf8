//! Counters shown at `/metrics` in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The ingest edge's counters.
#[derive(Debug, Default)]
pub struct IngestMetrics {
    /// Events answered `202` (replays not counted).
    pub events_accepted: AtomicU64,
    /// Ingest requests refused with a 4xx.
    pub events_rejected: AtomicU64,
    /// Ingest requests that failed on our side (the stream was unavailable).
    pub events_failed: AtomicU64,
}

impl IngestMetrics {
    /// The counters in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for (name, help, value) in [
            ("triggers_events_accepted_total", "Events accepted with 202.", &self.events_accepted),
            ("triggers_events_rejected_total", "Ingest requests refused with a 4xx.", &self.events_rejected),
            ("triggers_events_failed_total", "Ingest requests that failed on our side.", &self.events_failed),
        ] {
            let _ =
                writeln!(text, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", value.load(Ordering::Relaxed));
        }
        text
    }
}
