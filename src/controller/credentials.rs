//! Credentials from the object's own Secret: the pure half (key names and validation) and the
//! IO half (one GET, shared for a short while by objects that name the same Secret).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret as K8sSecret;
use kube::api::Api;

use crate::providers::Credentials;
use crate::sign::SecretString;

pub const ACCESS_KEY_ID: &str = "accessKeyId";
pub const SECRET_ACCESS_KEY: &str = "secretAccessKey";
pub const SECURITY_TOKEN: &str = "securityToken";
pub const BEARER_TOKEN: &str = "bearerToken";

/// Why a Secret does not hold usable credentials. Messages name keys, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("Secret {0} not found in the CloudQuota's namespace")]
    NotFound(String),
    #[error("Secret {secret} could not be read: {reason}")]
    Unreadable { secret: String, reason: String },
    #[error("Secret {0} has neither accessKeyId + secretAccessKey nor bearerToken")]
    NoKeys(String),
    #[error("Secret {secret}: key {key} is empty or not UTF-8")]
    BadValue { secret: String, key: &'static str },
    #[error(
        "Secret {secret}: key {key} contains a control character (line break, tab, ...) inside the value"
    )]
    ControlCharacter { secret: String, key: &'static str },
    #[error("Secret {0} has accessKeyId without secretAccessKey (or the reverse)")]
    Incomplete(String),
}

impl CredentialsError {
    /// The `Ready` reason: a missing Secret, one the operator may not read, and one whose
    /// values are malformed need different fixes.
    pub fn reason(&self) -> &'static str {
        match self {
            CredentialsError::NotFound(_) => "CredentialsMissing",
            CredentialsError::Unreadable { .. } => "CredentialsUnreadable",
            CredentialsError::NoKeys(_)
            | CredentialsError::BadValue { .. }
            | CredentialsError::ControlCharacter { .. }
            | CredentialsError::Incomplete(_) => "CredentialsInvalid",
        }
    }
}

fn value(
    secret: &str,
    data: &BTreeMap<String, ByteString>,
    key: &'static str,
) -> Result<Option<String>, CredentialsError> {
    match data.get(key) {
        None => Ok(None),
        Some(ByteString(bytes)) => {
            let s = std::str::from_utf8(bytes).map_err(|_| CredentialsError::BadValue {
                secret: secret.into(),
                key,
            })?;
            // Secrets written with `echo` often end in a newline that would break signatures.
            let s = s.trim();
            if s.is_empty() {
                return Err(CredentialsError::BadValue {
                    secret: secret.into(),
                    key,
                });
            }
            // Inside a value they cannot be sent as a header and would only make a confusing
            // upstream error (or sit in a signed canonical request).
            if s.chars().any(char::is_control) {
                return Err(CredentialsError::ControlCharacter {
                    secret: secret.into(),
                    key,
                });
            }
            Ok(Some(s.to_string()))
        }
    }
}

/// Credentials from a Secret's `data`. Access keys win over a bearer token when both are set.
pub fn from_secret_data(
    secret: &str,
    data: &BTreeMap<String, ByteString>,
) -> Result<Credentials, CredentialsError> {
    let ak = value(secret, data, ACCESS_KEY_ID)?;
    let sk = value(secret, data, SECRET_ACCESS_KEY)?;
    let token = value(secret, data, SECURITY_TOKEN)?;
    let bearer = value(secret, data, BEARER_TOKEN)?;
    match (ak, sk, bearer) {
        (Some(access_key_id), Some(sk), _) => Ok(Credentials::AccessKey {
            access_key_id,
            secret_access_key: SecretString::from(sk),
            security_token: token.map(SecretString::from),
        }),
        (Some(_), None, _) | (None, Some(_), _) => Err(CredentialsError::Incomplete(secret.into())),
        (None, None, Some(t)) => Ok(Credentials::Bearer(SecretString::from(t))),
        (None, None, None) => Err(CredentialsError::NoKeys(secret.into())),
    }
}

/// Reading the Secret failed: the object's problem, or a passing API server problem.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Credentials(#[from] CredentialsError),
    /// Trouble with the API server itself is not the object's fault: the reconcile is retried,
    /// nothing is cached, and it is not reported as missing credentials.
    #[error("reading the credentials Secret failed: {0}")]
    Transient(#[source] kube::Error),
}

type Entry = (Instant, Result<Credentials, CredentialsError>);

/// Secret reads shared for `ttl` by the objects that name the same Secret, keyed by the
/// Secret's namespace and name (the one thing they share).
pub struct SecretCache {
    ttl: Duration,
    entries: Mutex<HashMap<(String, String), Entry>>,
}

impl SecretCache {
    pub fn new(ttl: Duration) -> SecretCache {
        SecretCache {
            ttl,
            entries: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Credentials from the Secret `name` in `ns` (the CloudQuota's own namespace only).
    pub async fn read(
        &self,
        client: &kube::Client,
        ns: &str,
        name: &str,
    ) -> Result<Credentials, ReadError> {
        let key = (ns.to_string(), name.to_string());
        if let Some((at, v)) = self.lock().get(&key)
            && at.elapsed() < self.ttl
        {
            return v.clone().map_err(ReadError::Credentials);
        }
        let api: Api<K8sSecret> = Api::namespaced(client.clone(), ns);
        let result = match api.get_opt(name).await {
            Ok(Some(s)) => from_secret_data(name, &s.data.unwrap_or_default()),
            Ok(None) => Err(CredentialsError::NotFound(name.to_string())),
            Err(kube::Error::Api(s)) if s.code != 429 && s.code < 500 => {
                Err(CredentialsError::Unreadable {
                    secret: name.to_string(),
                    reason: format!("{} ({})", s.reason, s.code),
                })
            }
            Err(e) => return Err(ReadError::Transient(e)),
        };
        self.lock().insert(key, (Instant::now(), result.clone()));
        result.map_err(ReadError::Credentials)
    }

    /// Drops expired entries (Secrets nobody asked for lately).
    pub fn evict_expired(&self) {
        let ttl = self.ttl;
        self.lock().retain(|_, (at, _)| at.elapsed() < ttl);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::ExposeSecret;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn access_keys_with_optional_token() {
        let c = from_secret_data(
            "s",
            &data(&[
                ("accessKeyId", "AK\n"),
                ("secretAccessKey", "SK"),
                ("securityToken", "TOK"),
            ]),
        )
        .unwrap();
        match c {
            Credentials::AccessKey {
                access_key_id,
                secret_access_key,
                security_token,
            } => {
                assert_eq!(access_key_id, "AK");
                assert_eq!(secret_access_key.expose_secret(), "SK");
                assert_eq!(security_token.unwrap().expose_secret(), "TOK");
            }
            _ => panic!("expected access keys"),
        }
    }

    #[test]
    fn bearer_and_errors_never_show_values() {
        assert!(matches!(
            from_secret_data("s", &data(&[("bearerToken", "tok")])).unwrap(),
            Credentials::Bearer(_)
        ));
        let cases = [
            (data(&[]), "neither"),
            (data(&[("accessKeyId", "AK")]), "without secretAccessKey"),
            (
                data(&[("secretAccessKey", "SUPERSECRET")]),
                "without secretAccessKey",
            ),
            (
                data(&[("accessKeyId", "AK"), ("secretAccessKey", "  ")]),
                "secretAccessKey is empty",
            ),
            (
                data(&[
                    ("accessKeyId", "AK"),
                    ("secretAccessKey", "SK"),
                    ("securityToken", "SUPERSECRET\nSUPERSECRET\n"),
                ]),
                "securityToken contains a control character",
            ),
            (
                data(&[("bearerToken", "SUPER\tSECRET")]),
                "bearerToken contains a control character",
            ),
        ];
        for (d, want) in cases {
            let err = from_secret_data("creds", &d).unwrap_err();
            // Malformed values are not "missing": the Secret is there, its content is wrong.
            assert_eq!(err.reason(), "CredentialsInvalid", "{err}");
            let e = err.to_string();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("SUPERSECRET"));
        }
        assert_eq!(
            CredentialsError::NotFound("s".into()).reason(),
            "CredentialsMissing"
        );
        let debug = format!(
            "{:?}",
            from_secret_data(
                "s",
                &data(&[("accessKeyId", "AK"), ("secretAccessKey", "SUPERSECRET")])
            )
            .unwrap()
        );
        assert!(!debug.contains("SUPERSECRET"), "{debug}");
    }
}
