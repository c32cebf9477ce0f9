//! `/metrics`, `/healthz` and `/readyz`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::metrics::Metrics;

/// `/healthz` fails when the operator's loops have not ticked for this long (a wedged
/// process is restarted by the kubelet).
const LIVENESS_WINDOW: Duration = Duration::from_secs(120);

#[derive(Clone)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    /// A standby: once it reaches the API server. The leader: once every CloudQuota store has
    /// synced.
    ready: Arc<AtomicBool>,
    /// Last tick of a periodic loop (the Lease read-back, the leader's sweeper).
    last_alive: Arc<Mutex<Instant>>,
}

impl Health {
    pub fn new(metrics: Arc<Metrics>) -> Health {
        Health {
            metrics,
            ready: Arc::default(),
            last_alive: Arc::new(Mutex::new(Instant::now())),
        }
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// A periodic loop ticked.
    pub fn alive(&self) {
        *self.last_alive.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn is_alive(&self) -> bool {
        self.last_alive
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            < LIVENESS_WINDOW
    }
}

async fn metrics(State(h): State<Health>) -> impl IntoResponse {
    // Streamed part by part (see `Metrics::parts`): the next part is encoded only when hyper
    // wants more to send, so the whole text never sits in memory at once.
    let parts = futures::stream::iter(h.metrics.parts().map(Ok::<_, std::convert::Infallible>));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        axum::body::Body::from_stream(parts),
    )
}

async fn healthz(State(h): State<Health>) -> impl IntoResponse {
    if h.is_alive() {
        (StatusCode::OK, "ok")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "no loop has ticked for 2 minutes",
        )
    }
}

async fn readyz(State(h): State<Health>) -> impl IntoResponse {
    if h.is_ready() {
        (StatusCode::OK, "ok")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "starting: caches not synced",
        )
    }
}

pub fn router(h: Health) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(h)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    h: Health,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
    axum::serve(listener, router(h))
        .with_graceful_shutdown(shutdown)
        .await
}
