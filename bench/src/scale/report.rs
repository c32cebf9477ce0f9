//! The result of a scale run: one JSON line (`ScaleResult`, also read back by `table`), its
//! targets, and the human summary on stderr.

use std::collections::BTreeMap;
use std::io::Write;

use serde::{Deserialize, Serialize};

use cloudquota::crd::Service;

use super::measure::quantile;
use super::secs;
use super::setup::Key;
use super::{Measured, ScaleArgs};

#[derive(Debug, Serialize, Deserialize, Default)]
pub struct Goal {
    pub name: String,
    pub value: f64,
    pub limit: String,
    pub met: bool,
}

#[derive(Debug, Serialize, Deserialize, Default)]
pub struct ScaleResult {
    pub kind: String,
    pub label: String,
    pub n: usize,
    pub keys: usize,
    pub namespaces: usize,
    pub interval_s: f64,
    pub window_s: f64,
    pub create_s: f64,
    pub ready_s: f64,
    pub startup_upstream: f64,
    pub startup_status_writes: u64,
    pub startup_events: u64,
    pub steady_upstream: f64,
    pub steady_upstream_per_interval: f64,
    pub steady_keys_polled: usize,
    pub steady_max_per_key: u64,
    pub steady_status_writes_audit: u64,
    pub steady_events_audit: u64,
    pub steady_status_writes_metrics: f64,
    pub steady_events_metrics: f64,
    pub steady_reconciles: f64,
    pub steady_api_requests: BTreeMap<String, u64>,
    pub cpu_startup_s: f64,
    pub cpu_steady_s: f64,
    pub cpu_steady_pct: f64,
    pub cpu_total_s: f64,
    /// CPU seconds of the API server, etcd, this bench process and the whole machine (all
    /// CPUs) from operator start to all Ready, and in the steady window; 1-minute load average
    /// at all Ready and at the end of the steady window. The machine total shows how much
    /// else was running.
    #[serde(default)]
    pub startup_cpu_apiserver_s: f64,
    #[serde(default)]
    pub startup_cpu_etcd_s: f64,
    #[serde(default)]
    pub startup_cpu_bench_s: f64,
    #[serde(default)]
    pub startup_cpu_machine_s: f64,
    #[serde(default)]
    pub steady_cpu_apiserver_s: f64,
    #[serde(default)]
    pub steady_cpu_etcd_s: f64,
    #[serde(default)]
    pub steady_cpu_machine_s: f64,
    #[serde(default)]
    pub loadavg_ready: f64,
    #[serde(default)]
    pub loadavg_steady: f64,
    pub cpu_per_reconcile_us: f64,
    pub rss_peak_mib: f64,
    pub rss_end_mib: f64,
    /// VmRSS when all were Ready, after the settle time (before any /metrics scrape), at the
    /// end of the steady window (one scrape later), and VmHWM before the scrape-cost loop.
    #[serde(default)]
    pub rss_ready_mib: f64,
    #[serde(default)]
    pub rss_settled_mib: f64,
    #[serde(default)]
    pub rss_steady_mib: f64,
    #[serde(default)]
    pub rss_peak_before_scrapes_mib: f64,
    pub reconcile_p50_ms: Option<f64>,
    pub reconcile_p90_ms: Option<f64>,
    pub reconcile_p99_ms: Option<f64>,
    pub steady_reconcile_p50_ms: Option<f64>,
    pub steady_reconcile_p99_ms: Option<f64>,
    pub change_affected: usize,
    pub change_latency_max_s: f64,
    pub change_latency_p50_s: f64,
    pub change_status_writes: f64,
    pub change_events: f64,
    pub change_upstream: f64,
    pub scrape_bytes: usize,
    pub scrape_series: usize,
    pub scrape_cpu_ms: f64,
    pub targets: Vec<Goal>,
    pub all_met: bool,
}

/// Upstream requests per simulator key in the steady window (keys with none left out).
pub fn steady_per_key(m: &Measured) -> BTreeMap<String, u64> {
    let (c0, c1) = (&m.steady.c0, &m.steady.c1);
    c1.per_key
        .iter()
        .map(|(k, v)| (k.clone(), v - c0.per_key.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// (max requests per key, keys polled) of the steady window. Zenlayer keys share one
/// simulator account ("vm/demo"), so per-key maxima are over the Huawei project keys plus the
/// whole Zenlayer account divided by its number of keys.
fn per_key_stats(delta_keys: &BTreeMap<String, u64>, keys: &[Key]) -> (u64, usize) {
    let vm_keys = keys
        .iter()
        .filter(|k| k.service == Service::Vm)
        .count()
        .max(1) as u64;
    let max_per_key = delta_keys
        .iter()
        .map(|(k, v)| {
            if k.starts_with("vm/") {
                v.div_ceil(vm_keys)
            } else {
                *v
            }
        })
        .max()
        .unwrap_or(0);
    let polled = delta_keys
        .iter()
        .map(|(k, v)| {
            if k.starts_with("vm/") {
                (*v).min(vm_keys) as usize
            } else {
                1
            }
        })
        .sum();
    (max_per_key, polled)
}

/// The result of the run, its targets evaluated.
pub fn build(a: &ScaleArgs, keys: &[Key], m: &Measured) -> ScaleResult {
    let (st, sd, ch, end) = (&m.startup, &m.steady, &m.change, &m.end);
    let (a_start, a_steady) = (&m.audit[0], &m.audit[1]);
    let (steady_max_per_key, steady_keys_polled) = per_key_stats(&steady_per_key(m), keys);
    let steady_upstream = (sd.c1.total - sd.c0.total) as f64;
    let steady_reconciles = sd.m1.reconcile_count - sd.m0.reconcile_count;
    let cpu_steady_s = sd.cpu1 - sd.cpu0;
    let ms = |v: Option<f64>| v.map(|v| v * 1e3);
    let (whole, steady_now, steady_before) = (
        &end.m_end.reconcile_buckets,
        &sd.m1.reconcile_buckets,
        Some(&sd.m0.reconcile_buckets[..]),
    );
    let mut r = ScaleResult {
        kind: "scale".into(),
        label: a.label.clone(),
        n: a.n,
        keys: a.keys,
        namespaces: a.namespaces,
        interval_s: secs(a.interval),
        window_s: sd.tw,
        create_s: m.create_s,
        ready_s: st.ready_s,
        startup_upstream: (st.c_ready.total - st.c_start.total) as f64,
        startup_status_writes: a_start.status_patches,
        startup_events: a_start.event_creates + a_start.event_patches,
        steady_upstream,
        steady_upstream_per_interval: steady_upstream * secs(a.interval) / sd.tw,
        steady_keys_polled,
        steady_max_per_key,
        steady_status_writes_audit: a_steady.status_patches,
        steady_events_audit: a_steady.event_creates + a_steady.event_patches,
        steady_status_writes_metrics: sd.m1.status_writes - sd.m0.status_writes,
        steady_events_metrics: sd.m1.events - sd.m0.events,
        steady_reconciles,
        steady_api_requests: a_steady.requests.clone(),
        cpu_startup_s: st.cpu_startup_s,
        cpu_steady_s,
        cpu_steady_pct: cpu_steady_s / sd.tw * 100.0,
        cpu_total_s: end.cpu_total_s,
        startup_cpu_apiserver_s: st.o_ready.apiserver - st.o_start.apiserver,
        startup_cpu_etcd_s: st.o_ready.etcd - st.o_start.etcd,
        startup_cpu_bench_s: st.o_ready.bench - st.o_start.bench,
        startup_cpu_machine_s: st.o_ready.machine - st.o_start.machine,
        steady_cpu_apiserver_s: sd.o1.apiserver - sd.o0.apiserver,
        steady_cpu_etcd_s: sd.o1.etcd - sd.o0.etcd,
        steady_cpu_machine_s: sd.o1.machine - sd.o0.machine,
        loadavg_ready: st.o_ready.load1,
        loadavg_steady: sd.o1.load1,
        cpu_per_reconcile_us: if steady_reconciles > 0.0 {
            cpu_steady_s / steady_reconciles * 1e6
        } else {
            0.0
        },
        rss_peak_mib: end.rss_peak_mib,
        rss_end_mib: end.rss_end_mib,
        rss_ready_mib: st.rss_ready_mib,
        rss_settled_mib: sd.rss_settled_mib,
        rss_steady_mib: sd.rss_steady_mib,
        rss_peak_before_scrapes_mib: sd.rss_prescrape_peak_mib,
        reconcile_p50_ms: ms(quantile(whole, None, 0.5)),
        reconcile_p90_ms: ms(quantile(whole, None, 0.9)),
        reconcile_p99_ms: ms(quantile(whole, None, 0.99)),
        steady_reconcile_p50_ms: ms(quantile(steady_now, steady_before, 0.5)),
        steady_reconcile_p99_ms: ms(quantile(steady_now, steady_before, 0.99)),
        change_affected: ch.affected,
        change_latency_max_s: ch.latency_max_s,
        change_latency_p50_s: ch.latency_p50_s,
        change_status_writes: ch.m_c1.status_writes - ch.m_c0.status_writes,
        change_events: ch.m_c1.events - ch.m_c0.events,
        change_upstream: ch.m_c1.upstream - ch.m_c0.upstream,
        scrape_bytes: end.m_end.bytes,
        scrape_series: end.m_end.lines,
        scrape_cpu_ms: m.scrape_cpu_ms,
        targets: vec![],
        all_met: false,
    };
    r.targets = targets(a, &r);
    r.all_met = r.targets.iter().all(|t| t.met);
    r
}

/// The targets of BENCHMARKS.md, evaluated on `r`.
fn targets(a: &ScaleArgs, r: &ScaleResult) -> Vec<Goal> {
    let goal = |name: &str, value: f64, limit: String, met: bool| Goal {
        name: name.into(),
        value,
        limit,
        met,
    };
    let k = a.keys as f64;
    let windows = (r.window_s / secs(a.interval)).ceil().max(1.0);
    let change_limit = secs(a.interval) + 5.0;
    vec![
        goal(
            "all Ready after operator start (s)",
            r.ready_s,
            format!("<= {}", secs(a.target_ready)),
            r.ready_s <= secs(a.target_ready),
        ),
        goal(
            "upstream requests in the steady interval",
            r.steady_upstream,
            format!("<= K = {}", a.keys),
            r.steady_upstream <= k * windows && r.steady_upstream > 0.0,
        ),
        goal(
            "status writes in the steady interval (audit)",
            r.steady_status_writes_audit as f64,
            "0".into(),
            r.steady_status_writes_audit == 0,
        ),
        goal(
            "Events in the steady interval (audit)",
            r.steady_events_audit as f64,
            "0".into(),
            r.steady_events_audit == 0,
        ),
        goal(
            "steady-state CPU (% of one core)",
            r.cpu_steady_pct,
            format!("<= {}", a.target_cpu_pct),
            r.cpu_steady_pct <= a.target_cpu_pct,
        ),
        goal(
            "peak RSS (MiB)",
            r.rss_peak_mib,
            format!("<= {}", a.rss_target_mib()),
            r.rss_peak_mib <= a.rss_target_mib(),
        ),
        goal(
            "usage change on every affected object (s)",
            r.change_latency_max_s,
            format!("<= {change_limit}"),
            r.change_latency_max_s <= change_limit,
        ),
    ]
}

/// The human summary, on stderr.
pub fn print_summary(r: &ScaleResult, delta_keys: &BTreeMap<String, u64>, watch_errors: u64) {
    eprintln!();
    eprintln!(
        "N={} K={} interval={}s window={:.1}s",
        r.n, r.keys, r.interval_s, r.window_s
    );
    eprintln!(
        "  create {:.1}s, startup: {} upstream, {} status writes, {} Events, CPU {:.2}s",
        r.create_s, r.startup_upstream, r.startup_status_writes, r.startup_events, r.cpu_startup_s
    );
    eprintln!(
        "  steady: upstream {} ({:?}), reconciles {}, status writes audit/metrics {}/{}, events {}/{}, CPU {:.3}s ({:.2}%, {:.0} us/reconcile)",
        r.steady_upstream,
        delta_keys,
        r.steady_reconciles,
        r.steady_status_writes_audit,
        r.steady_status_writes_metrics,
        r.steady_events_audit,
        r.steady_events_metrics,
        r.cpu_steady_s,
        r.cpu_steady_pct,
        r.cpu_per_reconcile_us
    );
    eprintln!("  steady API requests: {:?}", r.steady_api_requests);
    eprintln!(
        "  change: {} objects, max {:.2}s p50 {:.2}s, {} status writes, {} events, {} upstream",
        r.change_affected,
        r.change_latency_max_s,
        r.change_latency_p50_s,
        r.change_status_writes,
        r.change_events,
        r.change_upstream
    );
    print_resources(r);
    for t in &r.targets {
        eprintln!(
            "  [{}] {}: {:.3} (target {})",
            if t.met { " ok " } else { "MISS" },
            t.name,
            t.value,
            t.limit
        );
    }
    if watch_errors > 0 {
        eprintln!("  (bench watch errors: {watch_errors})");
    }
}

/// CPU, memory, latency and /metrics lines of the summary.
fn print_resources(r: &ScaleResult) {
    eprintln!(
        "  startup CPU: apiserver {:.2}s etcd {:.2}s bench {:.2}s machine {:.2}s (load {:.2}); steady: apiserver {:.2}s etcd {:.2}s machine {:.2}s (load {:.2})",
        r.startup_cpu_apiserver_s,
        r.startup_cpu_etcd_s,
        r.startup_cpu_bench_s,
        r.startup_cpu_machine_s,
        r.loadavg_ready,
        r.steady_cpu_apiserver_s,
        r.steady_cpu_etcd_s,
        r.steady_cpu_machine_s,
        r.loadavg_steady
    );
    eprintln!(
        "  RSS ready {:.1} settled {:.1} steady {:.1} peak-before-scrapes {:.1} MiB",
        r.rss_ready_mib, r.rss_settled_mib, r.rss_steady_mib, r.rss_peak_before_scrapes_mib
    );
    eprintln!(
        "  RSS peak {:.1} MiB end {:.1} MiB, CPU total {:.2}s, reconcile p50/p90/p99 {:?}/{:?}/{:?} ms, /metrics {} bytes {} series {:.1} ms CPU",
        r.rss_peak_mib,
        r.rss_end_mib,
        r.cpu_total_s,
        r.reconcile_p50_ms,
        r.reconcile_p90_ms,
        r.reconcile_p99_ms,
        r.scrape_bytes,
        r.scrape_series,
        r.scrape_cpu_ms
    );
}

/// Appends the result as one JSON line to `--out`, or prints it on stdout.
pub fn write_line(a: &ScaleArgs, r: &ScaleResult) -> Result<(), String> {
    let line = serde_json::to_string(r).map_err(|e| e.to_string())?;
    if let Some(out) = &a.out {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .map_err(|e| format!("{}: {e}", out.display()))?;
        writeln!(f, "{line}").map_err(|e| e.to_string())?;
    } else {
        println!("{line}");
    }
    Ok(())
}
