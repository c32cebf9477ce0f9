//! Huawei Cloud IMS private image quota.
//!
//! Two documented paths: `GET /v1/cloudimages/quota` with an `X-Project-Id` header (seed 000,
//! and what the official SDKs call) and `GET /v1/{project_id}/cloudimages/quota` (seed 001).
//! The header form is tried first; on 404 the other is tried, and whichever works is remembered
//! per endpoint. `min`/`max` are the range the quota can be adjusted to, not usage.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::huawei::{get, parse_quota_resources, project_id, segment};
use super::{Credentials, ProviderError, QuotaProvider, Target, http::HttpClient, parse};
use crate::domain::model::{Quota, Sample};

/// Which documented path an endpoint answers on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathVariant {
    /// `/v1/cloudimages/quota` + `X-Project-Id`.
    ProjectHeader,
    /// `/v1/{project_id}/cloudimages/quota`.
    ProjectInPath,
}

impl PathVariant {
    fn other(self) -> PathVariant {
        match self {
            PathVariant::ProjectHeader => PathVariant::ProjectInPath,
            PathVariant::ProjectInPath => PathVariant::ProjectHeader,
        }
    }
}

#[derive(Default)]
pub struct Ims {
    /// Endpoint base URL -> the variant that last worked there.
    known: Mutex<HashMap<String, PathVariant>>,
}

impl Ims {
    /// The variant to try first for an endpoint.
    pub fn preferred(&self, endpoint: &str) -> PathVariant {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(endpoint)
            .copied()
            .unwrap_or(PathVariant::ProjectHeader)
    }

    fn remember(&self, endpoint: &str, v: PathVariant) {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(endpoint.to_string(), v);
    }

    async fn fetch_variant(
        &self,
        http: &HttpClient,
        target: &Target,
        creds: &Credentials,
        v: PathVariant,
    ) -> Result<Sample, ProviderError> {
        let project = project_id(target)?;
        let (url, body) = match v {
            PathVariant::ProjectHeader => {
                get(
                    http,
                    target,
                    creds,
                    "/v1/cloudimages/quota",
                    &[],
                    Some(project),
                )
                .await?
            }
            PathVariant::ProjectInPath => {
                get(
                    http,
                    target,
                    creds,
                    &format!("/v1/{}/cloudimages/quota", segment(project)),
                    &[],
                    None,
                )
                .await?
            }
        };
        Ok(Sample {
            endpoint: url.to_string(),
            quotas: parse(&body)?,
        })
    }
}

/// Parses a `ShowQuota` body.
pub fn parse(body: &[u8]) -> Result<Vec<Quota>, ProviderError> {
    parse_quota_resources(body, "IMS quota", |r, q| {
        q.min = parse::opt_int(r.get("min"), "min")?;
        q.max = parse::opt_int(r.get("max"), "max")?;
        Ok(())
    })
}

impl QuotaProvider for Ims {
    fn fetch<'a>(
        &'a self,
        http: &'a HttpClient,
        target: &'a Target,
        creds: &'a Credentials,
    ) -> BoxFuture<'a, Result<Sample, ProviderError>> {
        async move {
            let key = target.endpoint.as_str();
            let first = self.preferred(key);
            match self.fetch_variant(http, target, creds, first).await {
                Ok(s) => Ok(s),
                Err(ProviderError::NotFound { .. }) => {
                    let second = first.other();
                    let s = self.fetch_variant(http, target, creds, second).await?;
                    tracing::info!(endpoint = key, variant = ?second, "IMS quota answers on the other documented path; remembering it");
                    self.remember(key, second);
                    Ok(s)
                }
                Err(e) => Err(e),
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::Limit;

    #[test]
    fn seed_000_and_001_examples() {
        for body in [
            include_str!("../../tests/fixtures/seed_000_ims.json"),
            include_str!("../../tests/fixtures/seed_001_ims.json"),
        ] {
            let q = parse(body.as_bytes()).unwrap();
            assert_eq!(q.len(), 1);
            assert_eq!(
                (
                    q[0].name.as_str(),
                    q[0].used,
                    q[0].limit,
                    q[0].min,
                    q[0].max
                ),
                ("image", 0, Limit::Limited(20), Some(1), Some(1000))
            );
        }
    }

    #[test]
    fn sdk_resource_types_and_optional_range() {
        let body = br#"{"quotas":{"resources":[{"type":"image","used":3,"quota":20,"min":1,"max":1000},{"type":"image_shared","used":"2","quota":"10"},{"type":"image_member","used":0,"quota":-1,"extra":true}]},"unknown":1}"#;
        let q = parse(body).unwrap();
        assert_eq!(q[1].min, None);
        assert_eq!(q[1].used, 2);
        assert_eq!(q[2].limit, Limit::Unlimited);
    }

    #[test]
    fn bad_bodies() {
        assert!(
            parse(br#"{"quotas":{"resources":[{"type":"image","used":-2,"quota":20}]}}"#)
                .unwrap_err()
                .to_string()
                .contains("used: -2 is negative")
        );
        assert!(
            parse(br#"{"quotas":{"resources":[{"type":"image","used":1}]}}"#)
                .unwrap_err()
                .to_string()
                .contains("quota: missing")
        );
        assert!(
            parse(b"null")
                .unwrap_err()
                .to_string()
                .contains("quotas: missing")
        );
    }

    #[test]
    fn remembers_per_endpoint() {
        let ims = Ims::default();
        assert_eq!(ims.preferred("https://a"), PathVariant::ProjectHeader);
        ims.remember("https://a", PathVariant::ProjectInPath);
        assert_eq!(ims.preferred("https://a"), PathVariant::ProjectInPath);
        assert_eq!(ims.preferred("https://b"), PathVariant::ProjectHeader);
    }
}
