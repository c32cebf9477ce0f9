//! Huawei ECS compute quotas: `GET /v1/{project_id}/cloudservers/limits` (`ShowServerLimits`).
//!
//! The answer is `{"absolute": {...}}`, the SDK's `ServerLimits` model (huaweicloudsdkecs): flat
//! camelCase keys where a quota is a *pair*, a `max*` limit and a `total*Used` count. Each pair
//! becomes one resource named in [`PAIRS`]; `-1` means unlimited. The model's limit-only keys
//! (`maxImageMeta`, `maxPersonality`, `maxPersonalitySize`, `maxSecurityGroupRules`,
//! `maxServerGroupMembers`, `maxServerMeta`, `maxTotalKeypairs`) have no usage counter, so there is
//! nothing to fill; they are ignored like any unknown key, as is `limit_by_flavor`.
//!
//! Tolerance follows the other parsers: numbers as integers or strings (the older
//! `/v2.1/{project_id}/limits` docs type them String), a pair absent as a whole is left out (the
//! spot pairs are newer than the rest), but half a pair is an `InvalidResponse` naming the missing
//! key: a limit without its usage (or the reverse) is a broken answer, not an unlimited quota.

use serde_json::Value;

use super::huawei::ProjectGet;
use super::{ProviderError, parse};
use crate::domain::model::Quota;

pub static ECS: ProjectGet = ProjectGet {
    path: |project| format!("/v1/{project}/cloudservers/limits"),
    query: &[],
    parse,
};

/// One quota pair of `absolute`: resource name, limit key, usage key, unit.
pub struct Pair {
    pub name: &'static str,
    pub limit: &'static str,
    pub used: &'static str,
    pub unit: Option<&'static str>,
}

const fn pair(
    name: &'static str,
    limit: &'static str,
    used: &'static str,
    unit: Option<&'static str>,
) -> Pair {
    Pair {
        name,
        limit,
        used,
        unit,
    }
}

/// Every limit/usage pair of the SDK's `ServerLimits` model (status sorts resources by name).
/// The README's ECS table is this list.
pub const PAIRS: &[Pair] = &[
    pair("instances", "maxTotalInstances", "totalInstancesUsed", None),
    pair("cores", "maxTotalCores", "totalCoresUsed", None),
    pair("ram", "maxTotalRAMSize", "totalRAMUsed", Some("MB")),
    pair(
        "spot_instances",
        "maxTotalSpotInstances",
        "totalSpotInstancesUsed",
        None,
    ),
    pair(
        "spot_cores",
        "maxTotalSpotCores",
        "totalSpotCoresUsed",
        None,
    ),
    pair(
        "spot_ram",
        "maxTotalSpotRAMSize",
        "totalSpotRAMUsed",
        Some("MB"),
    ),
    pair(
        "floating_ips",
        "maxTotalFloatingIps",
        "totalFloatingIpsUsed",
        None,
    ),
    pair(
        "security_groups",
        "maxSecurityGroups",
        "totalSecurityGroupsUsed",
        None,
    ),
    pair(
        "server_groups",
        "maxServerGroups",
        "totalServerGroupsUsed",
        None,
    ),
];

fn present(v: Option<&Value>) -> bool {
    !matches!(v, None | Some(Value::Null))
}

/// Parses a `ShowServerLimits` body.
pub fn parse(body: &[u8]) -> Result<Vec<Quota>, ProviderError> {
    let v = parse::json(body, "ECS server limits")?;
    let abs = parse::object(v.get("absolute"), "absolute")?;
    let at = parse::within("absolute");
    let mut out = Vec::with_capacity(PAIRS.len());
    for p in PAIRS {
        let (limit, used) = (abs.get(p.limit), abs.get(p.used));
        if !present(limit) && !present(used) {
            continue;
        }
        let mut q = Quota::new(
            p.name,
            parse::count(used, p.used).map_err(at)?,
            parse::limit(limit, p.limit).map_err(at)?,
        );
        q.unit = p.unit.map(str::to_string);
        out.push(q);
    }
    if out.is_empty() {
        // An object without a single pair is not a quota answer (an error body, a changed API):
        // reporting "no resources" would hide that.
        return Err(ProviderError::InvalidResponse(
            "absolute: none of the limit/usage pairs (maxTotalInstances/totalInstancesUsed, ...)"
                .into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::Limit;

    fn by_name<'a>(q: &'a [Quota], name: &str) -> &'a Quota {
        q.iter()
            .find(|q| q.name == name)
            .unwrap_or_else(|| panic!("{name} missing from {q:?}"))
    }

    /// The fixture has exactly the SDK model's keys (hack/vectors/gen_vectors.py checks that
    /// against huaweicloudsdkecs on every regeneration).
    #[test]
    fn sdk_model_fixture() {
        let q = parse(include_str!("../../tests/fixtures/ecs_show_server_limits.json").as_bytes())
            .unwrap();
        let got: Vec<_> = q
            .iter()
            .map(|q| (q.name.as_str(), q.used, q.limit, q.unit.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("instances", 43, Limit::Limited(100), None),
                ("cores", 172, Limit::Limited(200), None),
                ("ram", 352256, Limit::Limited(409600), Some("MB")),
                ("spot_instances", 2, Limit::Limited(20), None),
                ("spot_cores", 8, Limit::Unlimited, None),
                ("spot_ram", 16384, Limit::Unlimited, Some("MB")),
                ("floating_ips", 1, Limit::Limited(10), None),
                ("security_groups", 4, Limit::Limited(10), None),
                ("server_groups", 0, Limit::Limited(10), None),
            ]
        );
        // Limit-only keys of the model are not resources.
        assert!(
            !q.iter()
                .any(|q| q.name.contains("keypair") || q.name.contains("meta"))
        );
        assert!(q.iter().all(|q| q.reserved.is_none() && q.zone.is_none()));
    }

    #[test]
    fn numbers_as_strings_and_integers() {
        let body = br#"{"absolute":{"maxTotalInstances":"10","totalInstancesUsed":3,"maxTotalCores":20,"totalCoresUsed":" 7 ","maxTotalRAMSize":"-1","totalRAMUsed":"2048"}}"#;
        let q = parse(body).unwrap();
        assert_eq!(by_name(&q, "instances").limit, Limit::Limited(10));
        assert_eq!(by_name(&q, "instances").used, 3);
        assert_eq!(by_name(&q, "cores").used, 7);
        let ram = by_name(&q, "ram");
        assert_eq!(
            (ram.used, ram.limit, ram.unit.as_deref()),
            (2048, Limit::Unlimited, Some("MB"))
        );
    }

    #[test]
    fn missing_pairs_are_left_out_and_unknown_keys_ignored() {
        // An older answer: no spot pairs, no server groups; extra keys of any type around.
        let body = br#"{"absolute":{"maxTotalInstances":10,"totalInstancesUsed":1,"maxTotalCores":-1,"totalCoresUsed":4,"maxTotalKeypairs":100,"maxImageMeta":128,"maxTotalSpotCores":null,"totalSpotCoresUsed":null,"limit_by_flavor":[{"x":1}],"somethingNew":{"a":1},"note":"hi"},"rate":[]}"#;
        let q = parse(body).unwrap();
        let names: Vec<_> = q.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["instances", "cores"]);
        assert_eq!(by_name(&q, "cores").limit, Limit::Unlimited);
    }

    #[test]
    fn errors_name_the_field() {
        let cases: &[(&[u8], &str)] = &[
            (b"{", "not valid JSON"),
            (b"{}", "absolute: missing"),
            (br#"{"absolute":[]}"#, "absolute: expected an object"),
            (
                br#"{"absolute":{"maxImageMeta":128}}"#,
                "absolute: none of the limit/usage pairs",
            ),
            // Half a pair, either half.
            (
                br#"{"absolute":{"totalCoresUsed":3}}"#,
                "absolute.maxTotalCores: missing",
            ),
            (
                br#"{"absolute":{"maxTotalRAMSize":1024}}"#,
                "absolute.totalRAMUsed: missing",
            ),
            (
                br#"{"absolute":{"maxTotalInstances":"ten","totalInstancesUsed":1}}"#,
                "absolute.maxTotalInstances: \"ten\" is not a whole number",
            ),
            (
                br#"{"absolute":{"maxTotalInstances":-2,"totalInstancesUsed":1}}"#,
                "absolute.maxTotalInstances: -2 is negative",
            ),
            (
                br#"{"absolute":{"maxTotalInstances":10,"totalInstancesUsed":-1}}"#,
                "absolute.totalInstancesUsed: -1 is negative",
            ),
            (
                br#"{"absolute":{"maxTotalInstances":{"v":1},"totalInstancesUsed":1}}"#,
                "absolute.maxTotalInstances: expected a number",
            ),
            (
                br#"{"error_code":"APIGW.0301","error_msg":"x"}"#,
                "absolute: missing",
            ),
        ];
        for (body, want) in cases {
            let e = parse(body).unwrap_err();
            assert_eq!(e.reason(), "InvalidResponse", "{e}");
            assert!(e.to_string().contains(want), "{e} should mention {want}");
        }
    }

    #[test]
    fn names_are_unique_snake_case_and_keys_distinct() {
        let mut names: Vec<_> = PAIRS.iter().map(|p| p.name).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PAIRS.len());
        let mut keys: Vec<_> = PAIRS.iter().flat_map(|p| [p.limit, p.used]).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 2 * PAIRS.len());
    }
}
