//! Adapter between a received request and the project's signing code (`cloudquota::sign`): the
//! simulator verifies by re-signing what it received with the known secret, so it checks the
//! same algorithm the clients use instead of a second implementation of it.

use axum::http::HeaderMap;
use jiff::Timestamp;
use percent_encoding::percent_decode_str;

use cloudquota::sign::{huawei, zenlayer};

/// The parts of a received request that signatures cover.
pub(crate) struct Received<'a> {
    pub method: &'a str,
    /// Raw (still percent-encoded) path.
    pub path: &'a str,
    /// Raw query string without `?`.
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Parses `X-Sdk-Date` (`yyyyMMddTHHmmssZ`, UTC) into Unix seconds.
pub(crate) fn parse_sdk_date(s: &str) -> Option<i64> {
    let dt = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", s).ok()?;
    let ts = dt.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    Some(ts.as_second())
}

/// Parses a raw query string into (key, value) pairs, percent-decoding both sides. `+` stays
/// a literal plus: the SDK sends `quote()`-encoded queries where a space is `%20`.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    let dec = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (dec(k), dec(v)),
            None => (dec(p), String::new()),
        })
        .collect()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The SDK-HMAC-SHA256 signature the client should have sent: the received request re-signed
/// with exactly the headers it declared as signed (`X-Sdk-Date` is re-added by the signer from
/// the parsed date, `Host` is among the declared ones).
pub(crate) fn huawei_signature(
    req: &Received<'_>,
    signed_headers: &[&str],
    sdk_date: &str,
    secret_key: &str,
) -> Option<String> {
    let now = Timestamp::from_second(parse_sdk_date(sdk_date)?).ok()?;
    let host = header(req.headers, "host")?;
    let headers = signed_headers
        .iter()
        .filter(|h| !h.eq_ignore_ascii_case(huawei::HEADER_DATE))
        .map(|h| Some((*h, header(req.headers, h)?)))
        .collect::<Option<Vec<_>>>()?;
    let query = query_pairs(req.query);
    let query: Vec<(&str, &str)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let request = huawei::HuaweiRequest {
        method: req.method,
        host,
        path: req.path,
        query: &query,
        headers: &headers,
        body: req.body,
        project_id: None,
    };
    // The access key id is not part of the signature.
    let creds = huawei::HuaweiCredentials::new("verifier", secret_key);
    huawei::sign(&request, &creds, now)
        .ok()
        .map(|s| s.signature)
}

/// The ZC2-HMAC-SHA256 signature the client should have sent. ZC2 always signs exactly
/// `content-type;host` with canonical URI `/`, so anything else cannot verify.
pub(crate) fn zenlayer_signature(
    req: &Received<'_>,
    signed_headers: &[&str],
    timestamp: &str,
    secret_key: &str,
) -> Option<String> {
    if signed_headers.join(";") != zenlayer::SIGNED_HEADERS {
        return None;
    }
    let now = Timestamp::from_second(timestamp.parse().ok()?).ok()?;
    let request = zenlayer::ZenlayerRequest {
        method: req.method,
        host: header(req.headers, "host")?,
        service: zenlayer::VM_SERVICE,
        version: header(req.headers, "x-zc-version").unwrap_or_default(),
        action: header(req.headers, "x-zc-action").unwrap_or_default(),
        content_type: header(req.headers, "content-type")?,
        body: req.body,
        headers: &[],
        sdk_version: None,
        sdk_lang: None,
    };
    let creds = zenlayer::ZenlayerCredentials::new("verifier", secret_key).ok()?;
    let signed = zenlayer::sign(&request, &creds, now).ok()?;
    // The signer formats the timestamp itself; a differently spelled one was not what the
    // client signed.
    (signed.headers.get("x-zc-timestamp") == Some(timestamp)).then_some(signed.signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_date() {
        assert_eq!(parse_sdk_date("19700101T000100Z"), Some(60));
        assert_eq!(parse_sdk_date("20240102T030405Z"), Some(1_704_164_645));
        assert_eq!(parse_sdk_date("2024-01-02T03:04:05Z"), None);
        assert_eq!(parse_sdk_date(""), None);
    }

    #[test]
    fn query() {
        assert_eq!(
            query_pairs("usage=True&a%20b=c+d&flag"),
            vec![
                ("usage".to_string(), "True".to_string()),
                ("a b".to_string(), "c+d".to_string()),
                ("flag".to_string(), String::new()),
            ]
        );
        assert!(query_pairs("").is_empty());
    }
}
