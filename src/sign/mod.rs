//! Request signing for the vendor APIs, byte-compatible with the official Python SDKs.
//!
//! * [`huawei`]: `SDK-HMAC-SHA256` (huaweicloudsdkcore `Signer`), used by IMS, DWS and EVS.
//! * [`zenlayer`]: `ZC2-HMAC-SHA256` (zenlayercloud-sdk-python `AbstractClient`) and the
//!   bearer-token alternative.
//!
//! Everything here is pure: no IO, no clock (the timestamp is an argument), so signatures are
//! reproducible in tests. `tests/signing_vectors.rs` checks both signers byte for byte against
//! vectors produced by the SDKs' own code (`hack/gen-vectors.sh`).
//!
//! Secrets (secret keys, security tokens, bearer tokens) are held in [`SecretString`] (the
//! `secrecy` crate): its `Debug` prints `[REDACTED]`, it has no `Display`, the raw value is only
//! reachable through [`ExposeSecret::expose_secret`], and the memory is zeroized on drop.
//! [`HeaderList`]'s `Debug` hides the values of `Authorization` and `X-Security-Token`. No
//! [`SignError`] message contains request data.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub mod huawei;
pub mod zenlayer;

/// A secret string (secret key, security token, bearer token), and the one way to read it.
pub use secrecy::{ExposeSecret, SecretString};

/// Why a request could not be signed. Messages never contain keys, tokens or request data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The access key (id) is empty.
    #[error("access key is empty")]
    EmptyAccessKey,
    /// The secret key (password) is empty.
    #[error("secret key is empty")]
    EmptySecretKey,
    /// The bearer token is empty (after trimming).
    #[error("bearer token is empty")]
    EmptyToken,
    /// The request path is empty or does not start with `/`.
    #[error("request path must start with '/'")]
    InvalidPath,
    /// The caller supplied a header that the signer itself sets.
    #[error("header {0} is set by the signer and must not be supplied by the caller")]
    ReservedHeader(&'static str),
}

/// Header names whose values [`HeaderList`]'s `Debug` output hides.
const SENSITIVE_HEADERS: &[&str] = &["authorization", "x-security-token"];

/// An ordered list of HTTP headers, in the order the SDK would send them.
///
/// Names keep the SDK's spelling (`X-Sdk-Date`, `host`, `Content-Type`, ...); HTTP does not care
/// about case, but the vectors compare exactly. Duplicate names differing only in case can occur
/// (the SDKs keep headers in a case-sensitive dict); [`HeaderList::get`] returns the first.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct HeaderList(Vec<(String, String)>);

impl HeaderList {
    /// First value whose name matches `name` ASCII-case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The headers in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The headers as a slice of `(name, value)`.
    pub fn as_slice(&self) -> &[(String, String)] {
        &self.0
    }

    /// Consumes the list.
    pub fn into_vec(self) -> Vec<(String, String)> {
        self.0
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Python `dict.__setitem__` semantics, which both SDKs rely on: a header with exactly
    /// this (case-sensitive) name is replaced in place, otherwise the header is appended.
    pub(crate) fn set_exact(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_owned(), value)),
        }
    }

    /// Exact (case-sensitive) lookup, like Python `dict.get`.
    pub(crate) fn get_exact(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn contains_ignore_ascii_case(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub(crate) fn entries_mut(&mut self) -> &mut Vec<(String, String)> {
        &mut self.0
    }

    /// Builds a list from caller headers with dict semantics (an exact repeat replaces).
    pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let mut list = Self(Vec::with_capacity(pairs.len() + 8));
        for (k, v) in pairs {
            list.set_exact(k, *v);
        }
        list
    }
}

impl fmt::Debug for HeaderList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (k, v) in &self.0 {
            if SENSITIVE_HEADERS.iter().any(|s| k.eq_ignore_ascii_case(s)) {
                list.entry(&(k, "***"));
            } else {
                list.entry(&(k, v));
            }
        }
        list.finish()
    }
}

impl<'a> IntoIterator for &'a HeaderList {
    type Item = &'a (String, String);
    type IntoIter = std::slice::Iter<'a, (String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The result of signing a request.
#[derive(Clone, PartialEq, Eq)]
pub struct Signed {
    /// Every header the request must carry, in the SDK's order, `Authorization` last.
    pub headers: HeaderList,
    /// Path and query exactly as the SDK puts them on the request line.
    pub path_and_query: String,
    /// The canonical request that was hashed (for debugging signature mismatches).
    pub canonical_request: String,
    /// The string that was HMAC-ed (for debugging signature mismatches).
    pub string_to_sign: String,
    /// Lower-case hex HMAC-SHA256 signature.
    pub signature: String,
    /// Where `canonical_request` holds the security token (Huawei temporary credentials), in
    /// order and not overlapping, so `Debug` can hide exactly those bytes whatever the token
    /// contains. A caller's header that differs only in case makes the name appear twice.
    pub(crate) secret_spans: Vec<std::ops::Range<usize>>,
}

impl Signed {
    /// The `Authorization` header value.
    pub fn authorization(&self) -> &str {
        self.headers.get("Authorization").unwrap_or_default()
    }
}

impl fmt::Debug for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The canonical request of a Huawei request contains the (signed) security token.
        let mut canonical = String::with_capacity(self.canonical_request.len());
        let mut shown = 0;
        for span in &self.secret_spans {
            canonical.push_str(&self.canonical_request[shown..span.start]);
            canonical.push_str("***");
            shown = span.end;
        }
        canonical.push_str(&self.canonical_request[shown..]);
        f.debug_struct("Signed")
            .field("headers", &self.headers)
            .field("path_and_query", &self.path_and_query)
            .field("canonical_request", &canonical)
            .field("string_to_sign", &self.string_to_sign)
            .field("signature", &self.signature)
            .finish()
    }
}

/// Lower-case hex SHA-256.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Lower-case hex HMAC-SHA256.
pub(crate) fn hmac_sha256_hex(key: &[u8], msg: &[u8]) -> String {
    // HMAC accepts keys of any length (long keys are hashed first), so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg);
    hex::encode(mac.finalize().into_bytes())
}

/// Python's `str.isspace()`: Unicode `White_Space` plus U+001C..U+001F, which Python counts as
/// whitespace (bidi class B/S) and Rust's `char::is_whitespace` does not.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` with no argument. Both SDKs strip with it (Huawei: header values;
/// Zenlayer: keys and tokens), so a Rust `trim()` would differ on U+001C..U+001F.
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let s = SecretString::from("super-secret");
        for dbg in [format!("{s:?}"), format!("{:?}", Some(s.clone()))] {
            assert!(!dbg.contains("super-secret"), "{dbg}");
            assert!(dbg.contains("REDACTED"), "{dbg}");
        }
        assert_eq!(s.expose_secret(), "super-secret");
    }

    #[test]
    fn header_list_debug_hides_credentials() {
        let mut h = HeaderList::default();
        h.set_exact("Authorization", "Bearer tok");
        h.set_exact("X-Security-Token", "sts");
        h.set_exact("Host", "example.com");
        let dbg = format!("{h:?}");
        assert!(!dbg.contains("tok"), "{dbg}");
        assert!(!dbg.contains("sts"), "{dbg}");
        assert!(dbg.contains("example.com"));
    }

    #[test]
    fn set_exact_is_dict_semantics() {
        let mut h = HeaderList::from_pairs(&[("A", "1"), ("a", "2"), ("A", "3")]);
        assert_eq!(
            h.as_slice(),
            &[("A".into(), "3".into()), ("a".into(), "2".into())]
        );
        h.set_exact("B", "4");
        assert_eq!(h.get("b"), Some("4"));
        assert_eq!(h.get_exact("b"), None);
    }

    #[test]
    fn py_strip_matches_python() {
        assert_eq!(py_strip("\u{1c}\u{1f} x \u{3000}\u{a0}\t"), "x");
        assert_eq!(py_strip("\u{200b}x"), "\u{200b}x"); // ZWSP is not whitespace in either
        assert_eq!(py_strip(""), "");
    }

    #[test]
    fn digests() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // RFC 4231 test case 2
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn sign_error_messages_are_generic() {
        for e in [
            SignError::EmptyAccessKey,
            SignError::EmptySecretKey,
            SignError::EmptyToken,
            SignError::InvalidPath,
            SignError::ReservedHeader("X-Sdk-Date"),
        ] {
            assert!(!e.to_string().is_empty());
        }
    }
}
