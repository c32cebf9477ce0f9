//! The simulated cloud: Huawei Cloud IMS / DWS / EVS / ECS and Zenlayer quota APIs on one plain
//! HTTP/1.1 loopback listener, with real request signing checks, mutable quota data, fault
//! injection and counters. Integration tests run it in-process ([`start`]); the demo and the
//! benchmarks run the `cloudquota-sim` binary and drive it through the `/_sim/` admin API.
//!
//! # Provider APIs
//!
//! | API | Request | Key |
//! |-----|---------|-----|
//! | IMS | `GET /v1/{project_id}/cloudimages/quota`, `GET /v1/cloudimages/quota` + `X-Project-Id` | project id |
//! | DWS | `GET /v1.0/{project_id}/quotas` | project id |
//! | EVS | `GET /v2/{project_id}/os-quota-sets/{project_id}?usage=True` | project id |
//! | ECS | `GET /v1/{project_id}/cloudservers/limits` | project id |
//! | Zenlayer | `POST /api/v2/vm`, `x-zc-action: DescribeImageQuota`, `x-zc-service: vm`, `x-zc-version` | account |
//!
//! Every project id / account starts with the seed documents' example data ([`model::seed`]);
//! ECS, which no seed document covers, with plausible numbers in the SDK model's shape.
//!
//! Authentication: Huawei requests need `Authorization: SDK-HMAC-SHA256 Access=..,
//! SignedHeaders=.., Signature=..` (with `host` and `x-sdk-date` signed) and an `X-Sdk-Date`
//! within 15 minutes, plus a matching `X-Security-Token` for temporary credentials; failures are
//! `401 {"error_msg","error_code":"APIGW.0301","request_id"}`. Zenlayer requests need
//! `Authorization: ZC2-HMAC-SHA256 Credential=.., SignedHeaders=content-type;host, Signature=..`
//! with `x-zc-timestamp` within 5 minutes, or `Authorization: Bearer <token>`; failures are
//! `401 {"requestId","code","message"}` with code `AUTH_FAILED` (missing/unknown credential or
//! token, bad header), `SIGNATURE_EXPIRED` (timestamp) or `SIGNATURE_FAILURE` (mismatch).
//!
//! Other answers chosen where the real services are vague:
//! * unknown Huawei path or method: `404 APIGW.0101`; unknown `/api/...` path: Zenlayer `404
//!   INVALID_ACTION`; Zenlayer service other than `vm`: `404 INVALID_SERVICE`.
//! * IMS header path without `X-Project-Id`: `400 {"error":{"code":"IMS.0400",..}}`.
//! * EVS with two different project ids: `403 {"forbidden":{"code":"403","message":..}}` (the
//!   OpenStack policy answer for another tenant's quotas). Without `usage=True` (or with
//!   `usage=false`) the plain OpenStack shape `{"quota_set":{"id":..,"volumes":-1,..}}` (limits
//!   only); an unparsable `usage` value: `400 {"badrequest":{..}}`.
//! * Zenlayer: non-POST `405 METHOD_NOT_ALLOWED`; action other than `DescribeImageQuota`
//!   `400 INVALID_ACTION`; no `x-zc-version` `400 MISSING_PARAMETER`; unknown ids in
//!   `zoneIds` / `regionIds` `404 INVALID_ZONE_NOT_FOUND` / `INVALID_REGION_NOT_FOUND`
//!   (seed 004); a body that is not a JSON object `400 INVALID_PARAMETER`.
//! * Huawei responses carry `X-Request-Id`; Zenlayer ones a `requestId` in the body.
//!
//! # Admin API (`/_sim/`, no auth, JSON)
//!
//! | Method and path | Body | Answer |
//! |-----------------|------|--------|
//! | `GET /_sim/health` | | `{"status":"ok","services":[..]}` |
//! | `GET /_sim/counters` | | [`Counters`] |
//! | `POST /_sim/counters/reset` | | zeroed [`Counters`] |
//! | `GET /_sim/quota/{service}/{key}` | | `{"service","key","resources":[SimResource]}` |
//! | `PUT /_sim/quota/{service}/{key}` | `{"resources":[SimResource]}` | same as GET |
//! | `POST /_sim/quota/{service}/{key}` | `{"resource","zone"?,"used"?,"limit"?}` | the [`SimResource`] |
//! | `POST /_sim/credentials` | [`Credential`] `{"account","access_key","secret_key","security_token"?}` | 201 |
//! | `DELETE /_sim/credentials/{access_key}` | | 204 / 404 |
//! | `POST /_sim/tokens` | [`BearerToken`] `{"account","token"}` | 201 |
//! | `DELETE /_sim/tokens/{token}` | | 204 / 404 |
//! | `GET /_sim/faults` | | `[{"id",..FaultRule}]` |
//! | `POST /_sim/faults` | [`FaultRule`] e.g. `{"service":"vm","key":"demo","count":2,"fault":{"kind":"status","status":503,"retry_after":1}}` | 201 `{"id"}` |
//! | `DELETE /_sim/faults[?service=ims]` | | 204 (clears all / one service) |
//! | `DELETE /_sim/faults/{id}` | | 204 / 404 |
//! | `POST /_sim/reset` | | 204: quotas re-seeded, faults and counters cleared, credentials back to the config |
//!
//! `service` is `ims`, `dws`, `evs`, `ecs` or `vm`; `key` a project id (Huawei) or account (Zenlayer).
//! ECS resource names are those of [`model::ECS_PAIRS`] (`instances`, `cores`, `ram`, ...; each
//! rendered as its `max*`/`total*Used` pair); other names are refused with 400.
//! Fault kinds (`"kind"`): `latency {ms}`, `status {status, retry_after?, body?}`, `throttle
//! {retry_after?}`, `malformed_json`, `missing_field {field?}`, `wrong_type {field?}`,
//! `oversized {bytes}`, `connection_reset`, `slow_drip {chunk_bytes?, delay_ms}`,
//! `ims_path_not_found {path: project_in_path|project_header}`, `zenlayer_doc_shape`,
//! `numbers_as_strings {strings}`, `dws_unit {style: string|null|absent}` (see [`Fault`]).
//! Errors are `400/404 {"error": ".."}`.
//!
//! Faults apply to requests that passed routing, authentication and request validation, so
//! auth tests are never disturbed by them. The first matching "terminal" rule (anything but
//! latency and the shape variants) wins; every applied rule counts towards `faults_served` and
//! its `count`. A `status` fault without `body` answers in the provider's format: Huawei
//! `{"error_msg","error_code":"<SVC>.0<status>","request_id"}` (`APIGW.0308` for 429), Zenlayer
//! `{"requestId","code","message"}` with `INTERNAL_ERROR`, `SERVICE_UNAVAILABLE`,
//! `REQUEST_LIMIT_EXCEEDED`, ... by status. `throttle` is 429 `REQUEST_LIMIT_EXCEEDED`
//! (Zenlayer, which its SDK retries) or 429 `APIGW.0308` (Huawei).

mod admin;
mod auth;
mod counters;
mod faults;
pub mod model;
mod server;
mod verify;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use auth::{
    BearerToken, Credential, DEMO_ACCESS_KEY, DEMO_ACCOUNT, DEMO_SECRET_KEY, DEMO_TOKEN,
    HUAWEI_MAX_SKEW_SECS, ZENLAYER_MAX_SKEW_SECS,
};
pub use counters::{Counters, RECENT as RECENT_ARRIVALS};
pub use faults::{ActiveFault, Fault, FaultRule, ImsPath, UnitStyle};
pub use model::{Service, SimResource};

/// Errors of the control API.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SimError {
    #[error("unknown service {0:?} (expected ims, dws, evs, ecs or vm)")]
    UnknownService(String),
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// How to start the simulator.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Must be a loopback address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Access keys accepted by both providers (default: [`Credential::demo`]).
    pub credentials: Vec<Credential>,
    /// Zenlayer bearer tokens (default: [`BearerToken::demo`]).
    pub tokens: Vec<BearerToken>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            credentials: vec![Credential::demo()],
            tokens: vec![BearerToken::demo()],
        }
    }
}

impl SimConfig {
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    pub fn credential(mut self, c: Credential) -> Self {
        self.credentials.push(c);
        self
    }

    pub fn token(mut self, t: BearerToken) -> Self {
        self.tokens.push(t);
        self
    }

    /// Drops the demo credential and token (for tests of an empty credential store).
    pub fn without_demo_credentials(mut self) -> Self {
        self.credentials.retain(|c| c.access_key != DEMO_ACCESS_KEY);
        self.tokens.retain(|t| t.token != DEMO_TOKEN);
        self
    }
}

/// State shared by the provider handlers, the admin API and [`SimHandle`].
pub(crate) struct Shared {
    quotas: model::QuotaStore,
    faults: faults::FaultStore,
    counters: counters::CounterStore,
    creds: auth::CredentialStore,
    config: SimConfig,
}

impl Shared {
    fn new(config: SimConfig) -> Self {
        let s = Shared {
            quotas: Default::default(),
            faults: Default::default(),
            counters: Default::default(),
            creds: Default::default(),
            config,
        };
        s.load_credentials();
        s
    }

    fn load_credentials(&self) {
        self.creds.clear();
        for c in &self.config.credentials {
            self.creds.add(c.clone());
        }
        for t in &self.config.tokens {
            self.creds.add_token(t.clone());
        }
    }

    fn set_quota_set(
        &self,
        service: Service,
        key: &str,
        set: Vec<SimResource>,
    ) -> Result<(), SimError> {
        for r in &set {
            model::validate(service, r)?;
        }
        self.quotas.replace(service, key, set);
        Ok(())
    }

    fn set_resource(
        &self,
        service: Service,
        key: &str,
        name: &str,
        zone: Option<&str>,
        used: Option<i64>,
        limit: Option<i64>,
    ) -> Result<SimResource, SimError> {
        let mut probe = SimResource::new(name, 0, 0);
        probe.zone = zone.map(str::to_string);
        model::validate(service, &probe)?;
        Ok(self
            .quotas
            .set_resource(service, key, name, zone, used, limit))
    }

    fn reset(&self) {
        self.quotas.clear();
        self.faults.clear(None);
        self.counters.reset();
        self.load_credentials();
    }
}

/// A running simulator. Dropping it stops the listener (in the background); [`shutdown`]
/// stops it and waits.
///
/// [`shutdown`]: SimHandle::shutdown
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Starts the simulator on `config.listen` (loopback only) and returns once it accepts
/// connections.
pub async fn start(config: SimConfig) -> io::Result<SimHandle> {
    if !config.listen.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "refusing to listen on non-loopback address {}",
                config.listen
            ),
        ));
    }
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared::new(config));
    let app: Router = admin::router()
        .fallback(server::provider)
        .with_state(shared.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let serve = axum::serve(
        server::SimListener(listener),
        app.into_make_service_with_connect_info::<server::ConnCtl>(),
    )
    .with_graceful_shutdown(async move {
        let _ = stopped.await;
    });
    let task = tokio::spawn(async move {
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "simulator server failed");
        }
    });
    Ok(SimHandle {
        addr,
        shared,
        stop: Some(stop),
        task: Some(task),
    })
}

impl SimHandle {
    /// The bound address (with the real port when 0 was requested).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (no trailing slash): the endpoint for every provider.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The current quota set of a project id / account (seeding it if new).
    pub fn quota_set(&self, service: Service, key: &str) -> Vec<SimResource> {
        self.shared.quotas.get(service, key)
    }

    /// Replaces the whole quota set of a project id / account.
    pub fn set_quota_set(
        &self,
        service: Service,
        key: &str,
        set: Vec<SimResource>,
    ) -> Result<(), SimError> {
        self.shared.set_quota_set(service, key, set)
    }

    /// Sets used and/or limit of one resource (`zone` only for Zenlayer), creating it if new.
    pub fn set_resource(
        &self,
        service: Service,
        key: &str,
        name: &str,
        zone: Option<&str>,
        used: Option<i64>,
        limit: Option<i64>,
    ) -> Result<SimResource, SimError> {
        self.shared
            .set_resource(service, key, name, zone, used, limit)
    }

    /// Accepts a new access key (replacing one with the same access key id).
    pub fn add_credential(&self, credential: Credential) {
        self.shared.creds.add(credential);
    }

    /// Revokes an access key; returns whether it existed.
    pub fn remove_credential(&self, access_key: &str) -> bool {
        self.shared.creds.remove(access_key)
    }

    /// Accepts a new Zenlayer bearer token.
    pub fn add_token(&self, token: BearerToken) {
        self.shared.creds.add_token(token);
    }

    /// Revokes a bearer token; returns whether it existed.
    pub fn remove_token(&self, token: &str) -> bool {
        self.shared.creds.remove_token(token)
    }

    /// Installs a fault rule; returns its id.
    pub fn add_fault(&self, rule: FaultRule) -> Result<u64, SimError> {
        self.shared.faults.add(rule)
    }

    /// Removes one fault rule; returns whether it was still installed.
    pub fn remove_fault(&self, id: u64) -> bool {
        self.shared.faults.remove(id)
    }

    /// Removes all fault rules, or those of one service.
    pub fn clear_faults(&self, service: Option<Service>) {
        self.shared.faults.clear(service);
    }

    /// The installed fault rules with their remaining counts.
    pub fn faults(&self) -> Vec<ActiveFault> {
        self.shared.faults.list()
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    pub fn reset_counters(&self) {
        self.shared.counters.reset();
    }

    /// Back to the start state: seed quotas, no faults, zero counters, configured credentials.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops accepting, lets in-flight requests finish (at most 5 s) and waits.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
