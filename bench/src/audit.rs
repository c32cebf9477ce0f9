//! Counting the API server's audit log (JSON lines): status writes, Events and every other
//! non-watch request per wall-clock window, leaving out the bench's own requests.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::BENCH_USER_AGENT;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditEvent {
    verb: String,
    #[serde(default)]
    object_ref: Option<AuditRef>,
    #[serde(default)]
    request_uri: String,
    stage_timestamp: String,
    #[serde(default)]
    user_agent: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditRef {
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    subresource: Option<String>,
}

#[derive(Debug, Default, Serialize, Clone)]
pub struct AuditCounts {
    pub status_patches: u64,
    pub event_creates: u64,
    pub event_patches: u64,
    /// All requests but watches, by "verb resource[/subresource]".
    pub requests: BTreeMap<String, u64>,
}

impl AuditCounts {
    fn add(&mut self, verb: &str, resource: &str, sub: &str) {
        match (verb, resource, sub) {
            ("patch", "cloudquotas", "status") | ("update", "cloudquotas", "status") => {
                self.status_patches += 1
            }
            ("create", "events", _) => self.event_creates += 1,
            ("patch", "events", _) | ("update", "events", _) => self.event_patches += 1,
            _ => {}
        }
        let k = if sub.is_empty() {
            format!("{verb} {resource}")
        } else {
            format!("{verb} {resource}/{sub}")
        };
        *self.requests.entry(k).or_default() += 1;
    }
}

fn to_ts(t: SystemTime) -> jiff::Timestamp {
    jiff::Timestamp::try_from(t).expect("time in range")
}

/// Counts per window ([start, end) wall-clock) of the audit log's requests.
pub fn audit_counts(
    path: &Path,
    windows: &[(SystemTime, SystemTime)],
) -> Result<Vec<AuditCounts>, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let windows: Vec<(jiff::Timestamp, jiff::Timestamp)> = windows
        .iter()
        .map(|(a, b)| (to_ts(*a), to_ts(*b)))
        .collect();
    let mut out = vec![AuditCounts::default(); windows.len()];
    for line in BufReader::new(f).lines() {
        let line = line.map_err(|e| e.to_string())?;
        let Ok(ev) = serde_json::from_str::<AuditEvent>(&line) else {
            continue;
        };
        let Ok(at) = ev.stage_timestamp.parse::<jiff::Timestamp>() else {
            continue;
        };
        if ev.verb == "watch" || ev.user_agent.starts_with(BENCH_USER_AGENT) {
            continue;
        }
        let (resource, sub) = match &ev.object_ref {
            Some(r) => (
                r.resource.clone().unwrap_or_default(),
                r.subresource.clone().unwrap_or_default(),
            ),
            None => (ev.request_uri.clone(), String::new()),
        };
        for (i, (a, b)) in windows.iter().enumerate() {
            if at >= *a && at < *b {
                out[i].add(&ev.verb, &resource, &sub);
            }
        }
    }
    Ok(out)
}
