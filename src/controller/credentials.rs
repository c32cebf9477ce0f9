//! Credentials from a Secret's data: the pure half (key names and validation) of reading them.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;

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
            let e = from_secret_data("creds", &d).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("SUPERSECRET"));
        }
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
