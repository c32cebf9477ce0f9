//! Publishing cluster-autoscaler CapacityQuotas, the pure part: the limits formula, the
//! mapping defaults, the object name, change detection, Node quantities, and a model of the
//! autoscaler's documented scale-up arithmetic (to check that what we publish lets it add
//! exactly what the cloud still allows).
//!
//! The formula, per autoscaler resource `r` fed by cloud resources `q1..qn`:
//!
//! ```text
//! limit(r) = used_on_matching_nodes(r) + min_i convert_r(available(q_i))     (never below 0)
//! ```
//!
//! The cloud's `used` also counts VMs outside the cluster, so publishing the cloud's limit would
//! let the autoscaler overshoot; publishing what the autoscaler already counts plus the cloud's
//! headroom makes the autoscaler's remaining amount (`limit - used`) equal the headroom.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::crd::{CapacityResourceMapping, ResourceStatus};

/// Group of the cluster autoscaler's CapacityQuota.
pub const GROUP: &str = "autoscaling.x-k8s.io";
pub const KIND: &str = "CapacityQuota";
pub const PLURAL: &str = "capacityquotas";
/// Versions we can write, most preferred first (CA 1.37 stores v1beta1; CA 1.36 serves v1alpha1).
pub const VERSIONS: [&str; 2] = ["v1beta1", "v1alpha1"];
/// The autoscaler's validity condition types (1.37 branch, then 1.36).
pub const VALID_CONDITIONS: [&str; 2] = ["cluster-autoscaler.kubernetes.io/valid", "Valid"];
/// At most this many keys in `spec.limits.resources` (the CRD's bound).
pub const MAX_LIMITS: usize = 20;
/// Bytes per MB of Huawei's `ram` quota: flavors report RAM in MB meaning MiB (a 4 GB flavor
/// has `ram: 4096`), so 1 MB here is 1048576 bytes.
pub const BYTES_PER_MB: i64 = 1024 * 1024;

pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const NODES: &str = "nodes";

/// Longest derived name: a DNS label, so it also fits in label values.
const MAX_DERIVED_NAME: usize = 63;

/// Labels and annotations marking a CapacityQuota as ours.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "cloudquota";
/// `<namespace>/<name>` of the owning CloudQuota: the ownership test.
pub const OWNER_ANNOTATION: &str = "cloudquota.io/owner";
/// uid of the owning CloudQuota (informational: a CloudQuota recreated under the same name
/// adopts its predecessor's CapacityQuota).
pub const OWNER_UID_ANNOTATION: &str = "cloudquota.io/owner-uid";

/// The mapping in effect: the spec's, else the service's default (ECS only).
pub fn mappings(service: &str, spec: &[CapacityResourceMapping]) -> Vec<CapacityResourceMapping> {
    if !spec.is_empty() {
        return spec.to_vec();
    }
    if service != "ecs" {
        return Vec::new();
    }
    [(CPU, "cores"), (MEMORY, "ram"), (NODES, "instances")]
        .into_iter()
        .map(|(name, from)| CapacityResourceMapping {
            name: name.into(),
            from: from.into(),
            per_node: None,
        })
        .collect()
}

/// The CapacityQuota's name: the spec's, else `cloudquota-<ns>-<name>`, shortened to 63
/// characters with a hash of `<ns>/<name>` when longer (two CloudQuotas never derive the same
/// shortened name; `a-b/c` and `a/b-c` do collide unshortened, which the ownership check turns
/// into `NotOwned` for the second).
pub fn object_name(explicit: Option<&str>, namespace: &str, name: &str) -> String {
    if let Some(n) = explicit {
        return n.to_string();
    }
    let full = format!("cloudquota-{namespace}-{name}").to_ascii_lowercase();
    if full.len() <= MAX_DERIVED_NAME {
        return full;
    }
    let hash = hex::encode(Sha256::digest(format!("{namespace}/{name}").as_bytes()));
    let keep = MAX_DERIVED_NAME - 1 - 10;
    let prefix: String = full
        .chars()
        .take(keep)
        .collect::<String>()
        .trim_end_matches(['-', '.'])
        .to_string();
    format!("{prefix}-{}", &hash[..10])
}

/// Why limits cannot be computed from the cloud data at hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitsError {
    /// No mapping (a service without defaults and none in the spec).
    NoMapping,
    /// A mapped cloud resource is not in status.
    UnknownResource(String),
    /// More distinct autoscaler resources than a CapacityQuota holds.
    TooManyResources(usize),
}

impl std::fmt::Display for LimitsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitsError::NoMapping => f.write_str(
                "no resource mapping: set spec.capacityQuota.resources (only service ecs has defaults)",
            ),
            LimitsError::UnknownResource(r) => {
                write!(f, "cloud resource {r:?} is not reported by this quota endpoint")
            }
            LimitsError::TooManyResources(n) => write!(
                f,
                "{n} autoscaler resources mapped; a CapacityQuota holds at most {MAX_LIMITS}"
            ),
        }
    }
}

/// Converts a cloud headroom into the autoscaler resource's units, rounded down.
pub fn convert(ca_resource: &str, headroom: i64, per_node: Option<i64>) -> i64 {
    let headroom = headroom.max(0);
    match (ca_resource, per_node) {
        (NODES, Some(f)) if f > 0 => headroom / f,
        (MEMORY, _) => headroom.saturating_mul(BYTES_PER_MB),
        _ => headroom,
    }
}

/// The limits to publish: for each autoscaler resource, what the matching Nodes already have
/// plus the smallest converted headroom of the cloud resources feeding it. Unlimited cloud
/// resources add no bound; an autoscaler resource with only unlimited sources gets no key.
/// `resources` is the CloudQuota's `status.resources`; where a resource is reported per zone,
/// the smallest headroom counts.
pub fn limits(
    mappings: &[CapacityResourceMapping],
    resources: &[ResourceStatus],
    node_usage: &BTreeMap<String, i64>,
) -> Result<BTreeMap<String, i64>, LimitsError> {
    if mappings.is_empty() {
        return Err(LimitsError::NoMapping);
    }
    let mut extra: BTreeMap<&str, Option<i64>> = BTreeMap::new();
    for m in mappings {
        let lines: Vec<&ResourceStatus> = resources.iter().filter(|r| r.name == m.from).collect();
        if lines.is_empty() {
            return Err(LimitsError::UnknownResource(m.from.clone()));
        }
        let headroom = lines
            .iter()
            .filter(|r| !r.unlimited)
            .filter_map(|r| r.available.or(r.limit.map(|l| (l - r.used).max(0))))
            .min();
        let slot = extra.entry(m.name.as_str()).or_insert(None);
        if let Some(h) = headroom {
            let v = convert(&m.name, h, m.per_node);
            *slot = Some(slot.map_or(v, |s| s.min(v)));
        }
    }
    if extra.len() > MAX_LIMITS {
        return Err(LimitsError::TooManyResources(extra.len()));
    }
    Ok(extra
        .into_iter()
        .filter_map(|(name, e)| {
            let e = e?;
            let used = node_usage.get(name).copied().unwrap_or(0).max(0);
            Some((name.to_string(), used.saturating_add(e).max(0)))
        })
        .collect())
}

/// What the autoscaler counts for one Node: its capacity (cpu in whole cores, rounded up as
/// the autoscaler's `Quantity.Value()` does; memory and others in units), and 1 for `nodes`.
pub fn node_amounts(capacity: &BTreeMap<String, String>, names: &[&str]) -> BTreeMap<String, i64> {
    names
        .iter()
        .map(|&n| {
            let v = if n == NODES {
                1
            } else {
                capacity.get(n).and_then(|q| parse_quantity(q)).unwrap_or(0)
            };
            (n.to_string(), v)
        })
        .collect()
}

/// Sums per-Node amounts.
pub fn sum_usage<'a>(
    nodes: impl IntoIterator<Item = &'a BTreeMap<String, i64>>,
) -> BTreeMap<String, i64> {
    let mut total = BTreeMap::new();
    for n in nodes {
        for (k, v) in n {
            let e: &mut i64 = total.entry(k.clone()).or_default();
            *e = e.saturating_add(*v);
        }
    }
    total
}

/// A Kubernetes quantity as an integer, rounded up (`"4"`, `"3500m"` -> 4, `"16Gi"`,
/// `"1.5k"`, `"2e3"`). `None` when it is not a quantity.
pub fn parse_quantity(q: &str) -> Option<i64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    // Capacities are never negative.
    let num = num.strip_prefix('+').unwrap_or(num);
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
    {
        return None;
    }
    // value = mantissa / 10^scale * mult_num / mult_den
    let mantissa: i128 = format!("{int}{frac}").parse().ok()?;
    let scale = frac.len() as u32;
    let (mult_num, mult_den): (i128, i128) = match suffix {
        "" => (1, 1),
        "n" => (1, 1_000_000_000),
        "u" => (1, 1_000_000),
        "m" => (1, 1000),
        "k" => (1000, 1),
        "M" => (1_000_000, 1),
        "G" => (1_000_000_000, 1),
        "T" => (1_000_000_000_000, 1),
        "P" => (1_000_000_000_000_000, 1),
        "E" => (1_000_000_000_000_000_000, 1),
        "Ki" => (1 << 10, 1),
        "Mi" => (1 << 20, 1),
        "Gi" => (1 << 30, 1),
        "Ti" => (1 << 40, 1),
        "Pi" => (1 << 50, 1),
        "Ei" => (1 << 60, 1),
        s if s.starts_with(['e', 'E']) => {
            let exp: u32 = s[1..].parse().ok()?;
            (10i128.checked_pow(exp)?, 1)
        }
        _ => return None,
    };
    let num = mantissa.checked_mul(mult_num)?;
    let den = 10i128.checked_pow(scale)?.checked_mul(mult_den)?;
    i64::try_from((num + den - 1) / den).ok()
}

/// What a CapacityQuota says, as far as change detection needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Published {
    /// `spec.selector` as JSON (`Null` when absent).
    pub selector: serde_json::Value,
    pub limits: BTreeMap<String, i64>,
}

impl Published {
    /// Reads `spec` of a CapacityQuota; limits that are not integer quantities read as -1, so
    /// they differ from anything we would publish.
    pub fn from_spec(spec: &serde_json::Value) -> Published {
        let limits = spec["limits"]["resources"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let n = match v {
                            serde_json::Value::String(s) => parse_quantity(s),
                            serde_json::Value::Number(n) => n.as_i64(),
                            _ => None,
                        };
                        (k.clone(), n.unwrap_or(-1))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let selector = match &spec["selector"] {
            serde_json::Value::Object(o) if o.is_empty() => serde_json::Value::Null,
            v => v.clone(),
        };
        Published { selector, limits }
    }
}

/// Whether the CapacityQuota must be written: it is missing, or a limit or the selector differs.
pub fn needs_write(desired: &Published, observed: Option<&Published>) -> bool {
    observed != Some(desired)
}

/// One CapacityQuota as the autoscaler sees it at scale-up.
#[derive(Debug, Clone, Default)]
pub struct QuotaView {
    pub name: String,
    pub limits: BTreeMap<String, i64>,
    /// The autoscaler's usage (sum over matching Nodes).
    pub used: BTreeMap<String, i64>,
}

/// The autoscaler's answer for one node group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleUp {
    /// Nodes it will add (at most the requested count).
    pub nodes: i64,
    /// `CapacityQuota/<name>` of the quota that bounded it below the request, if any.
    pub exceeded: Option<String>,
}

/// A model of the autoscaler's documented scale-up arithmetic over the quotas matching a node
/// group's template Node: the group is skipped when one template Node exceeds a quota; else
/// the count is capped at `floor(remaining / per-node amount)` for every limited resource.
pub fn scale_up(quotas: &[QuotaView], template: &BTreeMap<String, i64>, requested: i64) -> ScaleUp {
    let mut nodes = requested.max(0);
    let mut exceeded = None;
    for q in quotas {
        for (res, limit) in &q.limits {
            let per = if res == NODES {
                1
            } else {
                template.get(res).copied().unwrap_or(0)
            };
            if per <= 0 {
                continue;
            }
            let remaining = (limit - q.used.get(res).copied().unwrap_or(0)).max(0);
            let cap = remaining / per;
            if cap < nodes {
                nodes = cap;
                exceeded = Some(format!("CapacityQuota/{}", q.name));
            }
        }
    }
    ScaleUp { nodes, exceeded }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(name: &str, used: i64, limit: Option<i64>) -> ResourceStatus {
        ResourceStatus::example(name, used, limit)
    }

    fn map(name: &str, from: &str, per_node: Option<i64>) -> CapacityResourceMapping {
        CapacityResourceMapping {
            name: name.into(),
            from: from.into(),
            per_node,
        }
    }

    fn m(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn ecs_has_defaults_other_services_need_a_mapping() {
        let d = mappings("ecs", &[]);
        let pairs: Vec<(&str, &str)> = d
            .iter()
            .map(|m| (m.name.as_str(), m.from.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [("cpu", "cores"), ("memory", "ram"), ("nodes", "instances")]
        );
        assert!(mappings("evs", &[]).is_empty());
        let explicit = [map("nodes", "volumes_SSD", Some(2))];
        assert_eq!(mappings("ecs", &explicit), explicit);
        assert_eq!(
            limits(&[], &[], &BTreeMap::new()),
            Err(LimitsError::NoMapping)
        );
    }

    #[test]
    fn limit_is_node_usage_plus_converted_headroom() {
        // ECS: 100 cores, 60 used (in and outside the cluster); 400 GB RAM, 200 used; 30 VMs, 12.
        let cloud = [
            res("cores", 60, Some(100)),
            res("ram", 204_800, Some(409_600)),
            res("instances", 12, Some(30)),
        ];
        // The selected Nodes: 3 nodes of 8 cores / 32 GiB.
        let nodes = m(&[("cpu", 24), ("memory", 3 * (32 << 30)), ("nodes", 3)]);
        let got = limits(&mappings("ecs", &[]), &cloud, &nodes).unwrap();
        assert_eq!(
            got,
            m(&[
                ("cpu", 24 + 40),
                ("memory", (3 * (32 << 30)) + 204_800 * 1024 * 1024),
                ("nodes", 3 + 18),
            ])
        );
    }

    #[test]
    fn per_node_factor_divides_and_rounds_down() {
        // EVS: 30 SSD volumes, 25 used; 2 per Node -> 2 more Nodes (5 / 2).
        let cloud = [res("volumes_SSD", 25, Some(30))];
        let got = limits(
            &[map("nodes", "volumes_SSD", Some(2))],
            &cloud,
            &m(&[("nodes", 4)]),
        )
        .unwrap();
        assert_eq!(got, m(&[("nodes", 6)]));
    }

    #[test]
    fn several_sources_take_the_smallest_and_unlimited_adds_no_bound() {
        let cloud = [
            res("volumes_SSD", 20, Some(30)),
            res("volumes", 90, Some(100)),
            res("snapshots", 0, None),
        ];
        let mapping = [
            map("nodes", "volumes_SSD", Some(2)), // 5
            map("nodes", "volumes", None),        // 10
            map("nodes", "snapshots", None),      // unlimited
            map("example.com/disks", "snapshots", None),
        ];
        let got = limits(&mapping, &cloud, &m(&[("nodes", 1)])).unwrap();
        // Only-unlimited resources publish no key.
        assert_eq!(got, m(&[("nodes", 6)]));
    }

    #[test]
    fn exhausted_or_over_quota_publishes_current_usage_never_negative() {
        // Over quota (used > limit): available is 0, the limit freezes the cluster as it is.
        let cloud = [res("cores", 130, Some(100))];
        let got = limits(&[map("cpu", "cores", None)], &cloud, &m(&[("cpu", 16)])).unwrap();
        assert_eq!(got, m(&[("cpu", 16)]));
        let got = limits(&[map("cpu", "cores", None)], &cloud, &BTreeMap::new()).unwrap();
        assert_eq!(got, m(&[("cpu", 0)]));
    }

    #[test]
    fn unknown_resources_and_too_many_keys_are_errors() {
        let cloud = [res("cores", 1, Some(2))];
        assert_eq!(
            limits(&[map("cpu", "vcpus", None)], &cloud, &BTreeMap::new()),
            Err(LimitsError::UnknownResource("vcpus".into()))
        );
        let many: Vec<_> = (0..21)
            .map(|i| map(&format!("example.com/r{i}"), "cores", None))
            .collect();
        assert_eq!(
            limits(&many, &cloud, &BTreeMap::new()),
            Err(LimitsError::TooManyResources(21))
        );
    }

    #[test]
    fn zones_take_the_smallest_headroom() {
        let mut a = res("cores", 1, Some(10));
        a.zone = Some("z1".into());
        let mut b = res("cores", 8, Some(10));
        b.zone = Some("z2".into());
        let got = limits(&[map("cpu", "cores", None)], &[a, b], &BTreeMap::new()).unwrap();
        assert_eq!(got, m(&[("cpu", 2)]));
    }

    #[test]
    fn names_are_derived_bounded_and_distinct() {
        assert_eq!(object_name(None, "team-a", "ecs"), "cloudquota-team-a-ecs");
        assert_eq!(object_name(Some("mine"), "team-a", "ecs"), "mine");
        let long = "x".repeat(200);
        let a = object_name(None, "team-a", &long);
        let b = object_name(None, "team-b", &long);
        assert!(a.len() <= 63 && b.len() <= 63, "{a} {b}");
        assert_ne!(a, b);
        let dns = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !s.starts_with('-')
                && !s.ends_with('-')
        };
        assert!(dns(&a), "{a}");
        // A name ending in '-' at the cut does not produce "--".
        let c = object_name(
            None,
            "ns",
            &format!("{}-{}", "y".repeat(48), "z".repeat(40)),
        );
        assert!(dns(&c) && !c.contains("--"), "{c}");
    }

    #[test]
    fn quantities() {
        for (q, want) in [
            ("4", Some(4)),
            ("3500m", Some(4)),
            ("16Gi", Some(16 << 30)),
            ("16393216Ki", Some(16_393_216 * 1024)),
            ("1.5k", Some(1500)),
            ("2e3", Some(2000)),
            ("0", Some(0)),
            ("1.5Gi", Some(3 << 29)),
            ("abc", None),
            ("4x", None),
            ("", None),
        ] {
            assert_eq!(parse_quantity(q), want, "{q}");
        }
    }

    #[test]
    fn node_amounts_count_capacity_and_one_node() {
        let cap: BTreeMap<String, String> = [("cpu", "8"), ("memory", "32Gi"), ("pods", "110")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let a = node_amounts(&cap, &["cpu", "memory", "nodes", "nvidia.com/gpu"]);
        assert_eq!(
            a,
            m(&[
                ("cpu", 8),
                ("memory", 32 << 30),
                ("nodes", 1),
                ("nvidia.com/gpu", 0)
            ])
        );
        assert_eq!(sum_usage([&a, &a])["cpu"], 16);
    }

    #[test]
    fn change_detection_ignores_quantity_spelling_and_sees_limits_and_selector() {
        let desired = Published {
            selector: serde_json::json!({"matchLabels": {"pool": "a"}}),
            limits: m(&[("memory", 16 << 30), ("cpu", 4)]),
        };
        let same = Published::from_spec(&serde_json::json!({
            "selector": {"matchLabels": {"pool": "a"}},
            "limits": {"resources": {"memory": "16Gi", "cpu": 4}}
        }));
        assert!(!needs_write(&desired, Some(&same)));
        let other_limit = Published::from_spec(&serde_json::json!({
            "selector": {"matchLabels": {"pool": "a"}},
            "limits": {"resources": {"memory": "16Gi", "cpu": "5"}}
        }));
        assert!(needs_write(&desired, Some(&other_limit)));
        let other_selector = Published {
            selector: serde_json::Value::Null,
            ..desired.clone()
        };
        assert!(needs_write(&desired, Some(&other_selector)));
        assert!(needs_write(&desired, None));
        // An empty selector is "all Nodes", as an absent one.
        let empty =
            Published::from_spec(&serde_json::json!({"selector": {}, "limits": {"resources": {}}}));
        assert_eq!(empty.selector, serde_json::Value::Null);
    }

    #[test]
    fn scale_up_arithmetic_table() {
        let q = |name: &str, limits: &[(&str, i64)], used: &[(&str, i64)]| QuotaView {
            name: name.into(),
            limits: m(limits),
            used: m(used),
        };
        let t8 = m(&[("cpu", 8), ("memory", 32 << 30)]);
        // (quotas, template, requested, nodes, exceeded)
        type Row<'a> = (
            Vec<QuotaView>,
            BTreeMap<String, i64>,
            i64,
            i64,
            Option<&'a str>,
        );
        let rows: Vec<Row> = vec![
            // Headroom 10 cores, 8-core template: 1 node.
            (
                vec![q("a", &[("cpu", 34)], &[("cpu", 24)])],
                t8.clone(),
                3,
                1,
                Some("CapacityQuota/a"),
            ),
            // Headroom 7 cores: the group is skipped.
            (
                vec![q("a", &[("cpu", 31)], &[("cpu", 24)])],
                t8.clone(),
                1,
                0,
                Some("CapacityQuota/a"),
            ),
            // Exactly two nodes' worth, two requested: not bounded.
            (
                vec![q("a", &[("cpu", 40)], &[("cpu", 24)])],
                t8.clone(),
                2,
                2,
                None,
            ),
            // Memory binds before cpu.
            (
                vec![q(
                    "a",
                    &[("cpu", 100), ("memory", 100 << 30)],
                    &[("cpu", 0), ("memory", 40 << 30)],
                )],
                t8.clone(),
                5,
                1,
                Some("CapacityQuota/a"),
            ),
            // nodes counts 1 per node.
            (
                vec![q("n", &[("nodes", 5)], &[("nodes", 3)])],
                t8.clone(),
                4,
                2,
                Some("CapacityQuota/n"),
            ),
            // The tighter of two matching quotas wins.
            (
                vec![
                    q("a", &[("cpu", 64)], &[]),
                    q("b", &[("nodes", 10)], &[("nodes", 9)]),
                ],
                t8.clone(),
                4,
                1,
                Some("CapacityQuota/b"),
            ),
            // A resource the template does not have does not bound it.
            (
                vec![q("g", &[("nvidia.com/gpu", 0)], &[])],
                t8.clone(),
                3,
                3,
                None,
            ),
            // Over the limit already: nothing.
            (
                vec![q("a", &[("cpu", 10)], &[("cpu", 24)])],
                t8.clone(),
                1,
                0,
                Some("CapacityQuota/a"),
            ),
        ];
        for (i, (quotas, template, requested, nodes, exceeded)) in rows.into_iter().enumerate() {
            let got = scale_up(&quotas, &template, requested);
            assert_eq!(got.nodes, nodes, "row {i}");
            assert_eq!(got.exceeded.as_deref(), exceeded, "row {i}");
        }
    }

    #[test]
    fn published_limits_let_the_autoscaler_add_exactly_the_cloud_headroom() {
        // 10 cores left in the cloud (other VMs use some), 3 Nodes of 8 cores in the cluster.
        let cloud = [
            res("cores", 90, Some(100)),
            res("ram", 0, Some(1 << 20)),
            res("instances", 5, Some(100)),
        ];
        let usage = m(&[("cpu", 24), ("memory", 3 * (32 << 30)), ("nodes", 3)]);
        let published = limits(&mappings("ecs", &[]), &cloud, &usage).unwrap();
        let view = QuotaView {
            name: "cloudquota-ns-ecs".into(),
            limits: published,
            used: usage,
        };
        let t8 = m(&[("cpu", 8), ("memory", 32 << 30)]);
        assert_eq!(scale_up(std::slice::from_ref(&view), &t8, 5).nodes, 1);
        let t4 = m(&[("cpu", 4), ("memory", 16 << 30)]);
        assert_eq!(scale_up(std::slice::from_ref(&view), &t4, 5).nodes, 2);
        let t2 = m(&[("cpu", 2), ("memory", 4 << 30)]);
        assert_eq!(scale_up(&[view], &t2, 10).nodes, 5);
    }
}
