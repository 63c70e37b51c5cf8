//! `triggers-loadtest`: drives a running Triggers deployment over HTTP at a fixed arrival rate
//! and measures what a capacity planner needs (CLI contract, "Load testing").
//!
//! A run: start the webhook receiver ([`receiver`]); create customers, keys and subscriptions
//! pointing at it, and wait until each subscription has delivered a probe ([`setup`]); send the
//! events open loop on the schedule ([`schedule`], [`load`]); wait up to 10 s after the last send
//! for the deliveries; then summarise ([`summary`]) and, if asked, write the report and its plot
//! ([`report`], [`plot`]). It knows the deployment only through its HTTP API.

pub mod client;
pub mod config;
pub mod error;
pub mod event;
pub mod load;
pub mod plot;
pub mod progress;
pub mod receiver;
pub mod report;
pub mod schedule;
pub mod setup;
pub mod stats;
pub mod summary;

use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use config::Options;
pub use error::LoadtestError;
pub use summary::Summary;

use crate::event::EventShape;
use crate::load::Load;
use crate::progress::Progress;
use crate::receiver::Receiver;
use crate::report::{Parameters, Report, Written};
use crate::schedule::Schedule;
use crate::setup::Deployment;
use crate::stats::Tally;

/// How long after the last send an accepted event may still arrive before it counts as lost.
pub const DELIVERY_GRACE: Duration = Duration::from_secs(10);
/// How often the wait for the last deliveries looks whether it is over.
const DELIVERY_POLL: Duration = Duration::from_millis(100);

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The summary line.
    pub summary: Summary,
    /// The report's files, with `--report-dir`.
    pub report: Option<Written>,
}

/// Runs a load test as `options` describe, with `admin_token` for the admin API. Cancelling
/// `interrupt` during the load stops the schedule early: what was sent is still awaited and
/// summarised.
pub async fn run(
    options: &Options,
    admin_token: &str,
    interrupt: CancellationToken,
) -> Result<RunOutcome, LoadtestError> {
    let schedule = Schedule::new(options.rate, Duration::from_secs(options.duration))?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let event_bytes = usize::try_from(options.event_bytes)
        .map_err(|_| LoadtestError::Usage(format!("--event-bytes {} is too large", options.event_bytes)))?;
    let shape = EventShape::new(&run, event_bytes, &schedule)?;
    let admin_authorization = HeaderValue::from_str(&format!("Bearer {admin_token}"))
        .map_err(|_| LoadtestError::Usage("TRIGGERS_ADMIN_TOKEN is not a valid header value".to_owned()))?;
    let deployment = Deployment { url: options.url.clone(), admin_url: options.admin_url.clone(), admin_authorization };

    let tally = Arc::new(Tally::new(schedule.events()));
    let receiver = Receiver::start(options.receiver_listen, &run, Arc::clone(&tally)).await?;
    let webhook_url = options.webhook_url(receiver.addr()).map_err(LoadtestError::Usage)?;
    tracing::info!(run = %run, webhook_url = %webhook_url, "webhook receiver listening");

    let connector = client::connector();
    let http = client::client(connector.clone(), 4);
    let rate_limit = setup::customer_rate_limit(options.rate, options.customers);
    let customers =
        setup::create_customers(&http, &deployment, &run, options.customers, rate_limit, &webhook_url).await?;
    receiver.register(&customers);
    tracing::info!(customers = customers.len(), rate_limit, "customers, keys and subscriptions created");
    setup::wait_until_live(&http, &deployment, &customers, &shape, &receiver, &webhook_url, &interrupt).await?;
    tracing::info!(events = schedule.events(), rate = options.rate, "subscriptions live; sending");

    let started_at = triggers_schemas::Timestamp::now().to_string();
    let start = Instant::now();
    receiver.start_clock(start);
    let progress = Progress::start(schedule.events(), Arc::clone(&tally));
    let load = Load {
        schedule,
        shape,
        customers: customers.into(),
        events_url: client::join(&options.url, "/v1/events"),
        connections: options.connections,
        tally: Arc::clone(&tally),
        start,
    };
    load::run(load, connector, interrupt.clone()).await;

    // Every request has been answered (or given up on); now the last deliveries.
    progress.waiting(DELIVERY_GRACE);
    let deadline = start + Duration::from_micros(tally.last_send_us()) + DELIVERY_GRACE;
    while tally.counts().lost > 0 && Instant::now() < deadline {
        tokio::time::sleep(DELIVERY_POLL).await;
    }
    let (counts, latencies) = (tally.counts(), tally.latencies());
    progress.finish().await;
    receiver.stop().await;

    let summary = Summary::compute(
        options.rate,
        schedule.duration(),
        Duration::from_micros(tally.last_send_us()),
        &counts,
        &latencies.ingest,
        &latencies.e2e,
    );
    if counts.bad_signatures > 0 {
        tracing::warn!(count = counts.bad_signatures, "webhooks whose signature did not verify were refused");
    }
    let report = match &options.report_dir {
        None => None,
        Some(dir) => {
            let parameters = Parameters {
                run,
                started_at,
                url: options.url.clone(),
                admin_url: options.admin_url.clone(),
                rate: options.rate,
                duration_secs: options.duration,
                event_bytes,
                customers: options.customers,
                connections: options.connections,
                webhook_url,
            };
            let report = Report { parameters: &parameters, summary: &summary, counts: &counts, latencies: &latencies };
            let written = report::write(dir, &report)?;
            tracing::info!(report = %written.report.display(), plot = %written.plot.display(), "report written");
            Some(written)
        }
    };
    Ok(RunOutcome { summary, report })
}
