//! Typed provider errors. Their messages never contain secrets: upstream text is truncated and
//! scrubbed of every credential value before it is kept.

use std::time::Duration;

/// Longest piece of upstream text kept in an error.
const MAX_UPSTREAM_TEXT: usize = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error(
        "authentication failed (HTTP {status}{}): {message}",
        code_suffix(code)
    )]
    AuthFailed {
        status: u16,
        code: Option<String>,
        message: String,
    },
    #[error("not found (HTTP 404{}): {message}", code_suffix(code))]
    NotFound {
        code: Option<String>,
        message: String,
    },
    #[error("throttled by the provider{}: {message}", retry_suffix(retry_after))]
    Throttled {
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("provider error (HTTP {status}{}): {message}", code_suffix(code))]
    Upstream {
        status: u16,
        code: Option<String>,
        message: String,
    },
    #[error("request rejected (HTTP {status}{}): {message}", code_suffix(code))]
    Rejected {
        status: u16,
        code: Option<String>,
        message: String,
    },
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    #[error("transport error: {0}")]
    Transport(String),
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The Secret's kind of credentials does not work with this provider (a bearer token for
    /// Huawei Cloud): the credentials are the problem, not the spec.
    #[error("unsupported credentials: {0}")]
    UnsupportedCredentials(String),
    /// The request could not be signed with these credentials.
    #[error("signing failed: {0}")]
    Signing(String),
}

fn code_suffix(code: &Option<String>) -> String {
    code.as_deref()
        .map(|c| format!(", {c}"))
        .unwrap_or_default()
}

fn retry_suffix(d: &Option<Duration>) -> String {
    d.map(|d| format!(" (retry after {})", crate::domain::duration::format(d)))
        .unwrap_or_default()
}

impl ProviderError {
    /// The CamelCase reason used in conditions, Events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ProviderError::AuthFailed { .. } => "AuthFailed",
            ProviderError::NotFound { .. } => "NotFound",
            ProviderError::Throttled { .. } => "Throttled",
            ProviderError::Upstream { .. } => "UpstreamError",
            ProviderError::Rejected { .. } => "RequestRejected",
            ProviderError::InvalidResponse(_) => "InvalidResponse",
            ProviderError::Transport(_) => "EndpointUnreachable",
            ProviderError::InvalidConfig(_) => "InvalidSpec",
            ProviderError::UnsupportedCredentials(_) => "CredentialsUnsupported",
            ProviderError::Signing(_) => "SigningFailed",
        }
    }

    /// Retrying cannot help until someone changes the spec, the credentials or the account's
    /// permissions (`Stalled`). Throttling, 5xx, timeouts and odd answers may pass.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ProviderError::AuthFailed { .. }
                | ProviderError::NotFound { .. }
                | ProviderError::Rejected { .. }
                | ProviderError::InvalidConfig(_)
                | ProviderError::UnsupportedCredentials(_)
                | ProviderError::Signing(_)
        )
    }

    /// Worth another try soon.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::Throttled { .. }
                | ProviderError::Upstream { .. }
                | ProviderError::Transport(_)
        )
    }

    /// How long the provider asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The same error with every secret value replaced by `***`.
    pub fn scrubbed(self, secrets: &[&str]) -> ProviderError {
        let s = |m: String| scrub(&m, secrets);
        match self {
            ProviderError::AuthFailed {
                status,
                code,
                message,
            } => ProviderError::AuthFailed {
                status,
                code: code.map(s),
                message: s(message),
            },
            ProviderError::NotFound { code, message } => ProviderError::NotFound {
                code: code.map(s),
                message: s(message),
            },
            ProviderError::Throttled {
                retry_after,
                message,
            } => ProviderError::Throttled {
                retry_after,
                message: s(message),
            },
            ProviderError::Upstream {
                status,
                code,
                message,
            } => ProviderError::Upstream {
                status,
                code: code.map(s),
                message: s(message),
            },
            ProviderError::Rejected {
                status,
                code,
                message,
            } => ProviderError::Rejected {
                status,
                code: code.map(s),
                message: s(message),
            },
            ProviderError::InvalidResponse(m) => ProviderError::InvalidResponse(s(m)),
            ProviderError::Transport(m) => ProviderError::Transport(s(m)),
            ProviderError::InvalidConfig(m) => ProviderError::InvalidConfig(s(m)),
            ProviderError::UnsupportedCredentials(m) => ProviderError::UnsupportedCredentials(s(m)),
            ProviderError::Signing(m) => ProviderError::Signing(s(m)),
        }
    }
}

/// Replaces every occurrence of a secret (of at least 4 characters, so short values can't
/// garble text) with `***`.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        if out.contains(secret) {
            out = out.replace(secret, "***");
        }
        // Text clipped to a length limit may end in the first characters of a secret.
        if let Some(body) = out.strip_suffix('…') {
            let cut = (4..secret.len())
                .rev()
                .find(|n| secret.is_char_boundary(*n) && body.ends_with(&secret[..*n]));
            if let Some(n) = cut {
                out = format!("{}***…", &body[..body.len() - n]);
            }
        }
    }
    out
}

/// Upstream text made safe to keep: control characters dropped, length bounded.
pub fn clip(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.chars().count() <= MAX_UPSTREAM_TEXT {
        cleaned.to_string()
    } else {
        let cut: String = cleaned.chars().take(MAX_UPSTREAM_TEXT).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_secrets_everywhere() {
        let e = ProviderError::AuthFailed {
            status: 401,
            code: Some("APIGW.0301".into()),
            message: "signature for AKID123 with SECRETxyz invalid".into(),
        }
        .scrubbed(&["AKID123", "SECRETxyz", "ab"]);
        let text = e.to_string();
        assert!(
            !text.contains("AKID123") && !text.contains("SECRETxyz"),
            "{text}"
        );
        assert!(text.contains("HTTP 401, APIGW.0301"), "{text}");
    }

    #[test]
    fn scrub_catches_a_secret_cut_by_clipping() {
        let text = clip(&format!("{}AKIDSECRETVALUE", "x".repeat(290)));
        assert!(
            text.contains("AKIDSECRET"),
            "precondition: clipping cut the secret"
        );
        let s = scrub(&text, &["AKIDSECRETVALUE"]);
        assert!(!s.contains("AKIDS") && s.ends_with("***…"), "{s}");
    }

    #[test]
    fn clip_bounds_text() {
        let long = "x".repeat(1000);
        assert_eq!(clip(&long).chars().count(), MAX_UPSTREAM_TEXT + 1);
        assert_eq!(clip("a\nb\u{0}c"), "a b c");
    }

    #[test]
    fn reasons() {
        assert_eq!(
            ProviderError::Transport("x".into()).reason(),
            "EndpointUnreachable"
        );
        assert!(
            ProviderError::Throttled {
                retry_after: None,
                message: String::new()
            }
            .is_retryable()
        );
        assert!(!ProviderError::InvalidResponse(String::new()).is_retryable());
        let t = ProviderError::Throttled {
            retry_after: Some(Duration::from_secs(30)),
            message: "slow down".into(),
        };
        assert_eq!(
            t.to_string(),
            "throttled by the provider (retry after 30s): slow down"
        );
    }
}
