//! The provider side of the listener: routing of the five quota APIs, authentication, fault
//! application and rendering of the provider-specific JSON.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::Shared;
use super::auth::mask;
use super::faults::{Applied, Fault, ImsPath, UnitStyle};
use super::model::{ECS_PAIRS, Service, SimResource};
use super::verify::Received;

// ---------------------------------------------------------------------------------------------
// Listener and connection wrapper: lets a handler drop its connection without a response.
// ---------------------------------------------------------------------------------------------

/// A TCP listener whose connections can be killed from a handler (connection-reset fault).
pub(crate) struct SimListener(pub(crate) TcpListener);

/// A connection that fails all IO (and resets the socket) once its kill flag is set.
pub(crate) struct SimIo {
    stream: TcpStream,
    kill: Arc<AtomicBool>,
    reset_done: bool,
}

impl SimIo {
    fn killed(&mut self) -> Option<io::Error> {
        if !self.kill.load(Ordering::Acquire) {
            return None;
        }
        if !self.reset_done {
            // Zero linger turns the close into an RST, which is what "connection reset" means.
            let _ = self.stream.set_zero_linger();
            self.reset_done = true;
        }
        Some(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "simulated connection reset",
        ))
    }
}

impl Listener for SimListener {
    type Io = SimIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let io = SimIo {
                        stream,
                        kill: Arc::new(AtomicBool::new(false)),
                        reset_done: false,
                    };
                    return (io, addr);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    if !matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                    ) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl AsyncRead for SimIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.killed() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(e) = this.killed() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(e) = this.killed() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.killed() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.killed() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

/// Per-connection handle given to handlers (via `ConnectInfo`).
#[derive(Clone)]
pub(crate) struct ConnCtl {
    kill: Arc<AtomicBool>,
    pub(crate) remote: SocketAddr,
}

impl Connected<IncomingStream<'_, SimListener>> for ConnCtl {
    fn connect_info(stream: IncomingStream<'_, SimListener>) -> Self {
        ConnCtl {
            kill: stream.io().kill.clone(),
            remote: *stream.remote_addr(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------

enum Route {
    Ims {
        project: Option<String>,
        path: ImsPath,
    },
    Dws {
        project: String,
    },
    Evs {
        project: String,
        target: String,
    },
    Ecs {
        project: String,
    },
    Zenlayer {
        service: String,
    },
}

impl Route {
    fn service(&self) -> Service {
        match self {
            Route::Ims { .. } => Service::Ims,
            Route::Dws { .. } => Service::Dws,
            Route::Evs { .. } => Service::Evs,
            Route::Ecs { .. } => Service::Ecs,
            Route::Zenlayer { .. } => Service::Vm,
        }
    }
}

fn decode(seg: &str) -> String {
    percent_decode_str(seg).decode_utf8_lossy().into_owned()
}

fn route(method: &Method, path: &str, headers: &HeaderMap) -> Option<Route> {
    let segs: Vec<&str> = path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .collect();
    let huawei_get = method == Method::GET;
    match segs.as_slice() {
        ["v1", "cloudimages", "quota"] if huawei_get => Some(Route::Ims {
            project: headers
                .get("x-project-id")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            path: ImsPath::ProjectHeader,
        }),
        ["v1", p, "cloudimages", "quota"] if huawei_get && !p.is_empty() => Some(Route::Ims {
            project: Some(decode(p)),
            path: ImsPath::ProjectInPath,
        }),
        ["v1.0", p, "quotas"] if huawei_get && !p.is_empty() => {
            Some(Route::Dws { project: decode(p) })
        }
        ["v2", p, "os-quota-sets", t] if huawei_get && !p.is_empty() && !t.is_empty() => {
            Some(Route::Evs {
                project: decode(p),
                target: decode(t),
            })
        }
        ["v1", p, "cloudservers", "limits"] if huawei_get && !p.is_empty() => {
            Some(Route::Ecs { project: decode(p) })
        }
        ["api", "v2", s] if !s.is_empty() => Some(Route::Zenlayer { service: decode(s) }),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Error bodies
// ---------------------------------------------------------------------------------------------

fn huawei_request_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn zenlayer_request_id() -> String {
    let h = format!("{:032X}", rand::random::<u128>());
    format!(
        "T{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn json_bytes(status: StatusCode, body: Vec<u8>, request_id: Option<&str>) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        h.insert("x-request-id", id);
    }
    resp
}

fn json_value(status: StatusCode, v: &Value, request_id: Option<&str>) -> Response {
    json_bytes(
        status,
        serde_json::to_vec(v).unwrap_or_default(),
        request_id,
    )
}

/// Huawei API gateway error (`error_code`/`error_msg`/`request_id`, as the SDK's exception
/// handler parses it) with the same id in `X-Request-Id`.
fn huawei_gateway_error(status: StatusCode, code: &str, msg: &str) -> Response {
    let rid = huawei_request_id();
    json_value(
        status,
        &json!({"error_msg": msg, "error_code": code, "request_id": rid}),
        Some(&rid),
    )
}

fn api_not_found() -> Response {
    huawei_gateway_error(
        StatusCode::NOT_FOUND,
        "APIGW.0101",
        "The API does not exist or has not been published in the environment",
    )
}

/// Zenlayer error: `{"requestId","code","message"}` (what the SDK reads on non-200).
fn zenlayer_error(status: StatusCode, code: &str, msg: &str) -> Response {
    let rid = zenlayer_request_id();
    json_value(
        status,
        &json!({"requestId": rid, "code": code, "message": msg}),
        None,
    )
}

fn zenlayer_code_for(status: u16) -> &'static str {
    match status {
        400 => "INVALID_PARAMETER",
        401 => "AUTH_FAILED",
        403 => "OPERATION_DENIED",
        404 => "RESOURCE_NOT_FOUND",
        429 => "REQUEST_LIMIT_EXCEEDED",
        500 => "INTERNAL_ERROR",
        502 => "BAD_GATEWAY",
        503 => "SERVICE_UNAVAILABLE",
        504 => "GATEWAY_TIMEOUT",
        _ => "SIMULATED_ERROR",
    }
}

fn with_retry_after(mut resp: Response, retry_after: Option<u64>) -> Response {
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// The response of a `status` fault: the given body verbatim, or the provider's error format.
fn status_fault(
    service: Service,
    status: u16,
    retry_after: Option<u64>,
    body: Option<&str>,
) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = code.canonical_reason().unwrap_or("Error");
    let resp = match (body, service) {
        (Some(b), Service::Vm) => json_bytes(code, b.as_bytes().to_vec(), None),
        (Some(b), _) => json_bytes(code, b.as_bytes().to_vec(), Some(&huawei_request_id())),
        (None, Service::Vm) => zenlayer_error(
            code,
            zenlayer_code_for(status),
            &format!("Simulated {status} {reason}."),
        ),
        (None, _) if status == 429 => throttle_body_huawei(),
        (None, s) => huawei_gateway_error(
            code,
            &format!("{}.{status:04}", s.as_str().to_ascii_uppercase()),
            &format!("Simulated {status} {reason}"),
        ),
    };
    with_retry_after(resp, retry_after)
}

fn throttle_body_huawei() -> Response {
    huawei_gateway_error(
        StatusCode::TOO_MANY_REQUESTS,
        "APIGW.0308",
        "The throttling threshold has been reached: policy user over ratelimit",
    )
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

struct Render {
    numbers_as_strings: bool,
    unit_style: UnitStyle,
    doc_shape: bool,
}

fn num(n: i64, as_string: bool) -> Value {
    if as_string {
        Value::String(n.to_string())
    } else {
        Value::from(n)
    }
}

fn render_ims(set: &[SimResource]) -> Value {
    let resources: Vec<Value> = set
        .iter()
        .map(|r| {
            json!({
                "type": r.name,
                "used": r.used,
                "quota": r.limit,
                "min": r.min.unwrap_or(0),
                "max": r.max.unwrap_or(r.limit.max(0)),
            })
        })
        .collect();
    json!({"quotas": {"resources": resources}})
}

fn render_dws(set: &[SimResource], opts: &Render) -> Value {
    let resources: Vec<Value> = set
        .iter()
        .map(|r| {
            let mut o = Map::new();
            o.insert("type".into(), Value::String(r.name.clone()));
            o.insert("used".into(), num(r.used, opts.numbers_as_strings));
            o.insert("quota".into(), num(r.limit, opts.numbers_as_strings));
            match (&r.unit, opts.unit_style) {
                (Some(u), _) => {
                    o.insert("unit".into(), Value::String(u.clone()));
                }
                (None, UnitStyle::String) => {
                    o.insert("unit".into(), Value::String("null".into()));
                }
                (None, UnitStyle::Null) => {
                    o.insert("unit".into(), Value::Null);
                }
                (None, UnitStyle::Absent) => {}
            }
            Value::Object(o)
        })
        .collect();
    json!({"quotas": {"resources": resources}})
}

fn render_evs(project: &str, set: &[SimResource], usage: bool) -> Value {
    let mut qs = Map::new();
    qs.insert("id".into(), Value::String(project.to_string()));
    for r in set {
        let v = if usage {
            json!({"in_use": r.used, "limit": r.limit, "reserved": r.reserved.unwrap_or(0)})
        } else {
            Value::from(r.limit)
        };
        qs.insert(r.name.clone(), v);
    }
    json!({"quota_set": qs})
}

/// ECS `ShowServerLimits`: every pair of the SDK's `ServerLimits` that the set holds, plus the
/// model's limit-only keys (OpenStack's defaults) and an empty `limit_by_flavor`, which a client
/// must ignore.
fn render_ecs(set: &[SimResource], opts: &Render) -> Value {
    let mut abs = Map::new();
    for (key, v) in [
        ("maxImageMeta", 128),
        ("maxPersonality", 5),
        ("maxPersonalitySize", 10240),
        ("maxSecurityGroupRules", 20),
        ("maxServerGroupMembers", 16),
        ("maxServerMeta", 128),
        ("maxTotalKeypairs", 100),
    ] {
        abs.insert(key.into(), num(v, opts.numbers_as_strings));
    }
    for r in set {
        // validate() admits only names of ECS_PAIRS.
        if let Some((_, max, used)) = ECS_PAIRS.iter().find(|(n, _, _)| *n == r.name) {
            abs.insert((*max).into(), num(r.limit, opts.numbers_as_strings));
            abs.insert((*used).into(), num(r.used, opts.numbers_as_strings));
        }
    }
    abs.insert("limit_by_flavor".into(), Value::Array(Vec::new()));
    json!({ "absolute": abs })
}

fn render_zenlayer(set: &[&SimResource], opts: &Render, rid: &str) -> Value {
    let (list_key, zone_key) = if opts.doc_shape {
        ("imageRegionQuota", "regionId")
    } else {
        ("images", "zoneId")
    };
    let items: Vec<Value> = set
        .iter()
        .map(|r| {
            let mut o = Map::new();
            o.insert(
                zone_key.into(),
                Value::String(r.zone.clone().unwrap_or_default()),
            );
            o.insert("count".into(), num(r.used, opts.numbers_as_strings));
            o.insert("maxCount".into(), num(r.limit, opts.numbers_as_strings));
            Value::Object(o)
        })
        .collect();
    let mut inner = Map::new();
    inner.insert("requestId".into(), Value::String(rid.to_string()));
    inner.insert(list_key.into(), Value::Array(items));
    json!({"requestId": rid, "response": inner})
}

fn default_field(service: Service) -> &'static str {
    match service {
        Service::Ims | Service::Dws => "quota",
        Service::Evs => "limit",
        Service::Ecs => "maxTotalInstances",
        Service::Vm => "maxCount",
    }
}

/// Removes (`wrong_type == false`) or retypes every occurrence of `field` in objects.
fn mangle_field(v: &mut Value, field: &str, wrong_type: bool) {
    match v {
        Value::Object(m) => {
            if wrong_type {
                if let Some(x) = m.get_mut(field) {
                    *x = match x {
                        Value::String(s) => json!({ "value": s.clone() }),
                        _ => Value::String("not-a-number".into()),
                    };
                }
            } else {
                m.remove(field);
            }
            for (_, child) in m.iter_mut() {
                mangle_field(child, field, wrong_type);
            }
        }
        Value::Array(a) => {
            for child in a {
                mangle_field(child, field, wrong_type);
            }
        }
        _ => {}
    }
}

/// Wraps a successful document according to the body-level fault, if any.
fn body_response(
    service: Service,
    mut doc: Value,
    terminal: Option<&Fault>,
    request_id: Option<&str>,
) -> Response {
    match terminal {
        Some(Fault::MalformedJson) => {
            let full = serde_json::to_vec(&doc).unwrap_or_default();
            let cut = (full.len() / 2).max(1);
            json_bytes(StatusCode::OK, full[..cut].to_vec(), request_id)
        }
        Some(Fault::MissingField { field }) => {
            mangle_field(
                &mut doc,
                field.as_deref().unwrap_or(default_field(service)),
                false,
            );
            json_value(StatusCode::OK, &doc, request_id)
        }
        Some(Fault::WrongType { field }) => {
            mangle_field(
                &mut doc,
                field.as_deref().unwrap_or(default_field(service)),
                true,
            );
            json_value(StatusCode::OK, &doc, request_id)
        }
        Some(Fault::Oversized { bytes }) => {
            if let Value::Object(m) = &mut doc {
                m.insert("padding".into(), Value::String(String::new()));
            }
            let base = serde_json::to_vec(&doc).map(|b| b.len()).unwrap_or(0);
            if let Value::Object(m) = &mut doc {
                m.insert(
                    "padding".into(),
                    Value::String("x".repeat(bytes.saturating_sub(base))),
                );
            }
            json_value(StatusCode::OK, &doc, request_id)
        }
        Some(Fault::SlowDrip {
            chunk_bytes,
            delay_ms,
        }) => {
            let full = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
            let len = full.len();
            let chunk = (*chunk_bytes).max(1);
            let delay = Duration::from_millis(*delay_ms);
            let stream = futures::stream::unfold((full, true), move |(rest, first)| async move {
                if rest.is_empty() {
                    return None;
                }
                if !first {
                    tokio::time::sleep(delay).await;
                }
                let mut rest = rest;
                let head = rest.split_to(chunk.min(rest.len()));
                Some((Ok::<_, Infallible>(head), (rest, false)))
            });
            let mut resp = json_bytes(StatusCode::OK, Vec::new(), request_id);
            *resp.body_mut() = Body::from_stream(stream);
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            resp
        }
        _ => json_value(StatusCode::OK, &doc, request_id),
    }
}

// ---------------------------------------------------------------------------------------------
// The provider handler
// ---------------------------------------------------------------------------------------------

/// Everything that is not `/_sim/`: the simulated cloud.
pub(crate) async fn provider(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnCtl>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.counters.request();
    let path = uri.path();
    let Some(route) = route(&method, path, &headers) else {
        tracing::info!(%method, path, remote = %conn.remote, status = 404, "unknown API");
        if path.starts_with("/api/") {
            return zenlayer_error(
                StatusCode::NOT_FOUND,
                "INVALID_ACTION",
                "The requested API does not exist.",
            );
        }
        return api_not_found();
    };
    let service = route.service();
    shared.counters.service(service);
    let received = Received {
        method: method.as_str(),
        path,
        query: uri.query().unwrap_or(""),
        headers: &headers,
        body: &body,
    };
    let now = jiff::Timestamp::now().as_second();
    let started = std::time::Instant::now();
    let mut key = None;
    let resp = if service.is_huawei() {
        match shared.creds.huawei(&received, now) {
            Ok(account) => huawei_call(&shared, &conn, route, &received, &account, &mut key).await,
            Err(msg) => {
                shared.counters.auth_failure();
                tracing::info!(%method, path, service = %service, reason = %msg, status = 401, "authentication failed");
                return huawei_gateway_error(StatusCode::UNAUTHORIZED, "APIGW.0301", &msg);
            }
        }
    } else {
        if method != Method::POST {
            return zenlayer_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "Zenlayer Cloud API 2.0 only accepts POST.",
            );
        }
        match shared.creds.zenlayer(&received, now) {
            Ok(account) => {
                key = Some(account.clone());
                zenlayer_call(&shared, &conn, route, &received, &account).await
            }
            Err((code, msg)) => {
                shared.counters.auth_failure();
                tracing::info!(%method, path, service = %service, code, reason = %msg, status = 401, "authentication failed");
                return zenlayer_error(StatusCode::UNAUTHORIZED, code, &msg);
            }
        }
    };
    tracing::info!(
        %method,
        path,
        service = %service,
        key = key.as_deref().unwrap_or("-"),
        status = resp.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    resp
}

/// Applies latency and the connection-level / status faults. `Err` is the final response.
async fn pre_faults(
    shared: &Shared,
    conn: &ConnCtl,
    service: Service,
    key: &str,
    ims_path: Option<ImsPath>,
) -> Result<Applied, Response> {
    shared.counters.key(service, key);
    let applied = shared.faults.take(service, key, ims_path);
    shared.counters.faults(applied.served);
    if applied.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(applied.latency_ms)).await;
    }
    match &applied.terminal {
        Some(Fault::ConnectionReset) => {
            tracing::info!(service = %service, key, "fault: connection reset");
            conn.kill.store(true, Ordering::Release);
            Err(StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        Some(Fault::Status {
            status,
            retry_after,
            body,
        }) => Err(status_fault(
            service,
            *status,
            *retry_after,
            body.as_deref(),
        )),
        Some(Fault::Throttle { retry_after }) => Err(with_retry_after(
            if service == Service::Vm {
                zenlayer_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "REQUEST_LIMIT_EXCEEDED",
                    "Request rate limit exceeded, please retry later.",
                )
            } else {
                throttle_body_huawei()
            },
            *retry_after,
        )),
        Some(Fault::ImsPathNotFound { .. }) => Err(api_not_found()),
        _ => Ok(applied),
    }
}

async fn huawei_call(
    shared: &Shared,
    conn: &ConnCtl,
    route: Route,
    req: &Received<'_>,
    account: &str,
    key_out: &mut Option<String>,
) -> Response {
    let service = route.service();
    let (key, ims_path) = match &route {
        Route::Ims { project, path } => match project {
            Some(p) => (p.clone(), Some(*path)),
            None => {
                let rid = huawei_request_id();
                return json_value(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": {"code": "IMS.0400", "message": "The X-Project-Id header is required for /v1/cloudimages/quota."}}),
                    Some(&rid),
                );
            }
        },
        Route::Dws { project } | Route::Ecs { project } => (project.clone(), None),
        Route::Evs { project, target } => {
            if project != target {
                let rid = huawei_request_id();
                return json_value(
                    StatusCode::FORBIDDEN,
                    &json!({"forbidden": {"code": "403", "message": format!("Policy doesn't allow showing the quotas of project {target} from project {project}.")}}),
                    Some(&rid),
                );
            }
            (project.clone(), None)
        }
        Route::Zenlayer { .. } => unreachable!("zenlayer routes are handled by zenlayer_call"),
    };
    *key_out = Some(key.clone());
    // EVS `usage`: the SDK documents only "true"; OpenStack parses a boolean string.
    let mut evs_usage = false;
    if service == Service::Evs {
        for (k, v) in url::form_urlencoded::parse(req.query.as_bytes()) {
            if k == "usage" {
                match v.to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => evs_usage = true,
                    "false" | "0" | "no" | "off" => evs_usage = false,
                    _ => {
                        let rid = huawei_request_id();
                        return json_value(
                            StatusCode::BAD_REQUEST,
                            &json!({"badrequest": {"code": "400", "message": format!("Invalid value '{v}' for usage: a boolean is expected.")}}),
                            Some(&rid),
                        );
                    }
                }
            }
        }
    }
    tracing::debug!(service = %service, key, account, "authenticated");
    let applied = match pre_faults(shared, conn, service, &key, ims_path).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let set = shared.quotas.get(service, &key);
    let opts = Render {
        // DWS sends strings (seed 002); ECS integers (the SDK model types them int).
        numbers_as_strings: applied
            .numbers_as_strings
            .unwrap_or(service == Service::Dws),
        unit_style: applied.unit_style.unwrap_or_default(),
        doc_shape: false,
    };
    let doc = match service {
        Service::Ims => render_ims(&set),
        Service::Dws => render_dws(&set, &opts),
        Service::Ecs => render_ecs(&set, &opts),
        _ => render_evs(&key, &set, evs_usage),
    };
    let rid = huawei_request_id();
    body_response(service, doc, applied.terminal.as_ref(), Some(&rid))
}

async fn zenlayer_call(
    shared: &Shared,
    conn: &ConnCtl,
    route: Route,
    req: &Received<'_>,
    account: &str,
) -> Response {
    let Route::Zenlayer {
        service: path_service,
    } = route
    else {
        unreachable!("huawei routes are handled by huawei_call");
    };
    let hdr = |n: &str| req.headers.get(n).and_then(|v| v.to_str().ok());
    if path_service != "vm" {
        return zenlayer_error(
            StatusCode::NOT_FOUND,
            "INVALID_SERVICE",
            &format!("Service '{path_service}' is not available in this simulator."),
        );
    }
    if hdr("x-zc-service").is_some_and(|s| s != "vm") {
        return zenlayer_error(
            StatusCode::BAD_REQUEST,
            "INVALID_SERVICE",
            "x-zc-service does not match the request path.",
        );
    }
    if hdr("x-zc-version").is_none_or(|v| v.trim().is_empty()) {
        return zenlayer_error(
            StatusCode::BAD_REQUEST,
            "MISSING_PARAMETER",
            "The x-zc-version header is required.",
        );
    }
    match hdr("x-zc-action") {
        Some("DescribeImageQuota") => {}
        Some(other) => {
            return zenlayer_error(
                StatusCode::BAD_REQUEST,
                "INVALID_ACTION",
                &format!("The action '{other}' is not supported."),
            );
        }
        None => {
            return zenlayer_error(
                StatusCode::BAD_REQUEST,
                "INVALID_ACTION",
                "The x-zc-action header is required.",
            );
        }
    }
    let filter = match parse_zenlayer_filter(req.body) {
        Ok(f) => f,
        Err(msg) => return zenlayer_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER", &msg),
    };
    let applied = match pre_faults(shared, conn, Service::Vm, account, None).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let set = shared.quotas.get(Service::Vm, account);
    for (ids, code) in [
        (&filter.zone_ids, "INVALID_ZONE_NOT_FOUND"),
        (&filter.region_ids, "INVALID_REGION_NOT_FOUND"),
    ] {
        if let Some(missing) = ids
            .iter()
            .find(|id| !set.iter().any(|r| r.zone.as_deref() == Some(id.as_str())))
        {
            return zenlayer_error(
                StatusCode::NOT_FOUND,
                code,
                &format!("The specified zone or region '{missing}' was not found."),
            );
        }
    }
    let selected: Vec<&SimResource> = set
        .iter()
        .filter(|r| {
            let z = r.zone.as_deref().unwrap_or_default();
            (filter.zone_ids.is_empty() || filter.zone_ids.iter().any(|i| i == z))
                && (filter.region_ids.is_empty() || filter.region_ids.iter().any(|i| i == z))
        })
        .collect();
    let opts = Render {
        numbers_as_strings: applied.numbers_as_strings.unwrap_or(applied.doc_shape),
        unit_style: UnitStyle::default(),
        doc_shape: applied.doc_shape,
    };
    tracing::debug!(account, ak = %hdr("authorization").map(auth_subject).unwrap_or_default(), "zenlayer quota");
    let doc = render_zenlayer(&selected, &opts, &zenlayer_request_id());
    body_response(Service::Vm, doc, applied.terminal.as_ref(), None)
}

/// For logs: the scheme and masked access key / token of an Authorization header.
fn auth_subject(auth: &str) -> String {
    if let Some(t) = auth.strip_prefix("Bearer ") {
        return format!("Bearer {}", mask(t.trim()));
    }
    let ak = auth
        .split([' ', ','])
        .find_map(|p| {
            p.strip_prefix("Credential=")
                .or_else(|| p.strip_prefix("Access="))
        })
        .unwrap_or("?");
    format!("AK {ak}")
}

#[derive(Default)]
struct ZenlayerFilter {
    zone_ids: Vec<String>,
    region_ids: Vec<String>,
}

fn parse_zenlayer_filter(body: &[u8]) -> Result<ZenlayerFilter, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ZenlayerFilter::default());
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("The request body is not valid JSON: {e}"))?;
    let Value::Object(m) = v else {
        return Err("The request body must be a JSON object.".into());
    };
    let list = |name: &str| -> Result<Vec<String>, String> {
        match m.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("{name} must be an array of strings."))
                })
                .collect(),
            Some(_) => Err(format!("{name} must be an array of strings.")),
        }
    };
    Ok(ZenlayerFilter {
        zone_ids: list("zoneIds")?,
        region_ids: list("regionIds")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let h = HeaderMap::new();
        let g = Method::GET;
        assert!(matches!(
            route(&g, "/v1/p1/cloudimages/quota", &h),
            Some(Route::Ims { project: Some(p), path: ImsPath::ProjectInPath }) if p == "p1"
        ));
        assert!(matches!(
            route(&g, "/v1/cloudimages/quota", &h),
            Some(Route::Ims {
                project: None,
                path: ImsPath::ProjectHeader
            })
        ));
        assert!(matches!(
            route(&g, "/v1.0/p/quotas", &h),
            Some(Route::Dws { .. })
        ));
        assert!(matches!(
            route(&g, "/v2/a/os-quota-sets/b", &h),
            Some(Route::Evs { project, target }) if project == "a" && target == "b"
        ));
        assert!(matches!(
            route(&g, "/v1/p%2Fq/cloudservers/limits", &h),
            Some(Route::Ecs { project }) if project == "p/q"
        ));
        assert!(route(&Method::POST, "/v1/p/cloudservers/limits", &h).is_none());
        assert!(route(&Method::POST, "/v1.0/p/quotas", &h).is_none());
        assert!(route(&g, "/v3/x", &h).is_none());
        assert!(matches!(
            route(&Method::POST, "/api/v2/vm", &h),
            Some(Route::Zenlayer { .. })
        ));
    }

    #[test]
    fn mangling() {
        let mut v = json!({"quotas": {"resources": [{"type": "a", "quota": 1}, {"type": "b", "quota": "2"}]}});
        mangle_field(&mut v, "quota", true);
        assert_eq!(v["quotas"]["resources"][0]["quota"], "not-a-number");
        assert_eq!(v["quotas"]["resources"][1]["quota"], json!({"value": "2"}));
        mangle_field(&mut v, "quota", false);
        assert!(v["quotas"]["resources"][0].get("quota").is_none());
        assert!(v.get("quotas").is_some());
    }

    #[test]
    fn filters() {
        assert!(parse_zenlayer_filter(b"").unwrap().zone_ids.is_empty());
        let f = parse_zenlayer_filter(br#"{"zoneIds":["a"],"regionIds":null}"#).unwrap();
        assert_eq!(f.zone_ids, vec!["a".to_string()]);
        assert!(parse_zenlayer_filter(br#"{"zoneIds":"a"}"#).is_err());
        assert!(parse_zenlayer_filter(b"{").is_err());
    }

    #[test]
    fn request_ids() {
        assert_eq!(huawei_request_id().len(), 32);
        let z = zenlayer_request_id();
        assert!(z.starts_with('T') && z.len() == 37, "{z}");
    }
}
