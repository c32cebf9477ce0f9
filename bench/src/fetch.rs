//! `fetch`: N sequential sign + fetch + parse rounds through `Providers::fetch` against an
//! external simulator, measuring this process's CPU; with `--breakdown` also signing alone and
//! parsing alone.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use cloudquota::crd::{Provider, Service};
use cloudquota::providers::http::{HttpClient, HttpConfig};
use cloudquota::providers::{Credentials, Providers, Target};
use cloudquota::sign::SecretString;

use crate::FetchArgs;
use crate::check_loopback;
use crate::process::process_cpu;

#[derive(Debug, Serialize, Deserialize)]
struct FetchResult {
    kind: String,
    client: String,
    service: String,
    fetches: u32,
    failures: u32,
    cpu_seconds: f64,
    wall_seconds: f64,
    cpu_us_per_fetch: f64,
    runtime: String,
    /// With --breakdown: CPU of signing one request and of parsing one answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sign_us: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parse_us: Option<f64>,
}

/// The fetch target and credentials the arguments describe.
fn target(a: &FetchArgs) -> Result<(Target, Credentials), String> {
    let (provider, service) = match a.service.as_str() {
        "ims" => (Provider::Huaweicloud, Service::Ims),
        "dws" => (Provider::Huaweicloud, Service::Dws),
        "evs" => (Provider::Huaweicloud, Service::Evs),
        "zenlayer" | "vm" => (Provider::Zenlayer, Service::Vm),
        s => return Err(format!("unknown service {s}")),
    };
    let project_id = match provider {
        Provider::Huaweicloud => Some(
            a.project_id
                .clone()
                .unwrap_or_else(|| "0605767c6200d5e22f4fc00e2b6ee5ae".into()),
        ),
        Provider::Zenlayer => None,
    };
    let target = Target {
        provider,
        service,
        endpoint: url::Url::parse(&a.endpoint).map_err(|e| e.to_string())?,
        project_id,
        zones: vec![],
    };
    let creds = Credentials::AccessKey {
        access_key_id: a.ak.clone(),
        secret_access_key: SecretString::from(a.sk.clone()),
        security_token: None,
    };
    Ok((target, creds))
}

/// Runs the rounds and returns the result as one JSON line.
pub async fn fetch(a: FetchArgs) -> Result<String, String> {
    check_loopback(&a.endpoint)?;
    let (target, creds) = target(&a)?;
    let http = HttpClient::new(&HttpConfig {
        allow_loopback: true,
        ..HttpConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let providers = Providers::default();
    let deadline = Instant::now() + a.max_time;
    for _ in 0..a.warmup {
        providers
            .fetch(&http, &target, &creds)
            .await
            .map_err(|e| format!("warm-up fetch: {e}"))?;
    }
    let mut failures = 0;
    let mut done = 0;
    let cpu0 = process_cpu();
    let wall0 = Instant::now();
    while done < a.fetches {
        match providers.fetch(&http, &target, &creds).await {
            Ok(s) => {
                if s.quotas.is_empty() {
                    failures += 1;
                }
            }
            Err(_) => failures += 1,
        }
        done += 1;
        if Instant::now() > deadline {
            break;
        }
    }
    let cpu = process_cpu() - cpu0;
    let wall = wall0.elapsed();
    let mut r = FetchResult {
        kind: "fetch".into(),
        client: "cloudquota".into(),
        service: a.service.clone(),
        fetches: done,
        failures,
        cpu_seconds: cpu.as_secs_f64(),
        wall_seconds: wall.as_secs_f64(),
        cpu_us_per_fetch: cpu.as_secs_f64() * 1e6 / done.max(1) as f64,
        runtime: a.runtime.clone(),
        sign_us: None,
        parse_us: None,
    };
    if a.breakdown {
        let n = a.fetches.max(1000);
        let (sign_us, parse_us) = if target.provider == Provider::Zenlayer {
            breakdown_zenlayer(&http, &target, &a, n).await?
        } else {
            breakdown_huawei(&http, &target, &creds, &a, n).await?
        };
        r.sign_us = Some(sign_us);
        r.parse_us = Some(parse_us);
    }
    if failures > 0 {
        return Err(format!("{failures} of {done} fetches failed"));
    }
    serde_json::to_string(&r).map_err(|e| e.to_string())
}

/// CPU µs per round of `n` rounds of `f`.
fn per_round<T>(n: u32, mut f: impl FnMut() -> Result<T, String>) -> Result<f64, String> {
    let t = process_cpu();
    for _ in 0..n {
        std::hint::black_box(f()?);
    }
    Ok((process_cpu() - t).as_secs_f64() * 1e6 / n as f64)
}

/// Zenlayer: CPU µs of one signature and of one parse of a real answer (fetched once), each
/// averaged over `n` rounds.
async fn breakdown_zenlayer(
    http: &HttpClient,
    target: &Target,
    a: &FetchArgs,
    n: u32,
) -> Result<(f64, f64), String> {
    use cloudquota::providers::http::{Request, UpstreamLabels};
    use cloudquota::providers::{huawei, zenlayer_vm};
    use cloudquota::sign::zenlayer as zs;
    let host = huawei::host_port(&target.endpoint).map_err(|e| e.to_string())?;
    let keys = zs::ZenlayerCredentials::new(&a.ak, &a.sk).map_err(|e| e.to_string())?;
    let req = zs::ZenlayerRequest {
        method: "POST",
        host: &host,
        service: zs::VM_SERVICE,
        version: zs::VM_API_VERSION,
        action: "DescribeImageQuota",
        content_type: zs::CONTENT_TYPE_JSON,
        body: b"{}",
        headers: &[],
        sdk_version: None,
        sdk_lang: None,
    };
    let sign = per_round(n, || {
        zs::sign(&req, &keys, jiff::Timestamp::now()).map_err(|e| e.to_string())
    })?;
    let headers = zs::sign(&req, &keys, jiff::Timestamp::now())
        .map_err(|e| e.to_string())?
        .headers
        .into_vec();
    let mut url = target.endpoint.clone();
    url.set_path(&format!("/api/v2/{}", zs::VM_SERVICE));
    let resp = http
        .send(
            &UpstreamLabels::for_target(target),
            Request {
                method: reqwest::Method::POST,
                url,
                headers: &headers,
                body: b"{}".to_vec(),
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    let parse = per_round(n, || {
        zenlayer_vm::parse(&resp.body, &[]).map_err(|e| e.to_string())
    })?;
    Ok((sign, parse))
}

/// Huawei: as [`breakdown_zenlayer`]. DWS and EVS: what their providers send; IMS: the SDK's
/// path with the X-Project-Id header.
async fn breakdown_huawei(
    http: &HttpClient,
    target: &Target,
    creds: &Credentials,
    a: &FetchArgs,
    n: u32,
) -> Result<(f64, f64), String> {
    use cloudquota::providers::{huawei, huawei_dws, huawei_evs, huawei_ims};
    use cloudquota::sign::huawei as hs;
    let host = huawei::host_port(&target.endpoint).map_err(|e| e.to_string())?;
    let p = target.project_id.clone().unwrap_or_default();
    let (path, query, header, parse) = match target.service {
        Service::Evs | Service::Dws => {
            let api = match target.service {
                Service::Evs => &huawei_evs::EVS,
                _ => &huawei_dws::DWS,
            };
            ((api.path)(&huawei::segment(&p)), api.query, None, api.parse)
        }
        _ => (
            "/v1/cloudimages/quota".to_string(),
            &[][..],
            Some(p.as_str()),
            huawei_ims::parse as fn(&[u8]) -> _,
        ),
    };
    let keys = hs::HuaweiCredentials::new(a.ak.clone(), SecretString::from(a.sk.clone()));
    let req = hs::HuaweiRequest {
        method: "GET",
        host: &host,
        path: &path,
        query,
        headers: &[("Content-Type", "application/json")],
        body: b"",
        project_id: header,
    };
    let sign = per_round(n, || {
        hs::sign(&req, &keys, jiff::Timestamp::now()).map_err(|e| e.to_string())
    })?;
    let (_, body) = huawei::get(http, target, creds, &path, query, header)
        .await
        .map_err(|e| e.to_string())?;
    let parse = per_round(n, || parse(&body).map_err(|e| e.to_string()))?;
    Ok((sign, parse))
}
