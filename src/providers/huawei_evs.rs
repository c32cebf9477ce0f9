//! Huawei EVS quotas: `GET /v2/{project_id}/os-quota-sets/{project_id}?usage=True` (seed 003).
//!
//! Every key of `quota_set` except `id` is a resource with `{in_use, limit, reserved}`; the
//! per-volume-type keys (`volumes_SSD`, `gigabytes_GPSSD2`, ...) are whatever types the
//! project has, so they are discovered, never listed. `-1` means unlimited.

use serde_json::Value;

use super::errors::clip;
use super::huawei::ProjectGet;
use super::{ProviderError, parse};
use crate::domain::model::Quota;

pub static EVS: ProjectGet = ProjectGet {
    path: |project| format!("/v2/{project}/os-quota-sets/{project}"),
    query: &[("usage", "True")],
    parse,
};

/// Parses a `ShowQuotaSets` (usage=True) body.
pub fn parse(body: &[u8]) -> Result<Vec<Quota>, ProviderError> {
    let v = parse::json(body, "EVS quota set")?;
    let set = parse::object(v.get("quota_set"), "quota_set")?;
    let mut out = Vec::with_capacity(set.len());
    for (key, value) in set {
        // Keys are upstream text like any other name: control characters and unbounded length
        // must not reach status, Events or error messages. Real keys (`volumes_SSD`) are unchanged.
        let key = clip(key);
        if key == "id" {
            continue;
        }
        if key.is_empty() {
            return Err(ProviderError::InvalidResponse(
                "quota_set: a resource with an empty name".into(),
            ));
        }
        let at = parse::within(parse::Key("quota_set", &key));
        match value {
            Value::Object(m) => {
                let mut q = Quota::new(
                    key.clone(),
                    parse::count(m.get("in_use"), "in_use").map_err(at)?,
                    parse::limit(m.get("limit"), "limit").map_err(at)?,
                );
                q.reserved = parse::opt_int(m.get("reserved"), "reserved").map_err(at)?;
                if key.starts_with("gigabytes") || key == "backup_gigabytes" {
                    q.unit = Some("GB".into());
                }
                out.push(q);
            }
            Value::Number(_) => {
                return Err(ProviderError::InvalidResponse(format!(
                    "quota_set.{key}: a plain number instead of {{in_use, limit, reserved}} (the usage=True form)"
                )));
            }
            // Other scalar fields are not resources; unknown fields are ignored.
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::Limit;

    #[test]
    fn seed_003_example() {
        let mut q =
            parse(include_str!("../../tests/fixtures/seed_003_evs.json").as_bytes()).unwrap();
        q.sort_by(|a, b| a.name.cmp(&b.name));
        let names: Vec<_> = q.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "backup_gigabytes",
                "backups",
                "gigabytes",
                "gigabytes_SAS",
                "gigabytes_SATA",
                "gigabytes_SSD",
                "snapshots",
                "snapshots_SAS",
                "snapshots_SATA",
                "snapshots_SSD",
                "volumes",
                "volumes_SAS",
                "volumes_SATA",
                "volumes_SSD"
            ]
        );
        let g = q.iter().find(|q| q.name == "gigabytes").unwrap();
        assert_eq!(
            (g.used, g.limit, g.reserved, g.unit.as_deref()),
            (2792, Limit::Limited(42790), Some(0), Some("GB"))
        );
        let ssd = q.iter().find(|q| q.name == "volumes_SSD").unwrap();
        assert_eq!(
            (ssd.used, ssd.limit, ssd.unit.as_deref()),
            (28, Limit::Unlimited, None)
        );
    }

    #[test]
    fn any_volume_type_case_kept() {
        let body = br#"{"quota_set":{"id":"p","volumes_GPSSD2":{"in_use":"3","limit":"10","reserved":0},"gigabytes_ESSD":{"in_use":1,"limit":-1},"per_volume_gigabytes":{"in_use":0,"limit":32768,"reserved":0},"name":"x"}}"#;
        let q = parse(body).unwrap();
        let names: Vec<_> = q.iter().map(|q| q.name.as_str()).collect();
        assert!(
            names.contains(&"volumes_GPSSD2") && names.contains(&"gigabytes_ESSD"),
            "{names:?}"
        );
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn keys_are_cleaned_like_other_upstream_names() {
        let long = "v".repeat(1000);
        let body = format!(
            r#"{{"quota_set":{{"volumes\u001b[31m_X":{{"in_use":1,"limit":2}},"{long}":{{"in_use":1,"limit":"x"}}}}}}"#
        );
        // The bad value's error names the key clipped, not 1000 characters long.
        let e = parse(body.as_bytes()).unwrap_err().to_string();
        assert!(e.len() < 400 && e.contains("vvvv…"), "{e}");
        let body = br#"{"quota_set":{"volumes\u001b[31m_X":{"in_use":1,"limit":2}," id ":{"in_use":1,"limit":2}}}"#;
        let q = parse(body).unwrap();
        let names: Vec<_> = q.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["volumes [31m_X"]);
    }

    #[test]
    fn bad_bodies() {
        let cases: &[(&[u8], &str)] = &[
            (
                br#"{"quota_set":{"volumes":{"in_use":1}}}"#,
                "quota_set.volumes.limit: missing",
            ),
            (
                br#"{"quota_set":{"volumes":{"in_use":1,"limit":-7}}}"#,
                "quota_set.volumes.limit: -7",
            ),
            (
                br#"{"quota_set":{"volumes":10}}"#,
                "quota_set.volumes: a plain number",
            ),
            (
                br#"{"error":{"message":"XXXX","code":"XXX"}}"#,
                "quota_set: missing",
            ),
            (
                br#"{"quota_set":{" ":{"in_use":1,"limit":2}}}"#,
                "quota_set: a resource with an empty name",
            ),
        ];
        for (body, want) in cases {
            let e = parse(body).unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
        }
    }
}
