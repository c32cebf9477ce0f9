//! Publishing a round's Events, each at most once.
//!
//! Events go out before the status write that records their transition: a lost alert is worse
//! than a repeated one. If a publish fails, the status is not written, so the transition is
//! computed again next round and its Event retried. If the process dies between the publish
//! and the write (or a write fails after a publish), the next round, here or on a new leader,
//! computes the same transition again; [`status::unpublished`] then drops the Events already
//! stored. That check lists the object's Events, so it runs only while the object is not
//! settled: its first round with Events after this process started leading, and after a
//! failed publish or status write. A settled object's Events are exactly its writes.

use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::api::{Api, ListParams};
use kube::runtime::events::{Event, EventType as KubeEventType};
use kube::{Resource, ResourceExt};

use super::context::Context;
use super::leader::NotLeader;
use super::metrics::ReasonLabels;
use crate::crd::{CloudQuota, CloudQuotaStatus};
use crate::domain::status::{self, EventSpec, EventType};

/// Publishing an Event failed: the round's status is not written, so it is retried.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    #[error("publishing Event {reason} failed: {source}")]
    Publish {
        reason: &'static str,
        #[source]
        source: kube::Error,
    },
}

/// Publishes `events` about `cq`, leaving out those in `unrecorded` (published, not yet
/// recorded by a status write) and adding every Event it publishes or finds published there.
/// `settled`: the object's stored Events are known to be its stored status plus `unrecorded`,
/// so no look-up is needed.
pub async fn publish(
    ctx: &Context,
    cq: &CloudQuota,
    events: Vec<EventSpec>,
    stored: Option<&CloudQuotaStatus>,
    unrecorded: &mut Vec<(String, String)>,
    settled: bool,
) -> Result<(), PublishError> {
    let key = |e: &EventSpec| (e.reason.to_string(), e.action.clone());
    let events: Vec<EventSpec> = events
        .into_iter()
        .filter(|e| !unrecorded.contains(&key(e)))
        .collect();
    if events.is_empty() {
        return Ok(());
    }
    let ns = cq.namespace().unwrap_or_default();
    let name = cq.name_any();
    let events = if settled {
        events
    } else {
        let left = without_published(ctx, cq, events.clone(), stored).await;
        // Those left out are already published (by a predecessor).
        unrecorded.extend(events.iter().filter(|e| !left.contains(e)).map(key));
        left
    };
    let reference = cq.object_ref(&());
    for ev in &events {
        let event = Event {
            type_: match ev.type_ {
                EventType::Normal => KubeEventType::Normal,
                EventType::Warning => KubeEventType::Warning,
            },
            reason: ev.reason.to_string(),
            note: Some(ev.note.clone()),
            action: ev.action.clone(),
            secondary: None,
        };
        // A deposed leader writes nothing, however far its round had got.
        ctx.leader.ensure()?;
        ctx.recorder
            .publish(&event, &reference)
            .await
            .map_err(|source| PublishError::Publish {
                reason: ev.reason,
                source,
            })?;
        unrecorded.push(key(ev));
        ctx.metrics
            .events
            .get_or_create(&ReasonLabels {
                reason: ev.reason.to_string(),
            })
            .inc();
        tracing::info!(namespace = %ns, name = %name, reason = ev.reason, note = %ev.note, "event");
    }
    Ok(())
}

/// The Events of this round not already stored by this or a previous process (see
/// [`status::unpublished`]). If the list fails the Events are published anyway.
async fn without_published(
    ctx: &Context,
    cq: &CloudQuota,
    events: Vec<EventSpec>,
    stored: Option<&CloudQuotaStatus>,
) -> Vec<EventSpec> {
    let ns = cq.namespace().unwrap_or_default();
    let uid = cq.uid().unwrap_or_default();
    let api: Api<KubeEvent> = Api::namespaced(ctx.client.clone(), &ns);
    let params = ListParams::default().fields(&format!("regarding.uid={uid}"));
    let existing = match api.list(&params).await {
        Ok(list) => list.items,
        Err(e) => {
            tracing::warn!(namespace = %ns, uid = %uid, error = %e, "listing the object's Events failed; publishing without de-duplication");
            return events;
        }
    };
    let existing: Vec<status::PublishedEvent> = existing
        .into_iter()
        .filter(|e| e.reporting_controller.as_deref() == Some(super::REPORTING_CONTROLLER))
        .filter_map(|e| {
            let at = e
                .series
                .map(|s| s.last_observed_time.0)
                .or(e.event_time.map(|t| t.0))
                .or(e.metadata.creation_timestamp.map(|t| t.0))?;
            Some(status::PublishedEvent {
                reason: e.reason?,
                action: e.action?,
                at,
            })
        })
        .collect();
    let computed = events.len();
    let left = status::unpublished(events, &existing, stored);
    if left.len() < computed {
        tracing::info!(namespace = %ns, uid = %uid, skipped = computed - left.len(), "Events already published by an earlier round; not repeated");
    }
    left
}
