//! Quota data held by the simulator: one generic resource record for all five APIs, the seed
//! data taken from the vendor documents, and the lazily seeded store.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::SimError;

/// The five simulated quota APIs. Also the scope of faults and counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// Huawei Cloud IMS `GET /v1[/{project_id}]/cloudimages/quota`.
    Ims,
    /// Huawei Cloud GaussDB(DWS) `GET /v1.0/{project_id}/quotas`.
    Dws,
    /// Huawei Cloud EVS `GET /v2/{project_id}/os-quota-sets/{project_id}?usage=True`.
    Evs,
    /// Huawei Cloud ECS `GET /v1/{project_id}/cloudservers/limits` (`ShowServerLimits`).
    Ecs,
    /// Zenlayer `DescribeImageQuota` (`POST /api/v2/vm`).
    Vm,
}

impl Service {
    /// All services, in a stable order.
    pub const ALL: [Service; 5] = [
        Service::Ims,
        Service::Dws,
        Service::Evs,
        Service::Ecs,
        Service::Vm,
    ];

    /// The lowercase name used in the admin API and in counters.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Ims => "ims",
            Service::Dws => "dws",
            Service::Evs => "evs",
            Service::Ecs => "ecs",
            Service::Vm => "vm",
        }
    }

    /// Huawei services are keyed by project id and answer in Huawei's error format; the
    /// Zenlayer one is keyed by account.
    pub fn is_huawei(self) -> bool {
        !matches!(self, Service::Vm)
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Service::Ims => 0,
            Service::Dws => 1,
            Service::Evs => 2,
            Service::Ecs => 3,
            Service::Vm => 4,
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Service {
    type Err = SimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ims" => Ok(Service::Ims),
            "dws" => Ok(Service::Dws),
            "evs" => Ok(Service::Evs),
            "ecs" => Ok(Service::Ecs),
            "vm" | "zenlayer" => Ok(Service::Vm),
            _ => Err(SimError::UnknownService(s.to_string())),
        }
    }
}

/// One quota line. A single shape for all services so the control API stays uniform; the
/// service-specific fields are optional and rendered only by the service that has them.
///
/// * IMS: `name` = `type` (`image`), `used`, `limit` = `quota`, `min`, `max`.
/// * DWS: `name` = `type`, `used`, `limit` = `quota`, `unit` (`None` renders as `"null"`).
/// * EVS: `name` = quota_set key (`volumes_SSD`, ...), `used` = `in_use`, `limit`, `reserved`.
/// * ECS: `name` = one of [`ECS_PAIRS`] (`instances`, `cores`, `ram`, ...), rendered as its
///   `max*` / `total*Used` pair of `absolute`; `unit` (`MB` for RAM) is not on the wire.
/// * Zenlayer: `name` = `image`, `zone` = `zoneId`, `used` = `count`, `limit` = `maxCount`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimResource {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(default)]
    pub used: i64,
    #[serde(default)]
    pub limit: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<i64>,
}

impl SimResource {
    /// A bare resource with no service-specific extras.
    pub fn new(name: impl Into<String>, used: i64, limit: i64) -> Self {
        SimResource {
            name: name.into(),
            zone: None,
            used,
            limit,
            min: None,
            max: None,
            unit: None,
            reserved: None,
        }
    }

    /// A Zenlayer image quota line for one zone.
    pub fn zone(zone: impl Into<String>, used: i64, limit: i64) -> Self {
        SimResource {
            zone: Some(zone.into()),
            ..SimResource::new(ZENLAYER_RESOURCE, used, limit)
        }
    }

    fn matches(&self, name: &str, zone: Option<&str>) -> bool {
        self.name == name && self.zone.as_deref() == zone
    }
}

/// The only Zenlayer resource name: image quotas per zone.
pub const ZENLAYER_RESOURCE: &str = "image";

/// ECS resources and the `absolute` keys they are rendered as: (name, limit key, usage key), as
/// in the SDK's `ServerLimits` model (huaweicloudsdkecs). Kept apart from the operator's own
/// table on purpose: the simulator plays the service, so a wrong key in either one shows up.
pub const ECS_PAIRS: [(&str, &str, &str); 9] = [
    ("instances", "maxTotalInstances", "totalInstancesUsed"),
    ("cores", "maxTotalCores", "totalCoresUsed"),
    ("ram", "maxTotalRAMSize", "totalRAMUsed"),
    (
        "spot_instances",
        "maxTotalSpotInstances",
        "totalSpotInstancesUsed",
    ),
    ("spot_cores", "maxTotalSpotCores", "totalSpotCoresUsed"),
    ("spot_ram", "maxTotalSpotRAMSize", "totalSpotRAMUsed"),
    (
        "floating_ips",
        "maxTotalFloatingIps",
        "totalFloatingIpsUsed",
    ),
    (
        "security_groups",
        "maxSecurityGroups",
        "totalSecurityGroupsUsed",
    ),
    ("server_groups", "maxServerGroups", "totalServerGroupsUsed"),
];

/// The seed data of a service (the example responses of the vendor documents).
pub fn seed(service: Service) -> Vec<SimResource> {
    match service {
        // Seed 000/001.
        Service::Ims => vec![SimResource {
            min: Some(1),
            max: Some(1000),
            ..SimResource::new("image", 0, 20)
        }],
        // Seed 002: numbers are strings on the wire, unit "null" or "GB".
        Service::Dws => vec![
            SimResource::new("instances", 3, 100),
            SimResource::new("core", 12, 100),
            SimResource {
                unit: Some("GB".into()),
                ..SimResource::new("ram", 24, 1000)
            },
            SimResource::new("disk", 6, 100),
            SimResource {
                unit: Some("GB".into()),
                ..SimResource::new("disk_capacity", 600, 1000)
            },
        ],
        // Seed 003, in document order; -1 means unlimited.
        Service::Evs => [
            ("gigabytes_SAS", 21, -1),
            ("volumes_SATA", 8, -1),
            ("gigabytes", 2792, 42790),
            ("backup_gigabytes", 51, 5120),
            ("snapshots_SAS", 0, -1),
            ("volumes_SSD", 28, -1),
            ("snapshots", 6, 10),
            ("volumes_SAS", 2, -1),
            ("snapshots_SSD", 0, -1),
            ("volumes", 108, -1),
            ("gigabytes_SATA", 168, -1),
            ("backups", 10, 100),
            ("gigabytes_SSD", 1085, -1),
            ("snapshots_SATA", 0, -1),
        ]
        .into_iter()
        .map(|(name, used, limit)| SimResource {
            reserved: Some(0),
            ..SimResource::new(name, used, limit)
        })
        .collect(),
        // No seed document: the SDK model's pairs with plausible numbers. Cores at 86% and RAM
        // at 86% (MB) so thresholds have something to show; spot cores and RAM unlimited.
        Service::Ecs => [
            ("instances", 43, 100, None),
            ("cores", 172, 200, None),
            ("ram", 352_256, 409_600, Some("MB")),
            ("spot_instances", 2, 20, None),
            ("spot_cores", 8, -1, None),
            ("spot_ram", 16_384, -1, Some("MB")),
            ("floating_ips", 1, 10, None),
            ("security_groups", 4, 10, None),
            ("server_groups", 0, 10, None),
        ]
        .into_iter()
        .map(|(name, used, limit, unit)| SimResource {
            unit: unit.map(str::to_string),
            ..SimResource::new(name, used, limit)
        })
        .collect(),
        // Seed 004 zone plus two more so filters and multi-zone handling get exercised.
        Service::Vm => vec![
            SimResource::zone("sa-jeddah-1a", 0, 5),
            SimResource::zone("asia-east-1a", 4, 5),
            SimResource::zone("na-west-1a", 1, 10),
        ],
    }
}

/// Validates a resource for a service: Zenlayer lines need a zone, the others must not have
/// one (a zone on a Huawei resource would silently never be rendered).
pub(crate) fn validate(service: Service, r: &SimResource) -> Result<(), SimError> {
    if r.name.is_empty() {
        return Err(SimError::Invalid("resource name must not be empty".into()));
    }
    match (service, &r.zone) {
        (Service::Vm, None) => Err(SimError::Invalid(
            "zenlayer (vm) resources need a zone".into(),
        )),
        (Service::Vm, Some(_)) => Ok(()),
        (Service::Ecs, None) if !ECS_PAIRS.iter().any(|(n, _, _)| *n == r.name) => {
            Err(SimError::Invalid(format!(
                "ecs has no resource {:?} (one of: {})",
                r.name,
                ECS_PAIRS.map(|(n, _, _)| n).join(", ")
            )))
        }
        (_, Some(_)) => Err(SimError::Invalid(format!(
            "{service} resources have no zone"
        ))),
        (_, None) => Ok(()),
    }
}

/// Quota sets by (service, key); a key seen for the first time gets the seed data.
#[derive(Default)]
pub(crate) struct QuotaStore {
    sets: Mutex<HashMap<(Service, String), Vec<SimResource>>>,
}

impl QuotaStore {
    pub(crate) fn get(&self, service: Service, key: &str) -> Vec<SimResource> {
        let mut sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(set) = sets.get(&(service, key.to_string())) {
            return set.clone();
        }
        let set = seed(service);
        sets.insert((service, key.to_string()), set.clone());
        set
    }

    pub(crate) fn replace(&self, service: Service, key: &str, set: Vec<SimResource>) {
        let mut sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        sets.insert((service, key.to_string()), set);
    }

    /// Updates used and/or limit of one resource, creating it (after seeding the key) if new.
    pub(crate) fn set_resource(
        &self,
        service: Service,
        key: &str,
        name: &str,
        zone: Option<&str>,
        used: Option<i64>,
        limit: Option<i64>,
    ) -> SimResource {
        let mut sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        let set = sets
            .entry((service, key.to_string()))
            .or_insert_with(|| seed(service));
        let idx = match set.iter().position(|r| r.matches(name, zone)) {
            Some(i) => i,
            None => {
                let mut r = SimResource::new(name, 0, 0);
                r.zone = zone.map(str::to_string);
                match service {
                    Service::Ims => {
                        r.min = Some(0);
                        r.max = Some(i64::from(i32::MAX));
                    }
                    Service::Evs => r.reserved = Some(0),
                    Service::Ecs if r.name.ends_with("ram") => r.unit = Some("MB".into()),
                    Service::Dws | Service::Ecs | Service::Vm => {}
                }
                set.push(r);
                set.len() - 1
            }
        };
        let r = &mut set[idx];
        if let Some(u) = used {
            r.used = u;
        }
        if let Some(l) = limit {
            r.limit = l;
        }
        r.clone()
    }

    pub(crate) fn clear(&self) {
        self.sets.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
