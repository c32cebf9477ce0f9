//! Huawei Cloud `SDK-HMAC-SHA256` request signing, as done by huaweicloudsdkcore 3.1.x
//! (`BasicCredentials.sign_request` + `signer.Signer.sign`).
//!
//! Steps, in the SDK's order (each mirrored below):
//!
//! 1. `X-Project-Id: <project id>` is added when the credentials carry a non-empty project id,
//!    then `X-Security-Token: <token>` when a security token is set (even an empty one). Both are
//!    ordinary headers from here on, so **both are signed**.
//! 2. If the exact-case header `Content-Type` is non-empty and starts with neither
//!    `application/json` nor `application/bson`, `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD` is
//!    added and a non-empty body is then not hashed.
//! 3. `X-Sdk-Date: YYYYMMDDTHHMMSSZ` (UTC) is added; `Host: <host[:port]>` is added unless a
//!    header named `host` (any case) exists.
//! 4. Signed headers = every header name without `_`, lower-cased, sorted (names that differ only
//!    in case appear twice). All header values are `strip()`ped; a signed header's canonical
//!    value is the stripped value of the *last* header with that lower-cased name.
//! 5. Canonical request =
//!    `METHOD\nCANONICAL_URI\nCANONICAL_QUERY\nCANONICAL_HEADERS\nSIGNED_HEADERS\nPAYLOAD_HASH`
//!    where CANONICAL_HEADERS is `name:value\n` per signed header (so there is an empty line
//!    before SIGNED_HEADERS).
//! 6. String to sign = `SDK-HMAC-SHA256\n<X-Sdk-Date>\n<hex sha256(canonical request)>`;
//!    signature = hex HMAC-SHA256(secret key, string to sign);
//!    `Authorization: SDK-HMAC-SHA256 Access=<ak>, SignedHeaders=<a;b>, Signature=<hex>`.
//! 7. The request line uses `path?CANONICAL_QUERY`: the SDK sends the sorted, encoded query.

use jiff::Timestamp;
use jiff::tz::Offset;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{
    ExposeSecret, HeaderList, SecretString, SignError, Signed, hmac_sha256_hex, py_strip,
    sha256_hex,
};

/// The signing algorithm name.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// Header carrying the signing time.
pub const HEADER_DATE: &str = "X-Sdk-Date";
/// Header carrying the temporary-credential token.
pub const HEADER_SECURITY_TOKEN: &str = "X-Security-Token";
/// Header carrying the project id (`BasicCredentials`).
pub const HEADER_PROJECT_ID: &str = "X-Project-Id";
/// Header that replaces the payload hash (`UNSIGNED-PAYLOAD`).
pub const HEADER_CONTENT_SHA256: &str = "X-Sdk-Content-Sha256";
/// SHA-256 of the empty string: the payload hash of a request without a body.
pub const EMPTY_PAYLOAD_HASH: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Python `urllib.parse.quote(s, safe='~')`: everything but `A-Z a-z 0-9 - . _ ~` is
/// percent-encoded (UTF-8, upper-case hex).
const PY_QUOTE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Access key, secret key and optional security token (temporary credentials).
#[derive(Clone)]
pub struct HuaweiCredentials {
    access_key: String,
    secret_key: SecretString,
    security_token: Option<SecretString>,
}

impl HuaweiCredentials {
    /// Permanent AK/SK credentials. Keys are used exactly as given (the SDK does not trim).
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<SecretString>) -> Self {
        Self {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            security_token: None,
        }
    }

    /// Temporary credentials: adds `X-Security-Token` (signed) to every request.
    pub fn with_security_token(mut self, token: impl Into<SecretString>) -> Self {
        self.security_token = Some(token.into());
        self
    }

    /// The access key id (not secret).
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The security token, if any.
    pub fn security_token(&self) -> Option<&SecretString> {
        self.security_token.as_ref()
    }
}

impl std::fmt::Debug for HuaweiCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HuaweiCredentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &self.secret_key)
            .field("security_token", &self.security_token)
            .finish()
    }
}

/// A request to sign.
#[derive(Debug, Clone, Copy)]
pub struct HuaweiRequest<'a> {
    /// HTTP method; upper-cased for the canonical request.
    pub method: &'a str,
    /// `host[:port]` as in the URL (the SDK's `urlparse(endpoint).netloc`).
    pub host: &'a str,
    /// Path as sent, path parameters already percent-encoded (the SDK quotes them with
    /// `quote(v, safe='')`, so `/` inside a parameter is `%2F`). Must start with `/`.
    pub path: &'a str,
    /// Query parameters, unencoded, in any order; repeated keys allowed.
    pub query: &'a [(&'a str, &'a str)],
    /// Caller headers in order, e.g. `Content-Type: application/json` and `User-Agent`, which
    /// the SDK clients always send. Must not contain `X-Sdk-Date` or `Authorization`.
    pub headers: &'a [(&'a str, &'a str)],
    /// Body bytes (empty for GET).
    pub body: &'a [u8],
    /// `BasicCredentials.project_id`: a non-empty value adds a signed `X-Project-Id` header.
    pub project_id: Option<&'a str>,
}

/// Formats `X-Sdk-Date` (`%Y%m%dT%H%M%SZ` in UTC; sub-seconds are truncated like Python's
/// `strftime`).
pub fn sdk_date(now: Timestamp) -> String {
    let dt = Offset::UTC.to_datetime(now);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// Python `urllib.parse.unquote(s)` (UTF-8, `errors='replace'`).
///
/// Python decodes each maximal run of ASCII characters separately: `%XX` escapes (either hex
/// case) become bytes, anything else (including a stray `%`) is kept, and the run's bytes are
/// decoded as UTF-8 replacing invalid sequences with U+FFFD. Non-ASCII characters are copied.
/// `String::from_utf8_lossy` replaces invalid sequences the same way (maximal subparts).
fn py_unquote(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut run: Vec<u8> = Vec::new();
    let flush = |run: &mut Vec<u8>, out: &mut String| {
        if !run.is_empty() {
            out.push_str(&String::from_utf8_lossy(run));
            run.clear();
        }
    };
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii() {
            if b == b'%'
                && i + 2 < bytes.len()
                && let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2]))
            {
                run.push((h << 4) | l);
                i += 3;
                continue;
            }
            run.push(b);
            i += 1;
        } else {
            flush(&mut run, &mut out);
            // copy the whole non-ASCII character (s is valid UTF-8)
            let ch_len = s[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&s[i..i + ch_len]);
            i += ch_len;
        }
    }
    flush(&mut run, &mut out);
    out
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn py_quote(s: &str) -> String {
    utf8_percent_encode(s, PY_QUOTE).to_string()
}

/// Canonical URI: the path is percent-*decoded* first and each `/`-separated segment
/// re-encoded, so `%2F` inside a segment becomes a separator in the canonical form (the wire
/// keeps `%2F`), raw spaces/unicode are encoded and `%e4` becomes `%E4`. A trailing `/` is
/// always added. A verifier (e.g. the simulator) must canonicalise the same way.
pub fn canonical_uri(path: &str) -> String {
    let decoded = py_unquote(path);
    let mut out = decoded
        .split('/')
        .map(py_quote)
        .collect::<Vec<_>>()
        .join("/");
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// Canonical query string: pairs sorted by (raw key, raw value) in code-point order (note: by
/// the *unencoded* strings, so `%` sorts before `A`, and `é` after `~`), then `k=v` with both
/// sides encoded like [`canonical_uri`] segments, joined by `&`. Empty values give `k=`.
pub fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs = query.to_vec();
    pairs.sort_unstable();
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", py_quote(k), py_quote(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Python `s.encode('utf-8').decode('iso-8859-1')`: the SDK rewrites every header value this
/// way before it reads `X-Sdk-Content-Sha256` back for the payload hash.
fn utf8_as_latin1(s: &str) -> String {
    s.bytes().map(char::from).collect()
}

/// Signs `req` like huaweicloudsdkcore and returns every header the request must carry.
///
/// The returned [`Signed::headers`] are the caller's headers (values stripped, as the SDK sends
/// them) followed by those the SDK adds: `X-Project-Id`, `X-Security-Token`,
/// `X-Sdk-Content-Sha256`, `X-Sdk-Date`, `Host` (each only when applicable) and `Authorization`.
/// Send exactly these, on `Signed::path_and_query`, with `req.body`.
pub fn sign(
    req: &HuaweiRequest<'_>,
    creds: &HuaweiCredentials,
    now: Timestamp,
) -> Result<Signed, SignError> {
    if creds.access_key.is_empty() {
        return Err(SignError::EmptyAccessKey);
    }
    if creds.secret_key.expose_secret().is_empty() {
        return Err(SignError::EmptySecretKey);
    }
    if !req.path.starts_with('/') {
        return Err(SignError::InvalidPath);
    }
    for (name, _) in req.headers {
        // The SDK would take a preset X-Sdk-Date as the signing time and skip signing entirely
        // when Authorization is preset; neither is useful here, so refuse them.
        if name.eq_ignore_ascii_case(HEADER_DATE) {
            return Err(SignError::ReservedHeader(HEADER_DATE));
        }
        if name.eq_ignore_ascii_case("Authorization") {
            return Err(SignError::ReservedHeader("Authorization"));
        }
    }

    let mut headers = HeaderList::from_pairs(req.headers);

    // 1. BasicCredentials.sign_request / Credentials.sign_request
    if let Some(pid) = req.project_id.filter(|p| !p.is_empty()) {
        headers.set_exact(HEADER_PROJECT_ID, pid);
    }
    if let Some(token) = &creds.security_token {
        headers.set_exact(HEADER_SECURITY_TOKEN, token.expose_secret());
    }

    // 2. Signer._process_content_header: an exact-case, *unstripped* Content-Type lookup.
    let unsigned_payload = headers.get_exact("Content-Type").is_some_and(|ct| {
        !ct.is_empty() && !ct.starts_with("application/json") && !ct.starts_with("application/bson")
    });
    if unsigned_payload {
        headers.set_exact(HEADER_CONTENT_SHA256, "UNSIGNED-PAYLOAD");
    }

    // 3. time and host
    let date = sdk_date(now);
    headers.set_exact(HEADER_DATE, date.clone());
    if !headers.contains_ignore_ascii_case("host") {
        headers.set_exact("Host", req.host);
    }

    // 4. signed headers; strip every value (the SDK sends the stripped values too)
    let mut signed_headers: Vec<String> = headers
        .iter()
        .filter(|(k, _)| !k.contains('_'))
        .map(|(k, _)| k.to_lowercase())
        .collect();
    signed_headers.sort_unstable();
    for (_, v) in headers.entries_mut().iter_mut() {
        let stripped = py_strip(v);
        if stripped.len() != v.len() {
            *v = stripped.to_owned();
        }
    }
    let canonical_value = |lower: &str| -> &str {
        headers
            .iter()
            .filter(|(k, _)| k.to_lowercase() == lower)
            .last()
            .map_or("", |(_, v)| v)
    };
    let mut canonical_headers = String::new();
    let mut token_in_headers = Vec::new();
    for name in &signed_headers {
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        let start = canonical_headers.len();
        canonical_headers.push_str(canonical_value(name));
        if creds.security_token.is_some() && name == "x-security-token" {
            token_in_headers.push(start..canonical_headers.len());
        }
        canonical_headers.push('\n');
    }

    // 5. payload hash: empty body -> hash of "", else a non-empty X-Sdk-Content-Sha256 header
    // value (first match, any case), else sha256(body)
    let payload_hash = if req.body.is_empty() {
        EMPTY_PAYLOAD_HASH.to_owned()
    } else {
        match headers
            .iter()
            .find(|(k, _)| k.to_lowercase() == "x-sdk-content-sha256")
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty())
        {
            Some(v) => utf8_as_latin1(v),
            None => sha256_hex(req.body),
        }
    };

    let canonical_query = canonical_query(req.query);
    let head = format!(
        "{}\n{}\n{}\n",
        req.method.to_uppercase(),
        canonical_uri(req.path),
        canonical_query,
    );
    let secret_spans = token_in_headers
        .into_iter()
        .map(|r| head.len() + r.start..head.len() + r.end)
        .collect();
    let canonical_request = format!(
        "{head}{canonical_headers}\n{}\n{payload_hash}",
        signed_headers.join(";"),
    );

    // 6. string to sign, signature, Authorization
    let string_to_sign = format!(
        "{ALGORITHM}\n{date}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let signature = hmac_sha256_hex(
        creds.secret_key.expose_secret().as_bytes(),
        string_to_sign.as_bytes(),
    );
    headers.set_exact(
        "Authorization",
        format!(
            "{ALGORITHM} Access={}, SignedHeaders={}, Signature={signature}",
            creds.access_key,
            signed_headers.join(";")
        ),
    );

    // 7. Signer.process_request_uri
    let path_and_query = if canonical_query.is_empty() {
        req.path.to_owned()
    } else {
        format!("{}?{canonical_query}", req.path)
    };

    Ok(Signed {
        headers,
        path_and_query,
        canonical_request,
        string_to_sign,
        signature,
        secret_spans,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn req<'a>(path: &'a str, headers: &'a [(&'a str, &'a str)]) -> HuaweiRequest<'a> {
        HuaweiRequest {
            method: "GET",
            host: "ims.example.com",
            path,
            query: &[],
            headers,
            body: b"",
            project_id: None,
        }
    }

    #[test]
    fn sdk_date_truncates() {
        assert_eq!(
            sdk_date(ts("2024-01-02T03:04:05.999999999Z")),
            "20240102T030405Z"
        );
        assert_eq!(sdk_date(ts("1970-01-01T00:00:00Z")), "19700101T000000Z");
    }

    #[test]
    fn unquote_like_python() {
        assert_eq!(py_unquote("/a%20b"), "/a b");
        assert_eq!(py_unquote("/a%2fb%2F"), "/a/b/");
        assert_eq!(py_unquote("100%"), "100%");
        assert_eq!(py_unquote("%zz%4"), "%zz%4");
        assert_eq!(py_unquote("%FF"), "\u{fffd}");
        assert_eq!(py_unquote("%E4%B8"), "\u{fffd}");
        assert_eq!(py_unquote("%E4%B8中"), "\u{fffd}中");
        assert_eq!(py_unquote("%E4%B8%AD"), "中");
        assert_eq!(py_unquote("中%"), "中%");
    }

    #[test]
    fn canonical_uri_cases() {
        assert_eq!(
            canonical_uri("/v1/cloudimages/quota"),
            "/v1/cloudimages/quota/"
        );
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("/a/"), "/a/");
        assert_eq!(canonical_uri("/a b/ä"), "/a%20b/%C3%A4/");
        assert_eq!(canonical_uri("/a%2Fb"), "/a/b/");
        assert_eq!(canonical_uri("/a+b~c*"), "/a%2Bb~c%2A/");
        assert_eq!(canonical_uri("/{project_id}"), "/%7Bproject_id%7D/");
    }

    #[test]
    fn canonical_query_sorts_raw_pairs() {
        assert_eq!(
            canonical_query(&[("b", "2"), ("a", "2"), ("a", "1"), ("é", ""), ("%", "x y")]),
            "%25=x%20y&a=1&a=2&b=2&%C3%A9="
        );
        assert_eq!(canonical_query(&[]), "");
    }

    #[test]
    fn minimal_request_headers_and_layout() {
        let creds = HuaweiCredentials::new("AK", "SK");
        let signed = sign(
            &req("/v1/x", &[("Content-Type", "application/json")]),
            &creds,
            ts("2024-01-02T03:04:05Z"),
        )
        .unwrap();
        let names: Vec<&str> = signed.headers.iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            ["Content-Type", "X-Sdk-Date", "Host", "Authorization"]
        );
        assert_eq!(
            signed.canonical_request,
            "GET\n/v1/x/\n\ncontent-type:application/json\nhost:ims.example.com\n\
             x-sdk-date:20240102T030405Z\n\ncontent-type;host;x-sdk-date\n"
                .to_owned()
                + EMPTY_PAYLOAD_HASH
        );
        assert!(signed.authorization().starts_with(
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders=content-type;host;x-sdk-date, Signature="
        ));
        assert_eq!(signed.signature.len(), 64);
    }

    #[test]
    fn token_and_project_are_signed() {
        let creds = HuaweiCredentials::new("AK", "SK").with_security_token("TOKEN-VALUE");
        let mut r = req("/v1/x", &[]);
        r.project_id = Some("pid");
        let signed = sign(&r, &creds, ts("2024-01-02T03:04:05Z")).unwrap();
        assert_eq!(signed.headers.get("x-security-token"), Some("TOKEN-VALUE"));
        assert_eq!(signed.headers.get("X-Project-Id"), Some("pid"));
        assert!(
            signed
                .authorization()
                .contains("SignedHeaders=host;x-project-id;x-sdk-date;x-security-token,")
        );
        let dbg = format!("{signed:?} {creds:?}");
        assert!(!dbg.contains("TOKEN-VALUE"), "{dbg}");
        assert!(!dbg.contains("\"SK\""), "{dbg}");
        assert!(dbg.contains("x-security-token:***\\n"), "{dbg}");
    }

    #[test]
    fn debug_hides_a_token_with_line_breaks() {
        // Found by fuzzing: hiding the token line by line left the token's later lines visible.
        let token = "first-line\nSECOND-LINE-OF-TOKEN\nx-third: line";
        let creds = HuaweiCredentials::new("AK", "SK").with_security_token(token);
        let signed = sign(&req("/v1/x", &[]), &creds, ts("2024-01-02T03:04:05Z")).unwrap();
        assert!(signed.canonical_request.contains(token));
        let dbg = format!("{signed:?}");
        assert!(
            !dbg.contains("SECOND-LINE") && !dbg.contains("first-line") && !dbg.contains("third"),
            "{dbg}"
        );
        assert!(dbg.contains("x-security-token:***\\n"), "{dbg}");
    }

    #[test]
    fn debug_hides_the_token_when_a_caller_header_repeats_its_name() {
        // Found by fuzzing: a caller's `X-SecUrity-Token` makes the name appear twice in the
        // canonical request, both times with the credentials' token as value.
        let creds = HuaweiCredentials::new("AK", "SK").with_security_token("fresh-token");
        let signed = sign(
            &req("/v1/x", &[("X-SecUrity-Token", "stale")]),
            &creds,
            ts("2024-01-02T03:04:05Z"),
        )
        .unwrap();
        assert_eq!(signed.canonical_request.matches("fresh-token").count(), 2);
        let dbg = format!("{signed:?}");
        assert!(!dbg.contains("fresh-token"), "{dbg}");
        assert_eq!(dbg.matches("x-security-token:***").count(), 2, "{dbg}");
    }

    #[test]
    fn empty_project_id_adds_nothing() {
        let mut r = req("/v1/x", &[]);
        r.project_id = Some("");
        let signed = sign(
            &r,
            &HuaweiCredentials::new("AK", "SK"),
            Timestamp::UNIX_EPOCH,
        )
        .unwrap();
        assert_eq!(signed.headers.get("X-Project-Id"), None);
    }

    #[test]
    fn unsigned_payload_for_non_json() {
        let creds = HuaweiCredentials::new("AK", "SK");
        let mut r = req("/up", &[("Content-Type", "text/plain")]);
        r.body = b"hello";
        let signed = sign(&r, &creds, Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(
            signed.headers.get("X-Sdk-Content-Sha256"),
            Some("UNSIGNED-PAYLOAD")
        );
        assert!(signed.canonical_request.ends_with("\nUNSIGNED-PAYLOAD"));
        // lowercase name: the SDK's exact-case lookup does not see it
        let r2 = HuaweiRequest {
            headers: &[("content-type", "text/plain")],
            ..r
        };
        let signed = sign(&r2, &creds, Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(signed.headers.get("X-Sdk-Content-Sha256"), None);
        assert!(signed.canonical_request.ends_with(&sha256_hex(b"hello")));
    }

    #[test]
    fn query_goes_on_the_wire_canonically() {
        let creds = HuaweiCredentials::new("AK", "SK");
        let r = HuaweiRequest {
            query: &[("usage", "true"), ("a b", "c/d")],
            ..req("/v2/p/os-quota-sets/p", &[])
        };
        let signed = sign(&r, &creds, Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(
            signed.path_and_query,
            "/v2/p/os-quota-sets/p?a%20b=c%2Fd&usage=true"
        );
    }

    #[test]
    fn errors() {
        let ok = HuaweiCredentials::new("AK", "SK");
        let t = Timestamp::UNIX_EPOCH;
        assert_eq!(
            sign(&req("/", &[]), &HuaweiCredentials::new("", "SK"), t),
            Err(SignError::EmptyAccessKey)
        );
        assert_eq!(
            sign(&req("/", &[]), &HuaweiCredentials::new("AK", ""), t),
            Err(SignError::EmptySecretKey)
        );
        assert_eq!(sign(&req("", &[]), &ok, t), Err(SignError::InvalidPath));
        assert_eq!(
            sign(&req("/", &[("x-sdk-date", "20240101T000000Z")]), &ok, t),
            Err(SignError::ReservedHeader(HEADER_DATE))
        );
        assert_eq!(
            sign(&req("/", &[("authorization", "x")]), &ok, t),
            Err(SignError::ReservedHeader("Authorization"))
        );
    }

    #[test]
    fn host_header_is_not_duplicated() {
        let signed = sign(
            &req("/", &[("host", "other:1")]),
            &HuaweiCredentials::new("AK", "SK"),
            Timestamp::UNIX_EPOCH,
        )
        .unwrap();
        assert_eq!(
            signed
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("host"))
                .count(),
            1
        );
        assert!(signed.canonical_request.contains("\nhost:other:1\n"));
    }
}
