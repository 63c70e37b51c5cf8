//! `triggers`: parses the command line and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use triggers::serve::{self, Roles};
use triggers::settings::{Backend, RunOptions};

/// Triggers: event ingestion and webhook triggers.
#[derive(Parser)]
#[command(name = "triggers", version, about)]
struct Cli {
    /// A TOML file of settings (below flags and TRIGGERS_* variables, above defaults).
    #[arg(long, global = true, env = "TRIGGERS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline in one process: public API, admin API and stream consumer.
    Serve(RunOptions),
    /// Run the public and admin API only.
    Ingest(RunOptions),
    /// Run the stream consumer only.
    Consume(RunOptions),
    /// Create the stream (and, later, tables and queues) that are missing. Idempotent.
    Setup(RunOptions),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRIGGERS_LOG")
                .unwrap_or_else(|_| "info,fjall=warn,lsm_tree=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let (options, roles) = match cli.command {
        Command::Serve(options) => (options, Roles::All),
        Command::Ingest(options) => (options, Roles::Ingest),
        Command::Consume(options) => (options, Roles::Consume),
        Command::Setup(options) => return setup(options.with_config_file(cli.config.as_ref())?).await,
    };
    let settings = options.with_config_file(cli.config.as_ref())?.resolve()?;
    let public =
        TcpListener::bind(settings.listen).await.map_err(|e| anyhow::anyhow!("binding {}: {e}", settings.listen))?;
    let admin = TcpListener::bind(settings.admin_listen)
        .await
        .map_err(|e| anyhow::anyhow!("binding {}: {e}", settings.admin_listen))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    serve::run(settings, roles, public, admin, shutdown).await
}

async fn setup(options: RunOptions) -> anyhow::Result<()> {
    let settings = options.resolve()?;
    match settings.backend {
        Backend::Embedded => {
            eprintln!("nothing to set up: the embedded backend creates what it needs on first start");
            Ok(())
        }
        Backend::Aws => {
            let client = aws_sdk_kinesis::Client::new(&triggers::adapters::aws_sdk_config().await);
            triggers_stream::kinesis::create_if_missing(&client, &settings.stream_name, settings.shards).await?;
            eprintln!("stream {} is active", settings.stream_name);
            Ok(())
        }
    }
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = match signal(SignalKind::terminate()) {
            Ok(terminate) => terminate,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                let _ = tokio::signal::ctrl_c().await;
                shutdown.cancel();
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down: no new requests; finishing in-flight work");
    shutdown.cancel();
}
