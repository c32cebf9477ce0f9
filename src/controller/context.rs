//! What every reconcile shares: clients, the Event recorder, caches, metrics, the leadership
//! fence and the registry of per-object state.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::Recorder;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::mpsc;

use super::cache::FetchCache;
use super::credentials::SecretCache;
use super::leader::Leadership;
use super::metrics::Metrics;
use super::registry::Registry;
use crate::crd::CloudQuota;
use crate::domain::allowlist::Allowlist;
use crate::providers::Providers;
use crate::providers::http::HttpClient;

/// Operator settings (from flags).
#[derive(Clone, Debug)]
pub struct Settings {
    pub allowlist: Allowlist,
    /// Unchanged status is rewritten this often, so readers can tell the operator is alive.
    pub heartbeat: Duration,
    /// Fraction of the interval added at random to each requeue, to spread a fleet's polls.
    pub jitter: f64,
    /// How long a Secret read is reused by objects sharing it.
    pub secret_ttl: Duration,
    /// `namespace/name` of the Lease this operator renews (leader election), recorded in each
    /// status so readers can judge freshness (see `CloudQuotaStatus::operator_lease`).
    pub operator_lease: Option<String>,
}

pub struct Context {
    pub client: kube::Client,
    pub recorder: Recorder,
    pub http: HttpClient,
    pub providers: Providers,
    /// Upstream answers shared by the objects that read one account.
    pub cache: FetchCache,
    /// Secret reads shared by the objects that name one Secret.
    pub secrets: SecretCache,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    /// Per-object state, keyed by uid.
    pub registry: Registry,
    /// May this replica write?
    pub leader: Arc<Leadership>,
    /// Asks the controller to reconcile an object now (a fresh shared answer arrived).
    pub trigger: mpsc::UnboundedSender<ObjectRef<CloudQuota>>,
}
