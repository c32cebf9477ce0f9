//! The one HTTP client all providers share: rustls, timeouts, no redirects, a capped body, a
//! resolver that never connects to link-local (metadata) addresses, and bounded retries.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::Future;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rand::Rng;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

use super::ProviderError;
use crate::domain::allowlist::forbidden_ip;

/// Default cap on a response body.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub provider: String,
    pub service: String,
}

impl UpstreamLabels {
    pub fn for_target(target: &super::Target) -> UpstreamLabels {
        UpstreamLabels {
            provider: target.provider.to_string(),
            service: target.service.to_string(),
        }
    }
}

/// HTTP settings.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    pub connect_timeout: Duration,
    /// Whole request, including reading the body.
    pub timeout: Duration,
    pub max_body: usize,
    /// Extra PEM CA bundle (private clouds); system roots stay trusted.
    pub ca_bundle: Option<std::path::PathBuf>,
    /// Allow connecting to loopback addresses (tests and the demo).
    pub allow_loopback: bool,
    pub retry: RetryPolicy,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            max_body: DEFAULT_MAX_BODY,
            ca_bundle: None,
            allow_loopback: false,
            retry: RetryPolicy::default(),
        }
    }
}

/// Exponential backoff with full jitter, honouring `Retry-After`, bounded in attempts and time.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub max_delay: Duration,
    /// No retry starts after this much time has passed since the first attempt.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            budget: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        }
    }

    /// The delay before retry number `attempt` (1-based), or `None` to give up.
    pub fn delay(&self, attempt: u32, err: &ProviderError, elapsed: Duration) -> Option<Duration> {
        if attempt >= self.max_attempts || !err.is_retryable() {
            return None;
        }
        let delay = match err.retry_after() {
            // The provider said when: waiting less only earns another 429.
            Some(after) => after,
            None => {
                let cap = self
                    .base
                    .saturating_mul(1 << attempt.min(16))
                    .min(self.max_delay);
                cap.mul_f64(rand::rng().random_range(0.5..=1.0))
            }
        };
        (elapsed + delay <= self.budget).then_some(delay)
    }

    pub async fn run<'a, T, F, Fut>(&self, mut f: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>> + 'a,
    {
        let start = Instant::now();
        let mut attempt = 1;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) => match self.delay(attempt, &e, start.elapsed()) {
                    Some(d) => {
                        tracing::debug!(
                            attempt,
                            reason = e.reason(),
                            delay_ms = d.as_millis() as u64,
                            "retrying provider request"
                        );
                        tokio::time::sleep(d).await;
                        attempt += 1;
                    }
                    None => return Err(e),
                },
            }
        }
    }
}

/// Resolves names with the system resolver and drops addresses that are never a cloud API.
struct GuardedResolver {
    allow_loopback: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !forbidden_ip(a.ip()) && (allow_loopback || !a.ip().is_loopback()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no allowed address").into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A response as providers see it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

/// A request ready to send (already signed).
#[derive(Debug)]
pub struct Request<'a> {
    pub method: reqwest::Method,
    pub url: Url,
    pub headers: &'a [(String, String)],
    pub body: Vec<u8>,
}

#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    max_body: usize,
    pub retry: RetryPolicy,
    upstream_requests: Family<UpstreamLabels, Counter>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

fn load_ca(path: &Path) -> Result<Vec<reqwest::Certificate>, ProviderError> {
    let pem = std::fs::read(path)
        .map_err(|e| ProviderError::InvalidConfig(format!("CA bundle {}: {e}", path.display())))?;
    reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| ProviderError::InvalidConfig(format!("CA bundle {}: {e}", path.display())))
}

impl HttpClient {
    pub fn new(config: &HttpConfig) -> Result<HttpClient, ProviderError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            // A redirect would carry a signed request (or a bearer token) to another host.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("cloudquota/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver {
                allow_loopback: config.allow_loopback,
            }));
        if let Some(path) = &config.ca_bundle {
            builder = builder.tls_certs_merge(load_ca(path)?);
        }
        let client = builder
            .build()
            .map_err(|e| ProviderError::InvalidConfig(format!("HTTP client: {e}")))?;
        Ok(HttpClient {
            client,
            max_body: config.max_body,
            retry: config.retry.clone(),
            upstream_requests: Family::default(),
        })
    }

    /// Requests sent upstream, by provider and service (registered by the metrics module).
    pub fn upstream_requests(&self) -> &Family<UpstreamLabels, Counter> {
        &self.upstream_requests
    }

    /// Sends one request and reads at most `max_body` bytes of the answer.
    pub async fn send(
        &self,
        labels: &UpstreamLabels,
        req: Request<'_>,
    ) -> Result<Response, ProviderError> {
        self.upstream_requests.get_or_create(labels).inc();
        let mut builder = self.client.request(req.method, req.url);
        for (k, v) in req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        if !req.body.is_empty() {
            builder = builder.body(req.body);
        }
        let mut resp = builder.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        if let Some(len) = resp.content_length()
            && len as usize > self.max_body
        {
            return Err(too_large(self.max_body));
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > self.max_body {
                return Err(too_large(self.max_body));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            retry_after,
            body: body.freeze(),
        })
    }
}

fn too_large(max: usize) -> ProviderError {
    ProviderError::InvalidResponse(format!("response body exceeds {max} bytes"))
}

/// reqwest errors, described without the URL's query or any header.
fn transport(e: reqwest::Error) -> ProviderError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the response failed"
    } else if e.is_request() {
        "sending the request failed"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(&e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    let host = e
        .url()
        .and_then(|u| u.host_str().map(|h| format!(" to {h}")))
        .unwrap_or_default();
    if detail.is_empty() {
        ProviderError::Transport(format!("{kind}{host}"))
    } else {
        ProviderError::Transport(format!("{kind}{host}: {}", super::errors::clip(&detail)))
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(3600)));
    }
    let when = k8s_openapi::jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let now = k8s_openapi::jiff::Timestamp::now();
    let d = when.duration_since(now);
    Some(if d.is_negative() {
        Duration::ZERO
    } else {
        d.unsigned_abs().min(Duration::from_secs(3600))
    })
}

/// Maps a non-success status and body to a typed error.
pub fn classify(status: u16, retry_after: Option<Duration>, body: &[u8]) -> ProviderError {
    let (code, message) = super::parse::error_body(body);
    match status {
        401 | 403 => ProviderError::AuthFailed {
            status,
            code,
            message,
        },
        404 => ProviderError::NotFound { code, message },
        429 => ProviderError::Throttled {
            retry_after,
            message,
        },
        500..=599 => ProviderError::Upstream {
            status,
            code,
            message,
        },
        _ => ProviderError::Rejected {
            status,
            code,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn resolves(name: &str, allow_loopback: bool) -> Result<Vec<SocketAddr>, String> {
        let r = GuardedResolver { allow_loopback };
        match r.resolve(name.parse().unwrap()).await {
            Ok(addrs) => Ok(addrs.collect()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[tokio::test]
    async fn resolver_drops_forbidden_and_loopback_addresses() {
        // IP literals resolve to themselves without DNS: the guard is what refuses them.
        for name in [
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "100.100.100.200",
        ] {
            let e = resolves(name, true).await.unwrap_err();
            assert!(e.contains("resolves to no allowed address"), "{name}: {e}");
        }
        assert!(resolves("127.0.0.1", false).await.is_err());
        assert_eq!(
            resolves("127.0.0.1", true).await.unwrap(),
            ["127.0.0.1:0".parse::<SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn retry_after_formats() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("99999"), Some(Duration::from_secs(3600)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn classify_statuses() {
        assert_eq!(classify(401, None, b"{}").reason(), "AuthFailed");
        assert_eq!(classify(403, None, b"{}").reason(), "AuthFailed");
        assert_eq!(classify(404, None, b"{}").reason(), "NotFound");
        assert_eq!(
            classify(429, Some(Duration::from_secs(3)), b"{}").retry_after(),
            Some(Duration::from_secs(3))
        );
        assert_eq!(classify(503, None, b"").reason(), "UpstreamError");
        assert_eq!(
            classify(
                400,
                None,
                br#"{"error":{"code":"EVS.0001","message":"bad"}}"#
            )
            .to_string(),
            "request rejected (HTTP 400, EVS.0001): bad"
        );
    }

    #[test]
    fn retry_policy_delays() {
        let p = RetryPolicy::default();
        let throttled = ProviderError::Throttled {
            retry_after: Some(Duration::from_secs(2)),
            message: String::new(),
        };
        assert_eq!(
            p.delay(1, &throttled, Duration::ZERO),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            p.delay(3, &throttled, Duration::ZERO),
            None,
            "attempts bounded"
        );
        assert_eq!(
            p.delay(1, &throttled, Duration::from_secs(19)),
            None,
            "time bounded"
        );
        let long = ProviderError::Throttled {
            retry_after: Some(Duration::from_secs(60)),
            message: String::new(),
        };
        assert_eq!(
            p.delay(1, &long, Duration::ZERO),
            None,
            "a long Retry-After is left to the caller"
        );
        let e5 = ProviderError::Upstream {
            status: 503,
            code: None,
            message: String::new(),
        };
        let d = p.delay(1, &e5, Duration::ZERO).unwrap();
        assert!(
            d >= Duration::from_millis(200) && d <= Duration::from_millis(400),
            "{d:?}"
        );
        assert_eq!(
            p.delay(
                1,
                &ProviderError::InvalidResponse(String::new()),
                Duration::ZERO
            ),
            None
        );
    }
}
