//! What the operator remembers about each object between reconciles: one map, keyed by the
//! object's uid, with one owner. Which objects share an account is derived from it, and so is
//! which metric series a deleted object may take with it: a re-created object under the same
//! name is a new uid, and its state is never touched by the old one's cleanup.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use kube::runtime::reflector::ObjectRef;

use super::cache::FetchKey;
use super::metrics::ResourceLabels;
use super::validate::TargetId;
use crate::crd::{CloudQuota, CloudQuotaStatus};
use crate::domain::schedule::Schedule;

/// One object's memory.
#[derive(Debug, Default, Clone)]
pub struct Entry {
    pub namespace: String,
    pub name: String,
    /// The status this operator last wrote. Status is written by this operator only, so it is
    /// authoritative even before the watch shows it.
    pub status: Option<CloudQuotaStatus>,
    pub schedule: Schedule,
    /// The account last polled.
    pub target: Option<TargetId>,
    /// The fetch-cache key last used (target + credentials hash).
    pub key: Option<FetchKey>,
    /// Metric series this object publishes (so they can be replaced or removed).
    pub metric_series: Vec<ResourceLabels>,
    /// The object's Events are known to match its status: no Event was published without its
    /// status write since this process started leading. Until then a round's Events are
    /// checked against the stored ones (a predecessor may have published them).
    pub events_settled: bool,
    /// Events (reason, action) known to be published, by this process or a predecessor, that
    /// no status write has recorded yet (the write failed): a retry computes them again and
    /// must neither repeat nor look them up again.
    pub unrecorded: Vec<(String, String)>,
    /// Consecutive failed reconciles (status writes, Event publishes): the retry backoff.
    pub errors: u32,
}

impl Entry {
    pub fn object_ref(&self) -> ObjectRef<CloudQuota> {
        ObjectRef::new(&self.name).within(&self.namespace)
    }
}

/// Entries are boxed: an `Entry` is ~700 bytes, and a map of them inline would hold that per
/// bucket, twice over while it grows (18 MB at 10,000 objects instead of 7).
#[derive(Default)]
pub struct Registry {
    entries: Mutex<HashMap<String, Box<Entry>>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Box<Entry>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entry of `uid` (a fresh one on first sight). The controller never reconciles one
    /// object twice at once, so the caller owns it until [`Registry::put`].
    pub fn get(&self, uid: &str, namespace: &str, name: &str) -> Entry {
        let mut e = self
            .lock()
            .get(uid)
            .map(|e| Entry::clone(e))
            .unwrap_or_default();
        if e.name != name || e.namespace != namespace {
            e.namespace = namespace.to_string();
            e.name = name.to_string();
        }
        e
    }

    /// Keeps the status a watch event carries for an object seen for the first time (the
    /// store then need not keep it: the registry's copy is what reconciles read). Later events
    /// only echo the operator's own writes, which the registry already has.
    pub fn seed(&self, uid: &str, namespace: &str, name: &str, status: CloudQuotaStatus) {
        let mut entries = self.lock();
        let e = entries.entry(uid.to_string()).or_default();
        if e.status.is_none() {
            e.namespace = namespace.to_string();
            e.name = name.to_string();
            e.status = Some(status);
        }
    }

    pub fn put(&self, uid: &str, entry: Entry) {
        self.lock().insert(uid.to_string(), Box::new(entry));
    }

    /// Applies `f` to the entry of `uid`, if there is one.
    pub fn update<R>(&self, uid: &str, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        self.lock().get_mut(uid).map(|e| f(e))
    }

    /// The other objects that read through `key`, to hand a fresh answer to at once.
    pub fn sharing(&self, key: &FetchKey, except_uid: &str) -> Vec<ObjectRef<CloudQuota>> {
        self.lock()
            .iter()
            .filter(|(uid, e)| uid.as_str() != except_uid && e.key.as_ref() == Some(key))
            .map(|(_, e)| e.object_ref())
            .collect()
    }

    /// Removes the entries whose uid is not alive and returns them, each with the metric series
    /// it may remove: those that no live object publishes too (a re-created object under the
    /// same name shares label values with its predecessor).
    pub fn forget_missing(&self, alive: &HashSet<String>) -> Vec<Forgotten> {
        let mut entries = self.lock();
        let gone: Vec<Box<Entry>> = {
            let uids: Vec<String> = entries
                .keys()
                .filter(|u| !alive.contains(*u))
                .cloned()
                .collect();
            uids.iter().filter_map(|u| entries.remove(u)).collect()
        };
        gone.into_iter()
            .map(|e| {
                let successor = entries
                    .values()
                    .find(|o| o.namespace == e.namespace && o.name == e.name);
                let series = match successor {
                    None => e.metric_series.clone(),
                    Some(s) => e
                        .metric_series
                        .iter()
                        .filter(|l| !s.metric_series.contains(l))
                        .cloned()
                        .collect(),
                };
                Forgotten {
                    object_series: successor.is_none(),
                    series,
                    entry: *e,
                }
            })
            .collect()
    }

    /// Forgets everything (leadership lost: the next leader starts from the stored status).
    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A deleted object and what of its metrics may go with it.
#[derive(Debug)]
pub struct Forgotten {
    pub entry: Entry,
    /// Its per-resource series that no live object publishes.
    pub series: Vec<ResourceLabels>,
    /// Whether its per-object series (`ready`, `last_success`, ...) may go: no live object
    /// has its namespace and name.
    pub object_series: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::metrics::ObjectTarget;

    fn labels(ns: &str, name: &str, resource: &str) -> ResourceLabels {
        ResourceLabels {
            object: std::sync::Arc::new(ObjectTarget {
                namespace: ns.into(),
                name: name.into(),
                provider: "huaweicloud".into(),
                service: "evs".into(),
                region: "r".into(),
            }),
            resource: resource.into(),
            zone: "".into(),
        }
    }

    #[test]
    fn a_recreated_object_keeps_its_series_when_the_old_uid_is_swept() {
        let r = Registry::default();
        let mut old = r.get("uid-1", "ns", "q");
        old.metric_series = vec![labels("ns", "q", "volumes"), labels("ns", "q", "gone")];
        r.put("uid-1", old);
        // `kubectl replace --force`: same name, new uid, already reconciled.
        let mut new = r.get("uid-2", "ns", "q");
        new.metric_series = vec![labels("ns", "q", "volumes")];
        r.put("uid-2", new);
        let forgotten = r.forget_missing(&HashSet::from(["uid-2".to_string()]));
        assert_eq!(forgotten.len(), 1);
        assert_eq!(forgotten[0].series, vec![labels("ns", "q", "gone")]);
        assert!(
            !forgotten[0].object_series,
            "the new object's ready/last-success stay"
        );
        assert_eq!(r.len(), 1);
        // A plain delete takes everything.
        let forgotten = r.forget_missing(&HashSet::new());
        assert_eq!(forgotten[0].series, vec![labels("ns", "q", "volumes")]);
        assert!(forgotten[0].object_series);
        assert!(r.is_empty());
    }

    #[test]
    fn the_first_status_seen_is_kept_and_later_echoes_are_not() {
        let r = Registry::default();
        let first = CloudQuotaStatus {
            worst: Some("first".into()),
            ..Default::default()
        };
        r.seed("uid-1", "ns", "q", first.clone());
        r.seed(
            "uid-1",
            "ns",
            "q",
            CloudQuotaStatus {
                worst: Some("echo".into()),
                ..Default::default()
            },
        );
        assert_eq!(r.get("uid-1", "ns", "q").status, Some(first));
    }
}
