//! Credentials and request authentication, with the failure reasons the real gateways give.
//! The signature arithmetic itself is delegated to `cloudquota::sign` (see `verify.rs`): the
//! simulator recomputes what the client should have sent and compares.

use std::collections::HashMap;
use std::fmt;
use std::sync::RwLock;

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::verify::{self, Received};

/// The default demo access key (Huawei and Zenlayer), account `demo`.
pub const DEMO_ACCESS_KEY: &str = "CQSIMDEMOACCESSKEY01";
/// The secret of [`DEMO_ACCESS_KEY`].
pub const DEMO_SECRET_KEY: &str = "cq-sim-demo-secret-key-0001";
/// The default demo Zenlayer bearer token, account `demo`.
pub const DEMO_TOKEN: &str = "cq-sim-demo-token-0001";
/// The account of the demo credentials.
pub const DEMO_ACCOUNT: &str = "demo";

/// Huawei accepts `X-Sdk-Date` within 15 minutes of its clock.
pub const HUAWEI_MAX_SKEW_SECS: i64 = 15 * 60;
/// Zenlayer: the SDK sends a fresh Unix timestamp per request; we accept 5 minutes of skew.
pub const ZENLAYER_MAX_SKEW_SECS: i64 = 5 * 60;

/// An access key pair. Valid for both Huawei (SDK-HMAC-SHA256) and Zenlayer (ZC2-HMAC-SHA256).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub account: String,
    pub access_key: String,
    pub secret_key: String,
    /// Set for temporary (STS) credentials: Huawei requests must then carry a matching
    /// `X-Security-Token` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_token: Option<String>,
}

impl Credential {
    pub fn new(
        account: impl Into<String>,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Self {
        Credential {
            account: account.into(),
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            security_token: None,
        }
    }

    /// Marks the credential as temporary.
    pub fn with_security_token(mut self, token: impl Into<String>) -> Self {
        self.security_token = Some(token.into());
        self
    }

    /// The demo credential every default simulator accepts.
    pub fn demo() -> Self {
        Credential::new(DEMO_ACCOUNT, DEMO_ACCESS_KEY, DEMO_SECRET_KEY)
    }
}

// Secrets must not end up in logs or test output.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("account", &self.account)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A Zenlayer personal access token (`Authorization: Bearer <token>`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BearerToken {
    pub account: String,
    pub token: String,
}

impl BearerToken {
    pub fn new(account: impl Into<String>, token: impl Into<String>) -> Self {
        BearerToken {
            account: account.into(),
            token: token.into(),
        }
    }

    /// The demo token every default simulator accepts.
    pub fn demo() -> Self {
        BearerToken::new(DEMO_ACCOUNT, DEMO_TOKEN)
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerToken")
            .field("account", &self.account)
            .field("token", &mask(&self.token))
            .finish()
    }
}

/// Shows only a prefix of a secret-ish value (access keys, tokens) for logs and messages.
pub(crate) fn mask(s: &str) -> String {
    let keep: String = s.chars().take(4).collect();
    format!("{keep}****")
}

#[derive(Default)]
struct Creds {
    by_ak: HashMap<String, Credential>,
    tokens: HashMap<String, String>,
}

#[derive(Default)]
pub(crate) struct CredentialStore {
    inner: RwLock<Creds>,
}

impl CredentialStore {
    pub(crate) fn add(&self, c: Credential) {
        let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
        g.by_ak.insert(c.access_key.clone(), c);
    }

    pub(crate) fn remove(&self, access_key: &str) -> bool {
        let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
        g.by_ak.remove(access_key).is_some()
    }

    pub(crate) fn add_token(&self, t: BearerToken) {
        let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
        g.tokens.insert(t.token, t.account);
    }

    pub(crate) fn remove_token(&self, token: &str) -> bool {
        let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
        g.tokens.remove(token).is_some()
    }

    pub(crate) fn clear(&self) {
        let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
        g.by_ak.clear();
        g.tokens.clear();
    }

    fn credential(&self, ak: &str) -> Option<Credential> {
        let g = self.inner.read().unwrap_or_else(|e| e.into_inner());
        g.by_ak.get(ak).cloned()
    }

    fn token_account(&self, token: &str) -> Option<String> {
        let g = self.inner.read().unwrap_or_else(|e| e.into_inner());
        g.tokens.get(token).cloned()
    }

    /// Authenticates a Huawei request. `Ok` carries the account; `Err` the `error_msg` of the
    /// API gateway's 401 (`APIGW.0301`).
    pub(crate) fn huawei(&self, req: &Received<'_>, now_unix: i64) -> Result<String, String> {
        const PREFIX: &str = "Incorrect IAM authentication information: ";
        let fail = |m: &str| Err(format!("{PREFIX}{m}"));
        let Some(auth) = header(req.headers, "authorization") else {
            if header(req.headers, "x-auth-token").is_some() {
                return fail("decrypt token fail");
            }
            return fail("x-auth-token not found");
        };
        let Some(params) = auth.strip_prefix("SDK-HMAC-SHA256 ") else {
            return fail("unsupported authorization algorithm, expected SDK-HMAC-SHA256");
        };
        let params = parse_params(params);
        let (Some(ak), Some(signed), Some(signature)) = (
            params.get("Access"),
            params.get("SignedHeaders"),
            params.get("Signature"),
        ) else {
            return fail("malformed authorization header");
        };
        let Some(date) = header(req.headers, "x-sdk-date") else {
            return fail("x-sdk-date not found");
        };
        let Some(ts) = verify::parse_sdk_date(date) else {
            return fail("invalid x-sdk-date, expected format yyyyMMddTHHmmssZ");
        };
        if (now_unix - ts).abs() > HUAWEI_MAX_SKEW_SECS {
            return fail("request expired, x-sdk-date must be within 15 minutes of server time");
        }
        let Some(cred) = self.credential(ak) else {
            return fail(&format!(
                "Get secretKey failed,ak:{},err:ak not exist",
                mask(ak)
            ));
        };
        let signed: Vec<&str> = signed.split(';').filter(|s| !s.is_empty()).collect();
        if !signed.contains(&"host") || !signed.contains(&"x-sdk-date") {
            return fail("verify aksk signature fail, host and x-sdk-date must be signed");
        }
        if signed.iter().any(|h| req.headers.get(*h).is_none()) {
            return fail("verify aksk signature fail, a signed header is missing");
        }
        let ok = verify::huawei_signature(req, &signed, date, &cred.secret_key)
            .is_some_and(|expected| ct_eq(expected.as_bytes(), signature.as_bytes()));
        if !ok {
            return fail("verify aksk signature fail");
        }
        if let Some(token) = &cred.security_token {
            match header(req.headers, "x-security-token") {
                Some(t) if ct_eq(t.as_bytes(), token.as_bytes()) => {}
                Some(_) => return fail("verify security token fail"),
                None => return fail("security token not found for temporary credential"),
            }
        }
        Ok(cred.account)
    }

    /// Authenticates a Zenlayer request. `Ok` carries the account; `Err` the error `code` and
    /// `message` of the 401.
    pub(crate) fn zenlayer(
        &self,
        req: &Received<'_>,
        now_unix: i64,
    ) -> Result<String, (&'static str, String)> {
        let auth_failed = |m: &str| Err(("AUTH_FAILED", m.to_string()));
        let Some(auth) = header(req.headers, "authorization") else {
            return auth_failed("Authorization header is missing.");
        };
        if let Some(token) = auth.strip_prefix("Bearer ") {
            return match self.token_account(token.trim()) {
                Some(account) => Ok(account),
                None => auth_failed("The bearer token is invalid or has been revoked."),
            };
        }
        let Some(params) = auth.strip_prefix("ZC2-HMAC-SHA256 ") else {
            return auth_failed("Unsupported authorization scheme.");
        };
        if let Some(m) = header(req.headers, "x-zc-signature-method")
            && m != "ZC2-HMAC-SHA256"
        {
            return auth_failed("Unsupported x-zc-signature-method.");
        }
        let params = parse_params(params);
        let (Some(ak), Some(signed), Some(signature)) = (
            params.get("Credential"),
            params.get("SignedHeaders"),
            params.get("Signature"),
        ) else {
            return auth_failed("Malformed Authorization header.");
        };
        let Some(ts_str) = header(req.headers, "x-zc-timestamp") else {
            return auth_failed("x-zc-timestamp header is missing.");
        };
        let Ok(ts) = ts_str.trim().parse::<i64>() else {
            return auth_failed("x-zc-timestamp must be a Unix timestamp in seconds.");
        };
        if (now_unix - ts).abs() > ZENLAYER_MAX_SKEW_SECS {
            return Err((
                "SIGNATURE_EXPIRED",
                "The request signature has expired: x-zc-timestamp differs from server time by more than 5 minutes."
                    .to_string(),
            ));
        }
        let Some(cred) = self.credential(ak) else {
            return auth_failed(&format!("Access key {} does not exist.", mask(ak)));
        };
        let signed: Vec<&str> = signed.split(';').filter(|s| !s.is_empty()).collect();
        let complete = signed.contains(&"host")
            && signed.contains(&"content-type")
            && signed.iter().all(|h| req.headers.get(*h).is_some());
        let ok = complete
            && verify::zenlayer_signature(req, &signed, ts_str, &cred.secret_key)
                .is_some_and(|expected| ct_eq(expected.as_bytes(), signature.as_bytes()));
        if !ok {
            return Err((
                "SIGNATURE_FAILURE",
                "The request signature does not match the signature calculated by the server."
                    .to_string(),
            ));
        }
        Ok(cred.account)
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Parses `Key=value, Key2=value2` (the parameter part of both authorization headers).
fn parse_params(s: &str) -> HashMap<&str, &str> {
    s.split(',')
        .filter_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            Some((k.trim(), v.trim()))
        })
        .collect()
}

/// Comparison that does not stop at the first difference, as a real verifier would.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_and_compare() {
        let p = parse_params("Access=AK, SignedHeaders=host;x-sdk-date, Signature=ab12");
        assert_eq!(p["Access"], "AK");
        assert_eq!(p["SignedHeaders"], "host;x-sdk-date");
        assert_eq!(p["Signature"], "ab12");
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert_eq!(mask("CQSIMDEMOACCESSKEY01"), "CQSI****");
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = Credential::demo().with_security_token("tok-secret");
        let s = format!("{c:?} {:?}", BearerToken::demo());
        assert!(!s.contains(DEMO_SECRET_KEY));
        assert!(!s.contains("tok-secret"));
        assert!(!s.contains(DEMO_TOKEN));
    }
}
