//! Helpers shared by the fuzz targets: invariants every provider parser must keep, and the
//! signing-vector input shapes (so `tests/vectors/*.json` entries seed the signer targets).

use cloudquota::domain::model::{Limit, Quota};
use serde::Deserialize;

/// Longest upstream text `providers::errors::clip` keeps (300 characters plus `…`).
pub const MAX_CLIPPED_CHARS: usize = 301;

/// Text that went through `clip`: bounded, no control characters, trimmed.
pub fn assert_clipped(what: &str, s: &str) {
    assert!(
        s.chars().count() <= MAX_CLIPPED_CHARS,
        "{what}: {} chars is longer than clip allows",
        s.chars().count()
    );
    assert!(
        !s.chars().any(char::is_control),
        "{what}: control character in {s:?}"
    );
    assert_eq!(s, s.trim(), "{what}: not trimmed");
}

/// What every parser promises about the quotas it returns.
pub fn assert_quotas(quotas: &[Quota], clipped_names: bool) {
    for q in quotas {
        assert!(q.used >= 0, "negative used in {q:?}");
        match q.limit {
            Limit::Limited(n) => assert!(n >= 0, "negative limit in {q:?}"),
            Limit::Unlimited => {}
        }
        for (field, v) in [("reserved", q.reserved), ("min", q.min), ("max", q.max)] {
            if let Some(n) = v {
                assert!(n >= 0, "negative {field} in {q:?}");
            }
        }
        assert!(!q.name.is_empty(), "empty name in {q:?}");
        if clipped_names {
            assert_clipped("name", &q.name);
        }
        if let Some(z) = &q.zone {
            assert!(!z.is_empty(), "empty zone in {q:?}");
            assert_clipped("zone", z);
        }
        if let Some(u) = &q.unit {
            assert!(!u.is_empty(), "empty unit in {q:?}");
            assert_clipped("unit", u);
        }
        // Whatever the parser returned must go through the status code without panicking.
        let _ = cloudquota::domain::thresholds::usage_percent(q.used, q.limit.value().unwrap_or(0));
    }
}

/// A quota status built from parsed quotas must not panic either (sorting, dedup, levels).
pub fn assert_status_builds(quotas: Vec<Quota>) {
    use cloudquota::domain::model::Sample;
    use cloudquota::domain::status::{PollOutcome, next};
    use cloudquota::domain::thresholds::Policy;
    use cloudquota::crd::Thresholds;
    let policy = Policy::new(&Thresholds::default()).expect("default thresholds are valid");
    let sample = Sample {
        endpoint: "https://fuzz.invalid/".into(),
        quotas,
    };
    let now = jiff::Timestamp::from_second(1_700_000_000).unwrap();
    let first = next(
        None,
        PollOutcome::Synced {
            sample: &sample,
            policy: &policy,
        },
        Some(1),
        now,
    );
    for r in &first.status.resources {
        if let Some(a) = r.available {
            assert!(a >= 0, "negative available in {r:?}");
        }
    }
    // The same sample again: no events, same resources.
    let again = next(
        Some(&first.status),
        PollOutcome::Synced {
            sample: &sample,
            policy: &policy,
        },
        Some(1),
        now,
    );
    assert!(again.events.is_empty(), "{:?}", again.events);
    assert_eq!(again.status.resources, first.status.resources);
}

/// Borrowed `(name, value)` pairs for a signer request, at most 16 (more only slows fuzzing).
pub fn pairs(owned: &[(String, String)]) -> Vec<(&str, &str)> {
    owned
        .iter()
        .take(16)
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// One `input` object of `tests/vectors/huaweicloud_sign.json`.
#[derive(Debug, Deserialize)]
pub struct HuaweiVectorInput {
    pub method: String,
    pub host: String,
    pub path: String,
    #[serde(default)]
    pub query: Vec<(String, String)>,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub body: String,
    pub ak: String,
    pub sk: String,
    #[serde(default)]
    pub security_token: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    pub timestamp: String,
}

/// One `input` object of `tests/vectors/zenlayer_sign.json`.
#[derive(Debug, Deserialize)]
pub struct ZenlayerVectorInput {
    pub method: String,
    pub host: String,
    #[serde(default = "default_service")]
    pub service: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub sdk_version: Option<String>,
    #[serde(default)]
    pub sdk_lang: Option<String>,
    pub content_type: String,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub ak: Option<String>,
    #[serde(default)]
    pub sk: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    pub timestamp: f64,
}

fn default_service() -> String {
    "vm".into()
}

/// A stand-in secret for [`assert_not_leaked`]'s comparison run.
pub const OTHER_SECRET: &str = "Zz9-other-secret-for-comparison";

/// `debug` (output produced with `secret`) leaks it if it contains the secret while the same
/// output produced with [`OTHER_SECRET`] instead (`other_debug`) does not: text that is there
/// either way (header names, request data) is not a leak. Short or all-hex secrets are skipped
/// (they can occur in hashes and signatures by chance).
pub fn assert_not_leaked(what: &str, secret: &str, debug: &str, other_debug: &str) {
    if secret.len() < 8
        || secret == OTHER_SECRET
        || (secret.len() < 24 && secret.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return;
    }
    // Debug output escapes strings: a secret with quotes, backslashes or line breaks appears in
    // its escaped form, so look for both; and for each of its lines, which a line-oriented mask
    // could leave behind.
    let lines = secret.split(['\n', '\r']).filter(|l| l.len() >= 8 && *l != secret);
    for part in std::iter::once(secret).chain(lines) {
        let escaped = format!("{part:?}");
        for form in [part, &escaped[1..escaped.len() - 1]] {
            assert!(
                !debug.contains(form) || other_debug.contains(form),
                "{what} {secret:?} ({form:?}) in Debug output: {debug}"
            );
        }
    }
}
