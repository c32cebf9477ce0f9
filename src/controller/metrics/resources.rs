//! The per-resource series (`cloudquota_resource_*`): one map from a series' labels to all of
//! its values, read by one collector per metric name at scrape time.
//!
//! At 10,000 objects there are ~50,000 resources and five to seven gauges each. One
//! `Family` per metric name would keep five to seven hash maps, each with its own copy of every
//! label set (7 label values, 112 bytes) and a separately allocated gauge per series: ~50 MB.
//! Here each resource has one 40-byte key (the object's five labels are one shared allocation)
//! and one small value: ~5 MB (BENCHMARKS.md).

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The labels an object's resource series share: allocated once per object (and per relabel).
#[derive(Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectTarget {
    pub namespace: String,
    pub name: String,
    pub provider: String,
    pub service: String,
    pub region: String,
}

/// The labels of one resource series: `namespace, name, provider, service, region` (shared),
/// then `resource` and `zone` (`""` when the provider reports none).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct ResourceLabels {
    pub object: Arc<ObjectTarget>,
    pub resource: Arc<str>,
    pub zone: Arc<str>,
}

impl EncodeLabelSet for ResourceLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        self.object.encode(encoder)?;
        [("resource", &*self.resource), ("zone", &*self.zone)].encode(encoder)
    }
}

/// Everything exported about one resource.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ResourceValues {
    pub used: i64,
    /// `None` when unlimited (no `limit` and no `usage_ratio` series).
    pub limit: Option<i64>,
    pub unlimited: bool,
    /// See [`super::level_value`]; `None` for unlimited resources (no `level` series).
    pub level: Option<i8>,
    /// Effective (warning, critical) thresholds in percent, with `--export-thresholds` only.
    pub thresholds: Option<(u8, u8)>,
}

/// One metric name over the shared map: which value it exports, and its metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Used,
    Limit,
    UsageRatio,
    Unlimited,
    Level,
    WarningRatio,
    CriticalRatio,
}

impl Field {
    /// The families in exposition order; the threshold ones only with `--export-thresholds`.
    pub const ALWAYS: [Field; 5] = [
        Field::Used,
        Field::Limit,
        Field::UsageRatio,
        Field::Unlimited,
        Field::Level,
    ];
    pub const THRESHOLDS: [Field; 2] = [Field::WarningRatio, Field::CriticalRatio];

    pub fn name(self) -> &'static str {
        match self {
            Field::Used => "cloudquota_resource_used",
            Field::Limit => "cloudquota_resource_limit",
            Field::UsageRatio => "cloudquota_resource_usage_ratio",
            Field::Unlimited => "cloudquota_resource_unlimited",
            Field::Level => "cloudquota_resource_level",
            Field::WarningRatio => "cloudquota_resource_warning_ratio",
            Field::CriticalRatio => "cloudquota_resource_critical_ratio",
        }
    }

    /// As `Registry::register` would print it (it appends the period).
    fn help(self) -> &'static str {
        match self {
            Field::Used => "Amount of a quota resource in use.",
            Field::Limit => "Limit of a quota resource (absent when unlimited).",
            Field::UsageRatio => "Used divided by limit (absent when unlimited).",
            Field::Unlimited => "1 when the resource has no limit.",
            Field::Level => {
                "Level of a quota resource as in status: 0 Ok, 1 Warning, 2 Critical, 3 Exhausted (absent when unlimited)."
            }
            Field::WarningRatio => {
                "Effective warning threshold of a quota resource, as a ratio of the limit."
            }
            Field::CriticalRatio => {
                "Effective critical threshold of a quota resource, as a ratio of the limit."
            }
        }
    }

    /// The series' value in this family, `None` when the family has no series for it.
    fn value(self, v: &ResourceValues) -> Option<Value> {
        match self {
            Field::Used => Some(Value::Int(v.used)),
            Field::Limit => v.limit.map(Value::Int),
            Field::UsageRatio => v.limit.map(|limit| {
                Value::Float(if limit > 0 {
                    v.used as f64 / limit as f64
                } else {
                    1.0
                })
            }),
            Field::Unlimited => Some(Value::Int(v.unlimited as i64)),
            Field::Level => v.level.map(|l| Value::Int(l.into())),
            Field::WarningRatio => v.thresholds.map(|(w, _)| Value::Float(w as f64 / 100.0)),
            Field::CriticalRatio => v.thresholds.map(|(_, c)| Value::Float(c as f64 / 100.0)),
        }
    }
}

enum Value {
    Int(i64),
    Float(f64),
}

/// The map itself. Writers replace an object's series under one lock; a scrape reads one
/// family at a time.
#[derive(Debug, Default)]
pub struct ResourceSeries {
    series: RwLock<HashMap<ResourceLabels, ResourceValues>>,
}

impl ResourceSeries {
    pub fn write(&self) -> RwLockWriteGuard<'_, HashMap<ResourceLabels, ResourceValues>> {
        self.series.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<ResourceLabels, ResourceValues>> {
        self.series.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Series per part of a scrape: a part's text is ~0.6 MB, however large the fleet.
const SERIES_PER_PART: usize = 4096;

impl ResourceSeries {
    /// Into how many parts each family's text is cut, fixed for one scrape.
    pub fn shards(&self) -> usize {
        self.len().div_ceil(SERIES_PER_PART).max(1)
    }

    /// Shard `shard` of `shards` of one family's text: its HELP and TYPE lines in shard 0, then
    /// the series of that shard. Each shard walks the whole map (a pointer hash per entry)
    /// rather than holding its read lock between parts, so a slow scraper never blocks the
    /// reconciles' writes. An object's series stay together (the shard follows the
    /// object's shared labels), and a series keeps its shard while it lives.
    pub fn encode_shard(self: &Arc<Self>, field: Field, shard: usize, shards: usize) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(FamilyView {
            series: self.clone(),
            field,
            shard: (shard, shards),
        }));
        let mut out = String::new();
        prometheus_client::encoding::text::encode_registry(&mut out, &registry)
            .expect("writing to a String cannot fail");
        if shard > 0 {
            // The family's HELP and TYPE lines went out with shard 0; its samples stay one
            // group because the shards are sent one after the other.
            let body = out
                .match_indices('\n')
                .nth(1)
                .map_or(out.len(), |(i, _)| i + 1);
            out.drain(..body);
        }
        out
    }
}

fn shard_of(labels: &ResourceLabels, shards: usize) -> usize {
    if shards == 1 {
        return 0;
    }
    // The address of the object's shared labels: stable while the series lives, and free to
    // compute (no hashing of its five strings). Mixed, because allocations are 16-aligned.
    let address = Arc::as_ptr(&labels.object) as usize as u64;
    ((address >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % shards
}

/// One shard of one family of the shared map, as a collector.
#[derive(Debug)]
struct FamilyView {
    series: Arc<ResourceSeries>,
    field: Field,
    shard: (usize, usize),
}

impl Collector for FamilyView {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            self.field.name(),
            self.field.help(),
            None,
            MetricType::Gauge,
        )?;
        let (shard, shards) = self.shard;
        for (labels, values) in self.series.read().iter() {
            if shard_of(labels, shards) != shard {
                continue;
            }
            match self.field.value(values) {
                Some(Value::Int(v)) => family.encode_family(labels)?.encode_gauge(&v)?,
                Some(Value::Float(v)) => family.encode_family(labels)?.encode_gauge(&v)?,
                None => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use super::*;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;

    /// What a `Family` per metric name would expose for the same series (the former layout).
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct FlatLabels {
        namespace: String,
        name: String,
        provider: String,
        service: String,
        region: String,
        resource: String,
        zone: String,
    }

    fn sorted_lines(text: &str) -> Vec<&str> {
        let mut v: Vec<&str> = text.lines().collect();
        v.sort();
        v
    }

    #[test]
    fn the_shared_map_exposes_what_one_family_per_name_would() {
        let series = Arc::new(ResourceSeries::default());
        let object = Arc::new(ObjectTarget {
            namespace: "ns".into(),
            name: "q\"uoted\\".into(),
            provider: "huaweicloud".into(),
            service: "evs".into(),
            region: "r".into(),
        });
        let rows = [
            ("volumes", "", 5, Some(10), Some(0), Some((80, 90))),
            ("gigabytes", "az1", 7, Some(0), Some(3), None),
            ("backups", "", 2, None, None, Some((60, 80))),
        ];
        // The reference: a Family per name, integer gauges where the values are integers.
        let ints: Vec<(Field, Family<FlatLabels, Gauge>)> =
            [Field::Used, Field::Limit, Field::Unlimited, Field::Level]
                .map(|f| (f, Family::default()))
                .into();
        type FloatGauge = Gauge<f64, AtomicU64>;
        let floats: Vec<(Field, Family<FlatLabels, FloatGauge>)> =
            [Field::UsageRatio, Field::WarningRatio, Field::CriticalRatio]
                .map(|f| (f, Family::default()))
                .into();
        for (resource, zone, used, limit, level, thresholds) in rows {
            let values = ResourceValues {
                used,
                limit,
                unlimited: limit.is_none(),
                level,
                thresholds,
            };
            series.write().insert(
                ResourceLabels {
                    object: object.clone(),
                    resource: resource.into(),
                    zone: zone.into(),
                },
                values,
            );
            let flat = FlatLabels {
                namespace: object.namespace.clone(),
                name: object.name.clone(),
                provider: object.provider.clone(),
                service: object.service.clone(),
                region: object.region.clone(),
                resource: resource.into(),
                zone: zone.into(),
            };
            for (field, fam) in &ints {
                if let Some(Value::Int(v)) = field.value(&values) {
                    fam.get_or_create(&flat).set(v);
                }
            }
            for (field, fam) in &floats {
                if let Some(Value::Float(v)) = field.value(&values) {
                    fam.get_or_create(&flat).set(v);
                }
            }
        }
        let mut expected = Registry::default();
        for (field, fam) in ints {
            expected.register(field.name(), field.help().trim_end_matches('.'), fam);
        }
        for (field, fam) in floats {
            expected.register(field.name(), field.help().trim_end_matches('.'), fam);
        }
        let encode = |r: &Registry| {
            let mut out = String::new();
            prometheus_client::encoding::text::encode_registry(&mut out, r).unwrap();
            out
        };
        let actual: String = Field::ALWAYS
            .into_iter()
            .chain(Field::THRESHOLDS)
            .map(|field| series.encode_shard(field, 0, 1))
            .collect();
        let expected = encode(&expected);
        let actual_lines = sorted_lines(&actual);
        assert_eq!(actual_lines, sorted_lines(&expected), "{actual}");
        assert!(actual.contains(r#"cloudquota_resource_used{namespace="ns",name="q\"uoted\\",provider="huaweicloud",service="evs",region="r",resource="volumes",zone=""} 5"#), "{actual}");
        assert!(actual.contains(r#"cloudquota_resource_usage_ratio{namespace="ns",name="q\"uoted\\",provider="huaweicloud",service="evs",region="r",resource="gigabytes",zone="az1"} 1.0"#), "a zero limit is full: {actual}");
        assert!(!actual.contains(r#"cloudquota_resource_limit{namespace="ns",name="q\"uoted\\",provider="huaweicloud",service="evs",region="r",resource="backups""#), "{actual}");
        assert_eq!(series.len(), 3);
    }
}
