//! What the scale run creates: K distinct upstream keys, the CRD, namespaces with the
//! credentials Secret, and N CloudQuota objects spread over them.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{CustomResourceExt, ResourceExt};
use serde_json::{Value, json};

use cloudquota::crd::{CloudQuota, Provider, Service};
use cloudquota_sim::{DEMO_ACCESS_KEY, DEMO_SECRET_KEY};

use super::{FIELD_MANAGER, KEY_LABEL, SECRET_NAME};
use crate::ScaleArgs;

/// One distinct upstream request: what the operator's fetch cache coalesces on.
#[derive(Clone, Debug)]
pub struct Key {
    pub label: String,
    pub provider: Provider,
    pub service: Service,
    pub project: Option<String>,
    pub zones: Vec<String>,
}

const ZONE_SETS: [&[&str]; 8] = [
    &[],
    &["sa-jeddah-1a"],
    &["asia-east-1a"],
    &["na-west-1a"],
    &["sa-jeddah-1a", "na-west-1a"],
    &["sa-jeddah-1a", "asia-east-1a"],
    &["asia-east-1a", "na-west-1a"],
    &["sa-jeddah-1a", "asia-east-1a", "na-west-1a"],
];

/// K keys, round-robin over ims, dws, evs and Zenlayer vm. Huawei keys differ by project id;
/// Zenlayer keys (one account: the demo credentials) by zone filter, which is part of the
/// operator's fetch key.
pub fn keys(k: usize) -> Vec<Key> {
    (0..k)
        .map(|j| {
            let idx = j / 4;
            let mut svc = j % 4;
            if svc == 3 && idx >= ZONE_SETS.len() {
                svc = 2;
            }
            let label = format!("k{j:02}");
            match svc {
                3 => Key {
                    label,
                    provider: Provider::Zenlayer,
                    service: Service::Vm,
                    project: None,
                    zones: ZONE_SETS[idx].iter().map(|s| s.to_string()).collect(),
                },
                s => {
                    let service = [Service::Ims, Service::Dws, Service::Evs][s];
                    Key {
                        project: Some(format!("bench{}{j:02}", service.as_str())),
                        label,
                        provider: Provider::Huaweicloud,
                        service,
                        zones: vec![],
                    }
                }
            }
        })
        .collect()
}

fn cq_object(name: &str, ns: &str, key: &Key, sim_url: &str, interval: Duration) -> Value {
    let mut spec = json!({
        "provider": key.provider.to_string(),
        "service": key.service.to_string(),
        "endpoint": sim_url,
        "credentialsSecretRef": {"name": SECRET_NAME},
        "interval": format!("{}s", interval.as_secs()),
    });
    if let Some(p) = &key.project {
        spec["projectId"] = json!(p);
        spec["region"] = json!("cn-north-4");
    }
    if !key.zones.is_empty() {
        spec["zones"] = json!(key.zones);
    }
    json!({
        "apiVersion": "cloudquota.io/v1alpha1",
        "kind": "CloudQuota",
        "metadata": {"name": name, "namespace": ns, "labels": {KEY_LABEL: key.label}},
        "spec": spec,
    })
}

/// Installs the CRD, the namespaces and Secrets, and creates the N objects; returns the
/// seconds the object creation took.
pub async fn install(client: &kube::Client, a: &ScaleArgs, keys: &[Key]) -> Result<f64, String> {
    install_crd(client).await?;
    install_namespaces(client, a.namespaces).await?;
    // The CRD's API may take a moment to be served after Established.
    let probe: Api<CloudQuota> = Api::namespaced(client.clone(), "bench-00");
    let deadline = Instant::now() + Duration::from_secs(30);
    while probe.list(&Default::default()).await.is_err() {
        if Instant::now() > deadline {
            return Err("cloudquotas API not served".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let t = Instant::now();
    create_objects(client, a, keys).await?;
    Ok(t.elapsed().as_secs_f64())
}

/// Applies the CRD and waits until it is Established.
async fn install_crd(client: &kube::Client) -> Result<(), String> {
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = CloudQuota::crd();
    let name = crd.name_any();
    crds.patch(&name, &pp, &Patch::Apply(&crd))
        .await
        .map_err(|e| format!("CRD: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = crds.get(&name).await.map_err(|e| e.to_string())?;
        let established = c.status.and_then(|s| s.conditions).is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        });
        if established {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("CRD not Established after 60s".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Namespaces `bench-00`.. with the demo credentials Secret in each.
async fn install_namespaces(client: &kube::Client, namespaces: usize) -> Result<(), String> {
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let nss: Api<Namespace> = Api::all(client.clone());
    for i in 0..namespaces {
        let ns = format!("bench-{i:02}");
        nss.patch(
            &ns,
            &pp,
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            ),
        )
        .await
        .map_err(|e| format!("namespace {ns}: {e}"))?;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
        secrets
            .patch(
                SECRET_NAME,
                &pp,
                &Patch::Apply(json!({"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": SECRET_NAME, "namespace": ns},
                    "stringData": {"accessKeyId": DEMO_ACCESS_KEY, "secretAccessKey": DEMO_SECRET_KEY}})),
            )
            .await
            .map_err(|e| format!("secret {ns}: {e}"))?;
    }
    Ok(())
}

/// The N objects, `create_concurrency` at a time, each retried a few times.
async fn create_objects(client: &kube::Client, a: &ScaleArgs, keys: &[Key]) -> Result<(), String> {
    let objs: Vec<(String, Value)> = (0..a.n)
        .map(|i| {
            let ns = format!("bench-{:02}", i % a.namespaces);
            let key = &keys[i % keys.len()];
            let name = format!("cq-{i:05}");
            let obj = cq_object(&name, &ns, key, &a.sim_url, a.interval);
            (ns, obj)
        })
        .collect();
    futures::stream::iter(objs.into_iter().map(|(ns, obj)| {
        let api: Api<CloudQuota> = Api::namespaced(client.clone(), &ns);
        async move {
            let cq: CloudQuota = serde_json::from_value(obj).map_err(|e| e.to_string())?;
            for attempt in 0..5 {
                match api.create(&PostParams::default(), &cq).await {
                    Ok(_) => return Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 409 => return Ok(()),
                    Err(e) if attempt < 4 => {
                        eprintln!("bench: create {}: {e}; retrying", cq.name_any());
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => return Err(format!("create {}: {e}", cq.name_any())),
                }
            }
            Ok::<(), String>(())
        }
    }))
    .buffer_unordered(a.create_concurrency.max(1))
    .try_collect::<Vec<()>>()
    .await?;
    Ok(())
}
