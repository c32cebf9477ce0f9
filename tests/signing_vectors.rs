//! Byte-for-byte comparison of `cloudquota::sign` with vectors produced by the official Python
//! SDKs' own signing code (`hack/gen-vectors.sh` -> `tests/vectors/*.json`).
//!
//! `SIGNING_VECTORS_DIR` may point at another directory with the same two files (used to check
//! that a perturbed copy makes these tests fail).

use std::path::PathBuf;

use cloudquota::sign::huawei::{self, HuaweiCredentials, HuaweiRequest};
use cloudquota::sign::zenlayer::{self, ZenlayerCredentials, ZenlayerRequest};
use cloudquota::sign::{SecretString, Signed};
use jiff::Timestamp;
use serde_json::Value;

const MIN_VECTORS: usize = 30;

fn load(file: &str) -> Value {
    let dir = std::env::var_os("SIGNING_VECTORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors"));
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn vectors(doc: &Value) -> &Vec<Value> {
    let v = doc["vectors"].as_array().expect("`vectors` array");
    assert!(
        v.len() >= MIN_VECTORS,
        "only {} vectors; expected at least {MIN_VECTORS}",
        v.len()
    );
    assert_eq!(doc["count"].as_u64(), Some(v.len() as u64), "`count` field");
    v
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` is not a string"))
}

fn opt<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn pairs(v: &Value) -> Vec<(&str, &str)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|p| (p[0].as_str().unwrap(), p[1].as_str().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

fn owned_pairs(v: &Value) -> Vec<(String, String)> {
    pairs(v)
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect()
}

/// Unix seconds as an integer or float (the generator fixed `time.time()` to this).
fn unix_timestamp(v: &Value) -> Timestamp {
    if let Some(i) = v.as_i64() {
        return Timestamp::from_second(i).unwrap();
    }
    let f = v.as_f64().expect("numeric timestamp");
    let secs = f.trunc();
    let nanos = ((f - secs) * 1e9).round() as i32;
    Timestamp::new(secs as i64, nanos.min(999_999_999)).unwrap()
}

#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, name: &str, what: &str, got: &str, want: Option<&str>) {
        if let Some(want) = want
            && got != want
        {
            self.0.push(format!(
                "[{name}] {what}:\n   got: {got:?}\n  want: {want:?}"
            ));
        }
    }

    fn check_headers(&mut self, name: &str, signed: &[(String, String)], want: &Value) {
        if want.is_null() {
            return;
        }
        let want = owned_pairs(want);
        if signed != want.as_slice() {
            self.0.push(format!(
                "[{name}] headers:\n   got: {signed:?}\n  want: {want:?}"
            ));
        }
    }

    fn finish(self, total: usize) {
        assert!(
            self.0.is_empty(),
            "{} of {total} vectors failed:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

fn check_signed(f: &mut Failures, name: &str, signed: &Signed, exp: &Value) {
    f.check(
        name,
        "authorization",
        signed.authorization(),
        Some(s(exp, "authorization")),
    );
    f.check(
        name,
        "canonical_request",
        &signed.canonical_request,
        opt(exp, "canonical_request"),
    );
    f.check(
        name,
        "string_to_sign",
        &signed.string_to_sign,
        opt(exp, "string_to_sign"),
    );
    f.check(name, "uri", &signed.path_and_query, opt(exp, "uri"));
    f.check_headers(name, signed.headers.as_slice(), &exp["headers"]);
}

#[test]
fn huawei_sdk_vectors() {
    let doc = load("huaweicloud_sign.json");
    assert_eq!(doc["algorithm"], "SDK-HMAC-SHA256");
    let all = vectors(&doc);
    let mut f = Failures::default();
    for v in all {
        let name = s(v, "name");
        let inp = &v["input"];
        let exp = &v["expected"];
        let query = pairs(&inp["query"]);
        let headers = pairs(&inp["headers"]);
        let req = HuaweiRequest {
            method: s(inp, "method"),
            host: s(inp, "host"),
            path: s(inp, "path"),
            query: &query,
            headers: &headers,
            body: s(inp, "body").as_bytes(),
            project_id: opt(inp, "project_id"),
        };
        let mut creds = HuaweiCredentials::new(s(inp, "ak"), s(inp, "sk"));
        if let Some(token) = opt(inp, "security_token") {
            creds = creds.with_security_token(token);
        }
        let now: Timestamp = s(inp, "timestamp").parse().expect("RFC 3339 timestamp");
        match huawei::sign(&req, &creds, now) {
            Ok(signed) => check_signed(&mut f, name, &signed, exp),
            Err(e) => f.0.push(format!("[{name}] sign failed: {e}")),
        }
    }
    f.finish(all.len());
}

#[test]
fn zenlayer_sdk_vectors() {
    let doc = load("zenlayer_sign.json");
    assert_eq!(doc["algorithm"], "ZC2-HMAC-SHA256");
    let all = vectors(&doc);
    let mut f = Failures::default();
    let (mut signed_count, mut bearer_count) = (0, 0);
    for v in all {
        let name = s(v, "name");
        let inp = &v["input"];
        let exp = &v["expected"];
        let headers = pairs(&inp["headers"]);
        let req = ZenlayerRequest {
            method: s(inp, "method"),
            host: s(inp, "host"),
            service: opt(inp, "service").unwrap_or(zenlayer::VM_SERVICE),
            version: opt(inp, "version").unwrap_or(zenlayer::VM_API_VERSION),
            action: opt(inp, "action").unwrap_or("DescribeImageQuota"),
            content_type: s(inp, "content_type"),
            body: s(inp, "body").as_bytes(),
            headers: &headers,
            sdk_version: opt(inp, "sdk_version"),
            sdk_lang: opt(inp, "sdk_lang"),
        };
        if let Some(token) = opt(inp, "token") {
            bearer_count += 1;
            match zenlayer::bearer_headers(&req, &SecretString::from(token)) {
                Ok(h) => {
                    f.check(
                        name,
                        "authorization",
                        h.get("Authorization").unwrap_or_default(),
                        Some(s(exp, "authorization")),
                    );
                    f.check(name, "uri", &req.path(), opt(exp, "uri"));
                    f.check_headers(name, h.as_slice(), &exp["headers"]);
                }
                Err(e) => f.0.push(format!("[{name}] bearer failed: {e}")),
            }
            continue;
        }
        signed_count += 1;
        let creds = match ZenlayerCredentials::new(s(inp, "ak"), s(inp, "sk")) {
            Ok(c) => c,
            Err(e) => {
                f.0.push(format!("[{name}] credentials rejected: {e}"));
                continue;
            }
        };
        match zenlayer::sign(&req, &creds, unix_timestamp(&inp["timestamp"])) {
            Ok(signed) => check_signed(&mut f, name, &signed, exp),
            Err(e) => f.0.push(format!("[{name}] sign failed: {e}")),
        }
    }
    assert!(signed_count >= MIN_VECTORS, "{signed_count} signed vectors");
    assert!(bearer_count >= 1, "no bearer vectors");
    f.finish(all.len());
}

#[test]
fn vectors_cover_the_quota_apis() {
    let hw = load("huaweicloud_sign.json");
    let hw_paths: Vec<&str> = vectors(&hw)
        .iter()
        .map(|v| s(&v["input"], "path"))
        .collect();
    for needle in [
        "/v1/cloudimages/quota",
        "/quotas",
        "/os-quota-sets/",
        "/cloudservers/limits",
    ] {
        assert!(
            hw_paths.iter().any(|p| p.contains(needle)),
            "no Huawei vector for {needle}"
        );
    }
    assert!(
        vectors(&hw)
            .iter()
            .any(|v| !v["input"]["security_token"].is_null())
    );
    let zl = load("zenlayer_sign.json");
    assert!(
        vectors(&zl)
            .iter()
            .any(|v| v["input"]["action"] == "DescribeImageQuota")
    );
}

/// The ECS provider requests exactly the path the SDK's `EcsClient.show_server_limits` builds
/// (the SDK is the ground truth for an API no seed document covers), with no query.
#[test]
fn ecs_path_is_the_sdk_clients() {
    let hw = load("huaweicloud_sign.json");
    let clients: Vec<&Value> = vectors(&hw)
        .iter()
        .filter(|v| s(v, "source") == "client:EcsClient.show_server_limits_http_info")
        .filter(|v| opt(&v["input"], "project_id").is_some())
        .collect();
    assert!(
        !clients.is_empty(),
        "no EcsClient vectors with a project id; run hack/gen-vectors.sh"
    );
    for v in clients {
        let inp = &v["input"];
        let project = s(inp, "project_id");
        let ours = (cloudquota::providers::huawei_ecs::ECS.path)(
            &cloudquota::providers::huawei::segment(project),
        );
        assert_eq!(ours, s(inp, "path"), "{}", s(v, "name"));
        assert_eq!(s(inp, "method"), "GET");
        assert!(pairs(&inp["query"]).is_empty(), "{}", s(v, "name"));
        assert!(cloudquota::providers::huawei_ecs::ECS.query.is_empty());
    }
}
