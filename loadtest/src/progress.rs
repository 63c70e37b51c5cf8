//! The progress bar on standard error (drawn only when it is a terminal): requests sent out of
//! the run's total, with the counters beside it, then the wait for the last deliveries.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::stats::{Counts, Tally};

const REFRESH: Duration = Duration::from_millis(200);

/// A progress bar kept up to date from the tally.
pub struct Progress {
    bar: ProgressBar,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Progress {
    /// Starts showing the run of `events` events.
    pub fn start(events: u64, tally: Arc<Tally>) -> Self {
        let bar = ProgressBar::with_draw_target(Some(events), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} sent · {msg}")
                .expect("a constant template is valid")
                .progress_chars("=> "),
        );
        let stop = CancellationToken::new();
        let task = {
            let (bar, stop) = (bar.clone(), stop.clone());
            tokio::spawn(async move {
                loop {
                    let counts = tally.counts();
                    bar.set_position(counts.sent);
                    bar.set_message(message(&counts));
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(REFRESH) => {}
                    }
                }
            })
        };
        Self { bar, stop, task }
    }

    /// Says that sending is over and the run waits up to `grace` for deliveries.
    pub fn waiting(&self, grace: Duration) {
        self.bar.set_prefix(format!("{} s", grace.as_secs()));
        self.bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} waiting up to {prefix} for the last deliveries · {msg}")
                .expect("a constant template is valid"),
        );
    }

    /// Removes the bar.
    pub async fn finish(self) {
        self.stop.cancel();
        let _ = self.task.await;
        self.bar.finish_and_clear();
    }
}

fn message(counts: &Counts) -> String {
    format!(
        "{} accepted · {} rejected · {} errors · {} delivered · {} awaited",
        counts.accepted, counts.rejected, counts.errors, counts.delivered, counts.lost
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_every_counter() {
        let counts =
            Counts { sent: 9, accepted: 7, rejected: 1, errors: 1, delivered: 5, lost: 2, ..Counts::default() };
        assert_eq!(message(&counts), "7 accepted · 1 rejected · 1 errors · 5 delivered · 2 awaited");
    }
}
