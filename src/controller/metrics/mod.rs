//! Prometheus metrics (`/metrics`). Per-resource series are removed when the resource or its
//! CloudQuota goes away, so dashboards never show ghosts.

mod resources;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use self::resources::{Field, ObjectTarget, ResourceLabels, ResourceSeries, ResourceValues};
use super::registry::{Entry, Forgotten};
use super::validate;
use crate::crd::{CloudQuota, CloudQuotaStatus, Level, ResourceStatus};
use crate::domain::status as domain_status;
use crate::domain::thresholds::Policy;
use crate::providers::http::UpstreamLabels;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PollLabels {
    pub result: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

type IntGauge = Gauge<i64, AtomicI64>;
type FloatGauge = Gauge<f64, AtomicU64>;

pub struct Metrics {
    pub registry: Registry,
    /// Every `cloudquota_resource_*` series: used, limit, usage ratio, unlimited, level (0 Ok,
    /// 1 Warning, 2 Critical, 3 Exhausted, as in status; absent for unlimited resources), and
    /// with `--export-thresholds` each resource's warning and critical ratios.
    pub resources: Arc<ResourceSeries>,
    export_thresholds: bool,
    pub poll_interval: Family<ObjectLabels, FloatGauge>,
    pub polls: Family<PollLabels, Counter>,
    pub poll_duration: Histogram,
    pub reconcile_duration: Histogram,
    pub status_writes: Counter,
    pub events: Family<ReasonLabels, Counter>,
    pub ready: Family<ObjectLabels, IntGauge>,
    pub last_success: Family<ObjectLabels, FloatGauge>,
    pub leader: IntGauge,
}

impl Metrics {
    pub fn new(upstream_requests: Family<UpstreamLabels, Counter>) -> Metrics {
        Metrics::with_options(upstream_requests, false)
    }

    /// `export_thresholds`: also export each resource's warning and critical ratios (two
    /// more series per resource, off by default).
    pub fn with_options(
        upstream_requests: Family<UpstreamLabels, Counter>,
        export_thresholds: bool,
    ) -> Metrics {
        let mut registry = Registry::default();
        let resources = Arc::new(ResourceSeries::default());
        let m = Metrics {
            resources,
            export_thresholds,
            poll_interval: Family::default(),
            polls: Family::default(),
            poll_duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            reconcile_duration: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            status_writes: Counter::default(),
            events: Family::default(),
            ready: Family::default(),
            last_success: Family::default(),
            leader: IntGauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "cloudquota_poll_interval_seconds",
            "The CloudQuota's effective poll interval (absent while suspended)",
            m.poll_interval.clone(),
        );
        registry.register(
            "cloudquota_polls",
            "Quota polls by result and reason",
            m.polls.clone(),
        );
        registry.register(
            "cloudquota_upstream_requests",
            "HTTP requests sent to provider APIs",
            upstream_requests,
        );
        registry.register(
            "cloudquota_poll_duration_seconds",
            "Duration of quota polls (including cache waits)",
            m.poll_duration.clone(),
        );
        registry.register(
            "cloudquota_reconcile_duration_seconds",
            "Duration of reconciles",
            m.reconcile_duration.clone(),
        );
        registry.register(
            "cloudquota_status_writes",
            "Status writes to the Kubernetes API",
            m.status_writes.clone(),
        );
        registry.register(
            "cloudquota_events",
            "Kubernetes Events published, by reason",
            m.events.clone(),
        );
        registry.register(
            "cloudquota_ready",
            "1 when the CloudQuota's last poll succeeded",
            m.ready.clone(),
        );
        registry.register(
            "cloudquota_last_success_timestamp_seconds",
            "Unix time of the CloudQuota's last successful poll",
            m.last_success.clone(),
        );
        registry.register(
            "cloudquota_leader",
            "1 while this replica holds the leader lease",
            m.leader.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The text exposition in one piece (tests; `/metrics` streams [`Metrics::parts`]).
    #[cfg(test)]
    pub fn encode(self: &Arc<Self>) -> String {
        self.parts().collect()
    }

    /// The exposition in parts, each encoded when the previous one has been taken: the
    /// per-object and operator metrics, then each per-resource family in shards of ~4,000
    /// series, the last part ending in `# EOF`. `/metrics` sends them one after the other, so a
    /// scrape holds well under a megabyte of text instead of the whole 31 MB at 10,000 objects
    /// (BENCHMARKS.md).
    pub fn parts(self: &Arc<Self>) -> impl Iterator<Item = String> + Send + 'static {
        let metrics = self.clone();
        let shards = self.resources.shards();
        let mut fields = Field::ALWAYS.to_vec();
        if self.export_thresholds {
            fields.extend(Field::THRESHOLDS);
        }
        let last = (fields[fields.len() - 1], shards - 1);
        let resource_parts = fields
            .into_iter()
            .flat_map(move |field| (0..shards).map(move |shard| (field, shard)));
        let head = std::iter::once_with({
            let metrics = self.clone();
            move || {
                let mut out = String::new();
                prometheus_client::encoding::text::encode_registry(&mut out, &metrics.registry)
                    .expect("writing to a String cannot fail");
                out
            }
        });
        head.chain(resource_parts.map(move |(field, shard)| {
            let mut out = metrics.resources.encode_shard(field, shard, shards);
            if (field, shard) == last {
                prometheus_client::encoding::text::encode_eof(&mut out)
                    .expect("writing to a String cannot fail");
            }
            out
        }))
    }

    /// Publishes an object's resources, removing series of resources it no longer has;
    /// `policy` gives the thresholds `--export-thresholds` publishes. Returns the label sets
    /// now published (kept by the caller for the next round).
    pub fn set_resources(
        &self,
        object: &Arc<ObjectTarget>,
        resources: &[ResourceStatus],
        previous: &[ResourceLabels],
        policy: Option<&Policy>,
    ) -> Vec<ResourceLabels> {
        let mut now = Vec::with_capacity(resources.len());
        let mut series = self.resources.write();
        for r in resources {
            let zone = r.zone.as_deref().unwrap_or("");
            // Unchanged series reuse their label values (no allocation per poll).
            let labels = previous
                .iter()
                .find(|p| *p.resource == *r.name && *p.zone == *zone && p.object == *object)
                .cloned()
                .unwrap_or_else(|| ResourceLabels {
                    object: object.clone(),
                    resource: r.name.as_str().into(),
                    zone: zone.into(),
                });
            let thresholds = policy
                .filter(|_| self.export_thresholds)
                .and_then(|p| p.for_resource(&r.name))
                .map(|pair| (pair.warning as u8, pair.critical as u8)); // 1..=100: Policy checks
            let values = ResourceValues {
                used: r.used,
                limit: r.limit.filter(|_| !r.unlimited),
                unlimited: r.unlimited,
                level: level_value(r.level).map(|l| l as i8),
                thresholds,
            };
            series.insert(labels.clone(), values);
            now.push(labels);
        }
        for old in previous.iter().filter(|o| !now.contains(o)) {
            series.remove(old);
        }
        now
    }

    fn remove_series(&self, labels: &[ResourceLabels]) {
        let mut series = self.resources.write();
        for l in labels {
            series.remove(l);
        }
    }

    /// Drops every per-object series: a replica that is no longer the leader must not keep
    /// exporting values it no longer updates.
    pub fn clear_objects(&self) {
        let mut series = self.resources.write();
        series.clear();
        series.shrink_to_fit();
        drop(series);
        self.ready.clear();
        self.last_success.clear();
        self.poll_interval.clear();
    }

    /// Forgets everything about a deleted object.
    pub fn remove_object(&self, object: &ObjectLabels, resources: &[ResourceLabels]) {
        self.remove_series(resources);
        self.ready.remove(object);
        self.last_success.remove(object);
        self.poll_interval.remove(object);
    }

    /// Forgets a deleted object's series, sparing those a live successor under the same name
    /// publishes (see [`Registry::forget_missing`](super::registry::Registry::forget_missing)).
    pub fn forget(&self, gone: &Forgotten) {
        if gone.object_series {
            let object = ObjectLabels {
                namespace: gone.entry.namespace.clone(),
                name: gone.entry.name.clone(),
            };
            self.remove_object(&object, &gone.series);
        } else {
            self.remove_series(&gone.series);
        }
    }

    /// Publishes one object's status: readiness, last success, interval and its resources.
    /// Returns nothing; the series now published are kept in `entry.metric_series`.
    pub fn record(
        &self,
        entry: &mut Entry,
        cq: &CloudQuota,
        status: &CloudQuotaStatus,
        policy: Option<&Policy>,
    ) {
        let object = ObjectLabels {
            namespace: entry.namespace.clone(),
            name: entry.name.clone(),
        };
        let ready = status
            .conditions
            .iter()
            .any(|c| c.type_ == domain_status::READY && c.status == "True");
        if cq.spec.suspend {
            // A paused object is neither failing nor stale: keep its resource series only, so
            // fetch-failure and staleness alerts stay quiet during a GitOps pause.
            self.ready.remove(&object);
            self.last_success.remove(&object);
            self.poll_interval.remove(&object);
        } else {
            self.ready.get_or_create(&object).set(ready as i64);
            self.poll_interval
                .get_or_create(&object)
                .set(validate::interval(cq).as_secs_f64());
            if let Some(t) = &status.last_sync_time {
                self.last_success
                    .get_or_create(&object)
                    .set(t.0.as_millisecond() as f64 / 1000.0);
            }
        }
        let region = cq.spec.region.as_deref().unwrap_or("");
        let object = match entry.metric_series.first() {
            // The usual case: labels unchanged, so the previous series' values are shared (no
            // allocation per poll).
            Some(l)
                if l.object.provider == cq.spec.provider.as_str()
                    && l.object.service == cq.spec.service.as_str()
                    && l.object.region == region =>
            {
                l.object.clone()
            }
            previous => {
                // A relabel (e.g. region edited) leaves no stale series: the old set is
                // replaced.
                if previous.is_some() {
                    self.remove_series(&std::mem::take(&mut entry.metric_series));
                }
                Arc::new(ObjectTarget {
                    namespace: entry.namespace.clone(),
                    name: entry.name.clone(),
                    provider: cq.spec.provider.as_str().into(),
                    service: cq.spec.service.as_str().into(),
                    region: region.into(),
                })
            }
        };
        entry.metric_series =
            self.set_resources(&object, &status.resources, &entry.metric_series, policy);
    }
}

/// The level as a number; `None` for unlimited resources (no series).
pub fn level_value(level: Level) -> Option<i64> {
    match level {
        Level::Ok => Some(0),
        Level::Warning => Some(1),
        Level::Critical => Some(2),
        Level::Exhausted => Some(3),
        Level::Unlimited => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(name: &str, used: i64, limit: Option<i64>) -> ResourceStatus {
        ResourceStatus::example(name, used, limit)
    }

    fn object(namespace: &str, name: &str) -> Arc<ObjectTarget> {
        Arc::new(ObjectTarget {
            namespace: namespace.into(),
            name: name.into(),
            provider: "huaweicloud".into(),
            service: "evs".into(),
            region: "r".into(),
        })
    }

    #[test]
    fn series_follow_resources() {
        let m = Arc::new(Metrics::new(Family::default()));
        let base = object("ns", "q");
        let first = m.set_resources(
            &base,
            &[res("volumes", 5, Some(10)), res("snapshots", 1, None)],
            &[],
            None,
        );
        let text = m.encode();
        assert!(text.contains(r#"cloudquota_resource_used{namespace="ns",name="q",provider="huaweicloud",service="evs",region="r",resource="volumes",zone=""} 5"#), "{text}");
        assert!(text.contains(r#"cloudquota_resource_usage_ratio{namespace="ns",name="q",provider="huaweicloud",service="evs",region="r",resource="volumes",zone=""} 0.5"#));
        assert!(!text.contains(r#"cloudquota_resource_limit{namespace="ns",name="q",provider="huaweicloud",service="evs",region="r",resource="snapshots""#), "unlimited has no limit series");
        let second = m.set_resources(&base, &[res("volumes", 6, Some(10))], &first, None);
        assert!(
            !m.encode().contains(r#"resource="snapshots""#),
            "gone resource removed"
        );
        m.remove_object(
            &ObjectLabels {
                namespace: "ns".into(),
                name: "q".into(),
            },
            &second,
        );
        assert!(
            !m.encode().contains(r#"resource="volumes""#),
            "deleted object removed"
        );
        m.set_resources(&base, &[res("volumes", 1, Some(10))], &[], None);
        m.ready
            .get_or_create(&ObjectLabels {
                namespace: "ns".into(),
                name: "q".into(),
            })
            .set(1);
        m.clear_objects();
        let text = m.encode();
        assert!(
            !text.contains(r#"name="q""#),
            "a former leader exports no object series: {text}"
        );
    }

    #[test]
    fn levels_and_thresholds_follow_status() {
        use crate::crd::{ThresholdOverride, Thresholds};
        let base = object("ns", "q");
        let mut snaps = res("snapshots", 7, Some(10));
        snaps.level = Level::Warning;
        let mut backups = res("backups", 1, None);
        backups.level = Level::Unlimited;
        let policy = Policy::new(&Thresholds {
            overrides: vec![ThresholdOverride {
                resources: vec!["snapshots".into()],
                warning: 60,
                critical: 80,
            }],
            ..Thresholds::default()
        })
        .unwrap();
        let plain = Arc::new(Metrics::new(Family::default()));
        plain.set_resources(&base, &[snaps.clone(), backups.clone()], &[], Some(&policy));
        let text = plain.encode();
        assert!(text.contains(r#"cloudquota_resource_level{namespace="ns",name="q",provider="huaweicloud",service="evs",region="r",resource="snapshots",zone=""} 1"#), "{text}");
        assert!(!text.contains(r#"cloudquota_resource_level{namespace="ns",name="q",provider="huaweicloud",service="evs",region="r",resource="backups""#), "unlimited has no level");
        assert!(
            !text.contains("warning_ratio"),
            "thresholds are opt-in: {text}"
        );
        let with = Arc::new(Metrics::with_options(Family::default(), true));
        let series = with.set_resources(&base, &[snaps], &[], Some(&policy));
        let text = with.encode();
        assert!(text.contains(r#"cloudquota_resource_warning_ratio{namespace="ns",name="q",provider="huaweicloud",service="evs",region="r",resource="snapshots",zone=""} 0.6"#), "{text}");
        assert!(text.contains(r#"cloudquota_resource_critical_ratio{namespace="ns",name="q",provider="huaweicloud",service="evs",region="r",resource="snapshots",zone=""} 0.8"#), "{text}");
        with.set_resources(&base, &[], &series, Some(&policy));
        assert!(
            !with.encode().contains(r#"resource="snapshots""#),
            "removed with the resource"
        );
        assert_eq!(level_value(Level::Exhausted), Some(3));
        assert_eq!(level_value(Level::Ok), Some(0));
    }

    #[test]
    fn a_large_exposition_is_cut_into_parts_that_add_up_to_it() {
        let m = Arc::new(Metrics::with_options(Family::default(), true));
        let policy = Policy::new(&crate::crd::Thresholds::default()).unwrap();
        // ~12,000 series: several shards per family.
        let mut published = Vec::new();
        for i in 0..3000 {
            let o = object("ns", &format!("q{i}"));
            let rs = [res("volumes", i, Some(10_000)), res("snapshots", 1, None)];
            published.push(m.set_resources(&o, &rs, &[], Some(&policy)));
        }
        assert_eq!(m.resources.len(), 6000);
        let parts: Vec<String> = m.parts().collect();
        let shards = m.resources.shards();
        assert!(shards > 1, "{shards}");
        assert_eq!(parts.len(), 1 + 7 * shards);
        let text: String = parts.concat();
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(text.matches("# EOF").count(), 1);
        for field in Field::ALWAYS.into_iter().chain(Field::THRESHOLDS) {
            let name = field.name();
            assert_eq!(text.matches(&format!("# TYPE {name} gauge\n")).count(), 1);
            // One group per family: its samples follow its TYPE line without interruption.
            let lines: Vec<&str> = text.lines().collect();
            let first = lines
                .iter()
                .position(|l| l.starts_with(&format!("{name}{{")))
                .unwrap();
            let count = lines
                .iter()
                .filter(|l| l.starts_with(&format!("{name}{{")))
                .count();
            assert!(
                lines[first..first + count]
                    .iter()
                    .all(|l| l.starts_with(&format!("{name}{{"))),
                "{name}"
            );
            assert_eq!(lines[first - 1], format!("# TYPE {name} gauge"));
        }
        // Every series once: used for all 6000 resources, limit only for the limited 3000.
        assert_eq!(text.matches("\ncloudquota_resource_used{").count(), 6000);
        assert_eq!(text.matches("\ncloudquota_resource_limit{").count(), 3000);
        assert!(text.contains(r#"cloudquota_resource_used{namespace="ns",name="q2999",provider="huaweicloud",service="evs",region="r",resource="volumes",zone=""} 2999"#));
    }
}
