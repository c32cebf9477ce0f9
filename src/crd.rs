//! The `CloudQuota` custom resource (`cloudquota.io/v1alpha1`): types only.
//!
//! This is a public API. Field names, defaults and validation rules here are the contract that
//! GitOps repositories, `kubectl` users and pre-check jobs depend on; `crds/cloudquota.yaml` is
//! generated from these types by `cloudquota crd` and a test keeps the two identical.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Name of the API group.
pub const GROUP: &str = "cloudquota.io";
/// Default poll interval.
pub const DEFAULT_INTERVAL: &str = "5m";
/// Default warning threshold, percent of the limit.
pub const DEFAULT_WARNING: i64 = 80;
/// Default critical threshold, percent of the limit.
pub const DEFAULT_CRITICAL: i64 = 95;

/// Watch one cloud quota endpoint (provider + service, region, project) and report every
/// resource's usage and limit in `.status`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "cloudquota.io",
    version = "v1alpha1",
    kind = "CloudQuota",
    plural = "cloudquotas",
    shortname = "cq",
    namespaced,
    status = "CloudQuotaStatus",
    derive = "PartialEq",
    doc = "CloudQuota watches one cloud provider quota endpoint and reports every resource's usage and limit in status.",
    printcolumn = r#"{"name":"Provider","type":"string","jsonPath":".spec.provider"}"#,
    printcolumn = r#"{"name":"Service","type":"string","jsonPath":".spec.service"}"#,
    printcolumn = r#"{"name":"Region","type":"string","jsonPath":".spec.region"}"#,
    printcolumn = r#"{"name":"Level","type":"string","jsonPath":".status.level"}"#,
    printcolumn = r#"{"name":"Worst","type":"string","jsonPath":".status.worst"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Last Sync","type":"date","jsonPath":".status.lastSyncTime","priority":1}"#,
    printcolumn = r#"{"name":"CA Quota Valid","type":"string","jsonPath":".status.capacityQuota.valid","priority":1}"#
)]
#[x_kube(
    validation = Rule::new("(self.provider == 'huaweicloud' && self.service in ['ims', 'dws', 'evs', 'ecs']) || (self.provider == 'zenlayer' && self.service == 'vm')")
        .message("service must be one of ims, dws, evs, ecs for provider huaweicloud, and vm for provider zenlayer")
        .reason(Reason::FieldValueInvalid)
        .field_path(".service")
)]
#[x_kube(
    validation = Rule::new("self.provider != 'huaweicloud' || has(self.projectId)")
        .message("projectId is required for provider huaweicloud")
        .reason(Reason::FieldValueRequired)
        .field_path(".projectId")
)]
#[x_kube(
    validation = Rule::new("self.provider != 'huaweicloud' || has(self.region) || has(self.endpoint)")
        .message("region is required for provider huaweicloud unless endpoint is set")
        .reason(Reason::FieldValueRequired)
        .field_path(".region")
)]
#[x_kube(
    validation = Rule::new("!has(self.capacityQuota) || self.service == 'ecs' || (has(self.capacityQuota.resources) && size(self.capacityQuota.resources) > 0)")
        .message("capacityQuota.resources is required unless service is ecs (which defaults to cpu<-cores, memory<-ram, nodes<-instances)")
        .reason(Reason::FieldValueRequired)
        .field_path(".capacityQuota.resources")
)]
#[serde(rename_all = "camelCase")]
pub struct CloudQuotaSpec {
    /// Cloud provider: `huaweicloud` or `zenlayer`.
    pub provider: Provider,

    /// Provider service whose quota is read: `ims` (images), `dws` (GaussDB(DWS)), `evs`
    /// (disks and snapshots) or `ecs` (servers, cores, RAM) for huaweicloud; `vm` (images per
    /// zone) for zenlayer.
    pub service: Service,

    /// Region, e.g. `cn-north-4`. Required for huaweicloud unless `endpoint` is set; it selects
    /// the default endpoint `https://{service}.{region}.myhuaweicloud.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
    )]
    pub region: Option<String>,

    /// Project ID the quota belongs to. Required for huaweicloud.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub project_id: Option<String>,

    /// Endpoint URL override, e.g. `https://ims.eu-west-101.myhuaweicloud.eu`. Its host must be
    /// allowed by the operator's endpoint allowlist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub endpoint: Option<String>,

    /// Zenlayer zone IDs to report (all zones when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub zones: Vec<String>,

    /// Secret in the same namespace holding the credentials: `accessKeyId` and
    /// `secretAccessKey` (plus optional `securityToken` for Huawei temporary credentials), or
    /// `bearerToken` (Zenlayer personal access token).
    pub credentials_secret_ref: SecretRef,

    /// How often the quota is polled, as a duration like `5m` or `90s`. Minimum `30s`.
    #[serde(default = "default_interval")]
    #[schemars(
        length(min = 2, max = 32),
        regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")
    )]
    #[x_kube(validation = Rule::new("duration(self) >= duration('30s')").message("interval must be at least 30s"))]
    pub interval: String,

    /// Usage thresholds, in percent of the limit, at which a resource becomes Warning or
    /// Critical.
    #[serde(default)]
    pub thresholds: Thresholds,

    /// Stop polling (for GitOps pauses). Status keeps the last data.
    #[serde(default)]
    pub suspend: bool,

    /// Publish a cluster-autoscaler `CapacityQuota` (cluster-scoped) whose limits are what the
    /// matching Nodes already have plus the cloud's remaining headroom, so the autoscaler never
    /// asks the cloud for more than its quota allows. Honoured only when the operator runs with
    /// the feature on and trusts this namespace (`--capacity-quota-namespace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_quota: Option<CapacityQuotaPublishing>,
}

fn default_interval() -> String {
    DEFAULT_INTERVAL.to_string()
}

/// Cloud provider.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Huaweicloud,
    Zenlayer,
}

/// Provider service.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Ims,
    Dws,
    Evs,
    Ecs,
    Vm,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Huaweicloud => "huaweicloud",
            Provider::Zenlayer => "zenlayer",
        }
    }
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Ims => "ims",
            Service::Dws => "dws",
            Service::Evs => "evs",
            Service::Ecs => "ecs",
            Service::Vm => "vm",
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reference to a Secret in the CloudQuota's own namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub struct SecretRef {
    /// Name of the Secret (always read from the CloudQuota's namespace).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Usage thresholds in percent of the limit.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("self.warning <= self.critical").message("thresholds.warning must be less than or equal to thresholds.critical"))]
#[serde(rename_all = "camelCase")]
pub struct Thresholds {
    /// Percent of the limit at which a resource becomes Warning (1-100, default 80).
    #[serde(default = "default_warning")]
    #[schemars(range(min = 1, max = 100))]
    pub warning: i64,

    /// Percent of the limit at which a resource becomes Critical (1-100, default 95).
    #[serde(default = "default_critical")]
    #[schemars(range(min = 1, max = 100))]
    pub critical: i64,

    /// Per-resource thresholds; the first override whose globs match a resource name wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub overrides: Vec<ThresholdOverride>,

    /// Globs of resource names (e.g. `snapshots_*`) that are not tracked at all: they are left
    /// out of status, Events and metrics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub ignore: Vec<String>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            warning: DEFAULT_WARNING,
            critical: DEFAULT_CRITICAL,
            overrides: Vec::new(),
            ignore: Vec::new(),
        }
    }
}

fn default_warning() -> i64 {
    DEFAULT_WARNING
}

fn default_critical() -> i64 {
    DEFAULT_CRITICAL
}

/// Thresholds for the resources whose names match one of `resources`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("self.warning <= self.critical").message("override warning must be less than or equal to critical"))]
pub struct ThresholdOverride {
    /// Globs of resource names this override applies to, e.g. `volumes_*` or `image`.
    #[schemars(length(min = 1, max = 64))]
    pub resources: Vec<String>,

    /// Percent of the limit at which a matching resource becomes Warning.
    #[schemars(range(min = 1, max = 100))]
    pub warning: i64,

    /// Percent of the limit at which a matching resource becomes Critical.
    #[schemars(range(min = 1, max = 100))]
    pub critical: i64,
}

/// Which cluster-autoscaler `CapacityQuota` to publish, over which Nodes, from which resources.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CapacityQuotaPublishing {
    /// Name of the CapacityQuota (cluster-scoped). Default: `cloudquota-<namespace>-<name>`,
    /// shortened with a hash suffix to 63 characters. An existing CapacityQuota that this
    /// CloudQuota did not create is never changed or deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: Option<String>,

    /// The Nodes the quota applies to (a label selector; absent: all Nodes). The published
    /// limits count the capacity of exactly these Nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,

    /// Which cloud resource feeds which autoscaler resource. Default for service `ecs`:
    /// `cpu` from `cores`, `memory` from `ram` (MB), `nodes` from `instances`. Required for
    /// every other service. Several entries for one autoscaler resource: the smallest wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub resources: Vec<CapacityResourceMapping>,
}

/// One autoscaler resource fed by one cloud resource.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("!has(self.perNode) || self.name == 'nodes'").message("perNode is only allowed for the nodes resource"))]
#[serde(rename_all = "camelCase")]
pub struct CapacityResourceMapping {
    /// Autoscaler resource: `cpu` (cores), `memory` (bytes), `nodes`, or a custom resource name
    /// as it appears in Node capacity (e.g. `nvidia.com/gpu`).
    #[schemars(
        length(min = 1, max = 253),
        regex(
            pattern = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
        )
    )]
    pub name: String,

    /// Cloud resource name as in `status.resources`, e.g. `cores`, `ram`, `volumes_SSD`.
    /// `memory` reads it in MB as Huawei reports `ram` (1 MB = 1 MiB = 1048576 bytes); every
    /// other resource one for one.
    #[schemars(length(min = 1, max = 128))]
    pub from: String,

    /// For `nodes` only: how many of the cloud resource each Node consumes (e.g. 2 disks per
    /// Node): the headroom is divided by it, rounded down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000000))]
    pub per_node: Option<i64>,
}

/// The CapacityQuota this object publishes, and what the cluster autoscaler says about it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishedCapacityQuota {
    /// Name of the CapacityQuota.
    pub name: String,

    /// `apiVersion` it is written with (`autoscaling.x-k8s.io/v1beta1` when served, else
    /// `v1alpha1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,

    /// The limits as published (`spec.limits.resources`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub limits: std::collections::BTreeMap<String, String>,

    /// What the autoscaler counts as used (its `status.used.resources`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub used: std::collections::BTreeMap<String, String>,

    /// The autoscaler's validity condition (`True`: enforced); absent until it has judged it.
    /// Read every 30 s and on every change of the CloudQuota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<String>,

    /// The message of that condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    /// Nodes matching the selector when the limits were computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<i64>,

    /// When the limits were last written (they change only when a limit or the selector does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_time: Option<Time>,
}

/// Observed quota state, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudQuotaStatus {
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Time of the last successful poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,

    /// Time of the last poll attempt, successful or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_time: Option<Time>,

    /// URL actually requested (for IMS it shows which of the two documented paths works).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,

    /// Every tracked resource with its usage and limit, as of the last successful poll.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceStatus>,

    /// Worst level over all resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_level_schema")]
    pub level: Option<Level>,

    /// Human summary of the resource closest to its limit, e.g. `volumes_SSD 28/30 (93%)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst: Option<String>,

    /// The Lease (`namespace/name`) the operator renews while it polls this object. Status is
    /// written on change only (plus a heartbeat), so `lastSyncTime` can be up to a heartbeat
    /// old on an unchanged quota; while this Lease is fresh the data is current to within one
    /// interval (`cloudquota check` reads it, as Kubernetes reads a Node's Lease beside its
    /// status). Absent without leader election.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_lease: Option<String>,

    /// The `cloudquota.io/refresh` annotation value last acted on: a different value asks for
    /// an immediate poll, also across operator restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_refresh: Option<String>,

    /// Standard conditions: `Ready` (the last poll succeeded and data is current),
    /// `ThresholdExceeded` (some resource is at Warning or worse), and the kstatus pair
    /// `Reconciling` (present while the current generation has not been polled yet) and
    /// `Stalled` (present while retrying cannot help until someone changes something). A map
    /// keyed by `type`: conditions that other tools add are kept by server-side apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,

    /// The published cluster-autoscaler CapacityQuota (see `spec.capacityQuota`), with the
    /// autoscaler's own view of it. Written by the capacity publisher (field manager
    /// `cloudquota-capacity`), with the `CapacityQuotaPublished` condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_quota: Option<PublishedCapacityQuota>,
}

/// A list-map keyed by `type` (`x-kubernetes-list-type: map`), as Kubernetes' own APIs mark
/// `conditions`, so each condition has its own field owner under server-side apply.
fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert("x-kubernetes-list-map-keys".into(), vec!["type"].into());
    schema
}

/// `Option<Level>` as a plain nullable string enum: schemars would add `null` to the enum,
/// which is not how Kubernetes schemas spell optional fields.
fn optional_level_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Level>();
    schema.insert("nullable".into(), true.into());
    schema
}

/// Usage and limit of one quota resource.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    /// Resource name as the provider reports it, e.g. `image`, `volumes_SSD`, `disk_capacity`.
    pub name: String,

    /// Zone the quota applies to (Zenlayer quotas are per zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,

    /// Amount in use.
    pub used: i64,

    /// Limit; absent when unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,

    /// True when the provider reports no limit (`-1`).
    #[serde(default)]
    pub unlimited: bool,

    /// Amount reserved (EVS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<i64>,

    /// Lowest value the limit can be set to (IMS), not usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,

    /// Highest value the limit can be raised to (IMS), not usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,

    /// Unit of `used` and `limit`, e.g. `GB`; absent for counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,

    /// `used` as a percentage of `limit` (two decimals); absent when unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_percent: Option<f64>,

    /// `limit - used` (never below 0); absent when unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available: Option<i64>,

    /// Level from the thresholds.
    pub level: Level,
}

#[cfg(test)]
impl ResourceStatus {
    /// A resource as the operator reports it, for tests: `limit: None` is unlimited, level Ok.
    pub(crate) fn example(name: &str, used: i64, limit: Option<i64>) -> ResourceStatus {
        ResourceStatus {
            name: name.into(),
            zone: None,
            used,
            limit,
            unlimited: limit.is_none(),
            reserved: None,
            min: None,
            max: None,
            unit: None,
            usage_percent: limit.map(|l| crate::domain::thresholds::usage_percent(used, l)),
            available: limit.map(|l| (l - used).max(0)),
            level: Level::Ok,
        }
    }
}

/// Usage level of a resource against its thresholds.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    schemars::JsonSchema,
)]
pub enum Level {
    // Order matters: worse levels compare greater. `Unlimited` sorts lowest because it can never
    // run out.
    Unlimited,
    Ok,
    Warning,
    Critical,
    Exhausted,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Unlimited => "Unlimited",
            Level::Ok => "Ok",
            Level::Warning => "Warning",
            Level::Critical => "Critical",
            Level::Exhausted => "Exhausted",
        }
    }

    /// Warning, Critical or Exhausted.
    pub fn is_alerting(self) -> bool {
        self >= Level::Warning
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
