//! What every scenario reads from a CloudQuota and its Events, and the `ensure!` macro.

use cloudquota::crd::{CloudQuota, Level, ResourceStatus};
use k8s_openapi::api::events::v1::Event;
use serde_json::{Value, json};

use crate::env::{Env, Result};

/// Returns `Err(message)` from the scenario unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}
pub(crate) use ensure;

/// The Ready condition's status, reason and message.
pub fn ready_cond(cq: &CloudQuota) -> Option<(&str, &str, &str)> {
    let c = cq
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")?;
    Some((c.status.as_str(), c.reason.as_str(), c.message.as_str()))
}

pub fn is_ready(cq: &CloudQuota) -> bool {
    ready_cond(cq).is_some_and(|(s, _, _)| s == "True")
}

/// Ready=False with this reason.
pub fn failing_with(cq: &CloudQuota, reason: &str) -> bool {
    ready_cond(cq).is_some_and(|(s, r, _)| s == "False" && r == reason)
}

pub fn resource<'a>(
    cq: &'a CloudQuota,
    name: &str,
    zone: Option<&str>,
) -> Option<&'a ResourceStatus> {
    cq.status
        .as_ref()?
        .resources
        .iter()
        .find(|r| r.name == name && r.zone.as_deref() == zone)
}

/// `used` of a resource without a zone (Huawei).
pub fn used(cq: &CloudQuota, name: &str) -> Option<i64> {
    resource(cq, name, None).map(|r| r.used)
}

pub fn level(cq: &CloudQuota, name: &str) -> Option<Level> {
    resource(cq, name, None).map(|r| r.level)
}

pub fn resources(cq: &CloudQuota) -> Vec<ResourceStatus> {
    cq.status
        .as_ref()
        .map(|s| s.resources.clone())
        .unwrap_or_default()
}

/// A Huawei CloudQuota spec pointed at the simulated cloud, reading Secret `creds`.
pub fn huawei_spec(env: &Env, service: &str, project: &str) -> Value {
    json!({"provider": "huaweicloud", "service": service, "region": "cn-north-4", "projectId": project,
           "endpoint": env.sim_url, "credentialsSecretRef": {"name": "creds"}, "interval": "5m"})
}

/// The Events about one object.
pub async fn events_of(env: &Env, ns: &str, name: &str) -> Result<Vec<Event>> {
    Ok(env
        .events(ns)
        .await?
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect())
}
