//! Shared state of the controller: clients, recorder, caches and per-object memory.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::runtime::events::Recorder;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::mpsc;

use super::cache::{FetchCache, FetchKey};
use super::metrics::{Metrics, ResourceLabels};
use crate::domain::allowlist::Allowlist;
use crate::crd::{CloudQuota, CloudQuotaStatus};
use crate::providers::http::HttpClient;
use crate::providers::{Credentials, Providers};

/// Operator settings (from flags).
#[derive(Clone, Debug)]
pub struct Settings {
    pub allowlist: Allowlist,
    /// Unchanged status is rewritten this often, so readers can tell the operator is alive.
    pub heartbeat: Duration,
    /// Fraction of the interval added at random to each requeue, to spread a fleet's polls.
    pub jitter: f64,
    /// How long a Secret read is reused by objects sharing it.
    pub secret_ttl: Duration,
}

/// What the operator remembers about one object between reconciles. Status is written by this
/// operator only, so the status it last wrote is authoritative even before the watch shows it.
#[derive(Debug, Default, Clone)]
pub struct ObjectState {
    pub status: Option<CloudQuotaStatus>,
    pub next_due: Option<Instant>,
    /// When the sample last evaluated was received from upstream.
    pub evaluated_at: Option<Instant>,
    pub observed_generation: Option<i64>,
    pub failures: u32,
    pub key: Option<FetchKey>,
    pub metric_series: Vec<ResourceLabels>,
    pub namespace: String,
    pub name: String,
}

type SecretEntry = (
    Instant,
    Result<Credentials, super::credentials::CredentialsError>,
);

pub struct Context {
    pub client: kube::Client,
    pub recorder: Recorder,
    pub http: HttpClient,
    pub providers: Providers,
    pub cache: FetchCache,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    pub objects: Mutex<HashMap<String, ObjectState>>,
    /// Objects sharing a fetch key, so a fresh upstream answer reaches all of them at once.
    pub groups: Mutex<HashMap<FetchKey, HashSet<ObjectRef<CloudQuota>>>>,
    pub secrets: Mutex<HashMap<(String, String), SecretEntry>>,
    pub trigger: mpsc::UnboundedSender<ObjectRef<CloudQuota>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Context {
    pub fn state(&self, uid: &str) -> ObjectState {
        lock(&self.objects).get(uid).cloned().unwrap_or_default()
    }

    pub fn set_state(&self, uid: &str, state: ObjectState) {
        lock(&self.objects).insert(uid.to_string(), state);
    }

    /// Moves an object to a (possibly) new group and returns the other members of its group.
    pub fn join_group(
        &self,
        key: &FetchKey,
        me: &ObjectRef<CloudQuota>,
        old: Option<&FetchKey>,
    ) -> Vec<ObjectRef<CloudQuota>> {
        let mut groups = lock(&self.groups);
        if let Some(old) = old.filter(|o| *o != key)
            && let Some(g) = groups.get_mut(old)
        {
            g.remove(me);
            if g.is_empty() {
                groups.remove(old);
            }
        }
        let g = groups.entry(key.clone()).or_default();
        g.insert(me.clone());
        g.iter().filter(|r| *r != me).cloned().collect()
    }

    pub fn leave_group(&self, key: &FetchKey, me: &ObjectRef<CloudQuota>) {
        let mut groups = lock(&self.groups);
        if let Some(g) = groups.get_mut(key) {
            g.remove(me);
            if g.is_empty() {
                groups.remove(key);
            }
        }
    }

    pub fn cached_secret(
        &self,
        ns: &str,
        name: &str,
    ) -> Option<Result<Credentials, super::credentials::CredentialsError>> {
        let secrets = lock(&self.secrets);
        let (at, v) = secrets.get(&(ns.to_string(), name.to_string()))?;
        (at.elapsed() < self.settings.secret_ttl).then(|| v.clone())
    }

    pub fn store_secret(
        &self,
        ns: &str,
        name: &str,
        v: Result<Credentials, super::credentials::CredentialsError>,
    ) {
        lock(&self.secrets).insert((ns.to_string(), name.to_string()), (Instant::now(), v));
    }

    /// Forgets objects that no longer exist: state, group membership and metric series.
    pub fn forget_missing(&self, alive: &HashSet<String>) -> usize {
        let gone: Vec<(String, ObjectState)> = {
            let mut objects = lock(&self.objects);
            let uids: Vec<String> = objects
                .keys()
                .filter(|u| !alive.contains(*u))
                .cloned()
                .collect();
            uids.into_iter()
                .filter_map(|u| objects.remove(&u).map(|s| (u, s)))
                .collect()
        };
        for (_, s) in &gone {
            let me = ObjectRef::new(&s.name).within(&s.namespace);
            if let Some(key) = &s.key {
                self.leave_group(key, &me);
            }
            self.metrics.remove_object(
                &super::metrics::ObjectLabels {
                    namespace: s.namespace.clone(),
                    name: s.name.clone(),
                },
                &s.metric_series,
            );
        }
        lock(&self.secrets).retain(|_, (at, _)| at.elapsed() < self.settings.secret_ttl);
        gone.len()
    }
}
