//! One reconcile, as the chain the README describes. Each step is pure or one IO call with its
//! own error. Failures on the object's own account (bad spec, Secret, provider) do not fail the
//! reconcile: they become `Ready=False` with the step's reason. Failures of the operator's own
//! writes fail it, and it is retried with a per-object backoff.
//!
//! ```text
//! entry   = registry.get(uid)                       one owner of per-object state
//! valid   = validate(spec)                          pure; gives the target's identity
//! due     = entry.schedule.decide(...)              pure; reset when the target changed
//! creds   = secrets.read(ns, name)                  one GET of the object's own Secret
//! sample  = cache.get(key, fetch)                   shared by objects on one account
//! next    = status::next(stored, sample, policy)    status + transitions, pure
//! events::publish(next.events)                      fenced, de-duplicated; on error no write
//! status_apply::apply_if_changed(next.status)       fenced
//! metrics.record(entry, next.status)
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use rand::Rng;

use super::cache::{FetchKey, Fetched};
use super::context::Context;
use super::credentials::{CredentialsError, ReadError};
use super::events::{self, PublishError};
use super::metrics::PollLabels;
use super::registry::Entry;
use super::status_apply::{self, ApplyError};
use super::validate::{self, PollError, Validated};
use crate::crd::{CloudQuota, CloudQuotaStatus};
use crate::domain::model::Sample;
use crate::domain::schedule::{self, Due, Request};
use crate::domain::status::{self, Next, PollOutcome};

/// Annotation whose change forces an immediate poll that bypasses the shared cache.
pub const REFRESH_ANNOTATION: &str = "cloudquota.io/refresh";
pub use super::status_apply::FIELD_MANAGER;
pub use crate::domain::schedule::MIN_INTERVAL;

/// Errors that fail the reconcile itself (retried by [`error_policy`] with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("CloudQuota has no namespace or uid")]
    NotNamespaced,
    #[error("reading the credentials Secret failed: {0}")]
    SecretRead(#[source] kube::Error),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// Reconciles one CloudQuota.
pub async fn reconcile(cq: Arc<CloudQuota>, ctx: Arc<Context>) -> Result<Action, Error> {
    let timer = Instant::now();
    let (Some(ns), Some(uid)) = (cq.namespace(), cq.uid()) else {
        return Err(Error::NotNamespaced);
    };
    let mut entry = ctx.registry.get(&uid, &ns, &cq.name_any());
    let result = chain(&cq, &ctx, &mut entry, &uid).await;
    match &result {
        Ok(_) => entry.errors = 0,
        Err(_) => entry.errors = entry.errors.saturating_add(1),
    }
    ctx.registry.put(&uid, entry);
    ctx.metrics
        .reconcile_duration
        .observe(timer.elapsed().as_secs_f64());
    result
}

/// Retries a failed reconcile after 5 s, doubling per consecutive failure of the same object
/// up to 5 minutes, jittered.
pub fn error_policy(cq: Arc<CloudQuota>, err: &Error, ctx: Arc<Context>) -> Action {
    let errors = cq
        .uid()
        .and_then(|uid| ctx.registry.update(&uid, |e| e.errors))
        .unwrap_or(1);
    let wait = schedule::jittered(
        schedule::error_backoff(errors),
        0.2,
        rand::rng().random_range(0.0..1.0),
    );
    tracing::warn!(namespace = cq.namespace().unwrap_or_default(), name = cq.name_any(), error = %err, errors, retry_in_s = wait.as_secs(), "reconcile failed; retrying");
    Action::requeue(wait)
}

async fn chain(
    cq: &CloudQuota,
    ctx: &Context,
    entry: &mut Entry,
    uid: &str,
) -> Result<Action, Error> {
    // Our last write wins over a watch event that has not caught up with it yet.
    let stored = entry.status.clone().or_else(|| cq.status.clone());
    if cq.spec.suspend {
        let next = status::next(
            stored.as_ref(),
            PollOutcome::Suspended,
            cq.metadata.generation,
            Timestamp::now(),
        );
        entry.schedule = Default::default();
        entry.key = None;
        commit(ctx, cq, entry, stored.as_ref(), next, None).await?;
        return Ok(Action::await_change());
    }
    let valid = match validate::validate(cq, &ctx.settings.allowlist) {
        Ok(v) => v,
        Err(e) => {
            let interval = validate::interval(cq);
            return failed(ctx, cq, entry, stored.as_ref(), e, None, interval).await;
        }
    };
    let target_changed = entry.target.as_ref().is_some_and(|t| *t != valid.identity);
    // Levels, limits and failures of another account are not ours to compare with.
    let stored = match (&stored, target_changed) {
        (Some(s), true) => Some(status::for_new_target(s)),
        _ => stored,
    };
    if target_changed {
        // The old account's status must not come back as this round's "previous" either.
        entry.status = stored.clone();
    }
    let refresh = cq.annotations().get(REFRESH_ANNOTATION);
    let request = Request {
        interval: valid.interval,
        generation: cq.metadata.generation,
        stored: stored.as_ref(),
        // Compared with what the stored status says was handled, so a request made just
        // before a restart or a failover is not lost.
        refresh_requested: refresh.is_some()
            && refresh != stored.as_ref().and_then(|s| s.observed_refresh.as_ref()),
        target_changed,
    };
    entry.target = Some(valid.identity.clone());
    let newer_than = match entry
        .schedule
        .decide(&request, Instant::now(), Timestamp::now())
    {
        Due::Now { newer_than } => newer_than,
        Due::Wait(wait) => return waiting(ctx, cq, entry, stored.as_ref(), &valid, wait).await,
    };
    let polled = poll(ctx, cq, &valid, newer_than);
    tokio::pin!(polled);
    let polled = match stored {
        // A new object whose first poll takes a while says so, so GitOps tools wait for the
        // answer instead of reading "no status" as current. A quick first poll (the usual case:
        // the shared answer is in the cache) needs no extra write.
        None => tokio::select! {
            p = &mut polled => p,
            _ = tokio::time::sleep(FIRST_POLL_GRACE) => {
                let polling = status::polling(None, cq.metadata.generation, Timestamp::now());
                status_apply::apply(ctx, cq, &polling).await?;
                entry.status = Some(polling);
                polled.await
            }
        },
        Some(_) => polled.await,
    };
    let stored = entry.status.clone().or(stored);
    let (key, fetched) = match polled {
        Polled::Fetched(key, fetched) => (key, fetched),
        Polled::SecretTransient(e) => return Err(Error::SecretRead(e)),
        Polled::Credentials(e) => {
            return failed(
                ctx,
                cq,
                entry,
                stored.as_ref(),
                e.into(),
                None,
                valid.interval,
            )
            .await;
        }
    };
    entry.key = Some(key.clone());
    if fetched.started_upstream {
        // Everyone sharing the account gets the new answer now, not at their next tick.
        for other in ctx.registry.sharing(&key, uid) {
            let _ = ctx.trigger.send(other);
        }
    }
    evaluate(ctx, cq, entry, stored.as_ref(), &valid, fetched).await
}

/// How long a new object's first poll may take before its status says `Reconciling`.
const FIRST_POLL_GRACE: Duration = Duration::from_secs(2);

/// What the IO part of a poll gave.
enum Polled {
    Fetched(FetchKey, Fetched),
    Credentials(CredentialsError),
    SecretTransient(kube::Error),
}

/// The object's Secret, then the account's answer through the shared cache.
async fn poll(
    ctx: &Context,
    cq: &CloudQuota,
    valid: &Validated,
    newer_than: Option<Instant>,
) -> Polled {
    let ns = cq.namespace().unwrap_or_default();
    let creds = match ctx
        .secrets
        .read(&ctx.client, &ns, &cq.spec.credentials_secret_ref.name)
        .await
    {
        Ok(c) => c,
        Err(ReadError::Transient(e)) => return Polled::SecretTransient(e),
        Err(ReadError::Credentials(e)) => return Polled::Credentials(e),
    };
    let key = FetchKey::new(&valid.target, &creds);
    let started = Instant::now();
    let fetched = ctx
        .cache
        .get(&key, valid.interval, newer_than, || {
            let (providers, http, target) = (
                ctx.providers.clone(),
                ctx.http.clone(),
                valid.target.clone(),
            );
            async move { providers.fetch(&http, &target, &creds).await.map(Arc::new) }.boxed()
        })
        .await;
    ctx.metrics
        .poll_duration
        .observe(started.elapsed().as_secs_f64());
    Polled::Fetched(key, fetched)
}

/// Not due. A fresher answer for the object's account (fetched for another object) is
/// evaluated right away; after a restart, the stored status is published as metrics.
async fn waiting(
    ctx: &Context,
    cq: &CloudQuota,
    entry: &mut Entry,
    stored: Option<&CloudQuotaStatus>,
    valid: &Validated,
    wait: Duration,
) -> Result<Action, Error> {
    if let (Some(key), Some(seen)) = (&entry.key, entry.schedule.evaluated_at)
        && let Some((at, result)) = ctx.cache.peek(key).filter(|(at, _)| *at > seen)
    {
        let fetched = Fetched {
            result,
            at,
            started_upstream: false,
        };
        return evaluate(ctx, cq, entry, stored, valid, fetched).await;
    }
    if entry.metric_series.is_empty()
        && let Some(s) = stored
    {
        ctx.metrics.record(entry, cq, s, Some(&valid.policy));
    }
    Ok(Action::requeue(wait))
}

async fn evaluate(
    ctx: &Context,
    cq: &CloudQuota,
    entry: &mut Entry,
    stored: Option<&CloudQuotaStatus>,
    valid: &Validated,
    fetched: Fetched,
) -> Result<Action, Error> {
    let sample: Arc<Sample> = match fetched.result {
        Ok(s) => s,
        Err(e) => {
            let received = Some(fetched.at);
            return failed(ctx, cq, entry, stored, e.into(), received, valid.interval).await;
        }
    };
    count_poll(ctx, "success", "Synced");
    let now = Instant::now();
    entry.schedule.succeeded(fetched.at, valid.interval, now);
    entry.schedule.observed_generation = cq.metadata.generation;
    let next = status::next(
        stored,
        PollOutcome::Synced {
            sample: &sample,
            policy: &valid.policy,
        },
        cq.metadata.generation,
        Timestamp::now(),
    );
    commit(ctx, cq, entry, stored, next, Some(valid)).await?;
    Ok(Action::requeue(jitter(ctx, valid.interval)))
}

/// A poll failed: back off, and report it unless it is a first transient blip.
async fn failed(
    ctx: &Context,
    cq: &CloudQuota,
    entry: &mut Entry,
    stored: Option<&CloudQuotaStatus>,
    error: PollError,
    received: Option<Instant>,
    interval: Duration,
) -> Result<Action, Error> {
    count_poll(ctx, "error", error.reason());
    let delay = entry
        .schedule
        .failed(received, interval, error.retry_after(), Instant::now());
    let delay = jitter(ctx, delay);
    tracing::warn!(namespace = cq.namespace().unwrap_or_default(), name = cq.name_any(), reason = error.reason(), error = %error, retry_in_s = delay.as_secs(), "quota poll failed");
    let failure = error.failure();
    if !status::report_failure(stored, &failure, entry.schedule.failures) {
        return Ok(Action::requeue(delay));
    }
    entry.schedule.observed_generation = cq.metadata.generation;
    let next = status::next(
        stored,
        PollOutcome::Failed(failure),
        cq.metadata.generation,
        Timestamp::now(),
    );
    commit(ctx, cq, entry, stored, next, None).await?;
    Ok(Action::requeue(delay))
}

/// The IO tail of every round: Events, then status, then metrics.
async fn commit(
    ctx: &Context,
    cq: &CloudQuota,
    entry: &mut Entry,
    stored: Option<&CloudQuotaStatus>,
    mut next: Next,
    valid: Option<&Validated>,
) -> Result<(), Error> {
    next.status.operator_lease = ctx.settings.operator_lease.clone();
    // This round polled (or paused): any refresh request up to now is handled.
    if let Some(r) = cq.annotations().get(REFRESH_ANNOTATION) {
        next.status.observed_refresh = Some(r.clone());
    }
    let events = std::mem::take(&mut next.events);
    let had_events = !events.is_empty();
    let published = events::publish(
        ctx,
        cq,
        events,
        stored,
        &mut entry.unrecorded,
        entry.events_settled,
    )
    .await;
    if let Err(e) = published {
        // The status that records the transition is not written, so the next round computes
        // it again and retries the Event. Whether the failed one got out is unknown: the next
        // publish checks the stored Events.
        entry.events_settled = false;
        entry.schedule.next_due = Some(Instant::now());
        entry.schedule.evaluated_at = None;
        return Err(e.into());
    }
    // Every Event of this round is now known: published by this process, or found published
    // by a predecessor; either way in `entry.unrecorded` until a status write records it.
    // (Settled only by a round that had Events: until then a predecessor's unrecorded Event
    // may still be computed again, e.g. after a suspension written in between.)
    if had_events {
        entry.events_settled = true;
    }
    match status_apply::apply_if_changed(ctx, cq, stored, &next.status).await {
        Ok(_) => entry.unrecorded.clear(),
        Err(e) => {
            // Keep the old status in memory and make the retry evaluate again (from the cache),
            // so it sees the same transitions; their Events are in `entry.unrecorded`, so the
            // retry neither repeats nor re-lists them.
            entry.schedule.next_due = Some(Instant::now());
            entry.schedule.evaluated_at = None;
            return Err(e.into());
        }
    }
    ctx.metrics
        .record(entry, cq, &next.status, valid.map(|v| &v.policy));
    entry.status = Some(next.status);
    Ok(())
}

fn count_poll(ctx: &Context, result: &str, reason: &str) {
    ctx.metrics
        .polls
        .get_or_create(&PollLabels {
            result: result.into(),
            reason: reason.into(),
        })
        .inc();
}

fn jitter(ctx: &Context, d: Duration) -> Duration {
    schedule::jittered(d, ctx.settings.jitter, rand::rng().random_range(0.0..1.0))
}

/// UIDs of the objects currently known to the controller's store.
pub fn alive(
    store: &kube::runtime::reflector::Store<CloudQuota>,
) -> std::collections::HashSet<String> {
    store.state().iter().filter_map(|o| o.uid()).collect()
}
