//! Request counters. Atomics for the global ones and a short lock for the per-key map, because
//! benchmarks push many requests through the simulator.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::model::Service;

/// A snapshot of the counters. Admin (`/_sim/`) requests are not counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Every non-admin request, including unknown paths and rejected ones.
    pub total: u64,
    /// Requests routed to a service (before authentication), by service name.
    pub per_service: BTreeMap<String, u64>,
    /// Authenticated requests by `"{service}/{key}"` (key = project id or Zenlayer account).
    pub per_key: BTreeMap<String, u64>,
    /// Arrival times (Unix milliseconds) of the last [`RECENT`] authenticated requests per key,
    /// oldest first: tests check request spacing (Retry-After, backoff) from the simulator's
    /// clock instead of sampling the counters.
    #[serde(default)]
    pub recent: BTreeMap<String, Vec<u64>>,
    /// Requests rejected with 401.
    pub auth_failures: u64,
    /// Fault rules applied (one request may consume several, e.g. latency + status).
    pub faults_served: u64,
}

impl Counters {
    /// Requests routed to `service`.
    pub fn service(&self, service: Service) -> u64 {
        self.per_service.get(service.as_str()).copied().unwrap_or(0)
    }

    /// Authenticated requests for one project id / account of `service`.
    pub fn key(&self, service: Service, key: &str) -> u64 {
        self.per_key
            .get(&format!("{service}/{key}"))
            .copied()
            .unwrap_or(0)
    }
}

/// How many arrival times [`Counters::recent`] keeps per key.
pub const RECENT: usize = 16;

#[derive(Default)]
struct KeyCount {
    count: u64,
    recent: VecDeque<u64>,
}

#[derive(Default)]
pub(crate) struct CounterStore {
    total: AtomicU64,
    per_service: [AtomicU64; Service::ALL.len()],
    per_key: Mutex<HashMap<(Service, String), KeyCount>>,
    auth_failures: AtomicU64,
    faults_served: AtomicU64,
}

impl CounterStore {
    pub(crate) fn request(&self) {
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn service(&self, service: Service) {
        self.per_service[service.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn key(&self, service: Service, key: &str) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut m = self.per_key.lock().unwrap_or_else(|e| e.into_inner());
        let c = m.entry((service, key.to_string())).or_default();
        c.count += 1;
        if c.recent.len() == RECENT {
            c.recent.pop_front();
        }
        c.recent.push_back(now);
    }

    pub(crate) fn auth_failure(&self) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn faults(&self, n: u64) {
        if n > 0 {
            self.faults_served.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> Counters {
        let per_service = Service::ALL
            .iter()
            .map(|s| {
                (
                    s.as_str().to_string(),
                    self.per_service[s.index()].load(Ordering::Relaxed),
                )
            })
            .collect();
        let (per_key, recent) = self
            .per_key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|((s, k), c)| {
                let name = format!("{s}/{k}");
                (
                    (name.clone(), c.count),
                    (name, c.recent.iter().copied().collect()),
                )
            })
            .unzip();
        Counters {
            total: self.total.load(Ordering::Relaxed),
            per_service,
            per_key,
            recent,
            auth_failures: self.auth_failures.load(Ordering::Relaxed),
            faults_served: self.faults_served.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn reset(&self) {
        self.total.store(0, Ordering::Relaxed);
        for c in &self.per_service {
            c.store(0, Ordering::Relaxed);
        }
        self.per_key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.auth_failures.store(0, Ordering::Relaxed);
        self.faults_served.store(0, Ordering::Relaxed);
    }
}
