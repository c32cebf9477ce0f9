//! Integration tests of the simulated cloud (`cloudquota_sim`): requests are signed with the
//! project's own signers (`cloudquota::sign`) and sent over real HTTP to an in-process sim.

use std::time::{Duration, Instant};

use cloudquota::sign::huawei::{self, HuaweiCredentials, HuaweiRequest};
use cloudquota::sign::zenlayer::{self, ZenlayerCredentials, ZenlayerRequest};
use cloudquota::sign::{SecretString, Signed};
use cloudquota_sim::{
    self as sim, BearerToken, Credential, DEMO_ACCESS_KEY, DEMO_SECRET_KEY, DEMO_TOKEN, Fault,
    FaultRule, ImsPath, Service, SimConfig, SimHandle, SimResource, UnitStyle,
};
use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PROJECT: &str = "0123456789abcdef0123456789abcdef";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn start() -> SimHandle {
    sim::start(SimConfig::default()).await.unwrap()
}

fn demo_hw() -> HuaweiCredentials {
    HuaweiCredentials::new(DEMO_ACCESS_KEY, DEMO_SECRET_KEY)
}

fn demo_zl() -> ZenlayerCredentials {
    ZenlayerCredentials::new(DEMO_ACCESS_KEY, DEMO_SECRET_KEY).unwrap()
}

/// A Huawei GET, signed like the SDK does.
struct Hw<'a> {
    path: &'a str,
    query: &'a [(&'a str, &'a str)],
    project_header: Option<&'a str>,
    creds: HuaweiCredentials,
    at: Timestamp,
}

impl<'a> Hw<'a> {
    fn new(path: &'a str) -> Self {
        Hw {
            path,
            query: &[],
            project_header: None,
            creds: demo_hw(),
            at: Timestamp::now(),
        }
    }

    fn sign(&self, sim: &SimHandle) -> Signed {
        let host = sim.addr().to_string();
        let req = HuaweiRequest {
            method: "GET",
            host: &host,
            path: self.path,
            query: self.query,
            headers: &[("Content-Type", "application/json")],
            body: b"",
            project_id: self.project_header,
        };
        huawei::sign(&req, &self.creds, self.at).unwrap()
    }

    async fn send(&self, sim: &SimHandle) -> reqwest::Response {
        let signed = self.sign(sim);
        send_signed(sim, "GET", &signed.path_and_query, &signed, Vec::new()).await
    }
}

async fn send_signed(
    sim: &SimHandle,
    method: &str,
    path_and_query: &str,
    signed: &Signed,
    body: Vec<u8>,
) -> reqwest::Response {
    try_send(sim, method, path_and_query, signed.headers.iter(), body)
        .await
        .unwrap()
}

async fn try_send<'h>(
    sim: &SimHandle,
    method: &str,
    path_and_query: &str,
    headers: impl Iterator<Item = (&'h str, &'h str)>,
    body: Vec<u8>,
) -> reqwest::Result<reqwest::Response> {
    let url = format!("{}{}", sim.base_url(), path_and_query);
    let mut rb = client().request(method.parse().unwrap(), url);
    for (k, v) in headers {
        rb = rb.header(k, v);
    }
    rb.body(body).send().await
}

fn zl_request<'a>(host: &'a str, action: &'a str, body: &'a [u8]) -> ZenlayerRequest<'a> {
    ZenlayerRequest {
        method: "POST",
        host,
        service: zenlayer::VM_SERVICE,
        version: zenlayer::VM_API_VERSION,
        action,
        content_type: zenlayer::CONTENT_TYPE_JSON,
        body,
        headers: &[],
        sdk_version: None,
        sdk_lang: None,
    }
}

/// A Zenlayer call signed with ZC2-HMAC-SHA256.
async fn zl(
    sim: &SimHandle,
    action: &str,
    body: &[u8],
    creds: &ZenlayerCredentials,
    at: Timestamp,
) -> reqwest::Response {
    let host = sim.addr().to_string();
    let signed = zenlayer::sign(&zl_request(&host, action, body), creds, at).unwrap();
    send_signed(sim, "POST", &signed.path_and_query, &signed, body.to_vec()).await
}

async fn zl_demo(sim: &SimHandle, body: &[u8]) -> reqwest::Response {
    zl(
        sim,
        "DescribeImageQuota",
        body,
        &demo_zl(),
        Timestamp::now(),
    )
    .await
}

async fn zl_bearer(sim: &SimHandle, token: &str) -> reqwest::Response {
    let host = sim.addr().to_string();
    let req = zl_request(&host, "DescribeImageQuota", b"{}");
    let headers = zenlayer::bearer_headers(&req, &SecretString::from(token)).unwrap();
    try_send(sim, "POST", &req.path(), headers.iter(), b"{}".to_vec())
        .await
        .unwrap()
}

async fn json_of(resp: reqwest::Response) -> Value {
    let bytes = resp.bytes().await.unwrap();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

async fn ims(sim: &SimHandle) -> reqwest::Response {
    Hw::new(&format!("/v1/{PROJECT}/cloudimages/quota"))
        .send(sim)
        .await
}

async fn dws(sim: &SimHandle, project: &str) -> reqwest::Response {
    Hw::new(&format!("/v1.0/{project}/quotas")).send(sim).await
}

fn evs_path(project: &str) -> String {
    format!("/v2/{project}/os-quota-sets/{project}")
}

// ---------------------------------------------------------------------------------------------
// Seed data through correctly signed requests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn ims_both_paths_return_seed() {
    let sim = start().await;
    let expected = json!({"quotas": {"resources": [
        {"type": "image", "used": 0, "quota": 20, "min": 1, "max": 1000}
    ]}});

    let resp = ims(&sim).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().contains_key("x-request-id"));
    assert_eq!(json_of(resp).await, expected);

    let mut hw = Hw::new("/v1/cloudimages/quota");
    hw.project_header = Some(PROJECT);
    let resp = hw.send(&sim).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(json_of(resp).await, expected);

    // The header path without a project id cannot be scoped.
    let resp = Hw::new("/v1/cloudimages/quota").send(&sim).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(resp).await["error"]["code"], "IMS.0400");

    let c = sim.counters();
    assert_eq!(c.key(Service::Ims, PROJECT), 2);
}

#[tokio::test]
async fn dws_returns_seed_with_string_numbers() {
    let sim = start().await;
    let resp = dws(&sim, PROJECT).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v = json_of(resp).await;
    assert_eq!(
        v,
        json!({"quotas": {"resources": [
            {"type": "instances", "used": "3", "quota": "100", "unit": "null"},
            {"type": "core", "used": "12", "quota": "100", "unit": "null"},
            {"type": "ram", "used": "24", "quota": "1000", "unit": "GB"},
            {"type": "disk", "used": "6", "quota": "100", "unit": "null"},
            {"type": "disk_capacity", "used": "600", "quota": "1000", "unit": "GB"}
        ]}})
    );
}

#[tokio::test]
async fn evs_returns_seed_quota_set() {
    let sim = start().await;
    let path = evs_path(PROJECT);
    let mut hw = Hw::new(&path);
    hw.query = &[("usage", "True")];
    let resp = hw.send(&sim).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v = json_of(resp).await;
    let qs = v["quota_set"].as_object().unwrap();
    assert_eq!(qs.len(), 15, "14 quota keys + id: {qs:?}");
    assert_eq!(qs["id"], PROJECT);
    assert_eq!(
        qs["gigabytes"],
        json!({"in_use": 2792, "limit": 42790, "reserved": 0})
    );
    assert_eq!(
        qs["volumes_SSD"],
        json!({"in_use": 28, "limit": -1, "reserved": 0})
    );
    assert_eq!(
        qs["backups"],
        json!({"in_use": 10, "limit": 100, "reserved": 0})
    );

    // Without usage=True: plain limits.
    let resp = Hw::new(&path).send(&sim).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v = json_of(resp).await;
    assert_eq!(v["quota_set"]["gigabytes"], 42790);
    assert_eq!(v["quota_set"]["volumes"], -1);
    assert_eq!(v["quota_set"]["id"], PROJECT);

    // Another tenant's quotas: forbidden.
    let other = format!("/v2/{PROJECT}/os-quota-sets/ffff");
    let mut hw = Hw::new(&other);
    hw.query = &[("usage", "True")];
    let resp = hw.send(&sim).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_of(resp).await["forbidden"]["code"], "403");

    let mut hw = Hw::new(&path);
    hw.query = &[("usage", "maybe")];
    let resp = hw.send(&sim).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(json_of(resp).await["badrequest"]["message"].is_string());
}

fn ecs_path(project: &str) -> String {
    format!("/v1/{project}/cloudservers/limits")
}

#[tokio::test]
async fn ecs_returns_server_limits_in_sdk_shape() {
    let sim = start().await;
    let path = ecs_path(PROJECT);
    let resp = Hw::new(&path).send(&sim).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().contains_key("x-request-id"));
    let v = json_of(resp).await;
    let abs = v["absolute"].as_object().unwrap();
    // The SDK's ServerLimits model: 9 pairs, 7 limit-only keys, limit_by_flavor; integers.
    assert_eq!(abs.len(), 26, "{abs:?}");
    assert_eq!(abs["maxTotalCores"], 200);
    assert_eq!(abs["totalCoresUsed"], 172);
    assert_eq!(abs["maxTotalRAMSize"], 409_600);
    assert_eq!(abs["maxTotalSpotCores"], -1);
    assert_eq!(abs["maxTotalKeypairs"], 100);
    assert_eq!(abs["limit_by_flavor"], json!([]));

    // The operator's parser reads the simulator's answer: one resource per pair.
    let body = serde_json::to_vec(&v).unwrap();
    let q = cloudquota::providers::huawei_ecs::parse(&body).unwrap();
    let names: Vec<_> = q.iter().map(|q| q.name.as_str()).collect();
    let mut seeded: Vec<_> = sim.quota_set(Service::Ecs, PROJECT);
    seeded.sort_by(|a, b| a.name.cmp(&b.name));
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        seeded.iter().map(|r| r.name.as_str()).collect::<Vec<_>>()
    );
    let ram = q.iter().find(|q| q.name == "ram").unwrap();
    assert_eq!((ram.used, ram.unit.as_deref()), (352_256, Some("MB")));

    // Usage moves; names outside the model are refused; a removed pair is absent on the wire.
    sim.set_resource(Service::Ecs, PROJECT, "cores", None, Some(199), None)
        .unwrap();
    assert!(
        sim.set_resource(Service::Ecs, PROJECT, "keypairs", None, Some(1), Some(2))
            .is_err()
    );
    sim.set_quota_set(
        Service::Ecs,
        "older",
        vec![SimResource::new("instances", 1, 10)],
    )
    .unwrap();
    let v = json_of(Hw::new(&path).send(&sim).await).await;
    assert_eq!(v["absolute"]["totalCoresUsed"], 199);
    let v = json_of(Hw::new(&ecs_path("older")).send(&sim).await).await;
    assert!(v["absolute"].get("maxTotalCores").is_none(), "{v}");
    let q = cloudquota::providers::huawei_ecs::parse(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(q.len(), 1);

    // Numbers as strings (the older /v2.1 limits docs type them String) still parse.
    sim.add_fault(FaultRule::new(Service::Ecs, Fault::NumbersAsStrings { strings: true }).times(1))
        .unwrap();
    let v = json_of(Hw::new(&path).send(&sim).await).await;
    assert_eq!(v["absolute"]["maxTotalInstances"], "100");
    assert!(cloudquota::providers::huawei_ecs::parse(&serde_json::to_vec(&v).unwrap()).is_ok());

    // The default missing field is the instances limit: the parser names it.
    sim.add_fault(FaultRule::new(Service::Ecs, Fault::MissingField { field: None }).times(1))
        .unwrap();
    let v = json_of(Hw::new(&path).send(&sim).await).await;
    assert!(v["absolute"].get("maxTotalInstances").is_none());
    let e = cloudquota::providers::huawei_ecs::parse(&serde_json::to_vec(&v).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("absolute.maxTotalInstances: missing"), "{e}");

    // Signature checked like every Huawei API; POST is not an API.
    let mut hw = Hw::new(&path);
    hw.creds = HuaweiCredentials::new(DEMO_ACCESS_KEY, "wrong-secret");
    assert_hw_401(hw.send(&sim).await, "verify aksk signature fail").await;
    let resp = try_send(&sim, "POST", &path, std::iter::empty(), Vec::new())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let c = sim.counters();
    assert_eq!(c.service(Service::Ecs), 6);
    assert_eq!(c.key(Service::Ecs, PROJECT), 4);
}

#[tokio::test]
async fn zenlayer_returns_seed_in_sdk_shape() {
    let sim = start().await;
    let resp = zl_demo(&sim, b"{}").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v = json_of(resp).await;
    assert_eq!(v["requestId"], v["response"]["requestId"]);
    assert!(v["requestId"].as_str().unwrap().starts_with('T'));
    assert_eq!(
        v["response"]["images"],
        json!([
            {"zoneId": "sa-jeddah-1a", "count": 0, "maxCount": 5},
            {"zoneId": "asia-east-1a", "count": 4, "maxCount": 5},
            {"zoneId": "na-west-1a", "count": 1, "maxCount": 10}
        ])
    );

    // Filters.
    let v = json_of(zl_demo(&sim, br#"{"zoneIds":["asia-east-1a"]}"#).await).await;
    assert_eq!(
        v["response"]["images"],
        json!([{"zoneId": "asia-east-1a", "count": 4, "maxCount": 5}])
    );
    let v = json_of(zl_demo(&sim, br#"{"regionIds":["sa-jeddah-1a"]}"#).await).await;
    assert_eq!(v["response"]["images"].as_array().unwrap().len(), 1);
    let resp = zl_demo(&sim, br#"{"zoneIds":["mars-1a"]}"#).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(resp).await["code"], "INVALID_ZONE_NOT_FOUND");

    // Bearer token of the same account sees the same data.
    let resp = zl_bearer(&sim, DEMO_TOKEN).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(json_of(resp).await["response"]["images"][0]["maxCount"], 5);

    // Another action: Zenlayer error format.
    let resp = zl(&sim, "DescribeImages", b"{}", &demo_zl(), Timestamp::now()).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v = json_of(resp).await;
    assert_eq!(v["code"], "INVALID_ACTION");
    assert!(v["requestId"].is_string() && v["message"].is_string());
}

#[tokio::test]
async fn unknown_paths_are_gateway_404s() {
    let sim = start().await;
    let resp = client()
        .get(format!("{}/v3/nothing", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(resp).await["error_code"], "APIGW.0101");
}

// ---------------------------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------------------------

async fn assert_hw_401(resp: reqwest::Response, msg_part: &str) {
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let header_id = resp
        .headers()
        .get("x-request-id")
        .expect("X-Request-Id")
        .to_str()
        .unwrap()
        .to_string();
    let v = json_of(resp).await;
    assert_eq!(v["error_code"], "APIGW.0301", "{v}");
    assert_eq!(v["request_id"], header_id.as_str());
    let msg = v["error_msg"].as_str().unwrap();
    assert!(
        msg.contains(msg_part),
        "{msg:?} should contain {msg_part:?}"
    );
    assert!(!msg.contains(DEMO_SECRET_KEY));
}

#[tokio::test]
async fn huawei_rejects_bad_auth_with_gateway_error() {
    let sim = start().await;
    let path = format!("/v1.0/{PROJECT}/quotas");

    let mut hw = Hw::new(&path);
    hw.creds = HuaweiCredentials::new(DEMO_ACCESS_KEY, "wrong-secret");
    assert_hw_401(hw.send(&sim).await, "verify aksk signature fail").await;

    let mut hw = Hw::new(&path);
    hw.at = Timestamp::now() - SignedDuration::from_mins(16);
    assert_hw_401(hw.send(&sim).await, "expired").await;

    // Within the 15 minute window is fine.
    let mut hw = Hw::new(&path);
    hw.at = Timestamp::now() - SignedDuration::from_mins(10);
    assert_eq!(hw.send(&sim).await.status(), StatusCode::OK);

    let mut hw = Hw::new(&path);
    hw.creds = HuaweiCredentials::new("UNKNOWNAK", DEMO_SECRET_KEY);
    assert_hw_401(hw.send(&sim).await, "ak not exist").await;

    let resp = client()
        .get(format!("{}{path}", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_hw_401(resp, "x-auth-token not found").await;

    // Signed for one project, sent to another: the canonical URI differs.
    let signed = Hw::new(&path).sign(&sim);
    let resp = send_signed(&sim, "GET", "/v1.0/other/quotas", &signed, Vec::new()).await;
    assert_hw_401(resp, "verify aksk signature fail").await;

    // A tampered query is detected too (EVS).
    let evs = evs_path(PROJECT);
    let mut hw = Hw::new(&evs);
    hw.query = &[("usage", "True")];
    let signed = hw.sign(&sim);
    let resp = send_signed(
        &sim,
        "GET",
        &format!("{evs}?usage=False"),
        &signed,
        Vec::new(),
    )
    .await;
    assert_hw_401(resp, "verify aksk signature fail").await;

    let c = sim.counters();
    assert_eq!(c.auth_failures, 6);
    assert_eq!(c.key(Service::Dws, PROJECT), 1);
}

#[tokio::test]
async fn huawei_temporary_credentials_need_the_security_token() {
    let sim = start().await;
    sim.add_credential(
        Credential::new("sts-user", "STSAK0001", "sts-secret").with_security_token("sts-token-1"),
    );
    let mut hw = Hw::new("/v1/p-sts/cloudimages/quota");
    hw.creds = HuaweiCredentials::new("STSAK0001", "sts-secret").with_security_token("sts-token-1");
    assert_eq!(hw.send(&sim).await.status(), StatusCode::OK);

    hw.creds = HuaweiCredentials::new("STSAK0001", "sts-secret");
    assert_hw_401(hw.send(&sim).await, "security token").await;

    hw.creds = HuaweiCredentials::new("STSAK0001", "sts-secret").with_security_token("other");
    assert_hw_401(hw.send(&sim).await, "security token").await;
}

async fn assert_zl_401(resp: reqwest::Response, code: &str) {
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let v = json_of(resp).await;
    assert_eq!(v["code"], code, "{v}");
    assert!(v["requestId"].is_string() && v["message"].is_string());
}

#[tokio::test]
async fn zenlayer_rejects_bad_auth() {
    let sim = start().await;
    let wrong = ZenlayerCredentials::new(DEMO_ACCESS_KEY, "wrong").unwrap();
    assert_zl_401(
        zl(&sim, "DescribeImageQuota", b"{}", &wrong, Timestamp::now()).await,
        "SIGNATURE_FAILURE",
    )
    .await;

    let stale = Timestamp::now() - SignedDuration::from_mins(6);
    assert_zl_401(
        zl(&sim, "DescribeImageQuota", b"{}", &demo_zl(), stale).await,
        "SIGNATURE_EXPIRED",
    )
    .await;

    let unknown = ZenlayerCredentials::new("NOSUCHAK", DEMO_SECRET_KEY).unwrap();
    assert_zl_401(
        zl(
            &sim,
            "DescribeImageQuota",
            b"{}",
            &unknown,
            Timestamp::now(),
        )
        .await,
        "AUTH_FAILED",
    )
    .await;

    assert_zl_401(zl_bearer(&sim, "not-a-token").await, "AUTH_FAILED").await;

    let resp = client()
        .post(format!("{}/api/v2/vm", sim.base_url()))
        .header("x-zc-action", "DescribeImageQuota")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_zl_401(resp, "AUTH_FAILED").await;

    // Body changed after signing.
    let host = sim.addr().to_string();
    let signed = zenlayer::sign(
        &zl_request(&host, "DescribeImageQuota", b"{}"),
        &demo_zl(),
        Timestamp::now(),
    )
    .unwrap();
    let resp = send_signed(
        &sim,
        "POST",
        "/api/v2/vm",
        &signed,
        br#"{"zoneIds":["na-west-1a"]}"#.to_vec(),
    )
    .await;
    assert_zl_401(resp, "SIGNATURE_FAILURE").await;

    assert_eq!(sim.counters().auth_failures, 6);
}

#[tokio::test]
async fn credentials_can_be_rotated() {
    let sim = start().await;
    sim.add_credential(Credential::new("acme", "ACMEAK01", "acme-secret-1"));
    sim.add_token(BearerToken::new("acme", "acme-token-1"));
    let acme = ZenlayerCredentials::new("ACMEAK01", "acme-secret-1").unwrap();

    // Zenlayer quotas are per account: acme gets its own (seeded) set.
    sim.set_resource(
        Service::Vm,
        "acme",
        "image",
        Some("na-west-1a"),
        Some(9),
        None,
    )
    .unwrap();
    let v = json_of(zl(&sim, "DescribeImageQuota", b"{}", &acme, Timestamp::now()).await).await;
    assert_eq!(v["response"]["images"][2]["count"], 9);
    let v = json_of(zl_bearer(&sim, "acme-token-1").await).await;
    assert_eq!(v["response"]["images"][2]["count"], 9);
    let v = json_of(zl_demo(&sim, b"{}").await).await;
    assert_eq!(v["response"]["images"][2]["count"], 1);

    assert!(sim.remove_credential(DEMO_ACCESS_KEY));
    assert!(!sim.remove_credential(DEMO_ACCESS_KEY));
    assert_zl_401(zl_demo(&sim, b"{}").await, "AUTH_FAILED").await;
    assert_hw_401(ims(&sim).await, "ak not exist").await;
    assert!(sim.remove_token("acme-token-1"));
    assert_zl_401(zl_bearer(&sim, "acme-token-1").await, "AUTH_FAILED").await;
    assert_eq!(
        zl(&sim, "DescribeImageQuota", b"{}", &acme, Timestamp::now())
            .await
            .status(),
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------------------------
// Quota control
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn quotas_can_be_changed_and_replaced() {
    let sim = start().await;
    let r = sim
        .set_resource(Service::Ims, PROJECT, "image", None, Some(19), None)
        .unwrap();
    assert_eq!((r.used, r.limit), (19, 20));
    let v = json_of(ims(&sim).await).await;
    assert_eq!(v["quotas"]["resources"][0]["used"], 19);
    assert_eq!(v["quotas"]["resources"][0]["quota"], 20);

    // A new DWS resource is appended; other projects keep the seed.
    sim.set_resource(Service::Dws, PROJECT, "snapshots", None, Some(1), Some(2))
        .unwrap();
    let v = json_of(dws(&sim, PROJECT).await).await;
    assert_eq!(
        v["quotas"]["resources"][5],
        json!({"type": "snapshots", "used": "1", "quota": "2", "unit": "null"})
    );
    let v = json_of(dws(&sim, "another").await).await;
    assert_eq!(v["quotas"]["resources"].as_array().unwrap().len(), 5);

    sim.set_quota_set(
        Service::Evs,
        PROJECT,
        vec![SimResource {
            reserved: Some(1),
            ..SimResource::new("volumes", 3, 4)
        }],
    )
    .unwrap();
    let path = evs_path(PROJECT);
    let mut hw = Hw::new(&path);
    hw.query = &[("usage", "true")];
    let v = json_of(hw.send(&sim).await).await;
    assert_eq!(
        v,
        json!({"quota_set": {"id": PROJECT, "volumes": {"in_use": 3, "limit": 4, "reserved": 1}}})
    );

    // Zenlayer lines need a zone; Huawei ones must not have one.
    assert!(
        sim.set_resource(Service::Vm, "demo", "image", None, Some(1), None)
            .is_err()
    );
    assert!(
        sim.set_resource(Service::Ims, PROJECT, "image", Some("z"), Some(1), None)
            .is_err()
    );
    sim.set_resource(
        Service::Vm,
        "demo",
        "image",
        Some("eu-west-1a"),
        Some(2),
        Some(3),
    )
    .unwrap();
    let v = json_of(zl_demo(&sim, b"").await).await;
    assert_eq!(
        v["response"]["images"][3],
        json!({"zoneId": "eu-west-1a", "count": 2, "maxCount": 3})
    );
}

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn fault_latency() {
    let sim = start().await;
    sim.add_fault(FaultRule::new(Service::Dws, Fault::Latency { ms: 300 }).times(1))
        .unwrap();
    let t = Instant::now();
    assert_eq!(dws(&sim, PROJECT).await.status(), StatusCode::OK);
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    assert!(sim.faults().is_empty(), "count 1 is consumed");
    assert_eq!(sim.counters().faults_served, 1);
}

#[tokio::test]
async fn fault_status_with_retry_after_for_n_requests() {
    let sim = start().await;
    sim.add_fault(
        FaultRule::new(
            Service::Ims,
            Fault::Status {
                status: 503,
                retry_after: Some(7),
                body: None,
            },
        )
        .times(2),
    )
    .unwrap();
    for _ in 0..2 {
        let resp = ims(&sim).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["retry-after"], "7");
        let v = json_of(resp).await;
        assert_eq!(v["error_code"], "IMS.0503");
        assert!(v["request_id"].is_string());
    }
    assert_eq!(ims(&sim).await.status(), StatusCode::OK);

    // Custom body, Zenlayer, until cleared.
    let id = sim
        .add_fault(FaultRule::new(
            Service::Vm,
            Fault::Status {
                status: 500,
                retry_after: None,
                body: Some("oops".into()),
            },
        ))
        .unwrap();
    for _ in 0..3 {
        let resp = zl_demo(&sim, b"{}").await;
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(resp.headers().get("retry-after").is_none());
        assert_eq!(resp.text().await.unwrap(), "oops");
    }
    assert!(sim.remove_fault(id));
    assert_eq!(zl_demo(&sim, b"{}").await.status(), StatusCode::OK);

    // Default Zenlayer error body for a status fault.
    sim.add_fault(
        FaultRule::new(
            Service::Vm,
            Fault::Status {
                status: 503,
                retry_after: None,
                body: None,
            },
        )
        .times(1),
    )
    .unwrap();
    let resp = zl_demo(&sim, b"{}").await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json_of(resp).await["code"], "SERVICE_UNAVAILABLE");
}

#[tokio::test]
async fn fault_throttle() {
    let sim = start().await;
    sim.add_fault(
        FaultRule::new(
            Service::Vm,
            Fault::Throttle {
                retry_after: Some(1),
            },
        )
        .times(1),
    )
    .unwrap();
    let resp = zl_demo(&sim, b"{}").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "1");
    let v = json_of(resp).await;
    assert_eq!(v["code"], "REQUEST_LIMIT_EXCEEDED");
    assert!(v["requestId"].is_string());
    assert_eq!(zl_demo(&sim, b"{}").await.status(), StatusCode::OK);

    sim.add_fault(FaultRule::new(Service::Evs, Fault::Throttle { retry_after: None }).times(1))
        .unwrap();
    let resp = Hw::new(&evs_path(PROJECT)).send(&sim).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(json_of(resp).await["error_code"], "APIGW.0308");
}

#[tokio::test]
async fn fault_bodies() {
    let sim = start().await;

    sim.add_fault(FaultRule::new(Service::Dws, Fault::MalformedJson).times(1))
        .unwrap();
    let resp = dws(&sim, PROJECT).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.bytes().await.unwrap();
    assert!(!body.is_empty());
    assert!(serde_json::from_slice::<Value>(&body).is_err());

    sim.add_fault(FaultRule::new(Service::Dws, Fault::MissingField { field: None }).times(1))
        .unwrap();
    let v = json_of(dws(&sim, PROJECT).await).await;
    for r in v["quotas"]["resources"].as_array().unwrap() {
        assert!(r.get("quota").is_none(), "{r}");
        assert!(r.get("used").is_some());
    }

    sim.add_fault(FaultRule::new(Service::Vm, Fault::MissingField { field: None }).times(1))
        .unwrap();
    let v = json_of(zl_demo(&sim, b"{}").await).await;
    assert!(v["response"]["images"][0].get("maxCount").is_none());
    assert!(v["response"]["images"][0].get("count").is_some());

    sim.add_fault(FaultRule::new(Service::Ims, Fault::WrongType { field: None }).times(1))
        .unwrap();
    let v = json_of(ims(&sim).await).await;
    assert!(v["quotas"]["resources"][0]["quota"].is_string());
    sim.add_fault(
        FaultRule::new(
            Service::Evs,
            Fault::WrongType {
                field: Some("in_use".into()),
            },
        )
        .times(1),
    )
    .unwrap();
    let path = evs_path(PROJECT);
    let mut hw = Hw::new(&path);
    hw.query = &[("usage", "True")];
    let v = json_of(hw.send(&sim).await).await;
    assert!(v["quota_set"]["volumes"]["in_use"].is_string());
    assert!(v["quota_set"]["volumes"]["limit"].is_number());

    // Next requests are normal again.
    let v = json_of(ims(&sim).await).await;
    assert_eq!(v["quotas"]["resources"][0]["quota"], 20);
}

#[tokio::test]
async fn fault_oversized_body() {
    let sim = start().await;
    let size = 5 * 1024 * 1024;
    sim.add_fault(FaultRule::new(Service::Ims, Fault::Oversized { bytes: size }).times(1))
        .unwrap();
    let body = ims(&sim).await.bytes().await.unwrap();
    assert_eq!(body.len(), size);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["quotas"]["resources"][0]["quota"], 20);
}

#[tokio::test]
async fn fault_connection_reset() {
    let sim = start().await;
    sim.add_fault(FaultRule::new(Service::Vm, Fault::ConnectionReset).times(1))
        .unwrap();
    let host = sim.addr().to_string();
    let signed = zenlayer::sign(
        &zl_request(&host, "DescribeImageQuota", b"{}"),
        &demo_zl(),
        Timestamp::now(),
    )
    .unwrap();
    let err = try_send(
        &sim,
        "POST",
        "/api/v2/vm",
        signed.headers.iter(),
        b"{}".to_vec(),
    )
    .await
    .expect_err("the connection must be dropped without a response");
    assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
    assert_eq!(zl_demo(&sim, b"{}").await.status(), StatusCode::OK);
    assert_eq!(sim.counters().faults_served, 1);
}

#[tokio::test]
async fn fault_slow_drip() {
    let sim = start().await;
    let normal = ims(&sim).await.bytes().await.unwrap();
    sim.add_fault(
        FaultRule::new(
            Service::Ims,
            Fault::SlowDrip {
                chunk_bytes: 16,
                delay_ms: 20,
            },
        )
        .times(1),
    )
    .unwrap();
    let t = Instant::now();
    let resp = ims(&sim).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-length"],
        normal.len().to_string().as_str()
    );
    let body = resp.bytes().await.unwrap();
    let chunks = normal.len().div_ceil(16) as u32;
    assert!(
        t.elapsed() >= Duration::from_millis(20) * (chunks - 1),
        "{:?} for {chunks} chunks",
        t.elapsed()
    );
    assert_eq!(body, normal);
}

#[tokio::test]
async fn fault_ims_path_variant_404() {
    let sim = start().await;
    sim.add_fault(FaultRule::new(
        Service::Ims,
        Fault::ImsPathNotFound {
            path: ImsPath::ProjectInPath,
        },
    ))
    .unwrap();
    let resp = ims(&sim).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(resp).await["error_code"], "APIGW.0101");
    let mut hw = Hw::new("/v1/cloudimages/quota");
    hw.project_header = Some(PROJECT);
    assert_eq!(hw.send(&sim).await.status(), StatusCode::OK);

    sim.clear_faults(Some(Service::Ims));
    sim.add_fault(FaultRule::new(
        Service::Ims,
        Fault::ImsPathNotFound {
            path: ImsPath::ProjectHeader,
        },
    ))
    .unwrap();
    assert_eq!(hw.send(&sim).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(ims(&sim).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn fault_shape_variants() {
    let sim = start().await;

    let doc = sim
        .add_fault(FaultRule::new(Service::Vm, Fault::ZenlayerDocShape))
        .unwrap();
    let v = json_of(zl_demo(&sim, b"{}").await).await;
    assert!(v["response"].get("images").is_none());
    assert_eq!(
        v["response"]["imageRegionQuota"][0],
        json!({"regionId": "sa-jeddah-1a", "count": "0", "maxCount": "5"})
    );
    // Doc shape with integers.
    sim.add_fault(FaultRule::new(
        Service::Vm,
        Fault::NumbersAsStrings { strings: false },
    ))
    .unwrap();
    let v = json_of(zl_demo(&sim, b"{}").await).await;
    assert_eq!(v["response"]["imageRegionQuota"][0]["maxCount"], 5);
    sim.remove_fault(doc);
    sim.clear_faults(Some(Service::Vm));
    sim.add_fault(FaultRule::new(
        Service::Vm,
        Fault::NumbersAsStrings { strings: true },
    ))
    .unwrap();
    let v = json_of(zl_demo(&sim, b"{}").await).await;
    assert_eq!(
        v["response"]["images"][1],
        json!({"zoneId": "asia-east-1a", "count": "4", "maxCount": "5"})
    );

    sim.add_fault(FaultRule::new(
        Service::Dws,
        Fault::NumbersAsStrings { strings: false },
    ))
    .unwrap();
    sim.add_fault(
        FaultRule::new(
            Service::Dws,
            Fault::DwsUnit {
                style: UnitStyle::Null,
            },
        )
        .times(1),
    )
    .unwrap();
    let v = json_of(dws(&sim, PROJECT).await).await;
    assert_eq!(
        v["quotas"]["resources"][0],
        json!({"type": "instances", "used": 3, "quota": 100, "unit": null})
    );
    assert_eq!(v["quotas"]["resources"][2]["unit"], "GB");
    sim.add_fault(
        FaultRule::new(
            Service::Dws,
            Fault::DwsUnit {
                style: UnitStyle::Absent,
            },
        )
        .times(1),
    )
    .unwrap();
    let v = json_of(dws(&sim, PROJECT).await).await;
    assert!(v["quotas"]["resources"][0].get("unit").is_none());
    assert_eq!(v["quotas"]["resources"][4]["unit"], "GB");

    // Shape faults only make sense for their services.
    assert!(
        sim.add_fault(FaultRule::new(Service::Ims, Fault::ZenlayerDocShape))
            .is_err()
    );
    assert!(
        sim.add_fault(FaultRule::new(
            Service::Evs,
            Fault::DwsUnit {
                style: UnitStyle::Null
            }
        ))
        .is_err()
    );
}

#[tokio::test]
async fn faults_are_scoped_to_a_key() {
    let sim = start().await;
    sim.add_fault(
        FaultRule::new(
            Service::Dws,
            Fault::Status {
                status: 500,
                retry_after: None,
                body: None,
            },
        )
        .key("broken"),
    )
    .unwrap();
    assert_eq!(dws(&sim, PROJECT).await.status(), StatusCode::OK);
    assert_eq!(
        dws(&sim, "broken").await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    // Other services are unaffected.
    assert_eq!(
        Hw::new("/v1/broken/cloudimages/quota")
            .send(&sim)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(sim.faults().len(), 1, "until cleared");
    sim.clear_faults(None);
    assert_eq!(dws(&sim, "broken").await.status(), StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// Counters and the admin HTTP API
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn counters_count() {
    let sim = start().await;
    ims(&sim).await;
    dws(&sim, PROJECT).await;
    dws(&sim, "p2").await;
    zl_demo(&sim, b"{}").await;
    let path = format!("/v1.0/{PROJECT}/quotas");
    let mut hw = Hw::new(&path);
    hw.creds = HuaweiCredentials::new(DEMO_ACCESS_KEY, "bad");
    hw.send(&sim).await;
    client()
        .get(format!("{}/nowhere", sim.base_url()))
        .send()
        .await
        .unwrap();
    client()
        .get(format!("{}/_sim/health", sim.base_url()))
        .send()
        .await
        .unwrap();

    let c = sim.counters();
    assert_eq!(c.total, 6, "admin requests are not counted: {c:?}");
    assert_eq!(c.service(Service::Ims), 1);
    assert_eq!(c.service(Service::Dws), 3);
    assert_eq!(c.service(Service::Evs), 0);
    assert_eq!(c.service(Service::Vm), 1);
    assert_eq!(c.key(Service::Dws, PROJECT), 1, "auth failures have no key");
    assert_eq!(c.key(Service::Dws, "p2"), 1);
    assert_eq!(c.key(Service::Vm, "demo"), 1);
    assert_eq!(c.auth_failures, 1);
    assert_eq!(c.faults_served, 0);
    // Arrival times per key, from the simulator's clock.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let dws_p2 = &c.recent["dws/p2"];
    assert_eq!(dws_p2.len(), 1);
    assert!(now - dws_p2[0] < 10_000, "{dws_p2:?} vs {now}");
    assert!(!c.recent.contains_key("dws/nope"));
    // Only the last RECENT arrivals are kept, oldest first.
    for _ in 0..cloudquota_sim::RECENT_ARRIVALS + 3 {
        dws(&sim, "p3").await;
    }
    let c = sim.counters();
    assert_eq!(
        c.key(Service::Dws, "p3"),
        cloudquota_sim::RECENT_ARRIVALS as u64 + 3
    );
    let p3 = &c.recent["dws/p3"];
    assert_eq!(p3.len(), cloudquota_sim::RECENT_ARRIVALS);
    assert!(p3.windows(2).all(|w| w[0] <= w[1]), "{p3:?}");

    sim.reset_counters();
    let c = sim.counters();
    assert_eq!((c.total, c.auth_failures), (0, 0));
    assert!(c.per_key.is_empty() && c.recent.is_empty());
}

#[tokio::test]
async fn admin_http_api() {
    let sim = start().await;
    let http = client();
    let url = |p: &str| format!("{}/_sim{p}", sim.base_url());

    let v: Value = http
        .get(url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "ok");

    // Set one resource, read it back through the provider API.
    let resp = http
        .post(url(&format!("/quota/ims/{PROJECT}")))
        .json(&json!({"resource": "image", "used": 18, "limit": 25}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["used"], 18);
    let v = json_of(ims(&sim).await).await;
    assert_eq!(v["quotas"]["resources"][0]["quota"], 25);

    // Replace a set, read it back through the admin API.
    let resp = http
        .put(url("/quota/vm/demo"))
        .json(&json!({"resources": [{"name": "image", "zone": "z1", "used": 1, "limit": 2}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = http
        .get(url("/quota/vm/demo"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["resources"][0]["zone"], "z1");
    let v = json_of(zl_demo(&sim, b"{}").await).await;
    assert_eq!(
        v["response"]["images"],
        json!([{"zoneId": "z1", "count": 1, "maxCount": 2}])
    );

    // Validation errors.
    let resp = http
        .post(url("/quota/nope/x"))
        .json(&json!({"resource": "image"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.json::<Value>().await.unwrap()["error"].is_string());
    let resp = http.post(url("/faults")).body("{").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // Faults.
    let resp = http
        .post(url("/faults"))
        .json(&json!({"service": "dws", "count": 1, "fault": {"kind": "status", "status": 429, "retry_after": 3}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let id = resp.json::<Value>().await.unwrap()["id"].as_u64().unwrap();
    let list: Value = http
        .get(url("/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["fault"]["kind"], "status");
    let resp = dws(&sim, PROJECT).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "3");
    assert_eq!(json_of(resp).await["error_code"], "APIGW.0308");
    assert_eq!(dws(&sim, PROJECT).await.status(), StatusCode::OK);
    let resp = http
        .post(url("/faults"))
        .json(&json!({"service": "vm", "fault": {"kind": "latency", "ms": 1}}))
        .send()
        .await
        .unwrap();
    let id = resp.json::<Value>().await.unwrap()["id"].as_u64().unwrap();
    let resp = http
        .delete(url(&format!("/faults/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = http
        .delete(url(&format!("/faults/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    http.post(url("/faults"))
        .json(&json!({"service": "evs", "key": "k", "fault": {"kind": "connection_reset"}}))
        .send()
        .await
        .unwrap();
    let resp = http
        .delete(url("/faults?service=evs"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(sim.faults().is_empty());

    // Credentials and tokens.
    let resp = http
        .post(url("/credentials"))
        .json(&json!({"account": "ops", "access_key": "OPSAK", "secret_key": "ops-sk"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let ops = ZenlayerCredentials::new("OPSAK", "ops-sk").unwrap();
    let resp = zl(&sim, "DescribeImageQuota", b"{}", &ops, Timestamp::now()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = http.delete(url("/credentials/OPSAK")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = zl(&sim, "DescribeImageQuota", b"{}", &ops, Timestamp::now()).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = http
        .post(url("/tokens"))
        .json(&json!({"account": "ops", "token": "ops-token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(zl_bearer(&sim, "ops-token").await.status(), StatusCode::OK);
    let resp = http.delete(url("/tokens/ops-token")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        zl_bearer(&sim, "ops-token").await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Counters over HTTP, then reset.
    let c: Value = http
        .get(url("/counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(c["total"].as_u64().unwrap() >= 7);
    assert_eq!(c["per_service"]["dws"], 2);
    assert_eq!(c["auth_failures"], 2);
    assert_eq!(c["faults_served"], 1);
    let c: Value = http
        .post(url("/counters/reset"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(c["total"], 0);

    // Full reset: seed data back, removed demo credential restored.
    sim.remove_credential(DEMO_ACCESS_KEY);
    let resp = http.post(url("/reset")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let v = json_of(ims(&sim).await).await;
    assert_eq!(v["quotas"]["resources"][0]["quota"], 20);

    let resp = http.get(url("/nope")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn refuses_non_loopback_and_shuts_down() {
    let err = sim::start(SimConfig::default().listen("0.0.0.0:0".parse().unwrap()))
        .await
        .err()
        .expect("non-loopback must be refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);

    let sim = start().await;
    let addr = sim.addr();
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    sim.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn binary_prints_address_and_exits_on_sigterm() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let mut child = Command::new(env!("CARGO_BIN_EXE_cloudquota-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--credential",
            "acct:BINAK:bin-secret",
            "--token",
            "acct:bin-token",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        line
    });
    let first = tokio::time::timeout(Duration::from_secs(20), first)
        .await
        .unwrap()
        .unwrap();
    let base = first
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let v: Value = client()
        .get(format!("{base}/_sim/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "ok");

    // The --token flag took effect.
    let host = base.trim_start_matches("http://").to_string();
    let req = zl_request(&host, "DescribeImageQuota", b"{}");
    let headers = zenlayer::bearer_headers(&req, &SecretString::from("bin-token")).unwrap();
    let mut rb = client().post(format!("{base}/api/v2/vm"));
    for (k, v) in headers.iter() {
        rb = rb.header(k, v);
    }
    assert_eq!(rb.body("{}").send().await.unwrap().status(), StatusCode::OK);

    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");

    let bad = Command::new(env!("CARGO_BIN_EXE_cloudquota-sim"))
        .args(["--listen", "0.0.0.0:0"])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(bad.stdout.is_empty());
}
