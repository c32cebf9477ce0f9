//! One reconcile: a chain of small steps, each with its own error variant, between thin IO
//! calls. Steps that fail on the object's own account (bad spec, missing Secret, provider
//! errors) do not fail the reconcile: they become `Ready=False` with the step's reason.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType as KubeEventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use rand::Rng;
use serde_json::json;

use super::cache::FetchKey;
use super::context::{Context, ObjectState};
use super::credentials::{self, CredentialsError};
use super::metrics::{ObjectLabels, PollLabels, ReasonLabels, ResourceLabels};
use crate::domain::allowlist::NotAllowed;
use crate::domain::duration;
use crate::domain::status::{self, EventType, Failure, PollOutcome};
use crate::domain::thresholds::{Policy, PolicyError};
use crate::crd::{CloudQuota, CloudQuotaStatus};
use crate::providers::{self, Credentials, ProviderError, Target};

/// Field manager for status server-side apply.
pub const FIELD_MANAGER: &str = "cloudquota";
/// Annotation whose change forces an immediate poll that bypasses the shared cache.
pub const REFRESH_ANNOTATION: &str = "cloudquota.io/refresh";
/// Shortest interval honoured (the CRD enforces it too).
pub const MIN_INTERVAL: Duration = Duration::from_secs(30);

/// Errors that fail the reconcile itself (retried by the error policy).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("CloudQuota has no namespace or uid")]
    NotNamespaced,
    #[error("writing status failed: {0}")]
    StatusWrite(#[source] kube::Error),
    #[error("reading the credentials Secret failed: {0}")]
    SecretRead(String),
}

/// Why a poll could not produce a sample. Each variant is one step; its reason is the `Ready`
/// condition's reason and the Event's note prefix.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PollError {
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    #[error("{0}")]
    EndpointNotAllowed(#[from] NotAllowed),
    #[error("{0}")]
    Credentials(#[from] CredentialsError),
    #[error("{0}")]
    Provider(#[from] ProviderError),
}

impl From<PolicyError> for PollError {
    fn from(e: PolicyError) -> Self {
        PollError::InvalidSpec(e.to_string())
    }
}

impl PollError {
    pub fn reason(&self) -> &'static str {
        match self {
            PollError::InvalidSpec(_) => "InvalidSpec",
            PollError::EndpointNotAllowed(_) => "EndpointNotAllowed",
            PollError::Credentials(_) => "CredentialsMissing",
            PollError::Provider(e) => e.reason(),
        }
    }
}

/// Step 1, pure: spec -> interval, thresholds and target.
pub fn validate(
    cq: &CloudQuota,
    ctx_allow: &crate::domain::allowlist::Allowlist,
) -> Result<(Duration, Policy, Target), PollError> {
    let spec = &cq.spec;
    let interval = duration::parse(&spec.interval)
        .map_err(|e| PollError::InvalidSpec(format!("interval: {e}")))?;
    if interval < MIN_INTERVAL {
        return Err(PollError::InvalidSpec(format!(
            "interval {} is below the minimum of 30s",
            spec.interval
        )));
    }
    let policy = Policy::new(&spec.thresholds)?;
    let endpoint = match &spec.endpoint {
        Some(e) => e.clone(),
        None => providers::default_endpoint(spec.provider, spec.service, spec.region.as_deref())
            .map_err(|e| PollError::InvalidSpec(e.to_string()))?,
    };
    let url = ctx_allow.check(&endpoint)?;
    let target = Target {
        provider: spec.provider,
        service: spec.service,
        endpoint: url,
        project_id: spec.project_id.clone(),
        zones: spec.zones.clone(),
    };
    Ok((interval, policy, target))
}

/// Step 2, IO: the credentials Secret, from the object's own namespace only.
async fn read_credentials(ctx: &Context, ns: &str, name: &str) -> Result<Credentials, SecretRead> {
    if let Some(cached) = ctx.cached_secret(ns, name) {
        return cached.map_err(SecretRead::Credentials);
    }
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let result = match api.get_opt(name).await {
        Ok(Some(s)) => credentials::from_secret_data(name, &s.data.unwrap_or_default()),
        Ok(None) => Err(CredentialsError::NotFound(name.to_string())),
        Err(kube::Error::Api(s)) if s.code == 429 || s.code >= 500 => {
            return Err(SecretRead::Transient(format!("{} ({})", s.reason, s.code)));
        }
        Err(kube::Error::Api(s)) => Err(CredentialsError::Unreadable {
            secret: name.to_string(),
            reason: format!("{} ({})", s.reason, s.code),
        }),
        Err(e) => {
            // Trouble with the API server itself is not the object's fault: retry the
            // reconcile, don't cache it, don't report it as missing credentials.
            return Err(SecretRead::Transient(e.to_string()));
        }
    };
    ctx.store_secret(ns, name, result.clone());
    result.map_err(SecretRead::Credentials)
}

/// Reading the Secret failed: the object's problem, or a passing API server problem.
enum SecretRead {
    Credentials(CredentialsError),
    Transient(String),
}

/// What a reconcile decided to do this round.
enum Round {
    /// Evaluate this (fresh or cached) fetch result.
    Evaluate {
        result: Result<Arc<crate::domain::model::Sample>, PollError>,
        received: Option<Instant>,
        started_upstream: bool,
    },
    Suspended,
    /// Not due: come back later.
    Wait(Duration),
    /// A passing API server problem: retry the reconcile.
    Retry(String),
}

fn jittered(d: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 {
        return d;
    }
    d + d.mul_f64(rand::rng().random_range(0.0..jitter))
}

fn failure_backoff(failures: u32, interval: Duration, retry_after: Option<Duration>) -> Duration {
    let exp = Duration::from_secs(5).saturating_mul(1 << failures.min(10).saturating_sub(1));
    exp.min(interval).max(retry_after.unwrap_or_default())
}

/// Decides whether to poll, and polls (through the shared cache) when due.
async fn round(
    cq: &CloudQuota,
    ctx: &Context,
    state: &mut ObjectState,
    prev: Option<&CloudQuotaStatus>,
    me: &ObjectRef<CloudQuota>,
) -> (Round, Option<Policy>) {
    let ns = me.namespace.clone().unwrap_or_default();
    if cq.spec.suspend {
        return (Round::Suspended, None);
    }
    let (interval, policy, target) = match validate(cq, &ctx.settings.allowlist) {
        Ok(v) => v,
        Err(e) => {
            return (
                Round::Evaluate {
                    result: Err(e),
                    received: None,
                    started_upstream: false,
                },
                None,
            );
        }
    };
    let now = Instant::now();
    let generation_changed = cq.metadata.generation
        != state
            .observed_generation
            .or(prev.and_then(|p| p.observed_generation));
    let refresh = cq.annotations().get(REFRESH_ANNOTATION).cloned();
    // Compared with what the stored status says was handled, so a request made just before a
    // restart or a failover is not lost.
    let refresh_requested =
        refresh.is_some() && refresh != prev.and_then(|p| p.observed_refresh.clone());
    if state.next_due.is_none() {
        // First sight since start: honour the stored attempt time so restarts don't storm.
        let ready = prev.is_some_and(|p| {
            p.conditions
                .iter()
                .any(|c| c.type_ == status::READY && c.status == "True")
        });
        state.next_due = prev
            .and_then(|p| p.last_attempt_time.as_ref())
            .filter(|_| ready)
            .map(|t| {
                let age = Timestamp::now().duration_since(t.0);
                let left = interval.saturating_sub(age.unsigned_abs());
                if age.is_negative() { now } else { now + left }
            });
    }
    let due = generation_changed || refresh_requested || state.next_due.is_none_or(|d| now >= d);
    if !due {
        // A fresher answer for our key (fetched for another object) is evaluated right away.
        if let (Some(key), Some(evaluated)) = (&state.key, state.evaluated_at)
            && let Some((at, result)) = ctx.cache.peek(key).filter(|(at, _)| *at > evaluated)
        {
            return (
                Round::Evaluate {
                    result: result.map_err(PollError::from),
                    received: Some(at),
                    started_upstream: false,
                },
                Some(policy),
            );
        }
        let wait = state
            .next_due
            .map(|d| d.saturating_duration_since(now))
            .unwrap_or(interval);
        return (Round::Wait(wait), Some(policy));
    }
    let creds = match read_credentials(ctx, &ns, &cq.spec.credentials_secret_ref.name).await {
        Ok(c) => c,
        Err(SecretRead::Transient(e)) => return (Round::Retry(e), Some(policy)),
        Err(SecretRead::Credentials(e)) => {
            return (
                Round::Evaluate {
                    result: Err(e.into()),
                    received: None,
                    started_upstream: false,
                },
                Some(policy),
            );
        }
    };
    let key = FetchKey::new(&target, &creds);
    let others = ctx.join_group(&key, me, state.key.as_ref());
    state.key = Some(key.clone());
    // A refresh request must see an answer newer than the one this object last evaluated;
    // objects sharing the account and refreshed together still share one request.
    let newer_than = if refresh_requested {
        state.evaluated_at
    } else {
        None
    };
    let started = Instant::now();
    let fetched = ctx
        .cache
        .get(&key, interval, newer_than, || {
            let (providers, http) = (ctx.providers.clone(), ctx.http.clone());
            async move { providers.fetch(&http, &target, &creds).await.map(Arc::new) }.boxed()
        })
        .await;
    ctx.metrics
        .poll_duration
        .observe(started.elapsed().as_secs_f64());
    if fetched.started_upstream {
        // Everyone sharing the account gets the new answer now, not at their next tick.
        for other in others {
            let _ = ctx.trigger.send(other);
        }
    }
    (
        Round::Evaluate {
            result: fetched.result.map_err(PollError::from),
            received: Some(fetched.at),
            started_upstream: fetched.started_upstream,
        },
        Some(policy),
    )
}

fn kube_event_type(t: EventType) -> KubeEventType {
    match t {
        EventType::Normal => KubeEventType::Normal,
        EventType::Warning => KubeEventType::Warning,
    }
}

/// Reconciles one CloudQuota.
pub async fn reconcile(cq: Arc<CloudQuota>, ctx: Arc<Context>) -> Result<Action, Error> {
    let timer = Instant::now();
    let (Some(ns), Some(uid)) = (cq.namespace(), cq.uid()) else {
        return Err(Error::NotNamespaced);
    };
    let name = cq.name_any();
    let me = ObjectRef::from_obj(cq.as_ref());
    let mut state = ctx.state(&uid);
    state.namespace.clone_from(&ns);
    state.name.clone_from(&name);
    // Our last write wins over a watch event that has not caught up with it yet.
    let prev = state.status.clone().or_else(|| cq.status.clone());
    let (round, policy) = round(&cq, &ctx, &mut state, prev.as_ref(), &me).await;
    let interval = duration::parse(&cq.spec.interval)
        .unwrap_or(MIN_INTERVAL)
        .max(MIN_INTERVAL);
    let now = Timestamp::now();
    let (outcome, requeue) = match round {
        Round::Retry(e) => {
            ctx.set_state(&uid, state);
            return Err(Error::SecretRead(e));
        }
        Round::Wait(d) => {
            // After a restart an object may not be due for a while: publish its stored status
            // so metrics are complete from the start.
            if state.metric_series.is_empty()
                && let Some(s) = &prev
            {
                publish_metrics(&ctx, &cq, &mut state, s);
            }
            ctx.set_state(&uid, state);
            return Ok(Action::requeue(d));
        }
        Round::Suspended => {
            if let Some(key) = state.key.take() {
                ctx.leave_group(&key, &me);
            }
            state.next_due = None;
            (
                status::next(
                    prev.as_ref(),
                    PollOutcome::Suspended,
                    cq.metadata.generation,
                    now,
                ),
                None,
            )
        }
        Round::Evaluate {
            result,
            received,
            started_upstream,
        } => {
            let result_label = if result.is_ok() { "success" } else { "error" };
            let reason = match &result {
                Ok(_) => "Synced",
                Err(e) => e.reason(),
            };
            ctx.metrics
                .polls
                .get_or_create(&PollLabels {
                    result: result_label.into(),
                    reason: reason.into(),
                })
                .inc();
            state.evaluated_at = received.or(state.evaluated_at);
            match result {
                Ok(sample) => {
                    state.failures = 0;
                    state.next_due = Some(Instant::now() + interval);
                    let policy = policy.expect("validated spec has a policy");
                    if started_upstream {
                        tracing::debug!(namespace = %ns, name = %name, "fetched from provider");
                    }
                    let next = status::next(
                        prev.as_ref(),
                        PollOutcome::Synced {
                            sample: &sample,
                            policy: &policy,
                        },
                        cq.metadata.generation,
                        now,
                    );
                    (next, Some(jittered(interval, ctx.settings.jitter)))
                }
                Err(e) => {
                    state.failures += 1;
                    let retry_after = match &e {
                        PollError::Provider(p) => p.retry_after(),
                        _ => None,
                    };
                    let delay = jittered(
                        failure_backoff(state.failures, interval, retry_after),
                        ctx.settings.jitter,
                    );
                    state.next_due = Some(Instant::now() + delay);
                    tracing::warn!(namespace = %ns, name = %name, reason = e.reason(), error = %e, retry_in_s = delay.as_secs(), "quota poll failed");
                    let failure = Failure {
                        reason: e.reason().to_string(),
                        message: e.to_string(),
                    };
                    (
                        status::next(
                            prev.as_ref(),
                            PollOutcome::Failed(failure),
                            cq.metadata.generation,
                            now,
                        ),
                        Some(delay),
                    )
                }
            }
        }
    };
    state.observed_generation = cq.metadata.generation;
    let mut outcome = outcome;
    // This round polled (or paused): any refresh request up to now is handled.
    if let Some(r) = cq.annotations().get(REFRESH_ANNOTATION) {
        outcome.status.observed_refresh = Some(r.clone());
    }

    // Events first: a lost alert is worse than a repeated one. If the status write then fails
    // (or the process dies), the next round recomputes the same transition from the old status;
    // `without_published` keeps it from being announced twice.
    if !outcome.events.is_empty() {
        let events = std::mem::take(&mut outcome.events);
        outcome.events = without_published(&ctx, &ns, &uid, events, prev.as_ref()).await;
    }
    let reference = cq.object_ref(&());
    for ev in &outcome.events {
        let event = Event {
            type_: kube_event_type(ev.type_),
            reason: ev.reason.to_string(),
            note: Some(ev.note.clone()),
            action: ev.action.clone(),
            secondary: None,
        };
        match ctx.recorder.publish(&event, &reference).await {
            Ok(()) => {
                ctx.metrics
                    .events
                    .get_or_create(&ReasonLabels {
                        reason: ev.reason.to_string(),
                    })
                    .inc();
                tracing::info!(namespace = %ns, name = %name, reason = ev.reason, note = %ev.note, "event");
            }
            Err(e) => {
                tracing::warn!(namespace = %ns, name = %name, reason = ev.reason, error = %e, "publishing event failed")
            }
        }
    }

    if status::needs_write(prev.as_ref(), &outcome.status, ctx.settings.heartbeat, now) {
        let api: Api<CloudQuota> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = json!({
            "apiVersion": "cloudquota.io/v1alpha1",
            "kind": "CloudQuota",
            "status": outcome.status,
        });
        if let Err(e) = api
            .patch_status(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
        {
            // Keep the old status in memory and make the retry evaluate again (from the cache),
            // so it sees, and publishes, the same transitions.
            state.next_due = Some(Instant::now());
            state.evaluated_at = None;
            ctx.set_state(&uid, state);
            return Err(Error::StatusWrite(e));
        }
        ctx.metrics.status_writes.inc();
        state.status = Some(outcome.status.clone());
    } else if state.status.is_none() {
        state.status = prev.clone();
    }

    publish_metrics(&ctx, &cq, &mut state, &outcome.status);
    ctx.set_state(&uid, state);
    ctx.metrics
        .reconcile_duration
        .observe(timer.elapsed().as_secs_f64());
    Ok(match requeue {
        Some(d) => Action::requeue(d),
        None => Action::await_change(),
    })
}

/// The Events of this round not already stored by this or a previous process (see
/// [`status::unpublished`]). Only runs when a round has Events, so it costs one list call per
/// transition. If the list fails the Events are published anyway.
async fn without_published(
    ctx: &Context,
    ns: &str,
    uid: &str,
    events: Vec<status::EventSpec>,
    stored: Option<&CloudQuotaStatus>,
) -> Vec<status::EventSpec> {
    let api: Api<KubeEvent> = Api::namespaced(ctx.client.clone(), ns);
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

fn publish_metrics(ctx: &Context, cq: &CloudQuota, state: &mut ObjectState, s: &CloudQuotaStatus) {
    let object = ObjectLabels {
        namespace: state.namespace.clone(),
        name: state.name.clone(),
    };
    let ready = s
        .conditions
        .iter()
        .any(|c| c.type_ == status::READY && c.status == "True");
    if cq.spec.suspend {
        // A paused object is neither failing nor stale: keep its resource series only, so
        // fetch-failure and staleness alerts stay quiet during a GitOps pause.
        ctx.metrics.ready.remove(&object);
        ctx.metrics.last_success.remove(&object);
    } else {
        ctx.metrics.ready.get_or_create(&object).set(ready as i64);
    }
    if let Some(t) = s.last_sync_time.as_ref().filter(|_| !cq.spec.suspend) {
        ctx.metrics
            .last_success
            .get_or_create(&object)
            .set(t.0.as_millisecond() as f64 / 1000.0);
    }
    let region = cq.spec.region.as_deref().unwrap_or("");
    let base = match state.metric_series.first() {
        // The usual case: labels unchanged, so the previous series' values are shared (no
        // allocation per poll).
        Some(l)
            if *l.provider == *cq.spec.provider.as_str()
                && *l.service == *cq.spec.service.as_str()
                && *l.region == *region =>
        {
            l.clone()
        }
        previous => {
            // A relabel (e.g. region edited) leaves no stale series: the old set is replaced.
            if previous.is_some() {
                for l in std::mem::take(&mut state.metric_series) {
                    ctx.metrics.remove_resource(&l);
                }
            }
            ResourceLabels {
                namespace: state.namespace.as_str().into(),
                name: state.name.as_str().into(),
                provider: cq.spec.provider.as_str().into(),
                service: cq.spec.service.as_str().into(),
                region: region.into(),
                resource: "".into(),
                zone: "".into(),
            }
        }
    };
    state.metric_series = ctx
        .metrics
        .set_resources(&base, &s.resources, &state.metric_series);
}

/// Transient errors: retry soon with a little jitter.
pub fn error_policy(cq: Arc<CloudQuota>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(namespace = cq.namespace().unwrap_or_default(), name = cq.name_any(), error = %err, "reconcile failed; retrying");
    Action::requeue(jittered(Duration::from_secs(5), 1.0))
}

/// UIDs of the objects currently known to the controller's store.
pub fn alive(store: &kube::runtime::reflector::Store<CloudQuota>) -> HashSet<String> {
    store.state().iter().filter_map(|o| o.uid()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::allowlist::{Allowlist, DEFAULT_ALLOWED_HOSTS};
    use crate::crd::{CloudQuotaSpec, Provider, SecretRef, Service, Thresholds};

    fn cq(provider: Provider, service: Service) -> CloudQuota {
        CloudQuota::new(
            "q",
            CloudQuotaSpec {
                provider,
                service,
                region: Some("cn-north-4".into()),
                project_id: Some("p1".into()),
                endpoint: None,
                zones: vec![],
                credentials_secret_ref: SecretRef { name: "s".into() },
                interval: "5m".into(),
                thresholds: Thresholds::default(),
                suspend: false,
            },
        )
    }

    #[test]
    fn validate_builds_default_endpoints() {
        let allow = Allowlist::new(DEFAULT_ALLOWED_HOSTS, false).unwrap();
        let (interval, _, t) = validate(&cq(Provider::Huaweicloud, Service::Evs), &allow).unwrap();
        assert_eq!(interval, Duration::from_secs(300));
        assert_eq!(
            t.endpoint.as_str(),
            "https://evs.cn-north-4.myhuaweicloud.com/"
        );
        let (_, _, t) = validate(&cq(Provider::Zenlayer, Service::Vm), &allow).unwrap();
        assert_eq!(
            t.endpoint.as_str(),
            "https://console.zenlayer.com/api/v2/vm"
        );
    }

    #[test]
    fn validate_rejects_with_specific_reasons() {
        let allow = Allowlist::new(DEFAULT_ALLOWED_HOSTS, false).unwrap();
        let mut c = cq(Provider::Huaweicloud, Service::Ims);
        c.spec.endpoint = Some("https://169.254.169.254/".into());
        assert_eq!(
            validate(&c, &allow).unwrap_err().reason(),
            "EndpointNotAllowed"
        );
        let mut c = cq(Provider::Huaweicloud, Service::Ims);
        c.spec.interval = "10s".into();
        assert_eq!(validate(&c, &allow).unwrap_err().reason(), "InvalidSpec");
        let mut c = cq(Provider::Huaweicloud, Service::Ims);
        c.spec.thresholds.warning = 99;
        assert!(
            validate(&c, &allow)
                .unwrap_err()
                .to_string()
                .contains("warning 99")
        );
        let mut c = cq(Provider::Huaweicloud, Service::Ims);
        c.spec.region = None;
        assert_eq!(validate(&c, &allow).unwrap_err().reason(), "InvalidSpec");
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let i = Duration::from_secs(300);
        assert_eq!(failure_backoff(1, i, None), Duration::from_secs(5));
        assert_eq!(failure_backoff(3, i, None), Duration::from_secs(20));
        assert_eq!(failure_backoff(30, i, None), i);
        assert_eq!(
            failure_backoff(1, i, Some(Duration::from_secs(60))),
            Duration::from_secs(60)
        );
    }
}
