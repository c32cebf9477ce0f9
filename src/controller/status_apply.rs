//! Writing status: server-side apply of the operator's fields only, and only when something
//! besides timestamps changed or the heartbeat is due.

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::context::Context;
use super::leader::NotLeader;
use crate::crd::{CloudQuota, CloudQuotaStatus};
use crate::domain::status;

/// Field manager of status server-side apply.
pub const FIELD_MANAGER: &str = "cloudquota";

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    #[error("writing status failed: {0}")]
    Write(#[source] kube::Error),
}

/// Applies `next` when it differs from `stored`; returns whether it wrote.
pub async fn apply_if_changed(
    ctx: &Context,
    cq: &CloudQuota,
    stored: Option<&CloudQuotaStatus>,
    next: &CloudQuotaStatus,
) -> Result<bool, ApplyError> {
    let now = k8s_openapi::jiff::Timestamp::now();
    if !status::needs_write(stored, next, ctx.settings.heartbeat, now) {
        return Ok(false);
    }
    apply(ctx, cq, next).await?;
    Ok(true)
}

/// Applies `next` as the operator's status.
pub async fn apply(
    ctx: &Context,
    cq: &CloudQuota,
    next: &CloudQuotaStatus,
) -> Result<(), ApplyError> {
    let mut next = next.clone();
    // Only our own conditions: the list is a map keyed by type, and the others belong to
    // other field managers.
    next.conditions = status::own_conditions(&next.conditions).cloned().collect();
    // status.capacityQuota belongs to the capacity publisher's field manager.
    next.capacity_quota = None;
    let patch = json!({
        "apiVersion": "cloudquota.io/v1alpha1",
        "kind": "CloudQuota",
        "status": next,
    });
    let api: Api<CloudQuota> =
        Api::namespaced(ctx.client.clone(), &cq.namespace().unwrap_or_default());
    // Checked right before the write: a deposed leader's in-flight round stops here.
    ctx.leader.ensure()?;
    api.patch_status(
        &cq.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(ApplyError::Write)?;
    ctx.metrics.status_writes.inc();
    Ok(())
}
