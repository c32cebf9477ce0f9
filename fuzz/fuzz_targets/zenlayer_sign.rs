//! Zenlayer `ZC2-HMAC-SHA256` signing and bearer headers with arbitrary requests and
//! credentials: never panic, fail exactly on empty (after Python `strip()`) keys or tokens,
//! sign the documented canonical request, and never show secrets in `Debug` output.
//!
//! Inputs that are a `tests/vectors/zenlayer_sign.json` vector `input` object (JSON) are used
//! as such; anything else is decoded with `arbitrary`.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use cloudquota::sign::zenlayer::{
    ZenlayerCredentials, ZenlayerRequest, bearer_headers, canonical_request, sign,
};
use cloudquota::sign::{SecretString, SignError};
use cloudquota_fuzz::{OTHER_SECRET, ZenlayerVectorInput, assert_not_leaked};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    method: String,
    host: String,
    service: String,
    version: String,
    action: String,
    content_type: String,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
    sdk_version: Option<String>,
    sdk_lang: Option<String>,
    ak: String,
    sk: String,
    token: String,
    seconds: i64,
}

/// Python's `str.strip()` (Unicode whitespace plus U+001C..U+001F).
fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

fn from_vector(v: ZenlayerVectorInput) -> Input {
    Input {
        method: v.method,
        host: v.host,
        service: v.service,
        version: v.version,
        action: v.action,
        content_type: v.content_type,
        body: v.body.into_bytes(),
        headers: v.headers,
        sdk_version: v.sdk_version,
        sdk_lang: v.sdk_lang,
        ak: v.ak.unwrap_or_default(),
        sk: v.sk.unwrap_or_default(),
        token: v.token.unwrap_or_default(),
        seconds: v.timestamp as i64,
    }
}

/// The value of the exact-case `Authorization` header (the one the signer sets).
fn authorization<'a>(mut headers: impl Iterator<Item = (&'a str, &'a str)>) -> &'a str {
    headers
        .find(|(k, _)| *k == "Authorization")
        .map(|(_, v)| v)
        .expect("Authorization is always set")
}

fn run(input: Input) {
    let headers = cloudquota_fuzz::pairs(&input.headers);
    let req = ZenlayerRequest {
        method: &input.method,
        host: &input.host,
        service: &input.service,
        version: &input.version,
        action: &input.action,
        content_type: &input.content_type,
        body: &input.body,
        headers: &headers,
        sdk_version: input.sdk_version.as_deref(),
        sdk_lang: input.sdk_lang.as_deref(),
    };
    let seconds = input.seconds.clamp(
        jiff::Timestamp::MIN.as_second() + 1,
        jiff::Timestamp::MAX.as_second() - 1,
    );
    let now = jiff::Timestamp::from_second(seconds).unwrap();

    // Access keys.
    let (id, password) = (py_strip(&input.ak), py_strip(&input.sk));
    match ZenlayerCredentials::new(&input.ak, &input.sk) {
        Err(e) => {
            let want = if id.is_empty() {
                SignError::EmptyAccessKey
            } else {
                assert!(password.is_empty());
                SignError::EmptySecretKey
            };
            assert_eq!(e, want);
        }
        Ok(creds) => {
            assert!(!id.is_empty() && !password.is_empty());
            assert_eq!(creds.access_key_id(), id);
            let signed = sign(&req, &creds, now).expect("valid credentials always sign");
            assert!(
                sign(&req, &creds, now).unwrap() == signed,
                "not deterministic"
            );
            assert_eq!(
                signed.canonical_request,
                canonical_request(&input.method, &input.content_type, &input.host, &input.body)
            );
            assert_eq!(
                signed.string_to_sign.split('\n').nth(1),
                Some(now.as_second().to_string().as_str())
            );
            assert_eq!(signed.signature.len(), 64);
            // Set like a Python dict item: replaced in place if the caller sent one.
            let auth = authorization(signed.headers.iter());
            assert_eq!(
                auth,
                format!(
                    "ZC2-HMAC-SHA256 Credential={id}, SignedHeaders=content-type;host, Signature={}",
                    signed.signature
                )
            );
            assert_eq!(signed.path_and_query, format!("/api/v2/{}", input.service));
            let debug = format!("{signed:?} {creds:?}");
            let other = ZenlayerCredentials::new(&input.ak, OTHER_SECRET).unwrap();
            let other_signed = sign(&req, &other, now).unwrap();
            let other_debug = format!("{other_signed:?} {other:?}");
            assert_not_leaked("access key password", password, &debug, &other_debug);
        }
    }

    // Bearer token.
    let token = SecretString::from(input.token.clone());
    let stripped = py_strip(&input.token);
    match bearer_headers(&req, &token) {
        Err(e) => {
            assert!(stripped.is_empty());
            assert_eq!(e, SignError::EmptyToken);
        }
        Ok(h) => {
            assert!(!stripped.is_empty());
            assert_eq!(authorization(h.iter()), format!("Bearer {stripped}"));
            let debug = format!("{h:?} {token:?}");
            let other_token = SecretString::from(OTHER_SECRET);
            let other = bearer_headers(&req, &other_token).unwrap();
            let other_debug = format!("{other:?} {other_token:?}");
            assert_not_leaked("bearer token", stripped, &debug, &other_debug);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<ZenlayerVectorInput>(data) {
        run(from_vector(v));
        return;
    }
    if let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) {
        run(input);
    }
});
