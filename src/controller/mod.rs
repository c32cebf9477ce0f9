//! The operator: a kube-rs controller over CloudQuota, leader election, metrics and health.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{mpsc, watch};
use tokio_stream_shim::UnboundedReceiverStream;

use crate::crd::CloudQuota;
use crate::providers::Providers;
use crate::providers::http::{HttpClient, HttpConfig};

pub mod cache;
pub mod context;
pub mod credentials;
pub mod metrics;
pub mod reconcile;
pub mod server;

/// `reportingController` of the operator's Events (also how it finds its own Events again).
pub const REPORTING_CONTROLLER: &str = "cloudquota";

pub use context::{Context, Settings};

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
}

#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub lease_name: String,
    pub lease_namespace: String,
    pub lease_duration: Duration,
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

/// A tiny stream adapter so no extra crate is needed for one receiver.
mod tokio_stream_shim {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    pub struct UnboundedReceiverStream<T>(pub tokio::sync::mpsc::UnboundedReceiver<T>);

    impl<T> futures::Stream for UnboundedReceiverStream<T> {
        type Item = T;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
            self.0.poll_recv(cx)
        }
    }
}

/// Delay before the CloudQuota watch is re-established after an error: 0.5 s doubling up to
/// 5 s, jittered, back to 0.5 s after any success. kube-rs' default (0.8 s doubling up to 30 s)
/// has climbed far by the end of an API server outage, and the first watch after a restart
/// always ends in 410 Gone, one more step: the operator stayed blind to new objects, spec
/// changes and refresh requests for up to ~30 s after the API server was back (e2e
/// fault_apiserver_restart).
struct WatchBackoff {
    next: Duration,
}

impl WatchBackoff {
    const MIN: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(5);
}

impl Default for WatchBackoff {
    fn default() -> Self {
        WatchBackoff { next: Self::MIN }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        use rand::Rng;
        let d = self.next;
        self.next = (d * 2).min(Self::MAX);
        Some(d.mul_f64(rand::rng().random_range(0.8..=1.0)))
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = Self::MIN;
    }
}

async fn shutdown_signal(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
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

/// Runs the controller until `stop` flips to true (graceful: in-flight reconciles finish).
async fn run_controller(
    client: kube::Client,
    config: &RunConfig,
    http: HttpClient,
    metrics: Arc<metrics::Metrics>,
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
        metrics: metrics.clone(),
        settings: config.settings.clone(),
        objects: Default::default(),
        groups: Default::default(),
        secrets: Default::default(),
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
    for api in apis {
        let (ns_tx, ns_rx) = mpsc::unbounded_channel();
        senders.push((api.namespace().map(str::to_string), ns_tx));
        // The store holds every CloudQuota for the operator's lifetime and nothing reads their
        // managedFields, which deserialize into JSON map trees of ~4 KiB per object: they are
        // dropped before storing (N=5000: -20 MiB RSS, see BENCHMARKS.md).
        let (reader, writer) = kube::runtime::reflector::store();
        let objects = watcher(api, watcher::Config::default().any_semantic())
            .modify(|cq| kube::ResourceExt::managed_fields_mut(cq).clear())
            .reflect(writer)
            .applied_objects();
        let controller = Controller::for_stream(objects, reader)
            .trigger_backoff(WatchBackoff::default())
            .with_config(ControllerConfig::default().concurrency(config.concurrency))
            .reconcile_on(UnboundedReceiverStream(ns_rx))
            .graceful_shutdown_on(shutdown_signal(stop.clone()));
        controllers.push(controller);
    }
    let fanout = tokio::spawn(async move {
        let mut rx = rx;
        while let Some(r) = rx.recv().await {
            let r: kube::runtime::reflector::ObjectRef<CloudQuota> = r;
            for (ns, tx) in &senders {
                if ns.is_none() || *ns == r.namespace {
                    let _ = tx.send(r.clone());
                }
            }
        }
    });
    let stores: Vec<_> = controllers.iter().map(|c| c.store()).collect();
    let sweeper = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(15));
            loop {
                tick.tick().await;
                if stores
                    .iter()
                    .any(|s| s.wait_until_ready().now_or_never().is_none())
                {
                    continue;
                }
                let alive: std::collections::HashSet<String> =
                    stores.iter().flat_map(reconcile::alive).collect();
                let gone = ctx.forget_missing(&alive);
                if gone > 0 {
                    tracing::debug!(gone, "forgot deleted CloudQuotas");
                }
                ctx.cache.evict_older_than(Duration::from_secs(3600));
            }
        })
    };
    let runs = controllers.into_iter().map(|c| {
        c.run(reconcile::reconcile, reconcile::error_policy, ctx.clone()).for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::trace!(namespace = obj.namespace.as_deref().unwrap_or(""), name = %obj.name, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "reconcile error"),
            }
        })
    });
    futures::future::join_all(runs).await;
    sweeper.abort();
    fanout.abort();
}

use futures::FutureExt;

/// `cloudquota run`.
pub async fn run(client: kube::Client, config: RunConfig) -> Result<(), RunError> {
    let http = HttpClient::new(&config.http)?;
    let metrics = Arc::new(metrics::Metrics::new(http.upstream_requests().clone()));
    let ready = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(server::serve(
        config.metrics_addr,
        server::Health {
            metrics: metrics.clone(),
            ready: ready.clone(),
        },
        shutdown_signal(stop_rx.clone()),
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
            ready.store(true, Ordering::Relaxed);
            metrics.leader.set(1);
            run_controller(client, &config, http, metrics.clone(), stop_rx.clone()).await;
        }
        Some(le) => {
            let manager =
                kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &le.lease_name)
                    .with_namespace(&le.lease_namespace)
                    .with_identity(&config.identity)
                    .with_duration(le.lease_duration.as_secs().max(2))
                    .with_grace((le.lease_duration.as_secs() / 3).max(1))
                    .with_field_manager(format!("cloudquota-lease-{}", config.identity))
                    .build()
                    .await
                    .map_err(|e| RunError::Lease(e.to_string()))?;
            let (mut leading, task) = manager.watch().await;
            ready.store(true, Ordering::Relaxed);
            let mut stop = stop_rx.clone();
            loop {
                // Standby until we hold the lease (or are told to stop).
                tokio::select! {
                    r = leading.wait_for(|l| *l) => { if r.is_err() { break; } }
                    _ = stop.wait_for(|s| *s) => break,
                }
                tracing::info!(identity = %config.identity, "acquired leadership; starting controller");
                metrics.leader.set(1);
                let (lost_tx, lost_rx) = watch::channel(false);
                let controller = run_controller(
                    client.clone(),
                    &config,
                    http.clone(),
                    metrics.clone(),
                    lost_rx,
                );
                tokio::pin!(controller);
                let mut lost = false;
                tokio::select! {
                    _ = &mut controller => {}
                    r = leading.wait_for(|l| !*l) => {
                        lost = r.is_ok();
                        let _ = lost_tx.send(true);
                        controller.await;
                    }
                    _ = stop.wait_for(|s| *s) => {
                        let _ = lost_tx.send(true);
                        controller.await;
                    }
                }
                metrics.leader.set(0);
                metrics.clear_objects();
                if !lost {
                    break;
                }
                tracing::warn!("lost leadership; back to standby");
            }
            // Dropping the channel makes the manager release the lease for a fast hand-over.
            drop(leading);
            match tokio::time::timeout(Duration::from_secs(5), task).await {
                Ok(Ok(Ok(manager))) => {
                    let _ = manager.release().await;
                }
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "lease manager ended with an error"),
                _ => tracing::warn!("lease manager did not stop in time"),
            }
        }
    }
    let _ = stop_tx.send(true);
    let _ = server.await;
    tracing::info!("stopped");
    Ok(())
}
