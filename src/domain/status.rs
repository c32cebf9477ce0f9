//! Status as a value: the next status and the Events to publish are a pure function of the
//! previous status, the poll result and the spec. The controller only writes what this returns,
//! and only when it differs from what is stored (ignoring timestamps).

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::crd::{CloudQuotaStatus, Level, ResourceStatus};
use crate::domain::model::{Limit, Quota, Sample};
use crate::domain::thresholds::{self, Policy};

pub const READY: &str = "Ready";
pub const THRESHOLD_EXCEEDED: &str = "ThresholdExceeded";
/// kstatus: present (True) only while the current generation has not been polled yet.
pub const RECONCILING: &str = "Reconciling";
/// kstatus: present (True) only while retrying cannot help until someone changes something.
pub const STALLED: &str = "Stalled";
/// The condition types this operator owns. Others in the list belong to other tools (the list
/// is a map keyed by type, so server-side apply keeps theirs).
pub const OWN_CONDITIONS: [&str; 4] = [READY, THRESHOLD_EXCEEDED, RECONCILING, STALLED];
/// Ready and Reconciling reason before the first poll of a generation.
pub const REASON_POLLING: &str = "Polling";
/// Ready reason while polling works.
pub const REASON_SYNCED: &str = "Synced";
/// Ready reason while `spec.suspend` is true.
pub const REASON_SUSPENDED: &str = "Suspended";

/// Event reasons (the `reason` of events.k8s.io Events).
pub mod reasons {
    pub const THRESHOLD_EXCEEDED: &str = "ThresholdExceeded";
    pub const THRESHOLD_RECOVERED: &str = "ThresholdRecovered";
    pub const LIMIT_CHANGED: &str = "LimitChanged";
    pub const QUOTA_FETCH_FAILED: &str = "QuotaFetchFailed";
    pub const QUOTA_FETCH_RECOVERED: &str = "QuotaFetchRecovered";
}

/// Normal or Warning, as Kubernetes Events spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// One Event to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    pub type_: EventType,
    pub reason: &'static str,
    /// Machine-readable action. It names the resource and the new level (or the failure
    /// reason) because the Event recorder treats Events with the same reason and action as
    /// repeats of one Event: only a true repeat may become a series.
    pub action: String,
    pub note: String,
}

/// Why a poll failed, already free of secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// CamelCase reason used for the Ready condition, e.g. `AuthFailed`.
    pub reason: String,
    pub message: String,
    /// Retrying cannot help until someone changes something (credentials, spec, permissions):
    /// `Stalled=True`. Transient failures (throttling, timeouts, 5xx) are not.
    pub permanent: bool,
}

/// Whether a failed poll is reported (Ready=False, QuotaFetchFailed) now. A transient failure
/// of a healthy object is reported only when the next answer fails too: one upstream blip
/// shared by N objects on one account would otherwise be 2N Events. Permanent failures, and
/// objects already failing or not yet polled, are reported at once.
pub fn report_failure(
    prev: Option<&CloudQuotaStatus>,
    failure: &Failure,
    consecutive: u32,
) -> bool {
    let healthy = prev
        .and_then(|p| find(&p.conditions, READY))
        .is_some_and(|c| c.status == "True");
    failure.permanent || !healthy || consecutive >= 2
}

/// What happened this round.
#[derive(Debug, Clone)]
pub enum PollOutcome<'a> {
    Synced {
        sample: &'a Sample,
        policy: &'a Policy,
    },
    Failed(Failure),
    Suspended,
}

/// The next status and the Events that lead to it.
#[derive(Debug, Clone)]
pub struct Next {
    pub status: CloudQuotaStatus,
    pub events: Vec<EventSpec>,
}

fn condition(
    prev: &[Condition],
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if status { "True" } else { "False" }.to_string();
    // lastTransitionTime moves only when the status flips (API conventions).
    let last_transition_time = prev
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.to_string(),
        status,
        reason: reason.to_string(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

fn find<'a>(conds: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conds.iter().find(|c| c.type_ == type_)
}

/// A resource's label in notes and summaries: `name` or `name@zone`.
pub fn resource_label(name: &str, zone: Option<&str>) -> String {
    match zone {
        Some(z) => format!("{name}@{z}"),
        None => name.to_string(),
    }
}

/// `kind/subject/detail`, bounded to the 128 characters events.k8s.io allows.
fn action(kind: &str, subject: &str, detail: &str) -> String {
    let mut a = format!("{kind}/{subject}");
    if !detail.is_empty() {
        a.push('/');
        a.push_str(detail);
    }
    a.chars().take(128).collect()
}

fn label(r: &ResourceStatus) -> String {
    resource_label(&r.name, r.zone.as_deref())
}

fn amount(r: &ResourceStatus) -> String {
    let unit = r
        .unit
        .as_deref()
        .map(|u| format!(" {u}"))
        .unwrap_or_default();
    match (r.limit, r.usage_percent) {
        (Some(l), Some(p)) => format!("{}/{}{unit} ({}%)", r.used, l, trim_pct(p)),
        _ => format!("{}{unit}/unlimited", r.used),
    }
}

fn trim_pct(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{p:.0}")
    } else {
        format!("{p}")
    }
}

fn resource_status(q: &Quota, level: Level) -> ResourceStatus {
    let limit = q.limit.value();
    ResourceStatus {
        name: q.name.clone(),
        zone: q.zone.clone(),
        used: q.used,
        limit,
        unlimited: q.limit == Limit::Unlimited,
        reserved: q.reserved,
        min: q.min,
        max: q.max,
        unit: q.unit.clone(),
        // Reserved amounts count against the limit (EVS/Cinder): usage and what is left
        // include them, `used` stays what the provider calls used.
        usage_percent: limit.map(|l| thresholds::usage_percent(q.consumed(), l)),
        available: limit.map(|l| l.saturating_sub(q.consumed()).max(0)),
        level,
    }
}

/// The resources of a sample, as status reports them: ignored ones left out, sorted by name and
/// zone so that provider map order never shows up as a change.
pub fn resources(sample: &Sample, policy: &Policy, prev: &[ResourceStatus]) -> Vec<ResourceStatus> {
    let prev: HashMap<(&str, Option<&str>), Level> = prev
        .iter()
        .map(|r| ((r.name.as_str(), r.zone.as_deref()), r.level))
        .collect();
    let mut out: Vec<ResourceStatus> = sample
        .quotas
        .iter()
        .filter_map(|q| {
            let pair = policy.for_resource(&q.name)?;
            let level = thresholds::level(q, pair, prev.get(&q.key()).copied());
            Some(resource_status(q, level))
        })
        .collect();
    out.sort_by(|a, b| (&a.name, &a.zone).cmp(&(&b.name, &b.zone)));
    out.dedup_by(|a, b| a.name == b.name && a.zone == b.zone);
    out
}

/// The resource closest to running out: highest level, then highest usage.
pub fn worst(resources: &[ResourceStatus]) -> Option<&ResourceStatus> {
    resources.iter().filter(|r| !r.unlimited).max_by(|a, b| {
        a.level
            .cmp(&b.level)
            .then(
                a.usage_percent
                    .unwrap_or(0.0)
                    .total_cmp(&b.usage_percent.unwrap_or(0.0)),
            )
            // Stable tie-break: the first by name wins.
            .then(b.name.cmp(&a.name))
            .then(b.zone.cmp(&a.zone))
    })
}

fn threshold_events(prev: &[ResourceStatus], next: &[ResourceStatus]) -> Vec<EventSpec> {
    let prev: HashMap<(&str, Option<&str>), &ResourceStatus> = prev
        .iter()
        .map(|r| ((r.name.as_str(), r.zone.as_deref()), r))
        .collect();
    let mut events = Vec::new();
    for r in next {
        let before = prev.get(&(r.name.as_str(), r.zone.as_deref()));
        let before_level = before.map(|b| b.level).unwrap_or(Level::Ok);
        if r.level > before_level && r.level.is_alerting() {
            events.push(EventSpec {
                type_: EventType::Warning,
                reason: reasons::THRESHOLD_EXCEEDED,
                action: action("Evaluate", &label(r), r.level.as_str()),
                note: format!("{} is {}: {} used", label(r), r.level, amount(r)),
            });
        } else if r.level < before_level && before_level.is_alerting() {
            events.push(EventSpec {
                type_: EventType::Normal,
                reason: reasons::THRESHOLD_RECOVERED,
                action: action("Evaluate", &label(r), r.level.as_str()),
                note: format!(
                    "{} recovered from {} to {}: {} used",
                    label(r),
                    before_level,
                    r.level,
                    amount(r)
                ),
            });
        }
        if let Some(b) = before
            && (b.limit != r.limit || b.unlimited != r.unlimited)
        {
            let show = |l: Option<i64>| {
                l.map(|l| l.to_string())
                    .unwrap_or_else(|| "unlimited".into())
            };
            events.push(EventSpec {
                type_: EventType::Normal,
                reason: reasons::LIMIT_CHANGED,
                action: action("Evaluate", &label(r), &format!("limit={}", show(r.limit))),
                note: format!(
                    "limit of {} changed from {} to {}",
                    label(r),
                    show(b.limit),
                    show(r.limit)
                ),
            });
        }
    }
    events
}

fn threshold_condition(
    resources: &[ResourceStatus],
    prev: &[Condition],
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let worst_level = resources.iter().map(|r| r.level).max().unwrap_or(Level::Ok);
    if worst_level.is_alerting() {
        let mut parts = Vec::new();
        for level in [Level::Exhausted, Level::Critical, Level::Warning] {
            let names: Vec<String> = resources
                .iter()
                .filter(|r| r.level == level)
                .map(label)
                .collect();
            if !names.is_empty() {
                parts.push(format!("{level}: {}", names.join(", ")));
            }
        }
        condition(
            prev,
            THRESHOLD_EXCEEDED,
            true,
            worst_level.as_str(),
            parts.join("; "),
            generation,
            now,
        )
    } else {
        condition(
            prev,
            THRESHOLD_EXCEEDED,
            false,
            "WithinThresholds",
            "no resource is at or above its warning threshold".into(),
            generation,
            now,
        )
    }
}

/// Computes the next status and its Events.
pub fn next(
    prev: Option<&CloudQuotaStatus>,
    outcome: PollOutcome<'_>,
    generation: Option<i64>,
    now: Timestamp,
) -> Next {
    let empty = CloudQuotaStatus::default();
    let prev = prev.unwrap_or(&empty);
    let prev_ready = find(&prev.conditions, READY);
    let was_failing =
        prev_ready.is_some_and(|c| c.status == "False" && c.reason != REASON_SUSPENDED);
    let mut status = prev.clone();
    status.observed_generation = generation;
    let mut events = Vec::new();
    let mut conditions = Vec::new();
    match outcome {
        PollOutcome::Synced { sample, policy } => {
            let resources = resources(sample, policy, &prev.resources);
            events = threshold_events(&prev.resources, &resources);
            if was_failing {
                events.push(EventSpec {
                    type_: EventType::Normal,
                    reason: reasons::QUOTA_FETCH_RECOVERED,
                    action: "Poll".to_string(),
                    note: format!(
                        "quota fetch works again after {}",
                        prev_ready.map(|c| c.reason.as_str()).unwrap_or("failures")
                    ),
                });
            }
            status.level = Some(resources.iter().map(|r| r.level).max().unwrap_or(Level::Ok));
            status.worst = worst(&resources).map(|r| format!("{} {}", label(r), amount(r)));
            status.endpoint = Some(sample.endpoint.clone());
            status.last_sync_time = Some(Time(now));
            status.last_attempt_time = Some(Time(now));
            conditions.push(condition(
                &prev.conditions,
                READY,
                true,
                REASON_SYNCED,
                format!("{} resources read", resources.len()),
                generation,
                now,
            ));
            conditions.push(threshold_condition(
                &resources,
                &prev.conditions,
                generation,
                now,
            ));
            status.resources = resources;
        }
        PollOutcome::Failed(f) => {
            if prev_ready.is_none_or(|c| c.status != "False" || c.reason != f.reason) {
                events.push(EventSpec {
                    type_: EventType::Warning,
                    reason: reasons::QUOTA_FETCH_FAILED,
                    action: action("Poll", &f.reason, ""),
                    note: format!("{}: {}", f.reason, f.message),
                });
            }
            status.last_attempt_time = Some(Time(now));
            if f.permanent {
                conditions.push(condition(
                    &prev.conditions,
                    STALLED,
                    true,
                    &f.reason,
                    f.message.clone(),
                    generation,
                    now,
                ));
            }
            conditions.push(condition(
                &prev.conditions,
                READY,
                false,
                &f.reason,
                f.message,
                generation,
                now,
            ));
            conditions.extend(find(&prev.conditions, THRESHOLD_EXCEEDED).cloned());
        }
        PollOutcome::Suspended => {
            // Ready=True: a paused watch is in the state its owner asked for. kstatus (Helm 4's
            // wait, Flux, kpt) rates any Ready=False without Stalled as InProgress, so a
            // suspended CloudQuota would hang every wait that includes it.
            conditions.push(condition(
                &prev.conditions,
                READY,
                true,
                REASON_SUSPENDED,
                "polling is suspended (spec.suspend is true); resources show the last data".into(),
                generation,
                now,
            ));
            conditions.extend(find(&prev.conditions, THRESHOLD_EXCEEDED).cloned());
        }
    }
    // Every condition speaks for the generation just handled. Conditions of other tools are
    // not ours to write: they are left out of what is applied, and server-side apply keeps
    // them.
    for c in &mut conditions {
        c.observed_generation = generation;
    }
    status.conditions = conditions;
    Next { status, events }
}

/// The status of a new object while its first poll runs: `Reconciling=True` and
/// `Ready=Unknown`, so kstatus, Flux and Helm wait instead of reading "no status" as current.
pub fn polling(
    prev: Option<&CloudQuotaStatus>,
    generation: Option<i64>,
    now: Timestamp,
) -> CloudQuotaStatus {
    let empty = CloudQuotaStatus::default();
    let prev = prev.unwrap_or(&empty);
    let unknown = |type_: &str, message: &str| Condition {
        type_: type_.to_string(),
        status: "Unknown".into(),
        reason: REASON_POLLING.into(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: find(&prev.conditions, type_)
            .filter(|c| c.status == "Unknown")
            .map(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now)),
    };
    let mut reconciling = condition(
        &prev.conditions,
        RECONCILING,
        true,
        REASON_POLLING,
        "the first poll of this generation is under way".into(),
        generation,
        now,
    );
    reconciling.observed_generation = generation;
    CloudQuotaStatus {
        observed_refresh: prev.observed_refresh.clone(),
        conditions: vec![unknown(READY, "not polled yet"), reconciling],
        ..Default::default()
    }
}

/// What is left of a status when the object now reads another account (provider, service,
/// region, endpoint, project or zones changed): nothing to compare levels, limits or failures
/// with, so no Event compares two accounts and hysteresis starts afresh.
pub fn for_new_target(prev: &CloudQuotaStatus) -> CloudQuotaStatus {
    CloudQuotaStatus {
        observed_refresh: prev.observed_refresh.clone(),
        ..Default::default()
    }
}

/// The conditions this operator owns, as compared and applied.
pub fn own_conditions(conditions: &[Condition]) -> impl Iterator<Item = &Condition> {
    conditions
        .iter()
        .filter(|c| OWN_CONDITIONS.contains(&c.type_.as_str()))
}

/// A copy with every timestamp removed, for comparing what matters.
fn without_timestamps(s: &CloudQuotaStatus) -> CloudQuotaStatus {
    let mut s = s.clone();
    s.last_sync_time = None;
    s.last_attempt_time = None;
    // Only ours count, in a fixed order (the API server keeps a list-map's order of arrival).
    s.conditions = own_conditions(&s.conditions)
        .map(|c| Condition {
            last_transition_time: Time(Timestamp::UNIX_EPOCH),
            ..c.clone()
        })
        .collect();
    s.conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    s
}

/// Whether `next` must be written over `prev`: when anything but timestamps changed, or when
/// the stored attempt time is older than `heartbeat` (so readers can tell the operator is alive).
pub fn needs_write(
    prev: Option<&CloudQuotaStatus>,
    next: &CloudQuotaStatus,
    heartbeat: Duration,
    now: Timestamp,
) -> bool {
    let Some(prev) = prev else { return true };
    if without_timestamps(prev) != without_timestamps(next) {
        return true;
    }
    if next.last_attempt_time == prev.last_attempt_time {
        // Nothing was polled (suspended): nothing to refresh.
        return false;
    }
    match &prev.last_attempt_time {
        None => true,
        Some(Time(t)) => now.duration_since(*t).unsigned_abs() >= heartbeat,
    }
}

/// An Event already stored about the object, as far as de-duplication needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedEvent {
    pub reason: String,
    pub action: String,
    /// When it was last published (its series' last observation, else its event time).
    pub at: Timestamp,
}

/// How much newer than the stored status an Event must be to count as unrecorded: status
/// times are stored to the second, Event times to the microsecond.
const STATUS_TIME_PRECISION: Duration = Duration::from_secs(1);

/// The Events of a round that are not already published.
///
/// Events go out before the status write that records their transition (a lost alert is worse
/// than a repeated one). If the process is killed between the two, or the write fails, the
/// stored status still shows the old level and the next round, here or on a new leader,
/// computes the same transition again. The Event it would publish is then already stored:
/// same reason and action (which name the resource and the level) and newer than the stored
/// status's last write (`lastAttemptTime`; any Event when there is no status yet). A genuine
/// second crossing of the same kind always has a status write in between (the recovery's), so
/// it is published.
pub fn unpublished(
    events: Vec<EventSpec>,
    existing: &[PublishedEvent],
    stored: Option<&CloudQuotaStatus>,
) -> Vec<EventSpec> {
    let written = stored
        .and_then(|s| s.last_attempt_time.as_ref())
        .map(|t| t.0);
    let unrecorded = |e: &PublishedEvent| match written {
        None => true,
        Some(w) => w
            .checked_add(STATUS_TIME_PRECISION)
            .is_ok_and(|w| e.at >= w),
    };
    events
        .into_iter()
        .filter(|ev| {
            !existing
                .iter()
                .any(|e| e.reason == ev.reason && e.action == ev.action && unrecorded(e))
        })
        .collect()
}

#[cfg(test)]
mod tests;
