//! The measured phases of a scale run, in order: operator start until all Ready, the
//! steady-state window, the cost of a /metrics scrape, a usage change on one key, the end.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use cloudquota::crd::Service;
use cloudquota_sim::Counters;

use super::measure::{Others, OthersSample, Scrape, scrape, sim_counters};
use super::operator::{Operator, start_operator};
use super::setup::Key;
use super::track::Tracker;
use super::{CHANGE_RESOURCE, secs};
use crate::ScaleArgs;
use crate::log;
use crate::process::{proc_cpu, proc_mem};

/// From operator start to all Ready.
pub struct Startup {
    pub wall_start: SystemTime,
    pub wall_ready: SystemTime,
    pub ready_s: f64,
    pub cpu_startup_s: f64,
    pub o_start: OthersSample,
    pub o_ready: OthersSample,
    pub rss_ready_mib: f64,
    pub c_start: Counters,
    pub c_ready: Counters,
}

/// The steady-state window: nothing changes upstream.
pub struct Steady {
    pub rss_settled_mib: f64,
    pub m0: Scrape,
    pub m1: Scrape,
    pub c0: Counters,
    pub c1: Counters,
    pub cpu0: f64,
    pub cpu1: f64,
    pub o0: OthersSample,
    pub o1: OthersSample,
    pub w0: SystemTime,
    pub w1: SystemTime,
    /// Measured length of the window, seconds.
    pub tw: f64,
    pub rss_prescrape_peak_mib: f64,
    pub rss_steady_mib: f64,
}

/// A usage change on one key, followed to every affected object.
pub struct Change {
    pub affected: usize,
    pub latency_max_s: f64,
    pub latency_p50_s: f64,
    pub m_c0: Scrape,
    pub m_c1: Scrape,
    pub wc0: SystemTime,
    pub wc1: SystemTime,
}

/// The operator's totals at the end of the run.
pub struct End {
    pub cpu_total_s: f64,
    pub rss_peak_mib: f64,
    pub rss_end_mib: f64,
    pub m_end: Scrape,
}

/// What every phase needs.
pub struct Run<'a> {
    pub a: &'a ScaleArgs,
    pub http: reqwest::Client,
    pub metrics_url: String,
    pub port: u16,
    pub tracker: Arc<Mutex<Tracker>>,
}

impl Run<'_> {
    /// Starts the operator and waits until the tracker has seen all N Ready.
    pub async fn startup(&self) -> Result<(Operator, Startup), String> {
        let a = self.a;
        let c_start = sim_counters(&self.http, &a.sim_url).await?;
        let others = Others::new();
        let o_start = others.sample();
        let wall_start = SystemTime::now();
        let t0 = Instant::now();
        let mut op = start_operator(a, self.port)?;
        let pid = op.pid();
        log(format!(
            "operator started (pid {pid}); waiting for all Ready"
        ));
        let ready_at = loop {
            if let Some(at) = self.tracker.lock().unwrap().all_ready_at {
                break at;
            }
            if let Ok(Some(st)) = op.child.try_wait() {
                return Err(format!("operator exited: {st}"));
            }
            if t0.elapsed() > a.ready_timeout {
                let n = self.tracker.lock().unwrap().ready.len();
                return Err(format!(
                    "only {n} of {} Ready after {:?}",
                    a.n, a.ready_timeout
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let ready_s = secs(ready_at.duration_since(t0));
        let wall_ready = SystemTime::now();
        let cpu_startup_s = proc_cpu(pid)?;
        let o_ready = others.sample();
        let rss_ready_mib = proc_mem(pid)?.1;
        let c_ready = sim_counters(&self.http, &a.sim_url).await?;
        log(format!(
            "all {} Ready {ready_s:.2}s after operator start (CPU {cpu_startup_s:.2}s)",
            a.n
        ));
        let startup = Startup {
            wall_start,
            wall_ready,
            ready_s,
            cpu_startup_s,
            o_start,
            o_ready,
            rss_ready_mib,
            c_start,
            c_ready,
        };
        Ok((op, startup))
    }

    /// After the settle time, one window in which nothing changes upstream.
    pub async fn steady(&self, pid: u32, window: Duration) -> Result<Steady, String> {
        let sim_url = &self.a.sim_url;
        let others = Others::new();
        tokio::time::sleep(self.a.settle).await;
        let rss_settled_mib = proc_mem(pid)?.1;
        let m0 = scrape(&self.http, &self.metrics_url).await?;
        let c0 = sim_counters(&self.http, sim_url).await?;
        let cpu0 = proc_cpu(pid)?;
        let o0 = others.sample();
        let w0 = SystemTime::now();
        let tw0 = Instant::now();
        log(format!("steady-state window of {}s", window.as_secs()));
        tokio::time::sleep(window).await;
        let cpu1 = proc_cpu(pid)?;
        let o1 = others.sample();
        let (rss_prescrape_peak_mib, rss_steady_mib) = proc_mem(pid)?;
        let tw = secs(tw0.elapsed());
        let w1 = SystemTime::now();
        let c1 = sim_counters(&self.http, sim_url).await?;
        let m1 = scrape(&self.http, &self.metrics_url).await?;
        Ok(Steady {
            rss_settled_mib,
            m0,
            m1,
            c0,
            c1,
            cpu0,
            cpu1,
            o0,
            o1,
            w0,
            w1,
            tw,
            rss_prescrape_peak_mib,
            rss_steady_mib,
        })
    }

    /// CPU ms of one /metrics scrape (the bench scrapes only at window edges).
    pub async fn scrape_cost(&self, pid: u32) -> Result<f64, String> {
        let cpu_a = proc_cpu(pid)?;
        let mut scrape_n = 0;
        let ts = Instant::now();
        while scrape_n < 5 && ts.elapsed() < Duration::from_secs(20) {
            scrape(&self.http, &self.metrics_url).await?;
            scrape_n += 1;
        }
        Ok((proc_cpu(pid)? - cpu_a) * 1000.0 / scrape_n as f64)
    }

    /// Changes one EVS key's usage in the simulator and waits until every object of that key
    /// shows it (or the timeout passes: then the latency is infinite).
    pub async fn usage_change(&self, keys: &[Key]) -> Result<Change, String> {
        let a = self.a;
        let change_key = keys
            .iter()
            .find(|k| k.service == Service::Evs)
            .cloned()
            .ok_or("no evs key (need --keys >= 3)")?;
        let project = change_key.project.clone().unwrap_or_default();
        let quota_url = format!("{}/_sim/quota/evs/{project}", a.sim_url);
        let old = self.sim_used(&quota_url).await?;
        let new = old + 17;
        let affected = (0..a.n)
            .filter(|i| keys[i % keys.len()].label == change_key.label)
            .count();
        let m_c0 = scrape(&self.http, &self.metrics_url).await?;
        let wc0 = SystemTime::now();
        let tc = Instant::now();
        self.tracker.lock().unwrap().change =
            Some((change_key.label.clone(), CHANGE_RESOURCE.into(), new, tc));
        let resp = self
            .http
            .post(&quota_url)
            .json(&json!({"resource": CHANGE_RESOURCE, "used": new}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("sim quota change: HTTP {}", resp.status()));
        }
        log(format!(
            "changed evs/{project} {CHANGE_RESOURCE} used {old} -> {new}; waiting for {affected} objects"
        ));
        let mut latencies = self.wait_changed(affected, tc).await;
        latencies.sort_by(|x, y| x.total_cmp(y));
        let latency_max_s = *latencies.last().unwrap_or(&f64::INFINITY);
        let latency_p50_s = latencies[latencies.len() / 2];
        // Let the group's status writes finish before reading the counters.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let wc1 = SystemTime::now();
        let m_c1 = scrape(&self.http, &self.metrics_url).await?;
        log(format!(
            "usage change visible on all {affected} after {latency_max_s:.2}s (p50 {latency_p50_s:.2}s)"
        ));
        Ok(Change {
            affected,
            latency_max_s,
            latency_p50_s,
            m_c0,
            m_c1,
            wc0,
            wc1,
        })
    }

    /// `used` of [`CHANGE_RESOURCE`] in the simulator's quota document at `quota_url`.
    async fn sim_used(&self, quota_url: &str) -> Result<i64, String> {
        let quota: Value = self
            .http
            .get(quota_url)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        quota["resources"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["name"] == CHANGE_RESOURCE))
            .and_then(|r| r["used"].as_i64())
            .ok_or_else(|| "no gigabytes resource in the simulator".to_string())
    }

    /// Seconds from `since` until each of the `affected` objects showed the change, or
    /// `[inf]` when not all did within two intervals + 30s.
    async fn wait_changed(&self, affected: usize, since: Instant) -> Vec<f64> {
        let change_timeout = self.a.interval * 2 + Duration::from_secs(30);
        loop {
            {
                let t = self.tracker.lock().unwrap();
                if t.changed.len() >= affected {
                    return t
                        .changed
                        .values()
                        .map(|at| secs(at.duration_since(since)))
                        .collect();
                }
            }
            if since.elapsed() > change_timeout {
                let seen = self.tracker.lock().unwrap().changed.len();
                log(format!(
                    "usage change reached only {seen} of {affected} objects in {:?}",
                    change_timeout
                ));
                return vec![f64::INFINITY];
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The operator's totals, then stops it.
    pub async fn end(&self, mut op: Operator) -> Result<End, String> {
        let pid = op.pid();
        let cpu_total_s = proc_cpu(pid)?;
        let (rss_peak_mib, rss_end_mib) = proc_mem(pid)?;
        let m_end = scrape(&self.http, &self.metrics_url).await?;
        op.stop();
        Ok(End {
            cpu_total_s,
            rss_peak_mib,
            rss_end_mib,
            m_end,
        })
    }
}
