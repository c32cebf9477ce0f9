//! Huawei GaussDB(DWS) quotas: `GET /v1.0/{project_id}/quotas` (seed 002).
//!
//! The doc types `used` as String and `quota`/`unit` as Integer while its own example sends all
//! three as strings with `unit: "null"`; both are accepted.

use super::huawei::{ProjectGet, parse_quota_resources};
use super::{ProviderError, parse};
use crate::domain::model::Quota;

pub static DWS: ProjectGet = ProjectGet {
    path: |project| format!("/v1.0/{project}/quotas"),
    query: &[],
    parse,
};

/// Parses a `ListQuotas` body.
pub fn parse(body: &[u8]) -> Result<Vec<Quota>, ProviderError> {
    parse_quota_resources(body, "DWS quotas", |r, q| {
        q.unit = parse::unit(r.get("unit"), "unit")?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::Limit;

    #[test]
    fn seed_002_example() {
        let body = include_str!("../../tests/fixtures/seed_002_dws.json");
        let q = parse(body.as_bytes()).unwrap();
        let got: Vec<_> = q
            .iter()
            .map(|q| (q.name.as_str(), q.used, q.limit, q.unit.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("instances", 3, Limit::Limited(100), None),
                ("core", 12, Limit::Limited(100), None),
                ("ram", 24, Limit::Limited(1000), Some("GB")),
                ("disk", 6, Limit::Limited(100), None),
                ("disk_capacity", 600, Limit::Limited(1000), Some("GB")),
            ]
        );
    }

    #[test]
    fn integer_variant_and_unit_variants() {
        let body = br#"{"quotas":{"resources":[{"type":"instances","used":3,"quota":100},{"type":"ram","used":"24","quota":1000,"unit":null},{"type":"x","used":1,"quota":-1,"unit":"null"}]}}"#;
        let q = parse(body).unwrap();
        assert_eq!(q[0].used, 3);
        assert_eq!(q[1].unit, None);
        assert_eq!(q[2].limit, Limit::Unlimited);
    }

    #[test]
    fn errors_name_the_field() {
        let cases: &[(&[u8], &str)] = &[
            (b"{", "not valid JSON"),
            (b"{}", "quotas: missing"),
            (
                br#"{"quotas":{"resources":{}}}"#,
                "quotas.resources: expected an array",
            ),
            (
                br#"{"quotas":{"resources":[{"type":"core","used":"abc","quota":"1"}]}}"#,
                "quotas.resources[0].used",
            ),
            (
                br#"{"quotas":{"resources":[{"type":"core","used":"1","quota":"-5"}]}}"#,
                "quotas.resources[0].quota: -5 is negative",
            ),
            (
                br#"{"quotas":{"resources":[{"used":"1","quota":"5"}]}}"#,
                "quotas.resources[0].type: missing",
            ),
        ];
        for (body, want) in cases {
            let e = parse(body).unwrap_err();
            assert_eq!(e.reason(), "InvalidResponse");
            assert!(e.to_string().contains(want), "{e} should mention {want}");
        }
    }
}
