//! Provider clients: one file per provider service, all behind [`QuotaProvider`].
//!
//! Each provider file has two halves: a pure parser (`parse`, unit-tested on the seed
//! documents' examples and the SDKs' shapes) and a thin `fetch` that builds, signs and sends the
//! request through the shared [`http::HttpClient`].

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use url::Url;

use crate::crd::{Provider, Service};
use crate::domain::model::Sample;
use crate::sign::{ExposeSecret, SecretString};

pub mod errors;
pub mod http;
pub mod huawei;
pub mod huawei_dws;
pub mod huawei_ecs;
pub mod huawei_evs;
pub mod huawei_ims;
pub mod parse;
pub mod zenlayer_vm;

pub use errors::ProviderError;

/// Default Zenlayer API endpoint.
pub const ZENLAYER_DEFAULT_ENDPOINT: &str = "https://console.zenlayer.com/api/v2/vm";

/// Credentials read from a Secret. Debug never shows secret values.
#[derive(Clone, Debug)]
pub enum Credentials {
    AccessKey {
        access_key_id: String,
        secret_access_key: SecretString,
        security_token: Option<SecretString>,
    },
    Bearer(SecretString),
}

impl Credentials {
    /// Every secret string, for scrubbing provider messages that might echo one back.
    pub fn secret_values(&self) -> Vec<&str> {
        match self {
            Credentials::AccessKey {
                access_key_id,
                secret_access_key,
                security_token,
            } => {
                let mut v = vec![access_key_id.as_str(), secret_access_key.expose_secret()];
                v.extend(security_token.as_ref().map(|t| t.expose_secret()));
                v
            }
            Credentials::Bearer(t) => vec![t.expose_secret()],
        }
    }
}

/// Where and what to fetch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub provider: Provider,
    pub service: Service,
    /// Base URL (already checked against the allowlist).
    pub endpoint: Url,
    pub project_id: Option<String>,
    pub zones: Vec<String>,
}

/// The endpoint a target uses when the spec sets none.
pub fn default_endpoint(
    provider: Provider,
    service: Service,
    region: Option<&str>,
) -> Result<String, ProviderError> {
    match provider {
        Provider::Zenlayer => Ok(ZENLAYER_DEFAULT_ENDPOINT.to_string()),
        Provider::Huaweicloud => {
            let region = region.ok_or_else(|| {
                ProviderError::InvalidConfig(
                    "region or endpoint is required for huaweicloud".into(),
                )
            })?;
            Ok(format!(
                "https://{}.{}.myhuaweicloud.com",
                service.as_str(),
                region
            ))
        }
    }
}

/// One provider service's quota API.
pub trait QuotaProvider: Send + Sync {
    fn fetch<'a>(
        &'a self,
        http: &'a http::HttpClient,
        target: &'a Target,
        creds: &'a Credentials,
    ) -> BoxFuture<'a, Result<Sample, ProviderError>>;
}

/// All providers, one instance each (IMS remembers which path works per endpoint).
#[derive(Clone, Default)]
pub struct Providers {
    ims: Arc<huawei_ims::Ims>,
}

impl Providers {
    pub fn for_service(
        &self,
        provider: Provider,
        service: Service,
    ) -> Result<&dyn QuotaProvider, ProviderError> {
        match (provider, service) {
            (Provider::Huaweicloud, Service::Ims) => Ok(self.ims.as_ref()),
            (Provider::Huaweicloud, Service::Dws) => Ok(&huawei_dws::DWS),
            (Provider::Huaweicloud, Service::Evs) => Ok(&huawei_evs::EVS),
            (Provider::Huaweicloud, Service::Ecs) => Ok(&huawei_ecs::ECS),
            (Provider::Zenlayer, Service::Vm) => Ok(&zenlayer_vm::ZenlayerVm),
            (p, s) => Err(ProviderError::InvalidConfig(format!(
                "service {s} is not offered by provider {p}"
            ))),
        }
    }

    /// Fetches with retries for throttling, 5xx and transport errors.
    pub async fn fetch(
        &self,
        http: &http::HttpClient,
        target: &Target,
        creds: &Credentials,
    ) -> Result<Sample, ProviderError> {
        let provider = self.for_service(target.provider, target.service)?;
        http.retry
            .run(|| provider.fetch(http, target, creds))
            .await
            .map_err(|e| e.scrubbed(&creds.secret_values()))
    }
}

/// Time budget hints for callers.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
