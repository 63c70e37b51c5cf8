//! The `triggers-loadtest` binary against a real `triggers serve` (embedded backend, started
//! in-process on port 0 with its own data directory): a steady run accounts for every event and
//! writes its report; events the receiver never gets are counted lost and fail the run; bad usage
//! exits with 2. The tester is a child process, so its exit status and standard output are the
//! real ones.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use triggers::serve::{self, Roles};
use triggers::settings::RunOptions;

/// Generous bound on one tester run of a few seconds (setup, load, the 10 s wait, the report).
const RUN_BOUND: Duration = Duration::from_secs(120);

/// The fields of the contract's summary line.
const SUMMARY_FIELDS: [&str; 10] = [
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

struct Server {
    public: SocketAddr,
    admin: SocketAddr,
    admin_token: String,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    _data: tempfile::TempDir,
}

impl Server {
    async fn start(options: RunOptions) -> Self {
        let data = tempfile::tempdir().unwrap();
        let admin_token = format!("adm_loadtest_{}", uuid::Uuid::new_v4().simple());
        let settings =
            RunOptions { data_dir: Some(data.path().to_owned()), admin_token: Some(admin_token.clone()), ..options }
                .resolve()
                .unwrap();
        let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (public_addr, admin_addr) = (public.local_addr().unwrap(), admin.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve::run(settings, Roles::All, public, admin, shutdown.clone()));
        Self { public: public_addr, admin: admin_addr, admin_token, shutdown, task, _data: data }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }

    /// Runs the tester against this server with `args`; panics if it takes longer than [`RUN_BOUND`].
    async fn loadtest(&self, args: &[&str]) -> Output {
        let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_triggers-loadtest"))
            .args(["--url", &format!("http://{}", self.public), "--admin-url", &format!("http://{}", self.admin)])
            .args(args)
            .env("TRIGGERS_ADMIN_TOKEN", &self.admin_token)
            .kill_on_drop(true)
            .output();
        tokio::time::timeout(RUN_BOUND, run).await.expect("the tester finished in time").unwrap()
    }
}

/// The last line of standard output, as JSON, checked to hold exactly the contract's fields.
fn summary(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stdout.lines().last().unwrap_or_else(|| panic!("no summary line; stderr:\n{stderr}"));
    let summary: Value =
        serde_json::from_str(last).unwrap_or_else(|_| panic!("the last line is not JSON: {last}\nstderr:\n{stderr}"));
    let mut fields: Vec<&str> = summary.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    let mut wanted = SUMMARY_FIELDS.to_vec();
    wanted.sort_unstable();
    assert_eq!(fields, wanted, "{last}");
    for latency in ["ingest_ms", "e2e_ms"] {
        let mut keys: Vec<&str> = summary[latency].as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["max", "p50", "p95", "p99"], "{last}");
    }
    summary
}

/// Percentiles that are numbers and in order.
fn assert_percentiles(summary: &Value, latency: &str) {
    let p = |name: &str| summary[latency][name].as_f64().unwrap_or_else(|| panic!("{latency}.{name}: {summary}"));
    let (p50, p95, p99, max) = (p("p50"), p("p95"), p("p99"), p("max"));
    assert!(0.0 < p50 && p50 <= p95 && p95 <= p99 && p99 <= max, "{latency}: {summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_run_accounts_for_every_event_and_writes_its_report() {
    let server = Server::start(RunOptions::default()).await;
    let reports = tempfile::tempdir().unwrap();
    let report_dir = reports.path().join("run");
    let output = server
        .loadtest(&[
            "--rate",
            "20",
            "--duration",
            "3",
            "--customers",
            "3",
            "--connections",
            "4",
            "--event-bytes",
            "512",
            "--report-dir",
            report_dir.to_str().unwrap(),
        ])
        .await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "stderr:\n{stderr}");
    let summary = summary(&output);
    assert_eq!(summary["target_rate"], 20.0, "{summary}");
    assert_eq!(summary["sent"], 60, "{summary}");
    assert_eq!(summary["accepted"], 60, "{summary}");
    assert_eq!(summary["rejected"], 0, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    assert_eq!(summary["delivered"], 60, "{summary}");
    assert_eq!(summary["lost"], 0, "{summary}");
    assert!(summary["achieved_rate"].as_f64().is_some_and(|rate| rate > 0.0 && rate <= 20.0), "{summary}");
    assert_percentiles(&summary, "ingest_ms");
    assert_percentiles(&summary, "e2e_ms");

    let report = std::fs::read_to_string(report_dir.join("report.md")).unwrap();
    assert!(report.starts_with("# Load test report"), "{report}");
    assert!(report.contains("| 60 | 60 | 0 | 0 | 60 | 0 |"), "the summary row: {report}");
    assert!(report.contains("![latency percentiles over time](latency.png)"), "{report}");
    let png = std::fs::File::open(report_dir.join("latency.png")).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(png)).read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((frame.width, frame.height), (1200, 900));
    assert!(pixels.iter().any(|&byte| byte != 255), "the plot is blank");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_the_receiver_never_gets_are_lost_and_fail_the_run() {
    // Retries are an hour away, so a webhook refused once does not come back within the run.
    let server = Server::start(RunOptions { retry_schedule: Some("1h".into()), ..RunOptions::default() }).await;
    let receiver_port = free_port();
    let proxy = RefusingProxy::start(SocketAddr::from(([127, 0, 0, 1], receiver_port)), 4).await;
    let output = server
        .loadtest(&[
            "--rate",
            "10",
            "--duration",
            "2",
            "--customers",
            "2",
            "--connections",
            "2",
            "--receiver-listen",
            &format!("127.0.0.1:{receiver_port}"),
            "--receiver-url",
            &proxy.url(),
        ])
        .await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    let summary = summary(&output);
    // Events 0, 4, 8, 12 and 16 of 20 were refused by the proxy.
    assert_eq!(proxy.refused(), 5, "{summary}");
    assert_eq!(summary["sent"], 20, "{summary}");
    assert_eq!(summary["accepted"], 20, "{summary}");
    assert_eq!(summary["delivered"], 15, "{summary}");
    assert_eq!(summary["lost"], 5, "{summary}");
    server.stop().await;
}

#[tokio::test]
async fn bad_usage_exits_with_2() {
    let binary = env!("CARGO_BIN_EXE_triggers-loadtest");
    let run = |args: &[&str], token: Option<&str>| {
        let mut command = tokio::process::Command::new(binary);
        command.args(args).env_remove("TRIGGERS_ADMIN_TOKEN").kill_on_drop(true);
        if let Some(token) = token {
            command.env("TRIGGERS_ADMIN_TOKEN", token);
        }
        async move { tokio::time::timeout(RUN_BOUND, command.output()).await.unwrap().unwrap() }
    };
    // Nothing listens there: a usage error is found before any request.
    let nowhere = ["--url", "http://127.0.0.1:9", "--admin-url", "http://127.0.0.1:9"];
    let too_small =
        run(&[&nowhere[..], &["--rate", "5", "--duration", "1", "--event-bytes", "10"]].concat(), Some("t")).await;
    assert_eq!(too_small.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&too_small.stderr).contains("--event-bytes 10 is below the smallest event"));
    let no_token = run(&[&nowhere[..], &["--rate", "5", "--duration", "1"]].concat(), None).await;
    assert_eq!(no_token.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("TRIGGERS_ADMIN_TOKEN is not set"));
    let no_rate = run(&["--duration", "1"], Some("t")).await;
    assert_eq!(no_rate.status.code(), Some(2));
    for output in [too_small, no_token, no_rate] {
        assert!(output.stdout.is_empty(), "no summary after bad usage");
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A webhook endpoint in front of the tester's receiver: it answers `503` to every event whose
/// sequence number is a multiple of `every` and forwards everything else (probes included).
struct RefusingProxy {
    addr: SocketAddr,
    refused: Arc<AtomicU64>,
}

impl RefusingProxy {
    async fn start(target: SocketAddr, every: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let refused = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&refused);
        tokio::spawn(async move {
            let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (client, refused) = (client.clone(), Arc::clone(&counter));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
                        let (client, refused) = (client.clone(), Arc::clone(&refused));
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let webhook: Value = serde_json::from_slice(&body).unwrap_or_default();
                            let status = match webhook["data"]["loadtest"]["seq"].as_u64() {
                                Some(seq) if seq % every == 0 => {
                                    refused.fetch_add(1, Ordering::SeqCst);
                                    503
                                }
                                _ => {
                                    let mut forward = http::Request::post(format!("http://{target}/hook"));
                                    for (name, value) in &parts.headers {
                                        if name.as_str().starts_with("webhook-") || name == http::header::CONTENT_TYPE {
                                            forward = forward.header(name, value);
                                        }
                                    }
                                    let answer = client.request(forward.body(Full::new(body)).unwrap()).await;
                                    answer.map_or(502, |answer| answer.status().as_u16())
                                }
                            };
                            let mut response = http::Response::new(Full::new(Bytes::new()));
                            *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, refused }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }
}
