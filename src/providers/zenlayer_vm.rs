//! Zenlayer `DescribeImageQuota` (seed 004): custom image quota per zone.
//!
//! `POST /api/v2/vm` with `x-zc-action: DescribeImageQuota`. The official SDK's response shape
//! is `response.images[{zoneId, count, maxCount}]`; the doc's is
//! `response.imageRegionQuota[{regionId, count, maxCount}]` with numbers as strings. Both are
//! accepted. All zones are requested and `spec.zones` filters locally, so the request does not
//! depend on which filter field name (`regionIds`/`zoneIds`) an API version expects.

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::http::{self, HttpClient, UpstreamLabels};
use super::huawei::host_port;
use super::{Credentials, ProviderError, QuotaProvider, Target, parse};
use crate::domain::model::{Quota, Sample};
use crate::sign::ExposeSecret;
use crate::sign::zenlayer::{self, ZenlayerCredentials, ZenlayerRequest};

pub const ACTION: &str = "DescribeImageQuota";
/// The resource name used for the per-zone image quota.
pub const RESOURCE: &str = "image";

pub struct ZenlayerVm;

fn is_auth_code(code: &str) -> bool {
    let c = code.to_ascii_uppercase();
    [
        "AUTH",
        "SIGNATURE",
        "ACCESS_KEY",
        "TOKEN",
        "PERMISSION",
        "UNAUTHORIZED",
        "FORBIDDEN",
    ]
    .iter()
    .any(|k| c.contains(k))
}

/// A typed error from a Zenlayer error answer (`{code, message, requestId}`), which may come
/// with a 4xx/5xx status or, for some codes, with 200.
pub fn error(status: u16, retry_after: Option<std::time::Duration>, body: &[u8]) -> ProviderError {
    let (code, message) = parse::error_body(body);
    match code.as_deref() {
        Some("REQUEST_LIMIT_EXCEEDED") => ProviderError::Throttled {
            retry_after,
            message,
        },
        Some(c) if is_auth_code(c) => ProviderError::AuthFailed {
            status,
            code,
            message,
        },
        _ if status < 400 => ProviderError::Rejected {
            status,
            code,
            message,
        },
        _ => match http::classify(status, retry_after, body) {
            ProviderError::Rejected {
                status,
                code,
                message,
            } if code.as_deref().is_some_and(is_auth_code) => ProviderError::AuthFailed {
                status,
                code,
                message,
            },
            e => e,
        },
    }
}

/// Parses a `DescribeImageQuota` body, keeping only `zones` when given.
pub fn parse(body: &[u8], zones: &[String]) -> Result<Vec<Quota>, ProviderError> {
    let v = parse::json(body, "Zenlayer DescribeImageQuota")?;
    let response = match v.get("response") {
        Some(r) => parse::object(Some(r), "response")?,
        None => parse::object(Some(&v), "response")?,
    };
    let (list, field, zone_key) = match (response.get("images"), response.get("imageRegionQuota")) {
        (Some(images), _) => (images, "response.images", "zoneId"),
        (None, Some(regions)) => (regions, "response.imageRegionQuota", "regionId"),
        (None, None) => {
            return Err(ProviderError::InvalidResponse(
                "response: neither images nor imageRegionQuota present".into(),
            ));
        }
    };
    let items = parse::array(Some(list), field)?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = parse::within(parse::Item(field, i));
        // Tolerate the other shape's key inside either list.
        let zone_value = item.get(zone_key).or_else(|| {
            item.get(if zone_key == "zoneId" {
                "regionId"
            } else {
                "zoneId"
            })
        });
        let zone = parse::string(zone_value, zone_key).map_err(at)?;
        if !zones.is_empty() && !zones.contains(&zone) {
            continue;
        }
        let mut q = Quota::new(
            RESOURCE,
            parse::count(item.get("count"), "count").map_err(at)?,
            parse::limit(item.get("maxCount"), "maxCount").map_err(at)?,
        );
        q.zone = Some(zone);
        out.push(q);
    }
    Ok(out)
}

impl QuotaProvider for ZenlayerVm {
    fn fetch<'a>(
        &'a self,
        client: &'a HttpClient,
        target: &'a Target,
        creds: &'a Credentials,
    ) -> BoxFuture<'a, Result<Sample, ProviderError>> {
        async move {
            let host = host_port(&target.endpoint)?;
            let body = b"{}";
            let req = ZenlayerRequest {
                method: "POST",
                host: &host,
                service: zenlayer::VM_SERVICE,
                version: zenlayer::VM_API_VERSION,
                action: ACTION,
                content_type: zenlayer::CONTENT_TYPE_JSON,
                body,
                headers: &[],
                sdk_version: None,
                sdk_lang: None,
            };
            let sign_err = |e: crate::sign::SignError| ProviderError::Signing(e.to_string());
            let headers = match creds {
                Credentials::Bearer(token) => {
                    zenlayer::bearer_headers(&req, token).map_err(sign_err)?
                }
                Credentials::AccessKey {
                    access_key_id,
                    secret_access_key,
                    ..
                } => {
                    let keys =
                        ZenlayerCredentials::new(access_key_id, secret_access_key.expose_secret())
                            .map_err(sign_err)?;
                    zenlayer::sign(&req, &keys, Timestamp::now())
                        .map_err(sign_err)?
                        .headers
                }
            };
            let mut url = target.endpoint.clone();
            url.set_path(&req.path());
            url.set_query(None);
            let headers = headers.into_vec();
            let resp = client
                .send(
                    &UpstreamLabels::for_target(target),
                    http::Request {
                        method: reqwest::Method::POST,
                        url: url.clone(),
                        headers: &headers,
                        body: body.to_vec(),
                    },
                )
                .await?;
            if !(200..300).contains(&resp.status) {
                return Err(error(resp.status, resp.retry_after, &resp.body));
            }
            // Some errors arrive with 200: a code and no response.
            if let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(&resp.body)
                && o.get("response").is_none()
                && o.get("code").is_some_and(|c| !c.is_null())
            {
                return Err(error(resp.status, resp.retry_after, &resp.body));
            }
            Ok(Sample {
                endpoint: url.to_string(),
                quotas: parse(&resp.body, &target.zones)?,
            })
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::Limit;

    #[test]
    fn seed_004_doc_shape() {
        let q = parse(
            include_str!("../../tests/fixtures/seed_004_zenlayer.json").as_bytes(),
            &[],
        )
        .unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(
            (
                q[0].name.as_str(),
                q[0].zone.as_deref(),
                q[0].used,
                q[0].limit
            ),
            ("image", Some("sa-jeddah-1a"), 0, Limit::Limited(5))
        );
    }

    #[test]
    fn sdk_shape_and_zone_filter() {
        let body = br#"{"requestId":"r","response":{"requestId":"r","images":[{"zoneId":"asia-east-1a","count":4,"maxCount":5},{"zoneId":"na-west-1a","count":"1","maxCount":"5"}]}}"#;
        let all = parse(body, &[]).unwrap();
        assert_eq!(all.len(), 2);
        let one = parse(body, &["na-west-1a".to_string()]).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].used, 1);
    }

    #[test]
    fn bad_bodies_and_errors() {
        assert!(
            parse(
                br#"{"response":{"images":[{"count":1,"maxCount":5}]}}"#,
                &[]
            )
            .unwrap_err()
            .to_string()
            .contains("response.images[0].zoneId: missing")
        );
        assert!(
            parse(br#"{"response":{}}"#, &[])
                .unwrap_err()
                .to_string()
                .contains("neither images nor imageRegionQuota")
        );
        assert!(
            parse(
                br#"{"response":{"images":[{"zoneId":"z","count":"x","maxCount":5}]}}"#,
                &[]
            )
            .unwrap_err()
            .to_string()
            .contains("count")
        );
        let throttled = error(
            400,
            None,
            br#"{"requestId":"r","code":"REQUEST_LIMIT_EXCEEDED","message":"slow down"}"#,
        );
        assert_eq!(throttled.reason(), "Throttled");
        assert_eq!(error(429, None, b"{}").reason(), "Throttled");
        assert_eq!(
            error(401, None, br#"{"code":"INVALID_SIGNATURE","message":"no"}"#).reason(),
            "AuthFailed"
        );
        assert_eq!(
            error(400, None, br#"{"code":"SIGNATURE_FAILURE","message":"no"}"#).reason(),
            "AuthFailed"
        );
        assert_eq!(
            error(
                404,
                None,
                br#"{"code":"INVALID_REGION_NOT_FOUND","message":"no"}"#
            )
            .reason(),
            "NotFound"
        );
    }
}
