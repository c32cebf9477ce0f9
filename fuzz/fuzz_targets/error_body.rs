//! Error bodies in every vendor shape: `parse::error_body`, `http::classify` and the Zenlayer
//! error mapping never panic, keep upstream text clipped, and scrubbing removes secrets.
#![no_main]

use cloudquota::providers::{ProviderError, http, parse, zenlayer_vm};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "Zq9SecretValue0xFUZZ";

fn messages(e: &ProviderError) -> (Option<&str>, &str) {
    match e {
        ProviderError::AuthFailed { code, message, .. }
        | ProviderError::NotFound { code, message }
        | ProviderError::Upstream { code, message, .. }
        | ProviderError::Rejected { code, message, .. } => (code.as_deref(), message),
        ProviderError::Throttled { message, .. } => (None, message),
        ProviderError::InvalidResponse(m)
        | ProviderError::Transport(m)
        | ProviderError::InvalidConfig(m)
        | ProviderError::UnsupportedCredentials(m)
        | ProviderError::Signing(m) => (None, m),
    }
}

fuzz_target!(|data: &[u8]| {
    let (status_bytes, body) = match data {
        [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]), rest),
        _ => (500, data),
    };
    let (code, message) = parse::error_body(body);
    if body.is_empty() {
        assert_eq!(message, "empty body");
    }
    cloudquota_fuzz::assert_clipped("message", &message);
    if let Some(c) = &code {
        // Numbers are rendered, strings clipped.
        assert!(c.chars().count() <= 400, "code too long: {}", c.len());
    }
    let status = 100 + status_bytes % 500;
    for e in [
        http::classify(status, None, body),
        zenlayer_vm::error(status, Some(std::time::Duration::from_secs(1)), body),
    ] {
        let (c, m) = messages(&e);
        cloudquota_fuzz::assert_clipped("message", m);
        let _ = (c, e.reason(), e.is_retryable(), e.to_string());
        // A provider echoing a credential back never keeps it.
        let scrubbed = e.scrubbed(&[SECRET]).to_string();
        assert!(
            !scrubbed.contains(SECRET),
            "secret survived scrubbing: {scrubbed}"
        );
    }
});
