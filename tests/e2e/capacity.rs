//! Publishing cluster-autoscaler CapacityQuotas (`spec.capacityQuota`) on the real API server.
//!
//! The autoscaler cannot run here, so its CRD is a test fixture written from its documented API
//! (tests/fixtures/capacityquota: v1beta1 + v1alpha1 as on the 1.37 branch, v1alpha1 only as in
//! 1.36), Nodes are plain Node objects whose `status.capacity` is set through the status
//! subresource, and the autoscaler's own status writes are done by the admin client. The
//! operator runs with the feature on, under the chart's capacity RBAC exactly as
//! `snapshots/all-features.yaml` renders it (bound to the e2e ServiceAccount). Each scenario
//! installs and removes what it added (CRD, Nodes, RBAC, flags): the control plane is shared.

use std::collections::BTreeMap;
use std::time::Duration;

use cloudquota::crd::CloudQuota;
use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::cq::ensure;
use crate::env::{Env, OPERATOR_NS, OPERATOR_SA, Result, root};

const TRUSTED: &str = "e2e-capacity";
const UNTRUSTED: &str = "e2e-capacity-untrusted";
const POOL: &str = "e2e-capacity";
const WAIT: Duration = Duration::from_secs(40);
const MIB: i64 = 1024 * 1024;
const GIB: i64 = 1024 * MIB;
const CRD: &str = "capacityquotas.autoscaling.x-k8s.io";
/// Names of the chart's capacity RBAC in the all-features rendering.
const CHART_ROLE: &str = "cq-operator-capacity-quota";
/// What the scenarios create from its rules, for the e2e ServiceAccount.
const E2E_ROLE: &str = "cloudquota-e2e-capacity-quota";

fn ar(version: &str) -> ApiResource {
    ApiResource {
        group: "autoscaling.x-k8s.io".into(),
        version: version.into(),
        api_version: format!("autoscaling.x-k8s.io/{version}"),
        kind: "CapacityQuota".into(),
        plural: "capacityquotas".into(),
    }
}

fn quotas(env: &Env, version: &str) -> Api<DynamicObject> {
    Api::all_with(env.admin.clone(), &ar(version))
}

/// The ECS quota of a project: (resource, used, limit).
async fn set_ecs(env: &Env, project: &str, lines: &[(&str, i64, i64)]) -> Result {
    for (r, used, limit) in lines {
        env.sim_set("ecs", project, r, None, *used, Some(*limit))
            .await?;
    }
    Ok(())
}

/// A Node with labels and `status.capacity` (set through the status subresource, as a kubelet
/// would).
async fn node(env: &Env, name: &str, pool: &str, cpu: &str, memory: &str) -> Result {
    let api: Api<Node> = Api::all(env.admin.clone());
    let n: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"e2e.cloudquota.io/pool": pool}},
    }))
    .unwrap();
    match api.create(&PostParams::default(), &n).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(format!("create Node {name}: {e}")),
    }
    let status = json!({"status": {"capacity": {"cpu": cpu, "memory": memory, "pods": "110"}}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .map_err(|e| format!("Node {name} status: {e}"))?;
    Ok(())
}

async fn delete_nodes(env: &Env) -> Result {
    let api: Api<Node> = Api::all(env.admin.clone());
    for n in api
        .list(&Default::default())
        .await
        .map_err(|e| e.to_string())?
    {
        let name = n.metadata.name.unwrap_or_default();
        if name.starts_with("e2e-cap-") {
            let _ = api.delete(&name, &DeleteParams::default()).await;
        }
    }
    Ok(())
}

/// The chart's capacity RBAC from the all-features snapshot: its ClusterRole's rules (and the
/// trusted-namespace Role's) bound to the e2e ServiceAccount, in `TRUSTED`.
fn chart_rbac() -> Result<String> {
    let text =
        std::fs::read_to_string(root().join("charts/cloudquota/snapshots/all-features.yaml"))
            .map_err(|e| e.to_string())?;
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
        .filter_map(|d| serde::Deserialize::deserialize(d).ok())
        .collect();
    let rules = |kind: &str| -> Result<serde_yaml::Value> {
        docs.iter()
            .find(|d| {
                d["kind"].as_str() == Some(kind)
                    && d["metadata"]["name"].as_str() == Some(CHART_ROLE)
            })
            .map(|d| d["rules"].clone())
            .ok_or_else(|| format!("no {kind} {CHART_ROLE} in snapshots/all-features.yaml"))
    };
    let subject =
        json!([{"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": OPERATOR_NS}]);
    let objs = [
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": E2E_ROLE}, "rules": rules("ClusterRole")?}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": E2E_ROLE},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": E2E_ROLE},
               "subjects": subject}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": E2E_ROLE, "namespace": TRUSTED}, "rules": rules("Role")?}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": E2E_ROLE, "namespace": TRUSTED},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": E2E_ROLE},
               "subjects": subject}),
    ];
    Ok(objs
        .iter()
        .map(|o| serde_yaml::to_string(o).unwrap())
        .collect::<Vec<_>>()
        .join("---\n"))
}

fn write_tmp(env: &Env, name: &str, text: &str) -> Result<String> {
    let p = env.dir.join(name);
    std::fs::write(&p, text).map_err(|e| e.to_string())?;
    Ok(p.display().to_string())
}

/// Installs a fixture CRD and waits until it is served.
async fn install_crd(env: &Env, file: &str) -> Result {
    let path = root().join("tests/fixtures/capacityquota").join(file);
    env.kubectl(&[
        "apply",
        "--server-side",
        "--field-manager=e2e",
        "-f",
        &path.display().to_string(),
    ])?;
    env.kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        &format!("crd/{CRD}"),
    ])?;
    Ok(())
}

/// Deletes the fixture CRD (and with it every CapacityQuota) and waits until it is gone.
async fn uninstall_crd(env: &Env) -> Result {
    let (_, _) = env.kubectl_try(
        &[
            "delete",
            &format!("crd/{CRD}"),
            "--ignore-not-found",
            "--wait=false",
        ],
        None,
    );
    env.eventually(
        "CapacityQuota CRD gone",
        Duration::from_secs(60),
        || async {
            let (ok, out) = env.kubectl_try(
                &[
                    "get",
                    &format!("crd/{CRD}"),
                    "--ignore-not-found",
                    "-o",
                    "name",
                ],
                None,
            );
            if ok && out.trim().is_empty() {
                Ok(())
            } else {
                Err(out)
            }
        },
    )
    .await
}

/// Feature on, chart RBAC bound, namespaces and Nodes present.
async fn setup(env: &mut Env) -> Result {
    env.namespace(TRUSTED).await?;
    env.namespace(UNTRUSTED).await?;
    for ns in [TRUSTED, UNTRUSTED] {
        env.secret(ns, "creds", &env.demo_secret()).await?;
    }
    let rbac = write_tmp(env, "capacity-rbac.yaml", &chart_rbac()?)?;
    env.kubectl(&["apply", "--server-side", "--field-manager=e2e", "-f", &rbac])?;
    // Two Nodes in the pool, one outside it (the selector must leave it out).
    node(env, "e2e-cap-1", POOL, "8", "32Gi").await?;
    node(env, "e2e-cap-2", POOL, "8", "32Gi").await?;
    node(env, "e2e-cap-other", "other", "4", "16Gi").await?;
    env.restart_operator_with(&["--capacity-quotas", "--capacity-quota-namespace", TRUSTED])
        .await
}

/// Back to the shared state: default flags, no capacity RBAC, CRD or Nodes.
async fn teardown(env: &mut Env) -> Result {
    let mut errors = Vec::new();
    for (ns, name) in [
        (TRUSTED, "ecs"),
        (TRUSTED, "foreign"),
        (TRUSTED, "disks"),
        (UNTRUSTED, "ecs"),
    ] {
        let _ = env.delete_cq(ns, name).await;
    }
    // Objects still carrying the finalizer are released while the operator still publishes.
    let api: Api<CloudQuota> = Api::namespaced(env.admin.clone(), TRUSTED);
    if let Err(e) = env
        .eventually("CloudQuotas of the scenario gone", WAIT, || async {
            let left = api
                .list(&Default::default())
                .await
                .map_err(|e| e.to_string())?;
            if left.items.is_empty() {
                Ok(())
            } else {
                Err(format!("{} left", left.items.len()))
            }
        })
        .await
    {
        errors.push(e);
    }
    if let Err(e) = env.restart_operator_with(&[]).await {
        errors.push(e);
    }
    if let Err(e) = uninstall_crd(env).await {
        errors.push(e);
    }
    let _ = delete_nodes(env).await;
    let (_, _) = env.kubectl_try(
        &[
            "delete",
            "clusterrolebinding,clusterrole",
            E2E_ROLE,
            "--ignore-not-found",
        ],
        None,
    );
    let (_, _) = env.kubectl_try(
        &[
            "delete",
            "rolebinding,role",
            E2E_ROLE,
            "-n",
            TRUSTED,
            "--ignore-not-found",
        ],
        None,
    );
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

fn spec_with(env: &Env, service: &str, project: &str, capacity: Value) -> Value {
    let mut s = crate::cq::huawei_spec(env, service, project);
    s["capacityQuota"] = capacity;
    s
}

/// The limits a CapacityQuota publishes, as integers.
fn limits_of(obj: &DynamicObject) -> BTreeMap<String, i64> {
    obj.data["spec"]["limits"]["resources"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let n = match v {
                        Value::String(s) => {
                            cloudquota::domain::capacity::parse_quantity(s).unwrap_or(-1)
                        }
                        v => v.as_i64().unwrap_or(-1),
                    };
                    (k.clone(), n)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until the CapacityQuota exists with exactly these limits.
async fn wait_limits(
    env: &Env,
    version: &str,
    name: &str,
    want: &BTreeMap<String, i64>,
) -> Result<DynamicObject> {
    let api = quotas(env, version);
    env.eventually(
        &format!("CapacityQuota {name} limits {want:?}"),
        WAIT,
        || async {
            let obj = api
                .get_opt(name)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("absent")?;
            let got = limits_of(&obj);
            if &got == want {
                Ok(obj)
            } else {
                Err(format!("limits now {got:?}"))
            }
        },
    )
    .await
}

fn condition(cq: &CloudQuota) -> Option<(String, String, String)> {
    cq.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "CapacityQuotaPublished")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn published_with(status: &'static str, reason: &'static str) -> impl Fn(&CloudQuota) -> bool {
    move |cq| condition(cq).is_some_and(|(s, r, _)| s == status && r == reason)
}

fn want(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// v1beta1 served (CA 1.37): the formula, following the cloud and the Nodes, no churn, the
/// autoscaler's view on the CloudQuota, a foreign CapacityQuota left alone, an untrusted
/// namespace publishing nothing, block removal and deletion cleaning up, RBAC as the chart's.
pub async fn capacity_quota_v1beta1(env: &mut Env) -> Result {
    // Only this scenario's part of the operator log counts (others provoke 403s on purpose).
    let log_from = std::fs::metadata(&env.operator_log)
        .map(|m| m.len())
        .unwrap_or(0);
    install_crd(env, "crd-both.yaml").await?;
    setup(env).await?;
    let result = v1beta1_checks(env, log_from).await;
    let cleaned = teardown(env).await;
    result.and(cleaned)
}

async fn v1beta1_checks(env: &mut Env, log_from: u64) -> Result {
    let project = "p-capacity-beta";
    // ECS: 40 cores, 200 GiB of RAM (204800 MB) and 18 VMs of headroom; the cloud's "used"
    // includes VMs that are not Nodes of this cluster.
    set_ecs(
        env,
        project,
        &[
            ("cores", 60, 100),
            ("ram", 204_800, 409_600),
            ("instances", 12, 30),
        ],
    )
    .await?;
    let selector = json!({"matchLabels": {"e2e.cloudquota.io/pool": POOL}});
    env.apply_cq(
        TRUSTED,
        "ecs",
        spec_with(env, "ecs", project, json!({"selector": selector})),
    )
    .await?;
    let name = "cloudquota-e2e-capacity-ecs";
    // 2 pool Nodes of 8 cores / 32 GiB (the third Node is not selected).
    let expect = want(&[
        ("cpu", 16 + 40),
        ("memory", 2 * 32 * GIB + 204_800 * MIB),
        ("nodes", 2 + 18),
    ]);
    let obj = wait_limits(env, "v1beta1", name, &expect).await?;
    ensure!(
        obj.data["spec"]["selector"] == selector,
        "selector: {}",
        obj.data["spec"]["selector"]
    );
    let ann = obj.metadata.annotations.clone().unwrap_or_default();
    ensure!(
        ann.get("cloudquota.io/owner").map(String::as_str) == Some("e2e-capacity/ecs"),
        "owner: {ann:?}"
    );
    let cq = env
        .wait_cq(TRUSTED, "ecs", WAIT, published_with("True", "Published"))
        .await?;
    let p = cq
        .status
        .as_ref()
        .and_then(|s| s.capacity_quota.clone())
        .ok_or("no status.capacityQuota")?;
    ensure!(
        p.name == name && p.api_version.as_deref() == Some("autoscaling.x-k8s.io/v1beta1"),
        "{p:?}"
    );
    ensure!(p.nodes == Some(2), "nodes: {p:?}");
    ensure!(
        cq.finalizers()
            .iter()
            .any(|f| f == "cloudquota.io/capacity-quota"),
        "finalizer: {:?}",
        cq.metadata.finalizers
    );
    let managers: Vec<String> = obj
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    ensure!(
        managers == ["cloudquota"],
        "CapacityQuota field managers: {managers:?}"
    );

    // Steady state: a refresh (same cloud numbers) writes nothing.
    let rv = obj.metadata.resource_version.clone();
    env.refresh(TRUSTED, "ecs").await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let again = quotas(env, "v1beta1")
        .get(name)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        again.metadata.resource_version == rv,
        "rewritten at steady state"
    );

    // The cloud's usage grows by 10 cores (outside the cluster): 10 fewer allowed.
    set_ecs(env, project, &[("cores", 70, 100)]).await?;
    env.refresh(TRUSTED, "ecs").await?;
    let expect = want(&[
        ("cpu", 16 + 30),
        ("memory", 2 * 32 * GIB + 204_800 * MIB),
        ("nodes", 20),
    ]);
    wait_limits(env, "v1beta1", name, &expect).await?;

    // A Node joins the pool. The cloud counts its VM too (one more instance, 8 more cores, 32
    // GiB more RAM), but until the next poll only the Node is seen: the limit rises by the
    // Node's capacity, and the headroom goes down once the cloud reports it.
    node(env, "e2e-cap-3", POOL, "8", "32Gi").await?;
    let expect = want(&[
        ("cpu", 24 + 30),
        ("memory", 3 * 32 * GIB + 204_800 * MIB),
        ("nodes", 21),
    ]);
    wait_limits(env, "v1beta1", name, &expect).await?;
    set_ecs(
        env,
        project,
        &[
            ("cores", 78, 100),
            ("ram", 204_800 + 32_768, 409_600),
            ("instances", 13, 30),
        ],
    )
    .await?;
    env.refresh(TRUSTED, "ecs").await?;
    let expect = want(&[
        ("cpu", 24 + 22),
        ("memory", 3 * 32 * GIB + (204_800 - 32_768) * MIB),
        ("nodes", 20),
    ]);
    wait_limits(env, "v1beta1", name, &expect).await?;

    // The Node leaves (its VM is still counted by the cloud until the next poll): the limit
    // drops by its capacity.
    Api::<Node>::all(env.admin.clone())
        .delete("e2e-cap-3", &DeleteParams::default())
        .await
        .map_err(|e| e.to_string())?;
    let expect = want(&[
        ("cpu", 16 + 22),
        ("memory", 2 * 32 * GIB + (204_800 - 32_768) * MIB),
        ("nodes", 2 + 17),
    ]);
    wait_limits(env, "v1beta1", name, &expect).await?;

    // The autoscaler's own status shows on the CloudQuota (and in `kubectl get -o wide`).
    let ca_status = json!({"status": {
        "observedGeneration": 1,
        "used": {"resources": {"cpu": "24", "memory": "96Gi", "nodes": "3"}},
        "conditions": [{"type": "cluster-autoscaler.kubernetes.io/valid", "status": "True",
                        "reason": "Valid", "message": "quota is valid",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}],
    }});
    quotas(env, "v1beta1")
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&ca_status))
        .await
        .map_err(|e| e.to_string())?;
    env.refresh(TRUSTED, "ecs").await?;
    env.wait_cq(TRUSTED, "ecs", WAIT, |c| {
        c.status
            .as_ref()
            .and_then(|s| s.capacity_quota.as_ref())
            .is_some_and(|p| {
                p.valid.as_deref() == Some("True")
                    && p.used.get("cpu").map(String::as_str) == Some("24")
            })
    })
    .await?;
    let wide = env.kubectl(&["get", "cq", "ecs", "-n", TRUSTED, "-o", "wide"])?;
    ensure!(
        wide.contains("CA QUOTA VALID") && wide.lines().nth(1).is_some_and(|l| l.contains("True")),
        "{wide}"
    );

    // Fail-static: the cloud API fails; the limits stay, and the condition says so.
    let fault = env
        .sim_fault(
            json!({"service": "ecs", "key": project, "fault": {"kind": "status", "status": 500}}),
        )
        .await?;
    let before = limits_of(
        &quotas(env, "v1beta1")
            .get(name)
            .await
            .map_err(|e| e.to_string())?,
    );
    let stale = async {
        for _ in 0..3 {
            env.refresh(TRUSTED, "ecs").await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        env.wait_cq(
            TRUSTED,
            "ecs",
            WAIT,
            published_with("True", "StaleCloudData"),
        )
        .await
    }
    .await;
    env.sim_remove_fault(fault).await?;
    stale?;
    let during = limits_of(
        &quotas(env, "v1beta1")
            .get(name)
            .await
            .map_err(|e| e.to_string())?,
    );
    ensure!(
        during == before,
        "limits changed while the cloud failed: {before:?} -> {during:?}"
    );
    env.refresh(TRUSTED, "ecs").await?;
    env.wait_cq(TRUSTED, "ecs", WAIT, published_with("True", "Published"))
        .await?;

    // A CapacityQuota that cloudquota did not create is left alone.
    let foreign = "cloudquota-e2e-capacity-foreign";
    let theirs = json!({"apiVersion": "autoscaling.x-k8s.io/v1beta1", "kind": "CapacityQuota",
        "metadata": {"name": foreign}, "spec": {"limits": {"resources": {"cpu": "7"}}}});
    quotas(env, "v1beta1")
        .patch(
            foreign,
            &PatchParams::apply("someone-else"),
            &Patch::Apply(&theirs),
        )
        .await
        .map_err(|e| e.to_string())?;
    env.apply_cq(
        TRUSTED,
        "foreign",
        spec_with(env, "ecs", project, json!({})),
    )
    .await?;
    let cq = env
        .wait_cq(
            TRUSTED,
            "foreign",
            WAIT,
            published_with("False", "NotOwned"),
        )
        .await?;
    ensure!(
        cq.finalizers().is_empty(),
        "finalizer on a CloudQuota that publishes nothing"
    );
    env.delete_cq(TRUSTED, "foreign").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let kept = quotas(env, "v1beta1")
        .get(foreign)
        .await
        .map_err(|e| format!("foreign CapacityQuota: {e}"))?;
    ensure!(
        limits_of(&kept) == want(&[("cpu", 7)]),
        "foreign CapacityQuota changed: {:?}",
        limits_of(&kept)
    );

    // An untrusted namespace publishes nothing.
    env.apply_cq(UNTRUSTED, "ecs", spec_with(env, "ecs", project, json!({})))
        .await?;
    let cq = env
        .wait_cq(
            UNTRUSTED,
            "ecs",
            WAIT,
            published_with("False", "NamespaceNotTrusted"),
        )
        .await?;
    ensure!(
        cq.finalizers().is_empty(),
        "finalizer in an untrusted namespace"
    );
    ensure!(
        quotas(env, "v1beta1")
            .get_opt("cloudquota-e2e-capacity-untrusted-ecs")
            .await
            .map_err(|e| e.to_string())?
            .is_none(),
        "an untrusted namespace published a CapacityQuota"
    );

    // The operator has exactly the chart's access, nothing more.
    let sa = format!("system:serviceaccount:{OPERATOR_NS}:{OPERATOR_SA}");
    let can = |args: &[&str]| {
        let mut a = vec!["auth", "can-i"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--as", &sa]);
        env.kubectl_try(&a, None)
            .1
            .lines()
            .any(|l| l.trim() == "yes")
    };
    ensure!(
        can(&["create", "capacityquotas.autoscaling.x-k8s.io"]),
        "cannot create CapacityQuotas"
    );
    ensure!(
        can(&["patch", "cloudquotas.cloudquota.io", "-n", TRUSTED]),
        "no finalizer access in the trusted namespace"
    );
    for denied in [
        vec!["patch", "cloudquotas.cloudquota.io", "-n", UNTRUSTED],
        vec!["update", "capacityquotas.autoscaling.x-k8s.io"],
        vec![
            "patch",
            "capacityquotas.autoscaling.x-k8s.io",
            "--subresource=status",
        ],
        vec!["patch", "nodes"],
        vec!["delete", "nodes"],
        vec!["delete", "cloudquotas.cloudquota.io", "-n", TRUSTED],
    ] {
        ensure!(!can(&denied), "the operator may {denied:?}");
    }
    let log = std::fs::read(&env.operator_log).map_err(|e| e.to_string())?;
    let log = String::from_utf8_lossy(log.get(log_from as usize..).unwrap_or_default());
    let forbidden: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("forbidden"))
        .take(3)
        .collect();
    ensure!(
        forbidden.is_empty(),
        "the operator hit a forbidden call:\n{}",
        forbidden.join("\n")
    );

    // Deleting the CloudQuota deletes its CapacityQuota (the finalizer), and only that one.
    env.delete_cq(TRUSTED, "ecs").await?;
    env.eventually(
        "CapacityQuota deleted with its CloudQuota",
        WAIT,
        || async {
            let q = quotas(env, "v1beta1")
                .get_opt(name)
                .await
                .map_err(|e| e.to_string())?;
            let c = Api::<CloudQuota>::namespaced(env.admin.clone(), TRUSTED)
                .get_opt("ecs")
                .await
                .map_err(|e| e.to_string())?;
            if q.is_none() && c.is_none() {
                Ok(())
            } else {
                Err(format!(
                    "quota present {}, CloudQuota present {}",
                    q.is_some(),
                    c.is_some()
                ))
            }
        },
    )
    .await?;
    ensure!(
        quotas(env, "v1beta1")
            .get_opt(foreign)
            .await
            .map_err(|e| e.to_string())?
            .is_some(),
        "foreign CapacityQuota deleted"
    );
    Ok(())
}

/// Only v1alpha1 served (CA 1.36), and no CRD at all: CRDNotInstalled, then v1alpha1 once it
/// is installed; an explicit mapping with a per-Node factor (EVS: 2 SSD volumes per Node);
/// removing the block deletes the CapacityQuota and the finalizer.
pub async fn capacity_quota_v1alpha1_only(env: &mut Env) -> Result {
    uninstall_crd(env).await?;
    setup(env).await?;
    let result = v1alpha1_checks(env).await;
    let cleaned = teardown(env).await;
    result.and(cleaned)
}

async fn v1alpha1_checks(env: &mut Env) -> Result {
    let project = "p-capacity-alpha";
    // The API server enforces the mapping rules (CEL): only ecs has defaults; perNode is for
    // nodes only.
    for (capacity, message) in [
        (
            json!({}),
            "capacityQuota.resources is required unless service is ecs",
        ),
        (
            json!({"resources": [{"name": "cpu", "from": "volumes_SSD", "perNode": 2}]}),
            "perNode is only allowed for the nodes resource",
        ),
    ] {
        let err = env
            .apply_cq(
                TRUSTED,
                "rejected",
                spec_with(env, "evs", project, capacity),
            )
            .await
            .err()
            .unwrap_or_default();
        ensure!(
            err.contains(message),
            "expected rejection {message:?}, got {err:?}"
        );
    }
    // volumes_SSD: 30, 25 in use: 5 more volumes, 2 per Node: 2 more Nodes.
    env.sim_set("evs", project, "volumes_SSD", None, 25, Some(30))
        .await?;
    let capacity = json!({
        "name": "e2e-disks",
        "selector": {"matchExpressions": [{"key": "e2e.cloudquota.io/pool", "operator": "In", "values": [POOL]}]},
        "resources": [{"name": "nodes", "from": "volumes_SSD", "perNode": 2}],
    });
    env.apply_cq(
        TRUSTED,
        "disks",
        spec_with(env, "evs", project, capacity.clone()),
    )
    .await?;
    env.wait_cq(
        TRUSTED,
        "disks",
        WAIT,
        published_with("False", "CRDNotInstalled"),
    )
    .await?;
    ensure!(
        env.get_cq(TRUSTED, "disks").await?.finalizers().is_empty(),
        "finalizer while nothing is published"
    );
    install_crd(env, "crd-v1alpha1.yaml").await?;
    // The CRD-absent answer is cached for a few seconds; a change to the object re-checks.
    let obj = env
        .eventually("published as v1alpha1", Duration::from_secs(60), || async {
            env.refresh(TRUSTED, "disks").await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let q = quotas(env, "v1alpha1")
                .get_opt("e2e-disks")
                .await
                .map_err(|e| e.to_string())?;
            q.ok_or_else(|| "not yet".to_string())
        })
        .await?;
    ensure!(
        limits_of(&obj) == want(&[("nodes", 2 + 2)]),
        "limits {:?}",
        limits_of(&obj)
    );
    let cq = env
        .wait_cq(TRUSTED, "disks", WAIT, published_with("True", "Published"))
        .await?;
    let p = cq
        .status
        .and_then(|s| s.capacity_quota)
        .ok_or("no status.capacityQuota")?;
    ensure!(
        p.api_version.as_deref() == Some("autoscaling.x-k8s.io/v1alpha1"),
        "{p:?}"
    );

    // A new name: published under it, and the old one deleted.
    let mut renamed = capacity.clone();
    renamed["name"] = json!("e2e-disks-renamed");
    env.apply_cq(TRUSTED, "disks", spec_with(env, "evs", project, renamed))
        .await?;
    env.eventually("renamed", WAIT, || async {
        let api = quotas(env, "v1alpha1");
        let old = api.get_opt("e2e-disks").await.map_err(|e| e.to_string())?;
        let new = api
            .get_opt("e2e-disks-renamed")
            .await
            .map_err(|e| e.to_string())?;
        match (old, new) {
            (None, Some(n)) if limits_of(&n) == want(&[("nodes", 4)]) => Ok(()),
            (o, n) => Err(format!(
                "old present {}, new {:?}",
                o.is_some(),
                n.map(|n| limits_of(&n))
            )),
        }
    })
    .await?;

    // Removing the block deletes the CapacityQuota, the finalizer and the condition.
    let mut spec = crate::cq::huawei_spec(env, "evs", project);
    spec["thresholds"] = json!({"warning": 80, "critical": 95});
    env.apply_cq(TRUSTED, "disks", spec).await?;
    env.eventually("block removed: CapacityQuota deleted", WAIT, || async {
        let q = quotas(env, "v1alpha1")
            .get_opt("e2e-disks-renamed")
            .await
            .map_err(|e| e.to_string())?;
        let cq = env.get_cq(TRUSTED, "disks").await?;
        let clean = q.is_none()
            && cq.finalizers().is_empty()
            && condition(&cq).is_none()
            && cq
                .status
                .as_ref()
                .is_some_and(|s| s.capacity_quota.is_none());
        if clean {
            Ok(())
        } else {
            Err(format!(
                "quota present {}, finalizers {:?}, condition {:?}",
                q.is_some(),
                cq.metadata.finalizers,
                condition(&cq)
            ))
        }
    })
    .await?;
    Ok(())
}
