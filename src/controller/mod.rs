//! The operator: a kube-rs controller over CloudQuota, leader election, metrics and health.
//!
//! Modules, one job each: [`validate`] (spec to target, pure), [`credentials`] (the Secret),
//! [`cache`] (shared upstream answers), [`reconcile`] (the chain), [`events`] (publish and
//! de-duplicate), [`status_apply`] (status writes), [`metrics`], [`registry`] (per-object
//! state by uid), [`leader`] (the write fence), [`server`] (`/metrics`, `/healthz`, `/readyz`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::api::Api;
use kube::runtime::controller::{self, Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::ExponentialBackoff;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::crd::CloudQuota;
use crate::providers::Providers;
use crate::providers::http::{HttpClient, HttpConfig};

pub mod cache;
pub mod capacity;
pub mod context;
pub mod credentials;
pub mod events;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod registry;
pub mod server;
pub mod status_apply;
pub mod validate;

/// `reportingController` of the operator's Events (also how it finds its own Events again).
pub const REPORTING_CONTROLLER: &str = "cloudquota";

pub use context::{Context, Settings};
use leader::Leadership;
use server::Health;

/// Everything `cloudquota run` needs.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub settings: Settings,
    pub http: HttpConfig,
    pub concurrency: u16,
    pub namespaces: Vec<String>,
    pub metrics_addr: SocketAddr,
    pub leader_election: Option<LeaderElection>,
    pub identity: String,
    /// Export each resource's effective thresholds as metrics.
    pub export_thresholds: bool,
    /// On SIGTERM, in-flight reconciles get this long to finish; then they are cut off, so
    /// the Lease is released inside the pod's termination grace period.
    pub shutdown_timeout: Duration,
    /// Publish cluster-autoscaler CapacityQuotas (`spec.capacityQuota`); `None`: off, and no
    /// Node watch.
    pub capacity: Option<capacity::Config>,
}

#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub lease_name: String,
    pub lease_namespace: String,
    pub lease_duration: Duration,
}

impl LeaderElection {
    /// Leadership counts only while a renewal younger than this is confirmed: two thirds of
    /// the Lease, as client-go's defaults (15 s Lease, 10 s renew deadline).
    pub fn renew_deadline(&self) -> Duration {
        self.lease_duration.mul_f64(2.0 / 3.0)
    }

    /// Lease duration in whole seconds, as the Lease stores it (at least 2).
    fn duration_secs(&self) -> u64 {
        self.lease_duration.as_secs().max(2)
    }

    /// How often the holder renews: a fifth of the Lease (3 s of 15 s; client-go retries every
    /// 2 s). It must be well inside the renew deadline: a renewal plus its read-back must land
    /// before the fence closes, or a healthy leader would lose and re-take leadership.
    pub fn renew_every(&self) -> Duration {
        Duration::from_secs((self.duration_secs() / 5).max(1))
    }

    /// kube-lease-manager renews when only `grace` is left of the Lease.
    fn grace_secs(&self) -> u64 {
        self.duration_secs()
            .saturating_sub(self.renew_every().as_secs())
            .max(1)
    }

    /// How often the Lease is read back to confirm the renewals.
    pub fn confirm_every(&self) -> Duration {
        (self.renew_deadline() / 4).max(Duration::from_millis(500))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("HTTP client: {0}")]
    Http(#[from] crate::providers::ProviderError),
    #[error("metrics server: {0}")]
    Server(#[from] std::io::Error),
    #[error("leader election: {0}")]
    Lease(String),
}

/// Delay before the CloudQuota watch is re-established after an error: 0.5 s doubling up to
/// 3 s, jittered. kube-rs' default (0.8 s doubling up to 30 s) has climbed far by the end of an
/// API server outage, and the first watch after a restart always ends in 410 Gone, one more
/// step: the operator stayed blind to new objects, spec changes and refresh requests for up to
/// ~30 s after the API server was back (e2e fault_apiserver_restart).
fn watch_backoff() -> ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(3))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .into()
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn termination() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Logs what the controller reports: an object deleted before its reconcile ran is routine;
/// watch and queue trouble (missing RBAC, missing CRD, API server down) is not.
fn log_result(
    res: Result<
        (ObjectRef<CloudQuota>, kube::runtime::controller::Action),
        controller::Error<reconcile::Error, watcher::Error>,
    >,
) {
    match res {
        Ok((obj, _)) => {
            tracing::trace!(namespace = obj.namespace.as_deref().unwrap_or(""), name = %obj.name, "reconciled")
        }
        Err(controller::Error::ObjectNotFound(obj)) => {
            tracing::debug!(namespace = obj.namespace.as_deref().unwrap_or(""), name = %obj.name, "object gone before its reconcile")
        }
        // Already logged, with the object, by the error policy.
        Err(controller::Error::ReconcilerFailed(_, _)) => {}
        Err(e) => tracing::warn!(error = %e, "controller error"),
    }
}

/// Runs the controller until `stop` flips to true (graceful: in-flight reconciles finish; the
/// caller bounds how long by dropping this future).
async fn run_controller(
    client: kube::Client,
    config: &RunConfig,
    http: HttpClient,
    health: Health,
    leadership: Arc<Leadership>,
    stop: watch::Receiver<bool>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: REPORTING_CONTROLLER.into(),
            instance: Some(config.identity.clone()),
        },
    );
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder,
        http,
        providers: Providers::default(),
        cache: cache::FetchCache::new(Duration::from_secs(5)),
        secrets: credentials::SecretCache::new(config.settings.secret_ttl),
        metrics: health.metrics.clone(),
        settings: config.settings.clone(),
        registry: Default::default(),
        leader: leadership,
        trigger: tx,
    });
    let apis: Vec<Api<CloudQuota>> = if config.namespaces.is_empty() {
        vec![Api::all(client.clone())]
    } else {
        config
            .namespaces
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    };
    // One trigger channel, several namespaces: each controller gets the refs of its namespace.
    let mut senders = Vec::new();
    let mut controllers = Vec::new();
    let mut synced = Vec::new();
    for api in apis {
        let (ns_tx, ns_rx) = mpsc::unbounded_channel();
        senders.push((api.namespace().map(str::to_string), ns_tx));
        // The store holds every CloudQuota for the operator's lifetime, so it keeps only what
        // reconciles read (see `slim_for_store`), and the status the operator
        // needs is its own last write, kept in the registry; only the first sight of an object
        // needs the stored status, and the watch event itself carries it: it goes to the
        // registry and not into the store (one copy per object instead of two).
        let (reader, writer) = kube::runtime::reflector::store();
        let seed = ctx.clone();
        // Set on the first full list. (Not `Store::wait_until_ready`: the controller waits on
        // it too, and only one waiter is woken.)
        let listed = Arc::new(AtomicBool::new(false));
        synced.push(listed.clone());
        let objects = watcher(api, watcher::Config::default().any_semantic())
            .modify(move |cq| {
                slim_for_store(cq);
                if let (Some(status), Some(uid)) = (cq.status.take(), cq.metadata.uid.as_deref()) {
                    seed.registry.seed(
                        uid,
                        cq.metadata.namespace.as_deref().unwrap_or_default(),
                        cq.metadata.name.as_deref().unwrap_or_default(),
                        status,
                    );
                }
            })
            .reflect(writer)
            .inspect_ok(move |e| {
                if matches!(e, watcher::Event::InitDone) {
                    listed.store(true, Ordering::Relaxed);
                }
            })
            .applied_objects();
        let controller = Controller::for_stream(objects, reader)
            .trigger_backoff(watch_backoff())
            .with_config(ControllerConfig::default().concurrency(config.concurrency))
            .reconcile_on(UnboundedReceiverStream::new(ns_rx))
            .graceful_shutdown_on(shutdown_signal(stop.clone()));
        controllers.push(controller);
    }
    let fanout = tokio::spawn(async move {
        let mut rx = rx;
        while let Some(r) = rx.recv().await {
            let r: ObjectRef<CloudQuota> = r;
            for (ns, tx) in &senders {
                if ns.is_none() || *ns == r.namespace {
                    let _ = tx.send(r.clone());
                }
            }
        }
    });
    let stores: Vec<Store<CloudQuota>> = controllers.iter().map(|c| c.store()).collect();
    // Ready once every store has its first full list: before that, an operator would serve
    // partial metrics and a rollout would move on too early.
    let readiness = {
        let health = health.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            while !synced
                .iter()
                .all(|l: &Arc<AtomicBool>| l.load(Ordering::Relaxed))
            {
                tick.tick().await;
            }
            health.set_ready(true);
            tracing::info!("CloudQuota caches synced; ready");
        })
    };
    let sweeper = {
        let (ctx, health) = (ctx.clone(), health.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(15));
            loop {
                tick.tick().await;
                health.alive();
                if !health.is_ready() {
                    continue;
                }
                let alive: std::collections::HashSet<String> =
                    stores.iter().flat_map(reconcile::alive).collect();
                let gone = ctx.registry.forget_missing(&alive);
                for g in &gone {
                    ctx.metrics.forget(g);
                }
                if !gone.is_empty() {
                    tracing::debug!(gone = gone.len(), "forgot deleted CloudQuotas");
                }
                ctx.cache.evict_older_than(Duration::from_secs(3600));
                ctx.secrets.evict_expired();
            }
        })
    };
    let runs = controllers.into_iter().map(|c| {
        c.run(reconcile::reconcile, reconcile::error_policy, ctx.clone())
            .for_each(|res| async move { log_result(res) })
    });
    let publisher = async {
        if let Some(c) = config.capacity.clone() {
            let ns = config.namespaces.clone();
            capacity::run(client.clone(), c, ns, ctx.leader.clone(), stop.clone()).await;
        }
    };
    futures::future::join(futures::future::join_all(runs), publisher).await;
    readiness.abort();
    sweeper.abort();
    fanout.abort();
}

async fn shutdown_signal(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Runs the controller as the leader until it stops on its own, `lost` resolves (then it is cut
/// off at once: in-flight rounds are dropped, not drained), or `stop` flips (then it gets
/// `grace` to finish). Returns true when leadership was lost.
async fn lead(
    controller: impl std::future::Future<Output = ()>,
    lost: impl std::future::Future<Output = ()>,
    stop: &mut watch::Receiver<bool>,
    stop_controller: &watch::Sender<bool>,
    grace: Duration,
) -> bool {
    tokio::pin!(controller);
    tokio::select! {
        _ = &mut controller => false,
        _ = lost => true,
        _ = stop.wait_for(|s| *s) => {
            let _ = stop_controller.send(true);
            if tokio::time::timeout(grace, &mut controller).await.is_err() {
                tracing::warn!(grace_s = grace.as_secs(), "in-flight reconciles cut off at shutdown");
            }
            false
        }
    }
}

/// `cloudquota run`.
pub async fn run(client: kube::Client, config: RunConfig) -> Result<(), RunError> {
    let http = HttpClient::new(&config.http)?;
    let metrics = Arc::new(metrics::Metrics::with_options(
        http.upstream_requests().clone(),
        config.export_thresholds,
    ));
    let health = Health::new(metrics.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(server::serve(
        config.metrics_addr,
        health.clone(),
        shutdown_signal(stop_rx.clone()),
    ));
    tokio::spawn(crate::memory::release_free_memory_every(
        Duration::from_secs(60),
    ));
    tokio::spawn({
        let stop_tx = stop_tx.clone();
        async move {
            termination().await;
            tracing::info!("termination requested; finishing in-flight work");
            let _ = stop_tx.send(true);
        }
    });

    match &config.leader_election {
        None => {
            metrics.leader.set(1);
            let (inner_tx, inner_rx) = watch::channel(false);
            let controller = run_controller(
                client,
                &config,
                http,
                health.clone(),
                Arc::new(Leadership::always()),
                inner_rx,
            );
            let mut stop = stop_rx.clone();
            lead(
                controller,
                futures::future::pending(),
                &mut stop,
                &inner_tx,
                config.shutdown_timeout,
            )
            .await;
        }
        Some(le) => elected(client, &config, le, http, &health, stop_rx.clone()).await?,
    }
    let _ = stop_tx.send(true);
    let _ = server.await;
    tracing::info!("stopped");
    Ok(())
}

/// Standby until the Lease is ours, then leader until it is lost or we are told to stop.
async fn elected(
    client: kube::Client,
    config: &RunConfig,
    le: &LeaderElection,
    http: HttpClient,
    health: &Health,
    stop_rx: watch::Receiver<bool>,
) -> Result<(), RunError> {
    let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &le.lease_name)
        .with_namespace(&le.lease_namespace)
        .with_identity(&config.identity)
        .with_duration(le.duration_secs())
        .with_grace(le.grace_secs())
        .with_field_manager(format!("cloudquota-lease-{}", config.identity))
        .build()
        .await
        .map_err(|e| RunError::Lease(e.to_string()))?;
    let (mut leading, task) = manager.watch().await;
    let leadership = Arc::new(Leadership::fenced(le.renew_deadline()));
    // Reads the Lease back: opens the fence on a confirmed renewal, lets it close at the renew
    // deadline otherwise. Its ticks are also the standby's liveness.
    let confirm = {
        let (leadership, health) = (leadership.clone(), health.clone());
        let api = Api::namespaced(client.clone(), &le.lease_namespace);
        let (name, identity) = (le.lease_name.clone(), config.identity.clone());
        let period = le.confirm_every();
        tokio::spawn(async move {
            leader::confirm_loop(&leadership, api, &name, &identity, period, || {
                health.alive()
            })
            .await
        })
    };
    // A standby is ready once it can reach the API server (the Lease manager is built).
    health.set_ready(true);
    let mut stop = stop_rx.clone();
    loop {
        tokio::select! {
            r = leading.wait_for(|l| *l) => { if r.is_err() { break; } }
            _ = stop.wait_for(|s| *s) => break,
        }
        leadership.set_holder(true);
        // Write nothing before the Lease has been read back with our renewal.
        let confirmed = async {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            while leadership.ensure().is_err() {
                tick.tick().await;
            }
        };
        tokio::select! {
            _ = confirmed => {}
            _ = leading.wait_for(|l| !*l) => { leadership.revoke(); continue; }
            _ = stop.wait_for(|s| *s) => break,
        }
        tracing::info!(identity = %config.identity, "acquired leadership; starting controller");
        health.metrics.leader.set(1);
        health.set_ready(false);
        let (inner_tx, inner_rx) = watch::channel(false);
        let controller = run_controller(
            client.clone(),
            config,
            http.clone(),
            health.clone(),
            leadership.clone(),
            inner_rx,
        );
        let lost = {
            let (mut leading, leadership) = (leading.clone(), leadership.clone());
            async move {
                // Lost when the manager says so, or when no renewal was confirmed in time.
                let fence_closed = async {
                    let mut tick = tokio::time::interval(Duration::from_millis(250));
                    while leadership.ensure().is_ok() {
                        tick.tick().await;
                    }
                };
                tokio::select! {
                    _ = leading.wait_for(|l| !*l) => {},
                    _ = fence_closed => {},
                }
            }
        };
        let lost = lead(
            controller,
            lost,
            &mut stop,
            &inner_tx,
            config.shutdown_timeout,
        )
        .await;
        leadership.revoke();
        health.metrics.leader.set(0);
        health.metrics.clear_objects();
        health.set_ready(true);
        if !lost {
            break;
        }
        tracing::warn!(
            "lost leadership (Lease taken over or not renewed in time); in-flight work dropped, back to standby"
        );
    }
    confirm.abort();
    // Dropping the channel makes the manager release the lease for a fast hand-over.
    drop(leading);
    match tokio::time::timeout(Duration::from_secs(5), task).await {
        Ok(Ok(Ok(manager))) => {
            let _ = manager.release().await;
        }
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "lease manager ended with an error"),
        _ => tracing::warn!("lease manager did not stop in time"),
    }
    Ok(())
}

/// Drops what no reconcile reads before an object enters the store: managedFields (JSON
/// map trees of ~4 KiB per object) and annotations other than the operator's own (client-side
/// `kubectl apply` keeps a copy of the whole object in one).
fn slim_for_store(cq: &mut CloudQuota) {
    kube::ResourceExt::managed_fields_mut(cq).clear();
    if let Some(annotations) = cq.metadata.annotations.as_mut() {
        annotations.retain(|k, _| k.starts_with("cloudquota.io/"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_keeps_what_reconciles_read() {
        let mut cq: CloudQuota = serde_json::from_value(serde_json::json!({
            "apiVersion": "cloudquota.io/v1alpha1", "kind": "CloudQuota",
            "metadata": {
                "name": "q", "namespace": "ns", "uid": "u", "generation": 3,
                "labels": {"team": "a"},
                "annotations": {
                    reconcile::REFRESH_ANNOTATION: "2026-12-01T00:00:00Z",
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"big\": true}",
                },
                "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}],
            },
            "spec": {"provider": "huaweicloud", "service": "ims", "region": "r",
                     "credentialsSecretRef": {"name": "s"}},
        }))
        .unwrap();
        slim_for_store(&mut cq);
        assert!(
            cq.metadata
                .managed_fields
                .as_ref()
                .is_none_or(Vec::is_empty)
        );
        let annotations = cq.metadata.annotations.as_ref().unwrap();
        assert_eq!(
            annotations.keys().collect::<Vec<_>>(),
            [reconcile::REFRESH_ANNOTATION]
        );
        assert_eq!(cq.metadata.generation, Some(3));
        assert_eq!(cq.metadata.labels.as_ref().unwrap()["team"], "a");
    }

    /// A healthy leader must never see its fence close: the next renewal and the read-back that
    /// confirms it come well before the renew deadline. (With a renewal every 10 s and a 10 s
    /// deadline, the fence closed at every renewal and leadership flapped every 10 s.)
    #[test]
    fn renewals_are_confirmed_well_before_the_renew_deadline() {
        // `cloudquota run` refuses Leases shorter than 5 s.
        for secs in [5, 6, 10, 15, 30, 60, 137] {
            let le = LeaderElection {
                lease_name: "l".into(),
                lease_namespace: "ns".into(),
                lease_duration: Duration::from_secs(secs),
            };
            let worst = le.renew_every() + le.confirm_every();
            assert!(
                worst + Duration::from_millis(500) <= le.renew_deadline(),
                "{secs}s Lease: renew every {:?}, confirm every {:?}, deadline {:?}",
                le.renew_every(),
                le.confirm_every(),
                le.renew_deadline()
            );
            assert!(le.grace_secs() < le.duration_secs());
            assert!(
                le.renew_deadline() < le.lease_duration,
                "fence closes before expiry"
            );
        }
        let default = LeaderElection {
            lease_name: "l".into(),
            lease_namespace: "ns".into(),
            lease_duration: Duration::from_secs(15),
        };
        assert_eq!(default.renew_every(), Duration::from_secs(3));
        assert_eq!(default.grace_secs(), 12);
    }
}
