//! Tolerant field readers shared by the provider parsers. Vendors send numbers as integers or
//! as strings (`"3"`), and units as `"GB"`, `null`, `"null"` or not at all; anything else that is
//! off is an `InvalidResponse` naming the field.

use serde_json::Value;

use super::ProviderError;
use super::errors::clip;
use crate::domain::model::Limit;

fn invalid(field: &str, what: &str) -> ProviderError {
    ProviderError::InvalidResponse(format!("{field}: {what}"))
}

/// Prefixes an `InvalidResponse` message with where in the body it happened (`prefix.field: ..`).
/// A closure for `map_err`, so the full field name is only built for an error: parsers run on
/// every poll.
pub fn within(
    prefix: impl std::fmt::Display + Copy,
) -> impl Fn(ProviderError) -> ProviderError + Copy {
    move |e| match e {
        ProviderError::InvalidResponse(m) => {
            ProviderError::InvalidResponse(format!("{prefix}.{m}"))
        }
        e => e,
    }
}

/// `list[index]`, formatted only when displayed (see [`within`]).
#[derive(Clone, Copy)]
pub struct Item<'a>(pub &'a str, pub usize);

impl std::fmt::Display for Item<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]", self.0, self.1)
    }
}

/// `object.key`, formatted only when displayed (see [`within`]).
#[derive(Clone, Copy)]
pub struct Key<'a>(pub &'a str, pub &'a str);

impl std::fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// Parses a JSON body, naming what was expected on failure.
pub fn json(body: &[u8], what: &str) -> Result<Value, ProviderError> {
    serde_json::from_slice(body).map_err(|e| {
        ProviderError::InvalidResponse(format!(
            "{what}: body is not valid JSON ({}, {} bytes)",
            e.classify_name(),
            body.len()
        ))
    })
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "data error",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

/// An integer that may arrive as a JSON number or a string holding one.
pub fn int(v: Option<&Value>, field: &str) -> Result<i64, ProviderError> {
    match v {
        None | Some(Value::Null) => Err(invalid(field, "missing")),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(i)
            } else if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                Ok(f as i64)
            } else {
                Err(invalid(
                    field,
                    &format!("{n} is not a whole number in range"),
                ))
            }
        }
        Some(Value::String(s)) => {
            let t = s.trim();
            t.parse::<i64>()
                .ok()
                .or_else(|| {
                    t.parse::<f64>()
                        .ok()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                        .map(|f| f as i64)
                })
                .ok_or_else(|| invalid(field, &format!("{:?} is not a whole number", clip(s))))
        }
        Some(other) => Err(invalid(
            field,
            &format!("expected a number, got {}", kind(other)),
        )),
    }
}

/// A count that can't be negative.
pub fn count(v: Option<&Value>, field: &str) -> Result<i64, ProviderError> {
    let n = int(v, field)?;
    if n < 0 {
        return Err(invalid(field, &format!("{n} is negative")));
    }
    Ok(n)
}

/// A limit: `-1` is unlimited, other negatives are invalid.
pub fn limit(v: Option<&Value>, field: &str) -> Result<Limit, ProviderError> {
    let n = int(v, field)?;
    Limit::from_wire(n).ok_or_else(|| {
        invalid(
            field,
            &format!("{n} is negative (only -1, unlimited, is allowed)"),
        )
    })
}

/// An optional integer (`-1` or absent both mean "not reported").
pub fn opt_int(v: Option<&Value>, field: &str) -> Result<Option<i64>, ProviderError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() || s.trim() == "null" => Ok(None),
        _ => match int(v, field)? {
            -1 => Ok(None),
            n if n < 0 => Err(invalid(field, &format!("{n} is negative"))),
            n => Ok(Some(n)),
        },
    }
}

/// A unit: absent, `null`, `"null"` and `""` all mean "a plain count".
pub fn unit(v: Option<&Value>, field: &str) -> Result<Option<String>, ProviderError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() || t.eq_ignore_ascii_case("null") {
                Ok(None)
            } else {
                Ok(Some(clip(t)).filter(|u| !u.is_empty()))
            }
        }
        // The DWS doc types unit as Integer; a number there carries no unit.
        Some(Value::Number(_)) => Ok(None),
        Some(other) => Err(invalid(
            field,
            &format!("expected a string, got {}", kind(other)),
        )),
    }
}

/// A non-empty string.
pub fn string(v: Option<&Value>, field: &str) -> Result<String, ProviderError> {
    match v {
        Some(Value::String(s)) => match clip(s) {
            c if c.is_empty() => Err(invalid(field, "empty")),
            c => Ok(c),
        },
        None | Some(Value::Null) => Err(invalid(field, "missing")),
        Some(other) => Err(invalid(
            field,
            &format!("expected a string, got {}", kind(other)),
        )),
    }
}

/// An array.
pub fn array<'a>(v: Option<&'a Value>, field: &str) -> Result<&'a Vec<Value>, ProviderError> {
    match v {
        Some(Value::Array(a)) => Ok(a),
        None | Some(Value::Null) => Err(invalid(field, "missing")),
        Some(other) => Err(invalid(
            field,
            &format!("expected an array, got {}", kind(other)),
        )),
    }
}

/// An object.
pub fn object<'a>(
    v: Option<&'a Value>,
    field: &str,
) -> Result<&'a serde_json::Map<String, Value>, ProviderError> {
    match v {
        Some(Value::Object(o)) => Ok(o),
        None | Some(Value::Null) => Err(invalid(field, "missing")),
        Some(other) => Err(invalid(
            field,
            &format!("expected an object, got {}", kind(other)),
        )),
    }
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `(code, message)` from an error body in any of the shapes the vendors use:
/// `{"error_code","error_msg"}` (API gateway, DWS), `{"code","message"}` (Zenlayer),
/// `{"error":{"code","message"}}`, `{"badrequest":{...}}`, `{"itemNotFound":{...}}` (EVS, IMS).
pub fn error_body(body: &[u8]) -> (Option<String>, String) {
    let text = || clip(&String::from_utf8_lossy(&body[..body.len().min(512)]));
    let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(body) else {
        return (
            None,
            if body.is_empty() {
                "empty body".into()
            } else {
                text()
            },
        );
    };
    let pick = |m: &serde_json::Map<String, Value>, keys: &[&str]| {
        keys.iter().find_map(|k| match m.get(*k) {
            Some(Value::String(s)) if !s.is_empty() => Some(clip(s)),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
    };
    const CODES: &[&str] = &["error_code", "code", "errorCode"];
    const MSGS: &[&str] = &["error_msg", "message", "msg", "errorMessage"];
    if let (code, Some(msg)) = (pick(&o, CODES), pick(&o, MSGS)) {
        return (code, msg);
    }
    for v in o.values() {
        if let Value::Object(inner) = v
            && let Some(msg) = pick(inner, MSGS)
        {
            return (pick(inner, CODES), msg);
        }
    }
    (pick(&o, CODES), text())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ints_from_numbers_and_strings() {
        assert_eq!(int(Some(&json!(3)), "f").unwrap(), 3);
        assert_eq!(int(Some(&json!("3")), "f").unwrap(), 3);
        assert_eq!(int(Some(&json!(" 42 ")), "f").unwrap(), 42);
        assert_eq!(int(Some(&json!(5.0)), "f").unwrap(), 5);
        assert_eq!(int(Some(&json!("-1")), "f").unwrap(), -1);
        for bad in [
            json!("x"),
            json!(1.5),
            json!(true),
            json!([1]),
            json!("1e400"),
        ] {
            let e = int(Some(&bad), "quotas.resources[0].used").unwrap_err();
            assert!(e.to_string().contains("quotas.resources[0].used"), "{e}");
        }
        assert!(
            int(None, "f")
                .unwrap_err()
                .to_string()
                .contains("f: missing")
        );
    }

    #[test]
    fn limits_and_counts() {
        assert_eq!(limit(Some(&json!(-1)), "l").unwrap(), Limit::Unlimited);
        assert_eq!(limit(Some(&json!("20")), "l").unwrap(), Limit::Limited(20));
        assert!(
            limit(Some(&json!(-2)), "l")
                .unwrap_err()
                .to_string()
                .contains("-2 is negative")
        );
        assert!(count(Some(&json!(-1)), "c").is_err());
        assert_eq!(opt_int(Some(&json!(-1)), "o").unwrap(), None);
        assert_eq!(opt_int(None, "o").unwrap(), None);
        assert!(opt_int(Some(&json!(-3)), "o").is_err());
    }

    #[test]
    fn units() {
        assert_eq!(
            unit(Some(&json!("GB")), "u").unwrap().as_deref(),
            Some("GB")
        );
        for none in [
            json!(null),
            json!("null"),
            json!("NULL"),
            json!(""),
            json!(0),
        ] {
            assert_eq!(unit(Some(&none), "u").unwrap(), None, "{none}");
        }
        assert_eq!(unit(None, "u").unwrap(), None);
        assert!(unit(Some(&json!({})), "u").is_err());
    }

    #[test]
    fn error_bodies() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            (
                r#"{"error_code":"APIGW.0301","error_msg":"Incorrect IAM authentication information","request_id":"x"}"#,
                Some("APIGW.0301"),
                "Incorrect IAM authentication information",
            ),
            (
                r#"{"error":{"message":"XXXX","code":"XXX"}}"#,
                Some("XXX"),
                "XXXX",
            ),
            (
                r#"{"badrequest":{"message":"bad","code":400}}"#,
                Some("400"),
                "bad",
            ),
            (
                r#"{"itemNotFound":{"message":"gone","code":"404"}}"#,
                Some("404"),
                "gone",
            ),
            (
                r#"{"requestId":"r","code":"INVALID_REGION_NOT_FOUND","message":"no region"}"#,
                Some("INVALID_REGION_NOT_FOUND"),
                "no region",
            ),
            ("<html>oops</html>", None, "<html>oops</html>"),
            ("", None, "empty body"),
        ];
        for (body, code, msg) in cases {
            let (c, m) = error_body(body.as_bytes());
            assert_eq!((c.as_deref(), m.as_str()), (*code, *msg), "{body}");
        }
    }
}
