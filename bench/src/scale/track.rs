//! The bench's own watch on the CloudQuotas: when all are Ready, and when a usage change has
//! reached each affected object.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::watcher;

use cloudquota::crd::CloudQuota;

use super::KEY_LABEL;

#[derive(Default)]
pub struct Tracker {
    pub ready: HashSet<String>,
    pub all_ready_at: Option<Instant>,
    n: usize,
    /// (key label, resource, value, since) of the usage change being followed.
    pub change: Option<(String, String, i64, Instant)>,
    pub changed: HashMap<String, Instant>,
    pub watch_errors: u64,
}

fn is_ready(cq: &CloudQuota) -> bool {
    cq.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

impl Tracker {
    fn observe(&mut self, cq: &CloudQuota) {
        let id = format!("{}/{}", cq.namespace().unwrap_or_default(), cq.name_any());
        if is_ready(cq) {
            self.ready.insert(id.clone());
            if self.all_ready_at.is_none() && self.ready.len() >= self.n {
                self.all_ready_at = Some(Instant::now());
            }
        }
        if let Some((label, resource, value, _)) = &self.change
            && cq.labels().get(KEY_LABEL) == Some(label)
            && !self.changed.contains_key(&id)
            && cq.status.as_ref().is_some_and(|s| {
                s.resources
                    .iter()
                    .any(|r| &r.name == resource && r.used == *value)
            })
        {
            self.changed.insert(id, Instant::now());
        }
    }
}

/// Watches every bench object (by [`KEY_LABEL`]) in a task, for `n` objects.
pub fn spawn_tracker(client: kube::Client, n: usize) -> Arc<Mutex<Tracker>> {
    let tracker = Arc::new(Mutex::new(Tracker {
        n,
        ..Default::default()
    }));
    let t = tracker.clone();
    tokio::spawn(async move {
        let api: Api<CloudQuota> = Api::all(client);
        let mut stream =
            kube::runtime::watcher(api, watcher::Config::default().labels(KEY_LABEL)).boxed();
        loop {
            match stream.next().await {
                Some(Ok(watcher::Event::Apply(cq) | watcher::Event::InitApply(cq))) => {
                    t.lock().unwrap().observe(&cq)
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    t.lock().unwrap().watch_errors += 1;
                    eprintln!("bench: watch error: {e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                None => break,
            }
        }
    });
    tracker
}
