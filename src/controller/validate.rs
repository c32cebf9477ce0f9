//! The first step of a reconcile, pure: the spec becomes an interval, a threshold policy and a
//! target, or a specific reason why not. Also the failure type of a poll, since every later
//! step's failure is reported through the same `Ready` reason.

use std::time::Duration;

use super::credentials::CredentialsError;
use crate::crd::{CloudQuota, CloudQuotaSpec};
use crate::domain::allowlist::{Allowlist, NotAllowed};
use crate::domain::duration;
use crate::domain::schedule::MIN_INTERVAL;
use crate::domain::status::Failure;
use crate::domain::thresholds::{Policy, PolicyError};
use crate::providers::{self, ProviderError, Target};

/// Why a poll could not produce a sample. Each variant is one step; its reason is the `Ready`
/// condition's reason and the Event's action.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PollError {
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    #[error("{0}")]
    EndpointNotAllowed(#[from] NotAllowed),
    #[error("{0}")]
    Credentials(#[from] CredentialsError),
    #[error("{0}")]
    Provider(#[from] ProviderError),
}

impl From<PolicyError> for PollError {
    fn from(e: PolicyError) -> Self {
        PollError::InvalidSpec(e.to_string())
    }
}

impl PollError {
    pub fn reason(&self) -> &'static str {
        match self {
            PollError::InvalidSpec(_) => "InvalidSpec",
            PollError::EndpointNotAllowed(_) => "EndpointNotAllowed",
            PollError::Credentials(e) => e.reason(),
            PollError::Provider(e) => e.reason(),
        }
    }

    /// Retrying cannot help until someone changes something.
    pub fn is_permanent(&self) -> bool {
        match self {
            PollError::InvalidSpec(_) | PollError::EndpointNotAllowed(_) => true,
            PollError::Credentials(_) => true,
            PollError::Provider(e) => e.is_permanent(),
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PollError::Provider(p) => p.retry_after(),
            _ => None,
        }
    }

    pub fn failure(&self) -> Failure {
        Failure {
            reason: self.reason().to_string(),
            message: self.to_string(),
            permanent: self.is_permanent(),
        }
    }
}

/// What one CloudQuota reads, and how often.
#[derive(Debug, Clone)]
pub struct Validated {
    pub interval: Duration,
    pub policy: Policy,
    pub target: Target,
    pub identity: TargetId,
}

/// Identity of the account an object reads: provider, service, region, endpoint, project and
/// zones. Levels, limits and failures are only comparable under one identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetId(String);

impl TargetId {
    pub fn of(spec: &CloudQuotaSpec, target: &Target) -> TargetId {
        let mut zones = target.zones.clone();
        zones.sort();
        zones.dedup();
        TargetId(format!(
            "{}/{}/{}/{}/{}/{}",
            spec.provider.as_str(),
            spec.service.as_str(),
            spec.region.as_deref().unwrap_or(""),
            target.endpoint,
            target.project_id.as_deref().unwrap_or(""),
            zones.join(",")
        ))
    }
}

/// The object's interval, whatever else is wrong with the spec (for requeues and metrics).
pub fn interval(cq: &CloudQuota) -> Duration {
    duration::parse(&cq.spec.interval)
        .unwrap_or(MIN_INTERVAL)
        .max(MIN_INTERVAL)
}

/// Step 1, pure: spec -> interval, thresholds and target.
pub fn validate(cq: &CloudQuota, allowlist: &Allowlist) -> Result<Validated, PollError> {
    let spec = &cq.spec;
    let interval = duration::parse(&spec.interval)
        .map_err(|e| PollError::InvalidSpec(format!("interval: {e}")))?;
    if interval < MIN_INTERVAL {
        return Err(PollError::InvalidSpec(format!(
            "interval {} is below the minimum of 30s",
            spec.interval
        )));
    }
    let policy = Policy::new(&spec.thresholds)?;
    let endpoint = match &spec.endpoint {
        Some(e) => e.clone(),
        None => providers::default_endpoint(spec.provider, spec.service, spec.region.as_deref())
            .map_err(|e| PollError::InvalidSpec(e.to_string()))?,
    };
    let url = allowlist.check(&endpoint)?;
    let target = Target {
        provider: spec.provider,
        service: spec.service,
        endpoint: url,
        project_id: spec.project_id.clone(),
        zones: spec.zones.clone(),
    };
    let identity = TargetId::of(spec, &target);
    Ok(Validated {
        interval,
        policy,
        target,
        identity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{CloudQuotaSpec, Provider, SecretRef, Service, Thresholds};
    use crate::domain::allowlist::DEFAULT_ALLOWED_HOSTS;

    fn cq(provider: Provider, service: Service) -> CloudQuota {
        CloudQuota::new(
            "q",
            CloudQuotaSpec {
                provider,
                service,
                region: Some("cn-north-4".into()),
                project_id: Some("p1".into()),
                endpoint: None,
                zones: vec![],
                credentials_secret_ref: SecretRef { name: "s".into() },
                interval: "5m".into(),
                thresholds: Thresholds::default(),
                suspend: false,
                capacity_quota: None,
            },
        )
    }

    fn allow() -> Allowlist {
        Allowlist::new(DEFAULT_ALLOWED_HOSTS, false).unwrap()
    }

    #[test]
    fn validate_builds_default_endpoints() {
        let v = validate(&cq(Provider::Huaweicloud, Service::Evs), &allow()).unwrap();
        assert_eq!(v.interval, Duration::from_secs(300));
        assert_eq!(
            v.target.endpoint.as_str(),
            "https://evs.cn-north-4.myhuaweicloud.com/"
        );
        let v = validate(&cq(Provider::Zenlayer, Service::Vm), &allow()).unwrap();
        assert_eq!(
            v.target.endpoint.as_str(),
            "https://console.zenlayer.com/api/v2/vm"
        );
    }

    #[test]
    fn validate_rejects_with_specific_reasons() {
        let mut c = cq(Provider::Huaweicloud, Service::Ims);
        c.spec.endpoint = Some("https://169.254.169.254/".into());
        let e = validate(&c, &allow()).unwrap_err();
        assert_eq!(e.reason(), "EndpointNotAllowed");
        assert!(e.is_permanent());
        let mut c = cq(Provider::Huaweicloud, Service::Ims);
        c.spec.interval = "10s".into();
        assert_eq!(validate(&c, &allow()).unwrap_err().reason(), "InvalidSpec");
        let mut c = cq(Provider::Huaweicloud, Service::Ims);
        c.spec.thresholds.warning = 99;
        assert!(
            validate(&c, &allow())
                .unwrap_err()
                .to_string()
                .contains("warning 99")
        );
        let mut c = cq(Provider::Huaweicloud, Service::Ims);
        c.spec.region = None;
        assert_eq!(validate(&c, &allow()).unwrap_err().reason(), "InvalidSpec");
    }

    #[test]
    fn the_target_identity_changes_with_every_part_of_the_account() {
        let base = cq(Provider::Huaweicloud, Service::Evs);
        let id = |c: &CloudQuota| validate(c, &allow()).unwrap().identity;
        let edits: [fn(&mut CloudQuotaSpec); 5] = [
            |s| s.region = Some("ap-southeast-1".into()),
            |s| s.project_id = Some("p2".into()),
            |s| s.endpoint = Some("https://evs.cn-north-9.myhuaweicloud.com".into()),
            |s| s.service = Service::Ims,
            |s| s.zones = vec!["z1".into()],
        ];
        for edit in edits {
            let mut c = base.clone();
            edit(&mut c.spec);
            assert_ne!(id(&c), id(&base), "{:?}", c.spec);
        }
        // Thresholds and interval are not the account.
        let mut c = base.clone();
        c.spec.thresholds.warning = 60;
        c.spec.interval = "1h".into();
        assert_eq!(id(&c), id(&base));
    }

    #[test]
    fn transient_provider_failures_do_not_stall() {
        let throttled = PollError::Provider(ProviderError::Throttled {
            retry_after: None,
            message: "slow down".into(),
        });
        assert!(!throttled.is_permanent());
        assert!(!throttled.failure().permanent);
        let missing = PollError::Credentials(CredentialsError::NotFound("s".into()));
        assert_eq!(missing.reason(), "CredentialsMissing");
        assert!(missing.failure().permanent);
    }
}
