//! Fault injection: rules scoped to a service (and optionally a key) that alter the next N
//! matching requests, or all of them until cleared.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use super::SimError;
use super::model::Service;

/// Which IMS path a [`Fault::ImsPathNotFound`] rule makes disappear.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImsPath {
    /// `GET /v1/{project_id}/cloudimages/quota`.
    ProjectInPath,
    /// `GET /v1/cloudimages/quota` with the `X-Project-Id` header.
    ProjectHeader,
}

/// How DWS renders the `unit` of resources that have no unit (the document says `"null"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitStyle {
    /// The string `"null"` (the document's example; the default).
    #[default]
    String,
    /// A JSON `null`.
    Null,
    /// No `unit` field at all.
    Absent,
}

/// One kind of misbehaviour. "Terminal" faults replace the response; latency and the shape
/// variants combine with whatever else is served.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Delay the response by `ms` milliseconds (combines with other faults).
    Latency { ms: u64 },
    /// Answer with this HTTP status, an optional `Retry-After` (seconds) and an optional raw
    /// body; without a body the provider's error format is used.
    Status {
        status: u16,
        #[serde(default)]
        retry_after: Option<u64>,
        #[serde(default)]
        body: Option<String>,
    },
    /// Provider throttling: Zenlayer 429 `REQUEST_LIMIT_EXCEEDED`, Huawei 429 `APIGW.0308`.
    Throttle {
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// 200 with a truncated JSON body.
    MalformedJson,
    /// 200 with valid JSON where `field` (default: the limit field of the service) is removed
    /// from every quota line.
    MissingField {
        #[serde(default)]
        field: Option<String>,
    },
    /// 200 with valid JSON where `field` (default: the limit field) has the wrong JSON type.
    WrongType {
        #[serde(default)]
        field: Option<String>,
    },
    /// 200 with the normal document padded (extra `padding` string) to `bytes` bytes.
    Oversized { bytes: usize },
    /// Close the connection (RST) without sending a response.
    ConnectionReset,
    /// Send the normal response `chunk_bytes` at a time with `delay_ms` between chunks.
    SlowDrip {
        #[serde(default = "default_chunk")]
        chunk_bytes: usize,
        delay_ms: u64,
    },
    /// 404 (API gateway "API does not exist") for one of the two IMS paths.
    ImsPathNotFound { path: ImsPath },
    /// Zenlayer: the document's shape `imageRegionQuota[{regionId,count,maxCount}]` instead of
    /// the SDK's `images[{zoneId,count,maxCount}]`.
    ZenlayerDocShape,
    /// DWS / ECS / Zenlayer: numbers as JSON strings (`true`) or integers (`false`). Defaults
    /// are strings for DWS (seed 002) and integers for ECS and Zenlayer (SDK models; the older
    /// ECS `/v2.1` limits docs type them String).
    NumbersAsStrings { strings: bool },
    /// DWS: how a missing unit is rendered.
    DwsUnit { style: UnitStyle },
}

fn default_chunk() -> usize {
    16
}

impl Fault {
    fn is_terminal(&self) -> bool {
        !matches!(
            self,
            Fault::Latency { .. }
                | Fault::ZenlayerDocShape
                | Fault::NumbersAsStrings { .. }
                | Fault::DwsUnit { .. }
        )
    }

    fn check(&self, service: Service) -> Result<(), SimError> {
        let ok = match self {
            Fault::ImsPathNotFound { .. } => service == Service::Ims,
            Fault::ZenlayerDocShape => service == Service::Vm,
            Fault::NumbersAsStrings { .. } => {
                matches!(service, Service::Dws | Service::Ecs | Service::Vm)
            }
            Fault::DwsUnit { .. } => service == Service::Dws,
            Fault::Status { status, .. } => (100..=599).contains(status),
            Fault::SlowDrip { chunk_bytes, .. } => *chunk_bytes > 0,
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(SimError::Invalid(format!(
                "fault {self:?} does not apply to service {service}"
            )))
        }
    }
}

/// A fault rule: which requests it applies to and how many times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    pub service: Service,
    /// Project id (Huawei) or account (Zenlayer); `None` matches every key.
    #[serde(default)]
    pub key: Option<String>,
    /// Number of matching requests to affect; `None` until cleared.
    #[serde(default)]
    pub count: Option<u32>,
    pub fault: Fault,
}

impl FaultRule {
    /// A rule for every request to `service` until cleared.
    pub fn new(service: Service, fault: Fault) -> Self {
        FaultRule {
            service,
            key: None,
            count: None,
            fault,
        }
    }

    /// Restricts the rule to one project id / account.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Limits the rule to the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.count = Some(n);
        self
    }
}

/// An installed rule, as listed by the control API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveFault {
    pub id: u64,
    #[serde(flatten)]
    pub rule: FaultRule,
}

/// What applies to one request.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    pub latency_ms: u64,
    pub terminal: Option<Fault>,
    pub doc_shape: bool,
    pub numbers_as_strings: Option<bool>,
    pub unit_style: Option<UnitStyle>,
    /// Number of rules consumed (for the `faults_served` counter).
    pub served: u64,
}

#[derive(Default)]
pub(crate) struct FaultStore {
    rules: Mutex<(u64, Vec<ActiveFault>)>,
    /// Lets the hot path skip the lock when nothing is installed (benchmarks).
    len: AtomicUsize,
}

impl FaultStore {
    pub(crate) fn add(&self, rule: FaultRule) -> Result<u64, SimError> {
        rule.fault.check(rule.service)?;
        if rule.count == Some(0) {
            return Err(SimError::Invalid("count must be at least 1".into()));
        }
        let mut g = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        g.0 += 1;
        let id = g.0;
        g.1.push(ActiveFault { id, rule });
        self.len.store(g.1.len(), Ordering::Release);
        Ok(id)
    }

    pub(crate) fn list(&self) -> Vec<ActiveFault> {
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    /// Removes one rule; returns whether it existed.
    pub(crate) fn remove(&self, id: u64) -> bool {
        let mut g = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let before = g.1.len();
        g.1.retain(|f| f.id != id);
        self.len.store(g.1.len(), Ordering::Release);
        g.1.len() != before
    }

    /// Removes all rules, or those of one service.
    pub(crate) fn clear(&self, service: Option<Service>) {
        let mut g = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        g.1.retain(|f| service.is_some_and(|s| s != f.rule.service));
        self.len.store(g.1.len(), Ordering::Release);
    }

    /// Picks (and consumes) the rules that apply to a request. The first matching terminal
    /// rule in installation order wins; latency and shape rules all apply.
    pub(crate) fn take(&self, service: Service, key: &str, ims_path: Option<ImsPath>) -> Applied {
        let mut applied = Applied::default();
        if self.len.load(Ordering::Acquire) == 0 {
            return applied;
        }
        let mut g = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        for active in g.1.iter_mut() {
            let rule = &mut active.rule;
            if rule.service != service || rule.key.as_deref().is_some_and(|k| k != key) {
                continue;
            }
            let used = match &rule.fault {
                Fault::ImsPathNotFound { path }
                    if applied.terminal.is_none() && Some(*path) == ims_path =>
                {
                    applied.terminal = Some(rule.fault.clone());
                    true
                }
                Fault::ImsPathNotFound { .. } => false,
                f if f.is_terminal() && applied.terminal.is_none() => {
                    applied.terminal = Some(f.clone());
                    true
                }
                f if f.is_terminal() => false,
                Fault::Latency { ms } => {
                    applied.latency_ms = applied.latency_ms.saturating_add(*ms);
                    true
                }
                Fault::ZenlayerDocShape => {
                    applied.doc_shape = true;
                    true
                }
                Fault::NumbersAsStrings { strings } => {
                    applied.numbers_as_strings = Some(*strings);
                    true
                }
                Fault::DwsUnit { style } => {
                    applied.unit_style = Some(*style);
                    true
                }
                _ => false,
            };
            if used {
                applied.served += 1;
                if let Some(c) = rule.count.as_mut() {
                    *c = c.saturating_sub(1);
                }
            }
        }
        g.1.retain(|f| f.rule.count != Some(0));
        self.len.store(g.1.len(), Ordering::Release);
        applied
    }
}
