//! Request sequences of one reconcile against a mock API server (tower-test), with the provider
//! side served by the simulated cloud. The end-to-end proof against a real kube-apiserver is in
//! `tests/e2e.rs`; these pin down exactly which API calls a reconcile makes, in which order.

use std::sync::Arc;
use std::time::Duration;

use cloudquota::controller::cache::FetchCache;
use cloudquota::controller::context::{Context, Settings};
use cloudquota::controller::credentials::SecretCache;
use cloudquota::controller::leader::Leadership;
use cloudquota::controller::metrics::Metrics;
use cloudquota::controller::reconcile::reconcile;
use cloudquota::crd::{CloudQuota, CloudQuotaSpec, Provider, SecretRef, Service, Thresholds};
use cloudquota::domain::allowlist::{Allowlist, DEFAULT_ALLOWED_HOSTS};
use cloudquota::providers::Providers;
use cloudquota::providers::http::{HttpClient, HttpConfig, RetryPolicy};
use cloudquota_sim::{self as sim, DEMO_ACCESS_KEY, DEMO_SECRET_KEY, SimConfig};
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const PROJECT: &str = "cd631140887d4b6e9c786b67a6dd4c02";
const SECRET: &str = "/api/v1/namespaces/team-a/secrets/creds";
const DISKS_STATUS: &str =
    "/apis/cloudquota.io/v1alpha1/namespaces/team-a/cloudquotas/disks/status";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/team-a/events";
/// The operator's own Events about `disks` (uid-1), found by uid.
const EVENTS_OF_DISKS: &str =
    "/apis/events.k8s.io/v1/namespaces/team-a/events?&fieldSelector=regarding.uid%3Duid-1";

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// One expected API call: method, path prefix, and the answer to give.
struct Expect {
    method: Method,
    path: String,
    status: StatusCode,
    reply: Value,
}

/// Serves the expected calls in order, returning the request bodies; fails on anything else.
fn verifier(mut handle: Handle, script: Vec<Expect>) -> tokio::task::JoinHandle<Vec<Value>> {
    tokio::spawn(async move {
        let mut bodies = Vec::new();
        for e in script {
            let next = tokio::time::timeout(Duration::from_secs(10), handle.next_request()).await;
            let (req, send) = next
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("expected {} {}, got nothing", e.method, e.path));
            // Expected paths with a query compare the query too.
            let path = if e.path.contains('?') {
                req.uri().path_and_query().unwrap().to_string()
            } else {
                req.uri().path().to_string()
            };
            assert_eq!(
                (req.method().clone(), path.starts_with(&e.path)),
                (e.method.clone(), true),
                "expected {} {}, got {} {}",
                e.method,
                e.path,
                req.method(),
                req.uri()
            );
            let body = req.into_body().collect_bytes().await.unwrap();
            bodies.push(serde_json::from_slice(&body).unwrap_or(Value::Null));
            send.send_response(
                Response::builder()
                    .status(e.status)
                    .body(Body::from(serde_json::to_vec(&e.reply).unwrap()))
                    .unwrap(),
            );
        }
        // Nothing else may be requested.
        let extra = tokio::time::timeout(Duration::from_millis(300), handle.next_request()).await;
        if let Ok(Some((req, _))) = extra {
            panic!("unexpected request {} {}", req.method(), req.uri());
        }
        bodies
    })
}

/// A Context whose Kubernetes client talks to a tower-test mock, and the mock's handle.
fn mock_api() -> (Handle, Arc<Context>) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (handle, context(kube::Client::new(svc, "default")))
}

fn context(client: kube::Client) -> Arc<Context> {
    let http = HttpClient::new(&HttpConfig {
        allow_loopback: true,
        retry: RetryPolicy::none(),
        ..HttpConfig::default()
    })
    .unwrap();
    let (tx, _rx) = mpsc::unbounded_channel();
    Arc::new(Context {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "cloudquota".into(),
                instance: Some("test".into()),
            },
        ),
        client,
        metrics: Arc::new(Metrics::new(http.upstream_requests().clone())),
        http,
        providers: Providers::default(),
        cache: FetchCache::new(Duration::from_secs(5)),
        settings: Settings {
            allowlist: Allowlist::new(DEFAULT_ALLOWED_HOSTS, true).unwrap(),
            heartbeat: Duration::from_secs(600),
            jitter: 0.0,
            secret_ttl: Duration::from_secs(10),
            operator_lease: None,
        },
        secrets: SecretCache::new(Duration::from_secs(10)),
        registry: Default::default(),
        leader: Arc::new(Leadership::always()),
        trigger: tx,
    })
}

fn cloudquota(endpoint: &str, warning: i64) -> CloudQuota {
    let mut cq = CloudQuota::new(
        "disks",
        CloudQuotaSpec {
            provider: Provider::Huaweicloud,
            service: Service::Evs,
            region: None,
            project_id: Some(PROJECT.into()),
            endpoint: Some(endpoint.into()),
            zones: vec![],
            credentials_secret_ref: SecretRef {
                name: "creds".into(),
            },
            interval: "5m".into(),
            thresholds: Thresholds {
                warning,
                critical: 95.max(warning),
                ..Thresholds::default()
            },
            suspend: false,
            capacity_quota: None,
        },
    );
    cq.metadata.namespace = Some("team-a".into());
    cq.metadata.uid = Some("uid-1".into());
    cq.metadata.generation = Some(1);
    cq
}

fn secret() -> Value {
    use base64_shim::encode;
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "creds", "namespace": "team-a"},
        "data": {"accessKeyId": encode(DEMO_ACCESS_KEY), "secretAccessKey": encode(DEMO_SECRET_KEY)}
    })
}

/// Minimal base64 for fixtures (test-only; not crypto).
mod base64_shim {
    pub fn encode(s: &str) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let b = s.as_bytes();
        let mut out = String::new();
        for c in b.chunks(3) {
            let n = (c[0] as u32) << 16
                | (*c.get(1).unwrap_or(&0) as u32) << 8
                | *c.get(2).unwrap_or(&0) as u32;
            for i in 0..4 {
                if i <= c.len() {
                    out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

fn ok(v: Value) -> (StatusCode, Value) {
    (StatusCode::OK, v)
}

/// A successful status apply of `cq` (answered with the object itself).
fn status_applied(cq: &CloudQuota) -> Expect {
    expect(
        Method::PATCH,
        &format!(
            "/apis/cloudquota.io/v1alpha1/namespaces/team-a/cloudquotas/{}/status",
            cq.metadata.name.as_deref().unwrap()
        ),
        ok(serde_json::to_value(cq).unwrap()),
    )
}

fn expect(method: Method, path: &str, (status, reply): (StatusCode, Value)) -> Expect {
    Expect {
        method,
        path: path.to_string(),
        status,
        reply,
    }
}

/// The condition of `type_` in a status body.
fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

fn event_reply() -> Value {
    json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "disks.1", "namespace": "team-a"}, "eventTime": "2026-01-01T00:00:00.000000Z"})
}

#[tokio::test]
async fn first_poll_reads_secret_then_applies_status() {
    let sim = sim::start(SimConfig::default()).await.unwrap();
    let (handle, ctx) = mock_api();
    let cq = cloudquota(&sim.base_url(), 80);
    let v = verifier(
        handle,
        vec![
            // A quick first poll needs no Reconciling write before it.
            expect(Method::GET, SECRET, ok(secret())),
            status_applied(&cq),
        ],
    );
    let action = reconcile(Arc::new(cq), ctx.clone()).await.unwrap();
    let bodies = v.await.unwrap();
    let status = &bodies[1]["status"];
    assert_eq!(condition(status, "Ready")["status"], "True");
    let snaps = status["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "snapshots")
        .unwrap();
    assert_eq!(
        (snaps["used"].as_i64(), snaps["limit"].as_i64()),
        (Some(6), Some(10))
    );
    assert_eq!(
        format!("{action:?}"),
        format!(
            "{:?}",
            kube::runtime::controller::Action::requeue(Duration::from_secs(300))
        )
    );
    assert_eq!(sim.counters().total, 1);
    sim.shutdown().await;
}

fn event_list(items: Value) -> Value {
    json!({"apiVersion": "events.k8s.io/v1", "kind": "EventList", "metadata": {}, "items": items})
}

#[tokio::test]
async fn crossing_posts_event_before_status_and_retry_does_not_repeat_it() {
    let sim = sim::start(SimConfig::default()).await.unwrap();
    let (handle, ctx) = mock_api();
    // snapshots 6/10 = 60%: a warning threshold of 50 makes it Warning on the first poll.
    let cq = cloudquota(&sim.base_url(), 50);
    // What the first round published, as the API server then lists it.
    let published = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "disks.1", "namespace": "team-a"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reason": "ThresholdExceeded", "action": "Evaluate/snapshots/Warning",
        "reportingController": "cloudquota", "reportingInstance": "test",
        "regarding": {"kind": "CloudQuota", "namespace": "team-a", "name": "disks", "uid": "uid-1"},
        "type": "Warning"
    });
    // Someone else's Event with the same reason and action does not count.
    let mut foreign = published.clone();
    foreign["reportingController"] = json!("someone-else");
    let v = verifier(
        handle,
        vec![
            expect(Method::GET, SECRET, ok(secret())),
            expect(
                Method::GET,
                EVENTS_OF_DISKS,
                ok(event_list(json!([foreign]))),
            ),
            expect(Method::POST, EVENTS, ok(event_reply())),
            // The status write fails: the reconcile errors out and will be retried.
            expect(
                Method::PATCH,
                DISKS_STATUS,
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"kind":"Status","apiVersion":"v1","status":"Failure","message":"etcd down","reason":"InternalError","code":500}),
                ),
            ),
            // The retry recomputes the same transition; this process knows it published its
            // Event, so it neither repeats nor looks it up (a persistent status failure costs
            // no Event LIST per retry).
            status_applied(&cq),
        ],
    );
    let cq = Arc::new(cq);
    assert!(
        reconcile(cq.clone(), ctx.clone()).await.is_err(),
        "status write failure fails the reconcile"
    );
    reconcile(cq.clone(), ctx.clone()).await.unwrap();
    let bodies = v.await.unwrap();
    assert_eq!(bodies.len(), 5);
    // A new leader after a kill between the Event and the status write finds the Event among
    // the object's Events and does not repeat it.
    let (handle, fresh) = mock_api();
    let v2 = verifier(
        handle,
        vec![
            expect(Method::GET, SECRET, ok(secret())),
            expect(
                Method::GET,
                EVENTS_OF_DISKS,
                ok(event_list(json!([foreign, published]))),
            ),
            status_applied(&cq),
        ],
    );
    reconcile(cq.clone(), fresh).await.unwrap();
    let new_leader = v2.await.unwrap();
    assert_eq!(new_leader[2]["status"]["level"], "Warning");
    assert_eq!(bodies[2]["reason"], "ThresholdExceeded");
    assert_eq!(bodies[2]["action"], "Evaluate/snapshots/Warning");
    assert_eq!(bodies[2]["type"], "Warning");
    assert!(
        bodies[2]["note"]
            .as_str()
            .unwrap()
            .contains("snapshots is Warning: 6/10 (60%)"),
        "{}",
        bodies[2]["note"]
    );
    assert_eq!(bodies[4]["status"]["level"], "Warning");
    sim.shutdown().await;
}

/// With a stored status (written at `lastAttemptTime`), a matching Event counts as already
/// published only when it is newer than that write: an older one is an earlier crossing that
/// the status recorded (and a later recovery cleared), so this crossing is announced.
#[tokio::test]
async fn only_events_newer_than_the_stored_status_count_as_published() {
    let sim = sim::start(SimConfig::default()).await.unwrap();
    for (event_time, republished) in [
        ("2026-01-01T00:00:30.000000Z", false),
        ("2025-12-31T23:59:00.000000Z", true),
    ] {
        let (handle, ctx) = mock_api();
        let mut cq = cloudquota(&sim.base_url(), 50);
        // Stored: snapshots Ok at 1/10, written 2026-01-01T00:00:00Z.
        cq.status = Some(
            serde_json::from_value(json!({
                "observedGeneration": 1,
                "lastSyncTime": "2026-01-01T00:00:00Z",
                "lastAttemptTime": "2026-01-01T00:00:00Z",
                "resources": [{"name": "snapshots", "used": 1, "limit": 10, "unlimited": false, "level": "Ok"}]
            }))
            .unwrap(),
        );
        let existing = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "disks.0", "namespace": "team-a"},
            "eventTime": event_time,
            "reason": "ThresholdExceeded", "action": "Evaluate/snapshots/Warning",
            "reportingController": "cloudquota", "reportingInstance": "old-leader",
            "regarding": {"kind": "CloudQuota", "namespace": "team-a", "name": "disks", "uid": "uid-1"},
            "type": "Warning"
        });
        let mut script = vec![
            expect(Method::GET, SECRET, ok(secret())),
            expect(
                Method::GET,
                EVENTS_OF_DISKS,
                ok(event_list(json!([existing]))),
            ),
        ];
        if republished {
            script.push(expect(Method::POST, EVENTS, ok(event_reply())));
        }
        script.push(status_applied(&cq));
        let v = verifier(handle, script);
        reconcile(Arc::new(cq), ctx).await.unwrap();
        let bodies = v.await.unwrap();
        let status = &bodies.last().unwrap()["status"];
        assert_eq!(status["level"], "Warning", "{event_time}");
        if republished {
            assert_eq!(bodies[2]["action"], "Evaluate/snapshots/Warning");
        }
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn events_are_published_when_they_cannot_be_listed() {
    let sim = sim::start(SimConfig::default()).await.unwrap();
    let (handle, ctx) = mock_api();
    let cq = cloudquota(&sim.base_url(), 50);
    let v = verifier(
        handle,
        vec![
            expect(Method::GET, SECRET, ok(secret())),
            // An RBAC without `list` on Events: a repeat is better than a lost alert.
            expect(Method::GET, EVENTS_OF_DISKS, forbidden()),
            expect(Method::POST, EVENTS, ok(event_reply())),
            status_applied(&cq),
        ],
    );
    reconcile(Arc::new(cq), ctx.clone()).await.unwrap();
    let bodies = v.await.unwrap();
    assert_eq!(bodies[2]["reason"], "ThresholdExceeded");
    sim.shutdown().await;
}

#[tokio::test]
async fn nothing_changed_means_no_write() {
    let sim = sim::start(SimConfig::default()).await.unwrap();
    let (handle, ctx) = mock_api();
    let mut a = cloudquota(&sim.base_url(), 80);
    // A second object reading the same account: it shares A's upstream answers.
    let mut b = a.clone();
    b.metadata.name = Some("disks-b".into());
    b.metadata.uid = Some("uid-2".into());
    let v = verifier(
        handle,
        vec![
            expect(Method::GET, SECRET, ok(secret())),
            status_applied(&a),
            // B: the Secret and the answer come from the caches.
            status_applied(&b),
            // A refresh of A polls upstream; the only change is the refresh it records.
            status_applied(&a),
        ],
    );
    reconcile(Arc::new(a.clone()), ctx.clone()).await.unwrap();
    reconcile(Arc::new(b.clone()), ctx.clone()).await.unwrap();
    a.metadata.annotations = Some([("cloudquota.io/refresh".to_string(), "1".to_string())].into());
    reconcile(Arc::new(a.clone()), ctx.clone()).await.unwrap();
    // B evaluates A's newer answer (as the group trigger makes it do): same data, no write.
    reconcile(Arc::new(b.clone()), ctx.clone()).await.unwrap();
    // A again with the same annotation: handled already, not due, nothing happens.
    reconcile(Arc::new(a.clone()), ctx.clone()).await.unwrap();
    let bodies = v.await.unwrap();
    assert_eq!(bodies.len(), 4);
    assert_eq!(bodies[3]["status"]["observedRefresh"], "1");
    assert_eq!(
        bodies[3]["status"]["resources"],
        bodies[1]["status"]["resources"]
    );
    assert_eq!(
        sim.counters().total,
        2,
        "first poll and the refresh; B never asked the provider"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn endpoint_not_allowed_sends_nothing_upstream() {
    let (handle, ctx) = mock_api();
    let cq = cloudquota("https://169.254.169.254/latest", 80);
    let v = verifier(
        handle,
        vec![
            expect(Method::GET, EVENTS_OF_DISKS, ok(event_list(json!([])))),
            expect(Method::POST, EVENTS, ok(event_reply())),
            status_applied(&cq),
        ],
    );
    reconcile(Arc::new(cq), ctx).await.unwrap();
    let bodies = v.await.unwrap();
    assert_eq!(bodies[1]["reason"], "QuotaFetchFailed");
    let ready = condition(&bodies[2]["status"], "Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("EndpointNotAllowed"))
    );
}

fn forbidden() -> (StatusCode, Value) {
    (
        StatusCode::FORBIDDEN,
        json!({"kind":"Status","apiVersion":"v1","status":"Failure","message":"forbidden","reason":"Forbidden","code":403}),
    )
}

/// Defect: a failed Event publish used to be followed by the status write that records the
/// transition, so the transition was never computed again and the alert was lost for good.
#[tokio::test]
async fn a_failed_event_publish_skips_the_status_write_and_is_retried() {
    let sim = sim::start(SimConfig::default()).await.unwrap();
    let (handle, ctx) = mock_api();
    let cq = cloudquota(&sim.base_url(), 50);
    let v = verifier(
        handle,
        vec![
            expect(Method::GET, SECRET, ok(secret())),
            expect(Method::GET, EVENTS_OF_DISKS, ok(event_list(json!([])))),
            // RBAC denies Events for a while: no status write may follow.
            expect(Method::POST, EVENTS, forbidden()),
            // The retry computes the same transition and publishes it, then records it.
            expect(Method::GET, EVENTS_OF_DISKS, ok(event_list(json!([])))),
            expect(Method::POST, EVENTS, ok(event_reply())),
            status_applied(&cq),
        ],
    );
    let cq = Arc::new(cq);
    assert!(reconcile(cq.clone(), ctx.clone()).await.is_err());
    reconcile(cq.clone(), ctx.clone()).await.unwrap();
    let bodies = v.await.unwrap();
    assert_eq!(bodies[4]["reason"], "ThresholdExceeded");
    assert_eq!(bodies[5]["status"]["level"], "Warning");
    assert_eq!(
        sim.counters().total,
        1,
        "the retry evaluates the cached answer"
    );
    sim.shutdown().await;
}

/// Defect: every round with Events listed the object's Events first, so one upstream blip on
/// an account shared by N objects cost N Event LISTs each way. Once an object's Events are
/// known to match its status, its next transitions are published without a list.
#[tokio::test]
async fn a_settled_object_publishes_without_listing_events() {
    let sim = sim::start(SimConfig::default()).await.unwrap();
    let (handle, ctx) = mock_api();
    let mut cq = cloudquota(&sim.base_url(), 50);
    let v = verifier(
        handle,
        vec![
            expect(Method::GET, SECRET, ok(secret())),
            // First round with Events since start: a predecessor may have published them.
            expect(Method::GET, EVENTS_OF_DISKS, ok(event_list(json!([])))),
            expect(Method::POST, EVENTS, ok(event_reply())),
            status_applied(&cq),
            // Critical at 60% now: published straight away.
            expect(Method::POST, EVENTS, ok(event_reply())),
            status_applied(&cq),
        ],
    );
    reconcile(Arc::new(cq.clone()), ctx.clone()).await.unwrap();
    cq.spec.thresholds.critical = 60;
    cq.metadata.annotations = Some([("cloudquota.io/refresh".to_string(), "1".to_string())].into());
    reconcile(Arc::new(cq), ctx.clone()).await.unwrap();
    let bodies = v.await.unwrap();
    assert_eq!(bodies[4]["action"], "Evaluate/snapshots/Critical");
    sim.shutdown().await;
}

/// A new object whose first poll takes a while says `Reconciling=True`/`Ready=Unknown` first,
/// so kstatus, Flux and Helm wait instead of reading "no status" as current.
#[tokio::test]
async fn a_slow_first_poll_says_reconciling_first() {
    let sim = sim::start(SimConfig::default()).await.unwrap();
    sim.add_fault(sim::FaultRule::new(
        sim::Service::Evs,
        sim::Fault::Latency { ms: 3000 },
    ))
    .unwrap();
    let (handle, ctx) = mock_api();
    let cq = cloudquota(&sim.base_url(), 80);
    let v = verifier(
        handle,
        vec![
            expect(Method::GET, SECRET, ok(secret())),
            status_applied(&cq),
            status_applied(&cq),
        ],
    );
    reconcile(Arc::new(cq), ctx.clone()).await.unwrap();
    let bodies = v.await.unwrap();
    let polling = &bodies[1]["status"];
    assert_eq!(condition(polling, "Reconciling")["status"], "True");
    assert_eq!(condition(polling, "Ready")["status"], "Unknown");
    let done = &bodies[2]["status"];
    assert_eq!(condition(done, "Ready")["status"], "True");
    assert!(
        done["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["type"] != "Reconciling"),
        "polled: Reconciling is left out, so server-side apply removes it"
    );
    sim.shutdown().await;
}
