//! Measurements taken during a scale run: the operator's /metrics, the simulator's request
//! counters, and the CPU of the processes around the operator and of the machine.

use crate::process::{clock_ticks, proc_cpu, process_cpu};

#[derive(Clone, Debug, Default)]
pub struct Scrape {
    pub status_writes: f64,
    pub events: f64,
    pub upstream: f64,
    pub polls: f64,
    /// Cumulative (le, count) of cloudquota_reconcile_duration_seconds.
    pub reconcile_buckets: Vec<(f64, f64)>,
    pub reconcile_count: f64,
    pub reconcile_sum: f64,
    pub bytes: usize,
    pub lines: usize,
}

fn parse_metrics(text: &str) -> Scrape {
    let mut s = Scrape {
        bytes: text.len(),
        ..Default::default()
    };
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        s.lines += 1;
        let Some((name_labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match name_labels.split_once('{') {
            Some((n, l)) => (n, l),
            None => (name_labels, ""),
        };
        match name {
            "cloudquota_status_writes_total" => s.status_writes += v,
            "cloudquota_events_total" => s.events += v,
            "cloudquota_upstream_requests_total" => s.upstream += v,
            "cloudquota_polls_total" => s.polls += v,
            "cloudquota_reconcile_duration_seconds_count" => s.reconcile_count = v,
            "cloudquota_reconcile_duration_seconds_sum" => s.reconcile_sum = v,
            "cloudquota_reconcile_duration_seconds_bucket" => {
                s.reconcile_buckets.push((bucket_le(labels), v));
            }
            _ => {}
        }
    }
    s
}

/// The `le` label of a histogram bucket (`+Inf` or missing: infinity).
fn bucket_le(labels: &str) -> f64 {
    labels
        .split("le=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .map(|l| {
            if l == "+Inf" {
                f64::INFINITY
            } else {
                l.parse().unwrap_or(f64::INFINITY)
            }
        })
        .unwrap_or(f64::INFINITY)
}

/// Quantile from cumulative buckets (linear within a bucket), optionally as a difference of
/// two scrapes.
pub fn quantile(now: &[(f64, f64)], before: Option<&[(f64, f64)]>, q: f64) -> Option<f64> {
    let counts: Vec<(f64, f64)> = now
        .iter()
        .enumerate()
        .map(|(i, (le, c))| (*le, c - before.and_then(|b| b.get(i)).map_or(0.0, |b| b.1)))
        .collect();
    let total = counts.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = 0.0;
    let mut below = 0.0;
    for (le, c) in counts {
        if c >= rank {
            if le.is_infinite() {
                return Some(lower);
            }
            let frac = if c > below {
                (rank - below) / (c - below)
            } else {
                1.0
            };
            return Some(lower + (le - lower) * frac);
        }
        lower = le;
        below = c;
    }
    None
}

pub async fn scrape(http: &reqwest::Client, url: &str) -> Result<Scrape, String> {
    let text = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    Ok(parse_metrics(&text))
}

pub async fn sim_counters(
    http: &reqwest::Client,
    sim: &str,
) -> Result<cloudquota_sim::Counters, String> {
    http.get(format!("{sim}/_sim/counters"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())
}

/// CPU of the processes around the operator, and of the machine.
pub struct Others {
    apiserver: Option<u32>,
    etcd: Option<u32>,
}

#[derive(Clone, Copy, Default)]
pub struct OthersSample {
    pub apiserver: f64,
    pub etcd: f64,
    pub bench: f64,
    pub machine: f64,
    pub load1: f64,
}

impl Others {
    /// The API server and etcd pids from `CLOUDQUOTA_APISERVER_PID` / `CLOUDQUOTA_ETCD_PID`.
    pub fn new() -> Others {
        let pid = |v: &str| std::env::var(v).ok().and_then(|p| p.trim().parse().ok());
        Others {
            apiserver: pid("CLOUDQUOTA_APISERVER_PID"),
            etcd: pid("CLOUDQUOTA_ETCD_PID"),
        }
    }

    pub fn sample(&self) -> OthersSample {
        let cpu = |p: Option<u32>| p.and_then(|p| proc_cpu(p).ok()).unwrap_or(0.0);
        let load1 = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        OthersSample {
            apiserver: cpu(self.apiserver),
            etcd: cpu(self.etcd),
            bench: process_cpu().as_secs_f64(),
            machine: machine_cpu(),
            load1,
        }
    }
}

/// Busy CPU seconds of the whole machine, all CPUs: the first line of /proc/stat (user nice
/// system idle iowait irq softirq steal, in ticks) without idle and iowait.
fn machine_cpu() -> f64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let f: Vec<f64> = s
                .lines()
                .next()?
                .split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse().ok())
                .collect();
            Some(
                f.iter().take(8).sum::<f64>()
                    - f.get(3).copied().unwrap_or(0.0)
                    - f.get(4).copied().unwrap_or(0.0),
            )
        })
        .unwrap_or(0.0)
        / clock_ticks()
}
