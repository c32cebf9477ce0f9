//! `scale`: on a running control plane (KUBECONFIG) and `cloudquota-sim`, creates N
//! CloudQuotas over M namespaces and K distinct upstream keys, starts the operator and
//! measures time to all Ready, upstream requests, status writes and Events in a steady-state
//! interval (audit log + operator metrics), operator CPU and RSS, reconcile latency, and how
//! fast a usage change reaches every affected object.
//!
//! * [`setup`]: keys, CRD, namespaces, Secrets, objects.
//! * [`track`]: the bench's own watch (all Ready, usage change seen).
//! * [`operator`]: the operator child process.
//! * [`run`]: the measured phases, in order.
//! * [`measure`]: /metrics, simulator counters, CPU of the processes around.
//! * [`report`]: the JSON result, its targets and the summary.

mod measure;
mod operator;
mod report;
mod run;
mod setup;
mod track;

use std::time::Duration;

pub use report::ScaleResult;

use crate::audit::{AuditCounts, audit_counts};
use crate::{BENCH_USER_AGENT, ScaleArgs, check_loopback, log};
use measure::sim_counters;
use run::{Change, End, Run, Startup, Steady};

const KEY_LABEL: &str = "bench.cloudquota.io/key";
const FIELD_MANAGER: &str = "cloudquota-bench";
const SECRET_NAME: &str = "bench-creds";
/// The resource changed by the usage-change step (EVS total gigabytes: far from any threshold,
/// so the change is a status update without an Event).
const CHANGE_RESOURCE: &str = "gigabytes";

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Everything measured in one run.
pub struct Measured {
    create_s: f64,
    startup: Startup,
    steady: Steady,
    scrape_cpu_ms: f64,
    change: Change,
    end: End,
    /// Audit counts of the startup, steady and change windows.
    audit: Vec<AuditCounts>,
}

fn validate(a: &ScaleArgs) -> Result<(), String> {
    check_loopback(&a.sim_url)?;
    if a.interval < Duration::from_secs(30) {
        return Err("--interval must be at least 30s".into());
    }
    if a.keys == 0 || a.n < a.keys || a.namespaces == 0 {
        return Err("need n >= keys > 0 and namespaces > 0".into());
    }
    Ok(())
}

/// The Kubernetes client, with its own User-Agent so the audit-log counts can leave the
/// bench's requests out (kube's client sends none, like the operator's), and a plain HTTP
/// client for the simulator and /metrics.
async fn clients() -> Result<(kube::Client, reqwest::Client), String> {
    let mut config = kube::Config::infer()
        .await
        .map_err(|e| format!("Kubernetes client: {e}"))?;
    config.headers.push((
        reqwest::header::USER_AGENT,
        reqwest::header::HeaderValue::from_static(BENCH_USER_AGENT),
    ));
    let client = kube::Client::try_from(config).map_err(|e| format!("Kubernetes client: {e}"))?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    Ok((client, http))
}

/// Runs the benchmark; false when a target was missed and `--check` is set.
pub async fn scale(a: ScaleArgs) -> Result<bool, String> {
    validate(&a)?;
    let window = a.window.unwrap_or(a.interval);
    let keys = setup::keys(a.keys);
    let (client, http) = clients().await?;
    sim_counters(&http, &a.sim_url)
        .await
        .map_err(|e| format!("simulator at {}: {e}", a.sim_url))?;

    log(format!(
        "N={} K={} namespaces={} interval={}s: creating objects",
        a.n,
        a.keys,
        a.namespaces,
        a.interval.as_secs()
    ));
    let create_s = setup::install(&client, &a, &keys).await?;
    log(format!("created {} CloudQuotas in {create_s:.1}s", a.n));

    let tracker = track::spawn_tracker(client.clone(), a.n);
    // Let the bench's own watch finish its initial list before the clock starts.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let port = operator::free_port()?;
    let run = Run {
        a: &a,
        http,
        metrics_url: format!("http://127.0.0.1:{port}/metrics"),
        port,
        tracker: tracker.clone(),
    };
    let (op, startup) = run.startup().await?;
    let pid = op.pid();
    let steady = run.steady(pid, window).await?;
    let scrape_cpu_ms = run.scrape_cost(pid).await?;
    let change = run.usage_change(&keys).await?;
    let end = run.end(op).await?;

    let audit = audit_counts(
        &a.audit_log,
        &[
            (startup.wall_start, startup.wall_ready),
            (steady.w0, steady.w1),
            (change.wc0, change.wc1),
        ],
    )?;
    let m = Measured {
        create_s,
        startup,
        steady,
        scrape_cpu_ms,
        change,
        end,
        audit,
    };
    let r = report::build(&a, &keys, &m);
    let watch_errors = tracker.lock().unwrap().watch_errors;
    report::print_summary(&r, &report::steady_per_key(&m), watch_errors);
    report::write_line(&a, &r)?;
    Ok(r.all_met || !a.check)
}
