//! Coalescing fetch cache: CloudQuotas that read the same account (provider, service, endpoint,
//! project, zones and credentials) share one upstream request per interval. Concurrent callers
//! wait on the same in-flight request; later callers within the freshness window get its
//! result. The key holds a hash of the credentials, never the credentials.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use sha2::{Digest, Sha256};

use crate::crd::{Provider, Service};
use crate::domain::model::Sample;
use crate::providers::{Credentials, ProviderError, Target};
use crate::sign::ExposeSecret;

/// Identity of an upstream read.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FetchKey {
    pub provider: Provider,
    pub service: Service,
    pub endpoint: String,
    pub project: Option<String>,
    pub zones: Vec<String>,
    /// Hex SHA-256 over the credentials: rotation makes a new key.
    pub credentials_hash: String,
}

impl FetchKey {
    pub fn new(target: &Target, creds: &Credentials) -> FetchKey {
        let mut h = Sha256::new();
        // Domain-separated so the hash can't be matched against a plain hash of one key.
        h.update(b"cloudquota-credentials-v1\0");
        match creds {
            Credentials::AccessKey {
                access_key_id,
                secret_access_key,
                security_token,
            } => {
                h.update(b"ak\0");
                h.update(access_key_id.as_bytes());
                h.update(b"\0");
                h.update(secret_access_key.expose_secret().as_bytes());
                h.update(b"\0");
                h.update(
                    security_token
                        .as_ref()
                        .map(|t| t.expose_secret())
                        .unwrap_or("")
                        .as_bytes(),
                );
            }
            Credentials::Bearer(t) => {
                h.update(b"bearer\0");
                h.update(t.expose_secret().as_bytes());
            }
        }
        let mut zones = target.zones.clone();
        zones.sort();
        zones.dedup();
        FetchKey {
            provider: target.provider,
            service: target.service,
            endpoint: target.endpoint.to_string(),
            project: target.project_id.clone(),
            zones,
            credentials_hash: hex::encode(h.finalize()),
        }
    }
}

pub type FetchResult = Result<Arc<Sample>, ProviderError>;
type SharedFetch = Shared<BoxFuture<'static, FetchResult>>;

enum Slot {
    InFlight(SharedFetch),
    Done { at: Instant, result: FetchResult },
}

/// What a caller got.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub result: FetchResult,
    /// When the upstream answer was received.
    pub at: Instant,
    /// This caller started the upstream request (others may have joined it).
    pub started_upstream: bool,
}

pub struct FetchCache {
    slots: Mutex<HashMap<FetchKey, Slot>>,
    /// How long a failure is shared: long enough to spare the provider a burst of identical
    /// requests from a fleet, short enough not to mask recovery.
    failure_ttl: Duration,
}

impl FetchCache {
    pub fn new(failure_ttl: Duration) -> FetchCache {
        FetchCache {
            slots: Mutex::default(),
            failure_ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FetchKey, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A result no older than `max_age` and received after `newer_than` (when given), fetching
    /// (once, however many callers) if needed.
    pub async fn get<F>(
        &self,
        key: &FetchKey,
        max_age: Duration,
        newer_than: Option<Instant>,
        fetch: F,
    ) -> Fetched
    where
        F: FnOnce() -> BoxFuture<'static, FetchResult>,
    {
        let (shared, started) = {
            let mut slots = self.lock();
            match slots.get(key) {
                Some(Slot::Done { at, result }) => {
                    let ttl = if result.is_ok() {
                        max_age
                    } else {
                        self.failure_ttl.min(max_age)
                    };
                    if at.elapsed() < ttl && newer_than.is_none_or(|n| *at > n) {
                        return Fetched {
                            result: result.clone(),
                            at: *at,
                            started_upstream: false,
                        };
                    }
                    let f = fetch().shared();
                    slots.insert(key.clone(), Slot::InFlight(f.clone()));
                    (f, true)
                }
                Some(Slot::InFlight(f)) => (f.clone(), false),
                None => {
                    let f = fetch().shared();
                    slots.insert(key.clone(), Slot::InFlight(f.clone()));
                    (f, true)
                }
            }
        };
        let result = shared.clone().await;
        let at = Instant::now();
        let mut slots = self.lock();
        // The first waiter to finish records the result; others find it already Done.
        let at = match slots.get(key) {
            Some(Slot::InFlight(f)) if f.ptr_eq(&shared) => {
                slots.insert(
                    key.clone(),
                    Slot::Done {
                        at,
                        result: result.clone(),
                    },
                );
                at
            }
            Some(Slot::Done { at, .. }) => *at,
            _ => at,
        };
        Fetched {
            result,
            at,
            started_upstream: started,
        }
    }

    /// The last finished result for a key, if any.
    pub fn peek(&self, key: &FetchKey) -> Option<(Instant, FetchResult)> {
        match self.lock().get(key) {
            Some(Slot::Done { at, result }) => Some((*at, result.clone())),
            _ => None,
        }
    }

    /// Drops finished entries older than `age` (keys nobody uses any more).
    pub fn evict_older_than(&self, age: Duration) {
        self.lock().retain(|_, s| match s {
            Slot::Done { at, .. } => at.elapsed() < age,
            Slot::InFlight(_) => true,
        });
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::SecretString;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn target() -> Target {
        Target {
            provider: Provider::Huaweicloud,
            service: Service::Evs,
            endpoint: url::Url::parse("https://evs.r.myhuaweicloud.com").unwrap(),
            project_id: Some("p".into()),
            zones: vec![],
        }
    }

    fn creds(sk: &str) -> Credentials {
        Credentials::AccessKey {
            access_key_id: "AK".into(),
            secret_access_key: SecretString::from(sk),
            security_token: None,
        }
    }

    #[test]
    fn key_hashes_credentials() {
        let a = FetchKey::new(&target(), &creds("secret-one"));
        let b = FetchKey::new(&target(), &creds("secret-two"));
        assert_ne!(a, b, "rotation changes the key");
        assert_eq!(a, FetchKey::new(&target(), &creds("secret-one")));
        let debug = format!("{a:?}");
        assert!(!debug.contains("secret-one"), "{debug}");
        let mut t = target();
        t.zones = vec!["b".into(), "a".into()];
        let mut t2 = target();
        t2.zones = vec!["a".into(), "b".into()];
        assert_eq!(
            FetchKey::new(&t, &creds("x")),
            FetchKey::new(&t2, &creds("x")),
            "zone order does not matter"
        );
    }

    fn sample() -> FetchResult {
        Ok(Arc::new(Sample {
            endpoint: "e".into(),
            quotas: vec![],
        }))
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_request() {
        let cache = Arc::new(FetchCache::new(Duration::from_secs(5)));
        let calls = Arc::new(AtomicUsize::new(0));
        let key = FetchKey::new(&target(), &creds("s"));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (cache, calls, key) = (cache.clone(), calls.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get(&key, Duration::from_secs(60), None, || {
                        let calls = calls.clone();
                        async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            sample()
                        }
                        .boxed()
                    })
                    .await
            }));
        }
        let mut starters = 0;
        for t in tasks {
            let f = t.await.unwrap();
            assert!(f.result.is_ok());
            starters += f.started_upstream as usize;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(starters, 1);
        // Fresh enough: served from cache.
        let f = cache
            .get(&key, Duration::from_secs(60), None, || {
                async { panic!("must not fetch") }.boxed()
            })
            .await;
        assert!(!f.started_upstream);
        // Too old for this caller: fetched again.
        let f = cache.get(&key, Duration::ZERO, None, sample_fut).await;
        assert!(f.started_upstream);
        assert!(cache.peek(&key).is_some());
    }

    fn sample_fut() -> BoxFuture<'static, FetchResult> {
        async { sample() }.boxed()
    }

    #[tokio::test]
    async fn failures_are_shared_briefly() {
        let cache = FetchCache::new(Duration::from_millis(30));
        let key = FetchKey::new(&target(), &creds("s"));
        let fail = || async { Err(ProviderError::Transport("down".into())) }.boxed();
        assert!(
            cache
                .get(&key, Duration::from_secs(60), None, fail)
                .await
                .started_upstream
        );
        assert!(
            !cache
                .get(&key, Duration::from_secs(60), None, fail)
                .await
                .started_upstream
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
        let f = cache
            .get(&key, Duration::from_secs(60), None, sample_fut)
            .await;
        assert!(f.started_upstream && f.result.is_ok());
        cache.evict_older_than(Duration::ZERO);
        assert!(cache.is_empty());
    }
}
