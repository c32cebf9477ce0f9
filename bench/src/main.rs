//! `cloudquota-bench`: the scale and cost benchmarks (BENCHMARKS.md).
//!
//! * `scale`: on a running control plane (KUBECONFIG) and `cloudquota-sim`, creates N
//!   CloudQuotas over M namespaces and K distinct upstream keys, starts the operator and
//!   measures time to all Ready, upstream requests, status writes and Events in a steady-state
//!   interval (audit log + operator metrics), operator CPU and RSS, reconcile latency, and how
//!   fast a usage change reaches every affected object. Prints a summary, appends one JSON line
//!   to `--out`, and with `--check` exits 3 when a target is missed. `hack/bench.sh` sets up
//!   and tears down everything around it.
//! * `fetch`: N sequential sign + fetch + parse rounds through `Providers::fetch` against an
//!   external simulator, measuring this process's CPU (the same clock as Python's
//!   `time.process_time()`). `hack/bench-sdk.sh` compares it with the official Python SDKs.
//! * `table`: renders JSON lines of `scale` / `fetch` results as Markdown tables.
//!
//! Only loopback endpoints are accepted; every loop is bounded in count and time.

mod audit;
mod fetch;
mod process;
mod scale;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use cloudquota_sim::{DEMO_ACCESS_KEY, DEMO_SECRET_KEY};

/// The User-Agent of the bench's own Kubernetes requests.
const BENCH_USER_AGENT: &str = "cloudquota-bench";

#[derive(Parser, Debug)]
#[command(
    name = "cloudquota-bench",
    about = "cloudquota scale and cost benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Operator at scale on a real API server and the simulator.
    Scale(ScaleArgs),
    /// CPU per sign + fetch + parse through the provider clients.
    Fetch(FetchArgs),
    /// Markdown tables from JSON result lines.
    Table(TableArgs),
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    cloudquota::domain::duration::parse(s).map_err(|e| e.to_string())
}

#[derive(Args, Debug)]
pub struct ScaleArgs {
    /// Number of CloudQuotas.
    #[arg(short = 'n', long)]
    pub n: usize,
    /// Distinct upstream keys (service + project id, or Zenlayer zone filter).
    #[arg(long, default_value_t = 20)]
    pub keys: usize,
    #[arg(long, default_value_t = 50)]
    pub namespaces: usize,
    /// Poll interval of every CloudQuota (minimum 30s).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Length of the steady-state window (default: one interval).
    #[arg(long, value_parser = parse_duration)]
    pub window: Option<Duration>,
    /// Wait after all are Ready before the steady-state window starts.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub settle: Duration,
    /// Simulator base URL (http://127.0.0.1:PORT).
    #[arg(long)]
    pub sim_url: String,
    /// The `cloudquota` binary.
    #[arg(long, default_value = "target/release/cloudquota")]
    pub operator_bin: PathBuf,
    /// Extra `cloudquota run` argument (repeatable), e.g. `--operator-arg=--concurrency=64`.
    #[arg(long = "operator-arg", allow_hyphen_values = true)]
    pub operator_args: Vec<String>,
    /// API server audit log (JSON lines).
    #[arg(long, env = "CLOUDQUOTA_AUDIT_LOG")]
    pub audit_log: PathBuf,
    /// Directory for the operator log and pid file.
    #[arg(long, default_value = ".")]
    pub workdir: PathBuf,
    /// Objects created at once.
    #[arg(long, default_value_t = 64)]
    pub create_concurrency: usize,
    /// Give up waiting for all Ready after this long.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    pub ready_timeout: Duration,
    /// Append the result as one JSON line here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Exit 3 when a target is missed.
    #[arg(long)]
    pub check: bool,
    /// Target: all Ready within this long of operator start.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub target_ready: Duration,
    /// Target: peak RSS of the operator. Default: 100 MiB up to N = 5000 (issue #4), 128 MiB
    /// above (issue #12's target at N = 10,000, the chart's memory limit).
    #[arg(long)]
    pub target_rss_mib: Option<f64>,
    /// Target: steady-state CPU, percent of one core.
    #[arg(long, default_value_t = 2.0)]
    pub target_cpu_pct: f64,
    /// Free-form label stored with the result (e.g. "before fix").
    #[arg(long, default_value = "")]
    pub label: String,
}

impl ScaleArgs {
    pub fn rss_target_mib(&self) -> f64 {
        self.target_rss_mib
            .unwrap_or(if self.n > 5000 { 128.0 } else { 100.0 })
    }
}

#[derive(Args, Debug)]
pub struct FetchArgs {
    /// Simulator base URL (http://127.0.0.1:PORT).
    #[arg(long)]
    pub endpoint: String,
    /// ims, dws, evs or zenlayer.
    #[arg(long)]
    pub service: String,
    #[arg(short = 'n', long, default_value_t = 2000)]
    pub fetches: u32,
    #[arg(long, default_value_t = 20)]
    pub warmup: u32,
    #[arg(long)]
    pub project_id: Option<String>,
    #[arg(long, default_value = DEMO_ACCESS_KEY)]
    pub ak: String,
    #[arg(long, default_value = DEMO_SECRET_KEY)]
    pub sk: String,
    /// Tokio runtime: `current` (one thread), `multi-task` (a task on a multi-thread runtime:
    /// how the operator fetches, kube-runtime spawns each reconcile) or `multi` (`block_on`
    /// on the main thread of a multi-thread runtime).
    #[arg(long, default_value = "current")]
    pub runtime: String,
    /// Give up after this long.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub max_time: Duration,
    /// Also time signing alone and parsing alone (N rounds each, no network).
    #[arg(long)]
    pub breakdown: bool,
}

#[derive(Args, Debug)]
struct TableArgs {
    /// Files with JSON result lines (from `scale --out` or `fetch`).
    files: Vec<PathBuf>,
    /// Exit 3 when a fetch ratio (Python SDK / cloudquota, one thread) is below this, or a
    /// scale result missed a target.
    #[arg(long)]
    check_ratio: Option<f64>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match cli.cmd {
        Cmd::Scale(a) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("runtime");
            match rt.block_on(scale::scale(a)) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(3),
                Err(e) => {
                    eprintln!("bench: error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Fetch(a) => {
            let mut b = if a.runtime == "current" {
                tokio::runtime::Builder::new_current_thread()
            } else {
                tokio::runtime::Builder::new_multi_thread()
            };
            let rt = b.enable_all().build().expect("runtime");
            let spawned = a.runtime == "multi-task";
            let res = rt.block_on(async move {
                if spawned {
                    tokio::spawn(fetch::fetch(a))
                        .await
                        .unwrap_or_else(|e| Err(e.to_string()))
                } else {
                    fetch::fetch(a).await
                }
            });
            match res {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("bench: error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Table(a) => match table::table(&a.files, a.check_ratio) {
            Ok((t, ok)) => {
                print!("{t}");
                if ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(3)
                }
            }
            Err(e) => {
                eprintln!("bench: error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Only loopback endpoints are accepted (the simulator, never a real cloud).
fn check_loopback(url: &str) -> Result<(), String> {
    let u = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    match u.host() {
        Some(h) if cloudquota::domain::allowlist::is_loopback_host(&h) => Ok(()),
        _ => Err(format!("{url}: only loopback endpoints are allowed")),
    }
}

fn log(msg: impl AsRef<str>) {
    eprintln!("[bench] {}", msg.as_ref());
}
