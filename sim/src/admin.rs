//! The `/_sim/` control API (documented in the crate doc of `cloudquota_sim`). No auth: the
//! listener only binds loopback and the API exists for local scripts and e2e tests.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{BearerToken, Credential, mask};
use super::faults::FaultRule;
use super::model::{Service, SimResource};
use super::{Shared, SimError};

type St = State<Arc<Shared>>;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sim/health", get(health))
        .route("/_sim/counters", get(counters))
        .route("/_sim/counters/reset", post(reset_counters))
        .route(
            "/_sim/quota/{service}/{key}",
            get(get_quota).put(put_quota).post(set_resource),
        )
        .route("/_sim/credentials", post(add_credential))
        .route("/_sim/credentials/{access_key}", delete(remove_credential))
        .route("/_sim/tokens", post(add_token))
        .route("/_sim/tokens/{token}", delete(remove_token))
        .route(
            "/_sim/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/_sim/faults/{id}", delete(remove_fault))
        .route("/_sim/reset", post(reset))
        .route("/_sim/{*rest}", any(unknown))
}

async fn unknown() -> AdminError {
    AdminError(StatusCode::NOT_FOUND, "unknown /_sim/ endpoint".into())
}

/// An admin API failure: `{"error": ".."}` with a 4xx status.
struct AdminError(StatusCode, String);

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<SimError> for AdminError {
    fn from(e: SimError) -> Self {
        AdminError(StatusCode::BAD_REQUEST, e.to_string())
    }
}

impl From<JsonRejection> for AdminError {
    fn from(e: JsonRejection) -> Self {
        AdminError(StatusCode::BAD_REQUEST, e.body_text())
    }
}

type Res = Result<Response, AdminError>;

fn not_found(what: &str) -> AdminError {
    AdminError(StatusCode::NOT_FOUND, format!("no such {what}"))
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok", "services": Service::ALL}))
}

async fn counters(State(s): St) -> Json<Value> {
    Json(serde_json::to_value(s.counters.snapshot()).unwrap_or_default())
}

async fn reset_counters(State(s): St) -> Json<Value> {
    s.counters.reset();
    Json(serde_json::to_value(s.counters.snapshot()).unwrap_or_default())
}

fn quota_doc(s: &Shared, svc: Service, key: &str) -> Response {
    Json(json!({"service": svc, "key": key, "resources": s.quotas.get(svc, key)})).into_response()
}

async fn get_quota(State(s): St, Path((svc, key)): Path<(String, String)>) -> Res {
    let svc: Service = svc.parse()?;
    Ok(quota_doc(&s, svc, &key))
}

#[derive(Deserialize)]
struct QuotaSetBody {
    resources: Vec<SimResource>,
}

async fn put_quota(
    State(s): St,
    Path((svc, key)): Path<(String, String)>,
    b: Result<Json<QuotaSetBody>, JsonRejection>,
) -> Res {
    let svc: Service = svc.parse()?;
    let Json(b) = b?;
    s.set_quota_set(svc, &key, b.resources)?;
    Ok(quota_doc(&s, svc, &key))
}

#[derive(Deserialize)]
struct ResourceBody {
    resource: String,
    #[serde(default)]
    zone: Option<String>,
    #[serde(default)]
    used: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

async fn set_resource(
    State(s): St,
    Path((svc, key)): Path<(String, String)>,
    b: Result<Json<ResourceBody>, JsonRejection>,
) -> Res {
    let svc: Service = svc.parse()?;
    let Json(b) = b?;
    let r = s.set_resource(svc, &key, &b.resource, b.zone.as_deref(), b.used, b.limit)?;
    Ok(Json(r).into_response())
}

async fn add_credential(State(s): St, b: Result<Json<Credential>, JsonRejection>) -> Res {
    let Json(c) = b?;
    if c.access_key.is_empty() || c.secret_key.is_empty() {
        return Err(AdminError(
            StatusCode::BAD_REQUEST,
            "access_key and secret_key are required".into(),
        ));
    }
    tracing::info!(account = %c.account, ak = %mask(&c.access_key), "credential added");
    let resp = json!({"account": c.account, "access_key": c.access_key});
    s.creds.add(c);
    Ok((StatusCode::CREATED, Json(resp)).into_response())
}

async fn remove_credential(State(s): St, Path(ak): Path<String>) -> Res {
    if !s.creds.remove(&ak) {
        return Err(not_found("access key"));
    }
    tracing::info!(ak = %mask(&ak), "credential removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn add_token(State(s): St, b: Result<Json<BearerToken>, JsonRejection>) -> Res {
    let Json(t) = b?;
    if t.token.is_empty() {
        return Err(AdminError(
            StatusCode::BAD_REQUEST,
            "token is required".into(),
        ));
    }
    tracing::info!(account = %t.account, token = %mask(&t.token), "token added");
    let resp = json!({"account": t.account});
    s.creds.add_token(t);
    Ok((StatusCode::CREATED, Json(resp)).into_response())
}

async fn remove_token(State(s): St, Path(token): Path<String>) -> Res {
    if !s.creds.remove_token(&token) {
        return Err(not_found("token"));
    }
    tracing::info!(token = %mask(&token), "token removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_faults(State(s): St) -> Json<Value> {
    Json(serde_json::to_value(s.faults.list()).unwrap_or_default())
}

async fn add_fault(State(s): St, b: Result<Json<FaultRule>, JsonRejection>) -> Res {
    let Json(rule) = b?;
    tracing::info!(service = %rule.service, key = ?rule.key, count = ?rule.count, fault = ?rule.fault, "fault added");
    let id = s.faults.add(rule)?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))).into_response())
}

#[derive(Deserialize)]
struct ClearQuery {
    service: Option<String>,
}

async fn clear_faults(State(s): St, Query(q): Query<ClearQuery>) -> Res {
    let svc = q
        .service
        .as_deref()
        .map(str::parse::<Service>)
        .transpose()?;
    s.faults.clear(svc);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn remove_fault(State(s): St, Path(id): Path<u64>) -> Res {
    if !s.faults.remove(id) {
        return Err(not_found("fault"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn reset(State(s): St) -> StatusCode {
    tracing::info!("simulator reset");
    s.reset();
    StatusCode::NO_CONTENT
}
