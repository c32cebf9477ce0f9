//! Huawei `SDK-HMAC-SHA256` canonicalisation: `canonical_uri` and `canonical_query` never
//! panic, only emit unreserved characters and upper-case `%XX` escapes, and `canonical_uri` is
//! idempotent (a verifier re-canonicalising a canonical path gets the same bytes).
#![no_main]

use arbitrary::Arbitrary;
use cloudquota::sign::huawei::{canonical_query, canonical_uri};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    path: &'a str,
    query: Vec<(&'a str, &'a str)>,
}

/// Only `A-Z a-z 0-9 - . _ ~`, `%XX` (upper-case hex) and the given extra characters.
fn assert_encoded(what: &str, s: &str, extra: &[u8]) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            assert!(
                i + 2 < b.len()
                    && matches!(b[i + 1], b'0'..=b'9' | b'A'..=b'F')
                    && matches!(b[i + 2], b'0'..=b'9' | b'A'..=b'F'),
                "{what}: bad escape at {i} in {s:?}"
            );
            i += 3;
            continue;
        }
        assert!(
            c.is_ascii_alphanumeric() || b"-._~".contains(&c) || extra.contains(&c),
            "{what}: unencoded {:?} in {s:?}",
            c as char
        );
        i += 1;
    }
}

fuzz_target!(|input: Input| {
    let uri = canonical_uri(input.path);
    assert!(uri.ends_with('/'), "{uri:?}");
    assert_encoded("canonical_uri", &uri, b"/");
    assert_eq!(
        canonical_uri(&uri),
        uri,
        "not idempotent for {:?}",
        input.path
    );
    if input.path.starts_with('/') {
        assert!(uri.starts_with('/'), "{uri:?}");
    }
    // A path without '%' only gains escapes: decoding the output gives the input back.
    if !input.path.contains('%') {
        let mut want = input.path.to_string();
        if !want.ends_with('/') {
            want.push('/');
        }
        let decoded = percent_decode(&uri);
        assert_eq!(decoded, want);
    }

    let query: Vec<(&str, &str)> = input.query.iter().take(32).copied().collect();
    let q = canonical_query(&query);
    assert_encoded("canonical_query", &q, b"=&");
    if query.is_empty() {
        assert_eq!(q, "");
    } else {
        let pairs: Vec<&str> = q.split('&').collect();
        assert_eq!(pairs.len(), query.len(), "{q:?}");
        for p in &pairs {
            assert_eq!(p.matches('=').count(), 1, "{p:?} in {q:?}");
        }
        // Order does not matter: any permutation canonicalises the same way.
        let mut reversed = query.clone();
        reversed.reverse();
        assert_eq!(canonical_query(&reversed), q);
        // Pairs come out sorted by the raw (decoded) key and value.
        let raw: Vec<(String, String)> = pairs
            .iter()
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        assert!(raw.windows(2).all(|w| w[0] <= w[1]), "{q:?} not sorted");
    }
});

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("escapes encode UTF-8")
}
