//! Zenlayer Cloud API v2 request signing (`ZC2-HMAC-SHA256`) and bearer-token headers, as done
//! by zenlayercloud-sdk-python 2.0.x (`common/abstract_client.py`).
//!
//! Every call is `POST https://<host>/api/v2/<service>` with a JSON body; the operation is chosen
//! by headers (`x-zc-action`, `x-zc-service`, `x-zc-version`). The signature is much simpler
//! than Huawei's:
//!
//! * canonical request = `METHOD\n/\n\ncontent-type:<ct>\nhost:<host>\n\ncontent-type;host\n`
//!   followed by hex sha256(body). The canonical URI is always `/` and the canonical query is
//!   always empty, whatever the real path; only `content-type` and `host` are signed, with the
//!   values exactly as sent (not lower-cased, not trimmed) and the method as given;
//! * string to sign = `ZC2-HMAC-SHA256\n<unix seconds>\n<hex sha256(canonical request)>`;
//! * signature = hex HMAC-SHA256(access key password, string to sign);
//! * `Authorization: ZC2-HMAC-SHA256 Credential=<access key id>, SignedHeaders=content-type;host,
//!   Signature=<hex>`. There is no credential scope (no date/region/service in the key).
//!
//! Alternatively the SDK sends `Authorization: Bearer <token>` (TokenCredential) and then omits
//! `x-zc-signature-method` and `x-zc-timestamp`.

use jiff::Timestamp;

use super::{
    ExposeSecret, HeaderList, SecretString, SignError, Signed, hmac_sha256_hex, py_strip,
    sha256_hex,
};

/// The signing algorithm name (also the `x-zc-signature-method` value).
pub const ALGORITHM: &str = "ZC2-HMAC-SHA256";
/// The SDK's default API host.
pub const DEFAULT_HOST: &str = "console.zenlayer.com";
/// The only content type the API accepts (and the SDK sends).
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Service name of the virtual machine API (DescribeImageQuota lives there).
pub const VM_SERVICE: &str = "vm";
/// `x-zc-version` of the current vm API (`zenlayercloud.vm.v20260401`).
pub const VM_API_VERSION: &str = "2026-04-01";
/// `x-zc-version` of the older vm API (`zenlayercloud.vm.v20230313`), which also has
/// DescribeImageQuota with the same request/response shape.
pub const VM_API_VERSION_2023: &str = "2023-03-13";
/// The signed headers, fixed by the SDK.
pub const SIGNED_HEADERS: &str = "content-type;host";

/// Access key id and access key password.
#[derive(Clone)]
pub struct ZenlayerCredentials {
    access_key_id: String,
    access_key_password: SecretString,
}

impl ZenlayerCredentials {
    /// Like the SDK's `Credential`: both values are `strip()`ped and must not be empty.
    pub fn new(
        access_key_id: impl AsRef<str>,
        access_key_password: impl AsRef<str>,
    ) -> Result<Self, SignError> {
        let id = py_strip(access_key_id.as_ref());
        let password = py_strip(access_key_password.as_ref());
        if id.is_empty() {
            return Err(SignError::EmptyAccessKey);
        }
        if password.is_empty() {
            return Err(SignError::EmptySecretKey);
        }
        Ok(Self {
            access_key_id: id.to_owned(),
            access_key_password: SecretString::from(password),
        })
    }

    /// The access key id (not secret).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }
}

impl std::fmt::Debug for ZenlayerCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZenlayerCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_password", &self.access_key_password)
            .finish()
    }
}

/// A request to sign.
#[derive(Debug, Clone, Copy)]
pub struct ZenlayerRequest<'a> {
    /// HTTP method, signed as given (the SDK always uses `POST`).
    pub method: &'a str,
    /// `host[:port]`, sent in the `host` header and signed as given (not lower-cased).
    pub host: &'a str,
    /// Service, e.g. [`VM_SERVICE`]; the path is `/api/v2/<service>`.
    pub service: &'a str,
    /// `x-zc-version`, e.g. [`VM_API_VERSION`].
    pub version: &'a str,
    /// `x-zc-action`, e.g. `DescribeImageQuota`.
    pub action: &'a str,
    /// `Content-Type`; the SDK always sends [`CONTENT_TYPE_JSON`].
    pub content_type: &'a str,
    /// The exact body bytes (the SDK sends `json.dumps(model)`, i.e. `{}` for no fields).
    pub body: &'a [u8],
    /// Extra caller headers, sent first (the SDK's `headers=` argument). A `host` or
    /// `Content-Type` here is overwritten in place, like the SDK does.
    pub headers: &'a [(&'a str, &'a str)],
    /// `x-zc-sdk-version` (the Python SDK sends `SDK_PYTHON_<version>`); omitted if `None`.
    pub sdk_version: Option<&'a str>,
    /// `x-zc-sdk-lang` (the Python SDK sends `Python`); omitted if `None`.
    pub sdk_lang: Option<&'a str>,
}

impl ZenlayerRequest<'_> {
    /// `/api/v2/<service>`.
    pub fn path(&self) -> String {
        format!("/api/v2/{}", self.service)
    }

    /// Headers common to both auth modes, in the SDK's order.
    fn base_headers(&self) -> HeaderList {
        let mut h = HeaderList::from_pairs(self.headers);
        h.set_exact("x-zc-version", self.version);
        h.set_exact("x-zc-service", self.service);
        h.set_exact("x-zc-action", self.action);
        if let Some(v) = self.sdk_version {
            h.set_exact("x-zc-sdk-version", v);
        }
        if let Some(v) = self.sdk_lang {
            h.set_exact("x-zc-sdk-lang", v);
        }
        h.set_exact("host", self.host);
        h.set_exact("Content-Type", self.content_type);
        h
    }
}

/// The canonical request for `method`, `content_type`, `host` and `body`.
pub fn canonical_request(method: &str, content_type: &str, host: &str, body: &[u8]) -> String {
    format!(
        "{method}\n/\n\ncontent-type:{content_type}\nhost:{host}\n\n{SIGNED_HEADERS}\n{}",
        sha256_hex(body)
    )
}

/// Signs `req` with `ZC2-HMAC-SHA256` and returns every header the SDK sends: caller headers,
/// `x-zc-version`, `x-zc-service`, `x-zc-action`, `x-zc-sdk-version`, `x-zc-sdk-lang`, `host`,
/// `Content-Type`, `x-zc-signature-method`, `x-zc-timestamp`, `Authorization`.
///
/// `x-zc-timestamp` is the Unix time in whole seconds (`int(time.time())`, sub-seconds
/// truncated).
pub fn sign(
    req: &ZenlayerRequest<'_>,
    creds: &ZenlayerCredentials,
    now: Timestamp,
) -> Result<Signed, SignError> {
    if creds.access_key_id.is_empty() {
        return Err(SignError::EmptyAccessKey);
    }
    if creds.access_key_password.expose_secret().is_empty() {
        return Err(SignError::EmptySecretKey);
    }
    let timestamp = now.as_second().to_string();
    let mut headers = req.base_headers();
    headers.set_exact("x-zc-signature-method", ALGORITHM);
    headers.set_exact("x-zc-timestamp", timestamp.clone());

    let canonical_request = canonical_request(req.method, req.content_type, req.host, req.body);
    let string_to_sign = format!(
        "{ALGORITHM}\n{timestamp}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let signature = hmac_sha256_hex(
        creds.access_key_password.expose_secret().as_bytes(),
        string_to_sign.as_bytes(),
    );
    headers.set_exact(
        "Authorization",
        format!(
            "{ALGORITHM} Credential={}, SignedHeaders={SIGNED_HEADERS}, Signature={signature}",
            creds.access_key_id
        ),
    );
    Ok(Signed {
        headers,
        path_and_query: req.path(),
        canonical_request,
        string_to_sign,
        signature,
        secret_spans: Vec::new(),
    })
}

/// Headers for bearer-token auth (the SDK's `TokenCredential`): the common `x-zc-*`, `host`
/// and `Content-Type` headers plus `Authorization: Bearer <token>`. The token is `strip()`ped
/// like the SDK does; no timestamp or signature-method header is sent.
pub fn bearer_headers(
    req: &ZenlayerRequest<'_>,
    token: &SecretString,
) -> Result<HeaderList, SignError> {
    let token = py_strip(token.expose_secret());
    if token.is_empty() {
        return Err(SignError::EmptyToken);
    }
    let mut headers = req.base_headers();
    headers.set_exact("Authorization", format!("Bearer {token}"));
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota_request(body: &[u8]) -> ZenlayerRequest<'_> {
        ZenlayerRequest {
            method: "POST",
            host: DEFAULT_HOST,
            service: VM_SERVICE,
            version: VM_API_VERSION,
            action: "DescribeImageQuota",
            content_type: CONTENT_TYPE_JSON,
            body,
            headers: &[],
            sdk_version: None,
            sdk_lang: None,
        }
    }

    #[test]
    fn canonical_layout() {
        assert_eq!(
            canonical_request("POST", "application/json", "h:1", b""),
            "POST\n/\n\ncontent-type:application/json\nhost:h:1\n\ncontent-type;host\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn signed_headers_order_and_values() {
        let creds = ZenlayerCredentials::new(" AK ", "SK").unwrap();
        let signed = sign(
            &quota_request(b"{}"),
            &creds,
            "2024-01-02T03:04:05.9Z".parse().unwrap(),
        )
        .unwrap();
        let names: Vec<&str> = signed.headers.iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            [
                "x-zc-version",
                "x-zc-service",
                "x-zc-action",
                "host",
                "Content-Type",
                "x-zc-signature-method",
                "x-zc-timestamp",
                "Authorization"
            ]
        );
        assert_eq!(signed.headers.get("x-zc-timestamp"), Some("1704164645"));
        assert_eq!(signed.path_and_query, "/api/v2/vm");
        assert!(
            signed
                .string_to_sign
                .starts_with("ZC2-HMAC-SHA256\n1704164645\n")
        );
        assert_eq!(
            signed.authorization(),
            format!(
                "ZC2-HMAC-SHA256 Credential=AK, SignedHeaders=content-type;host, Signature={}",
                signed.signature
            )
        );
    }

    #[test]
    fn credentials_are_stripped_and_required() {
        assert_eq!(
            ZenlayerCredentials::new("  ", "x").unwrap_err(),
            SignError::EmptyAccessKey
        );
        assert_eq!(
            ZenlayerCredentials::new("a", "\u{1c}\t").unwrap_err(),
            SignError::EmptySecretKey
        );
        let c = ZenlayerCredentials::new("a", " pw-value ").unwrap();
        assert_eq!(c.access_key_password.expose_secret(), "pw-value");
        assert!(!format!("{c:?}").contains("pw-value"));
    }

    #[test]
    fn bearer() {
        let req = quota_request(b"{}");
        let h = bearer_headers(&req, &SecretString::from(" tok \n")).unwrap();
        assert_eq!(h.get("authorization"), Some("Bearer tok"));
        assert_eq!(h.get("x-zc-timestamp"), None);
        assert!(!format!("{h:?}").contains("tok"));
        assert_eq!(
            bearer_headers(&req, &SecretString::from("  ")),
            Err(SignError::EmptyToken)
        );
    }

    #[test]
    fn caller_host_and_content_type_are_overwritten_in_place() {
        let creds = ZenlayerCredentials::new("AK", "SK").unwrap();
        let req = ZenlayerRequest {
            headers: &[
                ("host", "evil"),
                ("X-Extra", "1"),
                ("Content-Type", "text/plain"),
            ],
            ..quota_request(b"{}")
        };
        let signed = sign(&req, &creds, Timestamp::UNIX_EPOCH).unwrap();
        let first: Vec<(&str, &str)> = signed.headers.iter().take(3).collect();
        assert_eq!(
            first,
            [
                ("host", DEFAULT_HOST),
                ("X-Extra", "1"),
                ("Content-Type", CONTENT_TYPE_JSON)
            ]
        );
    }
}
