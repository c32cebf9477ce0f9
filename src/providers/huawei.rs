//! What the three Huawei Cloud services share: AK/SK signing (`SDK-HMAC-SHA256`) and the GET
//! that every quota API is.

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use url::Url;

use super::http::{self, HttpClient, UpstreamLabels};
use super::{Credentials, ProviderError, QuotaProvider, Target, parse};
use crate::domain::model::{Quota, Sample};
use crate::sign::huawei::{HuaweiCredentials, HuaweiRequest, sign};

/// Parses the `{"quotas":{"resources":[{type, used, quota, ...}]}}` shape IMS and DWS share;
/// `extra` reads the service's own optional fields of each line.
pub fn parse_quota_resources(
    body: &[u8],
    what: &str,
    extra: impl Fn(&serde_json::Value, &mut Quota) -> Result<(), ProviderError>,
) -> Result<Vec<Quota>, ProviderError> {
    let v = parse::json(body, what)?;
    let quotas = parse::object(v.get("quotas"), "quotas")?;
    let resources = parse::array(quotas.get("resources"), "quotas.resources")?;
    resources
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let at = parse::within(parse::Item("quotas.resources", i));
            let mut q = Quota::new(
                parse::string(r.get("type"), "type").map_err(at)?,
                parse::count(r.get("used"), "used").map_err(at)?,
                parse::limit(r.get("quota"), "quota").map_err(at)?,
            );
            extra(r, &mut q).map_err(at)?;
            Ok(q)
        })
        .collect()
}

/// Percent-encodes one path segment the way the SDK quotes path parameters (`safe=''`).
pub fn segment(s: &str) -> String {
    // RFC 3986 unreserved characters stay; everything else is escaped, `/` included.
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

fn huawei_credentials(creds: &Credentials) -> Result<HuaweiCredentials, ProviderError> {
    match creds {
        Credentials::AccessKey {
            access_key_id,
            secret_access_key,
            security_token,
        } => {
            let c = HuaweiCredentials::new(access_key_id.clone(), secret_access_key.clone());
            Ok(match security_token {
                Some(t) => c.with_security_token(t.clone()),
                None => c,
            })
        }
        Credentials::Bearer(_) => Err(ProviderError::UnsupportedCredentials(
            "huaweicloud needs accessKeyId and secretAccessKey; bearerToken is for zenlayer".into(),
        )),
    }
}

/// `host[:port]` as the signer and the Host header spell it.
pub fn host_port(url: &Url) -> Result<String, ProviderError> {
    let host = url
        .host_str()
        .ok_or_else(|| ProviderError::InvalidConfig("endpoint has no host".into()))?;
    Ok(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}

/// The project id a Huawei target needs.
pub fn project_id(target: &Target) -> Result<&str, ProviderError> {
    target
        .project_id
        .as_deref()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ProviderError::InvalidConfig("projectId is required for huaweicloud".into()))
}

/// A signed GET of `api_path` (already encoded) below the endpoint's base path. Returns the
/// URL requested and the body of a 2xx answer; anything else becomes a typed error.
pub async fn get(
    client: &HttpClient,
    target: &Target,
    creds: &Credentials,
    api_path: &str,
    query: &[(&str, &str)],
    project_header: Option<&str>,
) -> Result<(Url, bytes::Bytes), ProviderError> {
    let keys = huawei_credentials(creds)?;
    let base = target.endpoint.path().trim_end_matches('/');
    let path = format!("{base}{api_path}");
    let host = host_port(&target.endpoint)?;
    let req = HuaweiRequest {
        method: "GET",
        host: &host,
        path: &path,
        query,
        headers: &[("Content-Type", "application/json")],
        body: b"",
        project_id: project_header,
    };
    let signed =
        sign(&req, &keys, Timestamp::now()).map_err(|e| ProviderError::Signing(e.to_string()))?;
    let mut url = target.endpoint.clone();
    let (p, q) = signed
        .path_and_query
        .split_once('?')
        .unwrap_or((&signed.path_and_query, ""));
    url.set_path(p);
    url.set_query((!q.is_empty()).then_some(q));
    let headers = signed.headers.into_vec();
    let resp = client
        .send(
            &UpstreamLabels::for_target(target),
            http::Request {
                method: reqwest::Method::GET,
                url: url.clone(),
                headers: &headers,
                body: Vec::new(),
            },
        )
        .await?;
    if !(200..300).contains(&resp.status) {
        return Err(http::classify(resp.status, resp.retry_after, &resp.body));
    }
    Ok((url, resp.body))
}

/// A Huawei quota API that is one signed GET of a project-scoped path (DWS, EVS): the services
/// differ only in path, query and parser. IMS has its own provider for the path fallback.
pub struct ProjectGet {
    /// The API path, given the project id already quoted as one path segment.
    pub path: fn(&str) -> String,
    pub query: &'static [(&'static str, &'static str)],
    pub parse: fn(&[u8]) -> Result<Vec<Quota>, ProviderError>,
}

impl QuotaProvider for ProjectGet {
    fn fetch<'a>(
        &'a self,
        http: &'a HttpClient,
        target: &'a Target,
        creds: &'a Credentials,
    ) -> BoxFuture<'a, Result<Sample, ProviderError>> {
        async move {
            let path = (self.path)(&segment(project_id(target)?));
            let (url, body) = get(http, target, creds, &path, self.query, None).await?;
            Ok(Sample {
                endpoint: url.to_string(),
                quotas: (self.parse)(&body)?,
            })
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_token_is_unsupported_credentials_not_an_invalid_spec() {
        let e = huawei_credentials(&Credentials::Bearer(crate::sign::SecretString::from("tok")))
            .unwrap_err();
        assert_eq!(e.reason(), "CredentialsUnsupported");
        assert!(e.is_permanent());
    }

    #[test]
    fn segments_are_quoted_like_the_sdk() {
        assert_eq!(
            segment("fd73a4a14a4a4dfb9771a8475e5198ea"),
            "fd73a4a14a4a4dfb9771a8475e5198ea"
        );
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("x-y_z.~"), "x-y_z.~");
    }

    #[test]
    fn host_port_keeps_explicit_ports_only() {
        assert_eq!(
            host_port(&Url::parse("https://ims.x.myhuaweicloud.com").unwrap()).unwrap(),
            "ims.x.myhuaweicloud.com"
        );
        assert_eq!(
            host_port(&Url::parse("https://ims.x.myhuaweicloud.com:443").unwrap()).unwrap(),
            "ims.x.myhuaweicloud.com"
        );
        assert_eq!(
            host_port(&Url::parse("http://127.0.0.1:8787/").unwrap()).unwrap(),
            "127.0.0.1:8787"
        );
    }
}
