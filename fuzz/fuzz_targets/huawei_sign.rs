//! Huawei `SDK-HMAC-SHA256` signing with arbitrary requests and credentials: never panics,
//! fails exactly on the documented conditions, is deterministic, lays the canonical request
//! out as documented, and its `Debug` output never shows the secret key or security token.
//!
//! Inputs that are a `tests/vectors/huaweicloud_sign.json` vector `input` object (JSON) are
//! signed as such, so the SDK vectors seed the corpus; anything else is decoded with
//! `arbitrary`.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use cloudquota::sign::SignError;
use cloudquota::sign::huawei::{
    HuaweiCredentials, HuaweiRequest, canonical_query, canonical_uri, sdk_date, sign,
};
use cloudquota_fuzz::{HuaweiVectorInput, OTHER_SECRET, assert_not_leaked};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    method: String,
    host: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    ak: String,
    sk: String,
    security_token: Option<String>,
    project_id: Option<String>,
    seconds: i64,
}

fn from_vector(v: HuaweiVectorInput) -> Option<Input> {
    let ts: jiff::Timestamp = v.timestamp.parse().ok()?;
    Some(Input {
        method: v.method,
        host: v.host,
        path: v.path,
        query: v.query,
        headers: v.headers,
        body: v.body.into_bytes(),
        ak: v.ak,
        sk: v.sk,
        security_token: v.security_token,
        project_id: v.project_id,
        seconds: ts.as_second(),
    })
}

fn run(input: Input) {
    let query = cloudquota_fuzz::pairs(&input.query);
    let headers = cloudquota_fuzz::pairs(&input.headers);
    let req = HuaweiRequest {
        method: &input.method,
        host: &input.host,
        path: &input.path,
        query: &query,
        headers: &headers,
        body: &input.body,
        project_id: input.project_id.as_deref(),
    };
    let mut creds = HuaweiCredentials::new(input.ak.clone(), input.sk.clone());
    if let Some(t) = &input.security_token {
        creds = creds.with_security_token(t.clone());
    }
    let seconds = input.seconds.clamp(
        jiff::Timestamp::MIN.as_second() + 1,
        jiff::Timestamp::MAX.as_second() - 1,
    );
    let now = jiff::Timestamp::from_second(seconds).unwrap();
    let result = sign(&req, &creds, now);
    let reserved = headers.iter().find_map(|(k, _)| {
        if k.eq_ignore_ascii_case("X-Sdk-Date") {
            Some(SignError::ReservedHeader("X-Sdk-Date"))
        } else if k.eq_ignore_ascii_case("Authorization") {
            Some(SignError::ReservedHeader("Authorization"))
        } else {
            None
        }
    });
    let expected_err = if input.ak.is_empty() {
        Some(SignError::EmptyAccessKey)
    } else if input.sk.is_empty() {
        Some(SignError::EmptySecretKey)
    } else if !input.path.starts_with('/') {
        Some(SignError::InvalidPath)
    } else {
        reserved
    };
    let signed = match (result, expected_err) {
        (Err(got), Some(want)) => {
            assert_eq!(got, want);
            return;
        }
        (Err(got), None) => panic!("unexpected {got:?}"),
        (Ok(_), Some(want)) => panic!("signed although {want:?} was expected"),
        (Ok(s), None) => s,
    };
    // Deterministic: the same inputs and time give the same bytes.
    assert!(sign(&req, &creds, now).unwrap() == signed);

    let date = sdk_date(now);
    assert_eq!(signed.headers.get("X-Sdk-Date"), Some(date.as_str()));
    assert!(signed.headers.get("host").is_some());
    let (last_name, last_value) = signed.headers.iter().last().unwrap();
    assert_eq!(last_name, "Authorization");
    assert_eq!(signed.authorization(), last_value);
    assert!(
        last_value.starts_with(&format!(
            "SDK-HMAC-SHA256 Access={}, SignedHeaders=",
            input.ak
        )),
        "{last_value:?}"
    );
    assert!(last_value.ends_with(&format!(", Signature={}", signed.signature)));
    assert_eq!(signed.signature.len(), 64);
    assert!(
        signed
            .signature
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    );
    let cq = canonical_query(&query);
    assert!(
        signed.canonical_request.starts_with(&format!(
            "{}\n{}\n{}\n",
            input.method.to_uppercase(),
            canonical_uri(&input.path),
            cq
        )),
        "{:?}",
        signed.canonical_request
    );
    assert!(
        signed
            .string_to_sign
            .starts_with(&format!("SDK-HMAC-SHA256\n{date}\n"))
    );
    assert_eq!(
        signed.string_to_sign.len(),
        "SDK-HMAC-SHA256\n".len() + date.len() + 1 + 64
    );
    assert!(signed.path_and_query.starts_with(&input.path));
    if cq.is_empty() {
        assert_eq!(signed.path_and_query, input.path);
    } else {
        assert_eq!(signed.path_and_query, format!("{}?{cq}", input.path));
    }
    if let Some(p) = input.project_id.as_deref().filter(|p| !p.is_empty()) {
        let _ = p;
        assert!(signed.headers.get("X-Project-Id").is_some());
    }

    // Debug output (what could end up in a log) hides the secret key and the token.
    let debug = format!("{signed:?} {creds:?} {req:?}");
    let mut other = HuaweiCredentials::new(input.ak.clone(), OTHER_SECRET);
    if input.security_token.is_some() {
        other = other.with_security_token(OTHER_SECRET);
    }
    let other_signed = sign(&req, &other, now).expect("same request, other secrets");
    let other_debug = format!("{other_signed:?} {other:?} {req:?}");
    assert_not_leaked("secret key", &input.sk, &debug, &other_debug);
    if let Some(t) = &input.security_token {
        assert_not_leaked("security token", t.trim(), &debug, &other_debug);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<HuaweiVectorInput>(data) {
        if let Some(input) = from_vector(v) {
            run(input);
        }
        return;
    }
    if let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) {
        run(input);
    }
});
