//! Issue #13 on the real API server: the GitOps health definitions rate objects the operator
//! really wrote in every state, a second field manager standing in for the GitOps controller
//! sees no drift and keeps what it owns, `kubectl wait` works on the conditions, and
//! `cloudquota check` judges freshness by the operator's Lease.
//!
//! 1. `gitops_live_health`: synced (Ok, Warning, Exhausted, Exhausted opted in to Degraded),
//!    first poll pending, auth failure, throttled and suspended objects, each rated by Argo CD's
//!    Lua, kstatus and Flux's CEL (gitops::check_health) with the verdicts of README.md's table;
//!    `kubectl wait` for `Ready` and for `.status.level`.
//! 2. `gitops_live_ownership`: the EVS sample applied by `flux-standin` (server-side apply):
//!    `kubectl diff` shows no drift, a re-apply with `--force-conflicts` writes no status, the
//!    operator's manager owns status only, the refresh annotation stays the stand-in's, and a
//!    condition of another manager survives the operator's next status write.
//! 3. `gitops_live_operator_stopped`: `check --max-age` answers from data older than the max
//!    age while the Lease vouches for it; with the operator SIGKILLed (Lease held, no longer
//!    renewed) it turns Unknown when the Lease's age makes the data too old, not before; an
//!    object edited meanwhile is Unknown for `check`, Progressing/InProgress for the GitOps
//!    engines and not Ready for `kubectl wait`; the default max age is three intervals.

use std::process::Command;
use std::time::{Duration, Instant};

use cloudquota::crd::{CloudQuota, Level};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::cq::{ensure, failing_with, huawei_spec, is_ready, ready_cond};
use crate::env::{Env, OPERATOR_NS, Result, metric, metric_sum};
use crate::gitops::{Expect, check_health, live_object};

const NS: &str = "e2e-gitops-live";
const NS_SSA: &str = "e2e-gitops-ssa";
const WAIT: Duration = Duration::from_secs(30);
/// The stand-in for Argo CD / Flux: a second field manager applying the manifests.
const STANDIN: &str = "flux-standin";
/// The field manager of the operator's status writes (src/controller/status_apply.rs).
const OPERATOR_MANAGER: &str = "cloudquota";
/// The object whose data ages while the Lease vouches for it (interval 30 s).
const FRESH: &str = "fresh";
const FRESH_PROJECT: &str = "p-gl-fresh";
const FRESH_INTERVAL: Duration = Duration::from_secs(30);
/// `--max-age` for the freshness proofs: three intervals of `fresh`, so it is also its default.
const MAX_AGE: Duration = Duration::from_secs(90);

fn expect(
    argocd: &'static str,
    argocd_message: &'static [&'static str],
    kstatus: &'static str,
    flux: &'static str,
) -> Expect {
    Expect {
        argocd,
        argocd_message,
        kstatus,
        flux,
    }
}

fn ims(env: &Env, project: &str) -> Value {
    huawei_spec(env, "ims", project)
}

/// Server-side apply of a CloudQuota with annotations (manager `e2e`, as `Env::apply_cq`).
async fn apply_annotated(
    env: &Env,
    ns: &str,
    name: &str,
    annotations: Value,
    spec: Value,
) -> Result {
    let api: Api<CloudQuota> = Api::namespaced(env.admin.clone(), ns);
    let obj = json!({"apiVersion": "cloudquota.io/v1alpha1", "kind": "CloudQuota",
                     "metadata": {"name": name, "annotations": annotations}, "spec": spec});
    api.patch(
        name,
        &PatchParams::apply("e2e").force(),
        &Patch::Apply(&obj),
    )
    .await
    .map_err(|e| format!("apply {ns}/{name}: {e}"))?;
    Ok(())
}

/// `kubectl ARGS` as the admin: (exit code, stdout, stderr).
fn kubectl_code(env: &Env, args: &[&str]) -> Result<(i32, String, String)> {
    let out = Command::new(&env.kubectl)
        .env("KUBECONFIG", &env.admin_kubeconfig)
        .args(args)
        .output()
        .map_err(|e| format!("kubectl {args:?}: {e}"))?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// One need's answer from `cloudquota check -o json`.
#[derive(Debug)]
struct Checked {
    code: i32,
    verdict: String,
    reason: String,
}

/// `cloudquota check NAME -n NS --need image=1 [--max-age ..] -o json`, as the admin (who may
/// read the operator's Lease).
fn check(env: &Env, ns: &str, name: &str, max_age: Option<Duration>) -> Result<Checked> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloudquota"));
    cmd.env("KUBECONFIG", &env.admin_kubeconfig)
        .args(["check", name, "-n", ns, "--need", "image=1", "-o", "json"]);
    if let Some(m) = max_age {
        cmd.arg("--max-age").arg(format!("{}s", m.as_secs()));
    }
    // A concurrent `cargo build` in the shared target/ replaces the binary: absent for a moment.
    let deadline = Instant::now() + Duration::from_secs(20);
    let out = loop {
        match cmd.output() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            r => break r.map_err(|e| format!("{cmd:?}: {e}"))?,
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&stdout).map_err(|e| {
        format!(
            "check {ns}/{name}: {e}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let r = &v["results"][0];
    Ok(Checked {
        code: out.status.code().unwrap_or(-1),
        verdict: r["verdict"].as_str().unwrap_or_default().to_string(),
        reason: r["reason"].as_str().unwrap_or_default().to_string(),
    })
}

fn ready_reason(c: &CloudQuota, reason: &str) -> bool {
    ready_cond(c).is_some_and(|(s, r, _)| s == "True" && r == reason)
}

fn has_condition(c: &CloudQuota, type_: &str, status: &str) -> bool {
    c.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|x| x.type_ == type_ && x.status == status)
    })
}

fn level_is(c: &CloudQuota, want: Level) -> bool {
    is_ready(c) && c.status.as_ref().and_then(|s| s.level) == Some(want)
}

/// `fresh`: interval 30 s, nothing ever changes in its quota, so the operator writes its status
/// once and then only polls. Created by the first scenario of this file so that its data has
/// aged by the time `gitops_live_operator_stopped` runs; applying again changes nothing.
async fn fresh_object(env: &Env) -> Result<CloudQuota> {
    env.namespace(NS).await?;
    env.secret(NS, "creds", &env.demo_secret()).await?;
    if env.get_cq(NS, FRESH).await.is_err() {
        env.sim_set("ims", FRESH_PROJECT, "image", None, 10, Some(100))
            .await?;
        let mut spec = ims(env, FRESH_PROJECT);
        spec["interval"] = json!("30s");
        env.apply_cq(NS, FRESH, spec).await?;
    }
    env.wait_cq(NS, FRESH, WAIT, is_ready).await
}

/// Issue #13 item 1 (all states but "just edited", which needs the operator stopped: see
/// `gitops_live_operator_stopped`) and item 3 (`kubectl wait`).
pub async fn gitops_live_health(env: &mut Env) -> Result {
    let t = Instant::now();
    fresh_object(env).await?;
    env.secret(
        NS,
        "bad-creds",
        &[
            ("accessKeyId", cloudquota_sim::DEMO_ACCESS_KEY),
            ("secretAccessKey", "gitops-live-wrong-secret"),
        ],
    )
    .await?;
    for (project, used) in [
        ("p-gl-ok", 10),
        ("p-gl-warn", 85),
        ("p-gl-full", 100),
        ("p-gl-throttle", 10),
        ("p-gl-susp", 85),
        ("p-gl-pending", 10),
    ] {
        env.sim_set("ims", project, "image", None, used, Some(100))
            .await?;
    }
    // The first poll held 6 s by the provider: the object is caught while it runs.
    env.sim_fault(json!({"service": "ims", "key": "p-gl-pending", "count": 1,
                          "fault": {"kind": "latency", "ms": 6000}}))
        .await?;
    env.apply_cq(NS, "pending", ims(env, "p-gl-pending"))
        .await?;
    env.apply_cq(NS, "synced", ims(env, "p-gl-ok")).await?;
    env.apply_cq(NS, "warning", ims(env, "p-gl-warn")).await?;
    env.apply_cq(NS, "exhausted", ims(env, "p-gl-full")).await?;
    apply_annotated(
        env,
        NS,
        "exhausted-gate",
        json!({"cloudquota.io/health-degraded-at": "Exhausted"}),
        ims(env, "p-gl-full"),
    )
    .await?;
    env.apply_cq(NS, "throttled", ims(env, "p-gl-throttle"))
        .await?;
    env.apply_cq(NS, "suspended", ims(env, "p-gl-susp")).await?;
    let mut auth = ims(env, "p-gl-auth");
    auth["credentialsSecretRef"] = json!({"name": "bad-creds"});
    env.apply_cq(NS, "auth", auth).await?;

    // Created, first poll under way: Reconciling=True, Ready=Unknown.
    env.wait_cq(NS, "pending", Duration::from_secs(6), |c| {
        has_condition(c, "Reconciling", "True") && has_condition(c, "Ready", "Unknown")
    })
    .await
    .map_err(|e| format!("the first poll's status (held 6 s by the provider): {e}"))?;
    // The held request consumed the one-shot fault rule.
    let pending = live_object(env, NS, "pending")?;

    env.wait_cq(NS, "synced", WAIT, |c| level_is(c, Level::Ok))
        .await?;
    env.wait_cq(NS, "warning", WAIT, |c| level_is(c, Level::Warning))
        .await?;
    env.wait_cq(NS, "exhausted", WAIT, |c| level_is(c, Level::Exhausted))
        .await?;
    env.wait_cq(NS, "exhausted-gate", WAIT, |c| {
        level_is(c, Level::Exhausted)
    })
    .await?;
    env.wait_cq(NS, "auth", WAIT, |c| {
        failing_with(c, "AuthFailed") && has_condition(c, "Stalled", "True")
    })
    .await?;

    // Suspended after its first data: Ready=True/Suspended for generation 2, data kept.
    env.wait_cq(NS, "suspended", WAIT, |c| level_is(c, Level::Warning))
        .await?;
    let mut susp = ims(env, "p-gl-susp");
    susp["suspend"] = json!(true);
    env.apply_cq(NS, "suspended", susp).await?;
    env.wait_cq(NS, "suspended", WAIT, |c| {
        ready_reason(c, "Suspended")
            && c.status.as_ref().and_then(|s| s.observed_generation) == Some(2)
            && c.status.as_ref().and_then(|s| s.level) == Some(Level::Warning)
    })
    .await?;

    // Throttled: a healthy object, then the provider throttles every request until told
    // otherwise. One failed answer is not reported; the next one, 5 s later, is.
    env.wait_cq(NS, "throttled", WAIT, |c| level_is(c, Level::Ok))
        .await?;
    let before = env.sim_requests_for("ims", "p-gl-throttle").await?;
    let throttle = env
        .sim_fault(json!({"service": "ims", "key": "p-gl-throttle",
                          "fault": {"kind": "throttle", "retry_after": 1}}))
        .await?;
    env.refresh(NS, "throttled").await?;
    let throttled = env
        .wait_cq(NS, "throttled", WAIT, |c| failing_with(c, "Throttled"))
        .await;
    let throttled_obj = live_object(env, NS, "throttled");
    let arrivals = env.sim_arrivals("ims", "p-gl-throttle").await?;
    let after = env.sim_requests_for("ims", "p-gl-throttle").await?;
    env.sim_remove_fault(throttle).await?;
    let throttled = throttled?;
    let throttled_obj = throttled_obj?;
    let new = (after - before) as usize;
    ensure!(
        new >= 2 && arrivals.len() >= new,
        "throttled: {new} requests reached the provider before Ready=False/Throttled; want the failed answer and the one after it"
    );
    let first_throttled = arrivals[arrivals.len() - new] as i64;
    let reported = ready_transition_ms(&throttled, "Ready")?;
    // Status times are stored to the second: the 5 s to the second answer, less 1 s.
    ensure!(
        reported >= first_throttled + 4000,
        "throttled: Ready=False/Throttled at {reported} ms, only {} ms after the first throttled request; a transient failure of a healthy object must wait for the next answer",
        reported - first_throttled
    );

    let cases = vec![
        (
            "synced (Ok)",
            live_object(env, NS, "synced")?,
            expect(
                "Healthy",
                &["Quota Ok", "image 10/100"],
                "Current",
                "Current",
            ),
        ),
        (
            "warning",
            live_object(env, NS, "warning")?,
            expect(
                "Healthy",
                &["Quota Warning", "image 85/100 (85%)"],
                "Current",
                "Current",
            ),
        ),
        (
            "exhausted",
            live_object(env, NS, "exhausted")?,
            expect(
                "Healthy",
                &["Quota Exhausted", "image 100/100"],
                "Current",
                "Current",
            ),
        ),
        (
            "exhausted, opted in to Degraded",
            live_object(env, NS, "exhausted-gate")?,
            expect(
                "Degraded",
                &["cloudquota.io/health-degraded-at: Exhausted"],
                "Current",
                "Failed",
            ),
        ),
        (
            "first poll pending",
            pending,
            expect("Progressing", &["first poll"], "InProgress", "InProgress"),
        ),
        (
            "auth failure",
            live_object(env, NS, "auth")?,
            expect(
                "Degraded",
                &["AuthFailed", "APIGW.0301"],
                "Failed",
                "Failed",
            ),
        ),
        (
            "throttled",
            throttled_obj,
            expect(
                "Progressing",
                &["Throttled", "retrying"],
                "InProgress",
                "InProgress",
            ),
        ),
        (
            "suspended",
            live_object(env, NS, "suspended")?,
            expect("Suspended", &["suspended", "Warning"], "Current", "Current"),
        ),
    ];
    check_health(&cases)?;

    // The throttled object recovers by itself (and writes now, not during later scenarios).
    env.wait_cq(NS, "throttled", WAIT, |c| level_is(c, Level::Ok))
        .await?;
    env.wait_cq(NS, "pending", WAIT, |c| level_is(c, Level::Ok))
        .await?;

    // Item 3: what a CI job runs after applying a CloudQuota.
    let (code, out, err) = kubectl_code(
        env,
        &[
            "wait",
            "--for=condition=Ready",
            "--timeout=30s",
            "cloudquota/synced",
            "-n",
            NS,
        ],
    )?;
    ensure!(
        code == 0 && out.contains("condition met"),
        "kubectl wait --for=condition=Ready: exit {code}: {out}{err}"
    );
    let (code, out, err) = kubectl_code(
        env,
        &[
            "wait",
            "--for=jsonpath={.status.level}=Ok",
            "--timeout=10s",
            "cloudquota/synced",
            "-n",
            NS,
        ],
    )?;
    ensure!(
        code == 0 && out.contains("condition met"),
        "kubectl wait --for=jsonpath={{.status.level}}=Ok: exit {code}: {out}{err}"
    );
    // The jsonpath wait really compares: Warning is not Ok.
    let (code, out, err) = kubectl_code(
        env,
        &[
            "wait",
            "--for=jsonpath={.status.level}=Ok",
            "--timeout=2s",
            "cloudquota/warning",
            "-n",
            NS,
        ],
    )?;
    ensure!(
        code != 0 && err.contains("timed out"),
        "kubectl wait for level Ok on a Warning object: exit {code}: {out}{err}"
    );

    // Item 4, last sentence: without --max-age the max age is three intervals (15m here).
    let c = check(env, NS, "synced", None)?;
    ensure!(
        c.code == 0 && c.verdict == "Available",
        "check without --max-age on a fresh object: {c:?}"
    );
    eprintln!(
        "gitops_live_health: 9 states rated in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Unix ms of a condition's lastTransitionTime.
fn ready_transition_ms(c: &CloudQuota, type_: &str) -> Result<i64> {
    c.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|x| x.type_ == type_))
        .map(|x| x.last_transition_time.0.as_millisecond())
        .ok_or_else(|| format!("no {type_} condition"))
}

/// samples/huaweicloud-evs.yaml pointed at the simulator (as hack/demo.sh does), with
/// `edit` applied to the CloudQuota document, written to a file in the e2e directory.
fn sample_file(env: &Env, file: &str, edit: impl Fn(&mut Value)) -> Result<String> {
    let path = crate::env::root().join("samples/huaweicloud-evs.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = String::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let mut v = Value::deserialize(doc).map_err(|e| format!("{}: {e}", path.display()))?;
        if v["kind"] == "CloudQuota" {
            v["spec"]["endpoint"] = json!(env.sim_url);
            edit(&mut v);
        }
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&v).map_err(|e| e.to_string())?);
    }
    let dest = env.dir.join(file);
    std::fs::write(&dest, out).map_err(|e| format!("{}: {e}", dest.display()))?;
    Ok(dest.display().to_string())
}

/// `kubectl apply --server-side --field-manager=flux-standin` of a file.
fn standin_apply(env: &Env, file: &str, force: bool) -> Result {
    let mut args = vec![
        "apply",
        "--server-side",
        "--field-manager",
        STANDIN,
        "-n",
        NS_SSA,
        "-f",
        file,
    ];
    if force {
        args.push("--force-conflicts");
    }
    let (code, out, err) = kubectl_code(env, &args)?;
    ensure!(code == 0, "kubectl {args:?}: exit {code}: {out}{err}");
    Ok(())
}

/// `kubectl diff --server-side --field-manager=flux-standin` shows nothing: exit 0, no output.
fn no_drift(env: &Env, file: &str, when: &str) -> Result {
    let (code, out, err) = kubectl_code(
        env,
        &[
            "diff",
            "--server-side",
            "--field-manager",
            STANDIN,
            "-n",
            NS_SSA,
            "-f",
            file,
        ],
    )?;
    ensure!(
        code == 0 && out.trim().is_empty(),
        "kubectl diff {when}: exit {code}, drift:\n{out}{err}"
    );
    Ok(())
}

/// The object with its managedFields (`kubectl get` leaves them out unless asked).
fn with_managed_fields(env: &Env, ns: &str, name: &str) -> Result<Value> {
    let text = env.kubectl(&[
        "get",
        "cloudquota",
        "-n",
        ns,
        name,
        "-o",
        "json",
        "--show-managed-fields",
    ])?;
    serde_json::from_str(&text).map_err(|e| format!("kubectl get {ns}/{name}: {e}"))
}

/// The managedFields entries of an object: (manager, operation, subresource, fieldsV1).
fn managed(obj: &Value) -> Vec<(String, String, String, Value)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        m["manager"].as_str().unwrap_or_default().to_string(),
                        m["operation"].as_str().unwrap_or_default().to_string(),
                        m["subresource"].as_str().unwrap_or_default().to_string(),
                        m["fieldsV1"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The managers whose fieldsV1 hold this path (each element a key such as `f:metadata`).
fn owners(obj: &Value, path: &[&str]) -> Vec<String> {
    managed(obj)
        .into_iter()
        .filter(|(_, _, _, f)| path.iter().try_fold(f, |v, k| v.get(*k)).is_some())
        .map(|(m, _, _, _)| m)
        .collect()
}

/// `cloudquota_status_writes_total` (a counter: a whole number).
fn status_writes(m: &str) -> i64 {
    metric(m, "cloudquota_status_writes_total").map_or(-1, |v| v as i64)
}

/// Issue #13 item 2: drift and ownership against a second field manager.
pub async fn gitops_live_ownership(env: &mut Env) -> Result {
    let t = Instant::now();
    env.namespace(NS_SSA).await?;
    let name = "disks"; // the sample's name
    let base = sample_file(env, "gitops-live-evs.yaml", |_| {})?;
    let labelled = sample_file(env, "gitops-live-evs-labelled.yaml", |v| {
        v["metadata"]["labels"] = json!({"team": "a"});
    })?;
    let refreshed = sample_file(env, "gitops-live-evs-refresh.yaml", |v| {
        v["metadata"]["labels"] = json!({"team": "a"});
        v["metadata"]["annotations"] = json!({"cloudquota.io/refresh": "gitops-r1"});
    })?;
    standin_apply(env, &base, false)?;
    env.wait_cq(NS_SSA, name, WAIT, is_ready).await?;
    no_drift(env, &base, "after the operator's first status write")?;

    // A condition of another tool, applied to the status subresource under its own manager.
    let foreign = json!({"type": "ExternalCheck", "status": "True", "reason": "Verified",
                         "message": "checked by another controller",
                         "lastTransitionTime": "2026-01-01T00:00:00Z"});
    let doc = json!({"apiVersion": "cloudquota.io/v1alpha1", "kind": "CloudQuota",
                     "metadata": {"name": name, "namespace": NS_SSA},
                     "status": {"conditions": [foreign]}});
    let (ok, out) = env.kubectl_try(
        &[
            "apply",
            "--server-side",
            "--subresource=status",
            "--field-manager=other-tool",
            "-f",
            "-",
        ],
        Some(&doc.to_string()),
    );
    ensure!(ok, "applying another manager's condition: {out}");
    let foreign_of = |obj: &Value| -> Option<Value> {
        obj["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "ExternalCheck")
            .cloned()
    };

    // A GitOps commit touching only metadata, re-applied with --force-conflicts: the operator
    // sees the change (resourceVersion moves, generation does not) and writes no status.
    let before = live_object(env, NS_SSA, name)?;
    let writes_before = status_writes(&env.metrics().await?);
    let reconciles = |m: &str| metric_sum(m, "cloudquota_reconcile_duration_seconds_count");
    let reconciles_before = reconciles(&env.metrics().await?);
    standin_apply(env, &labelled, true)?;
    let relabelled = live_object(env, NS_SSA, name)?;
    ensure!(
        relabelled["metadata"]["labels"]["team"] == "a"
            && relabelled["metadata"]["generation"] == before["metadata"]["generation"],
        "the re-apply: labels {} generation {} (was {})",
        relabelled["metadata"]["labels"],
        relabelled["metadata"]["generation"],
        before["metadata"]["generation"]
    );
    env.eventually("a reconcile after the re-apply", WAIT, || async {
        let n = reconciles(&env.metrics().await?);
        if n > reconciles_before {
            Ok(())
        } else {
            Err(format!("{n} reconciles"))
        }
    })
    .await?;
    // Nothing may follow: watch it stay so for 2 s.
    let quiet_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < quiet_until {
        let now = live_object(env, NS_SSA, name)?;
        let writes = status_writes(&env.metrics().await?);
        ensure!(
            now["status"] == before["status"]
                && now["metadata"]["resourceVersion"] == relabelled["metadata"]["resourceVersion"],
            "the stand-in's re-apply disturbed status:\nbefore {}\nafter  {}",
            before["status"],
            now["status"]
        );
        ensure!(
            writes == writes_before,
            "status writes {writes_before} -> {writes} after a metadata-only re-apply"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    no_drift(env, &labelled, "after the re-apply")?;

    // The refresh annotation, set by the stand-in: the operator polls, records it in
    // observedRefresh (a status write) and leaves the annotation to its owner.
    let upstream_before = env
        .sim_requests_for("evs", "cd631140887d4b6e9c786b67a6dd4c02")
        .await?;
    standin_apply(env, &refreshed, false)?;
    env.wait_cq(NS_SSA, name, WAIT, |c| {
        c.status
            .as_ref()
            .and_then(|s| s.observed_refresh.as_deref())
            == Some("gitops-r1")
    })
    .await?;
    let upstream = env
        .sim_requests_for("evs", "cd631140887d4b6e9c786b67a6dd4c02")
        .await?;
    ensure!(
        upstream > upstream_before,
        "observedRefresh recorded without asking the provider"
    );
    let writes_after = status_writes(&env.metrics().await?);
    ensure!(
        writes_after > writes_before,
        "recording the refresh wrote no status ({writes_before} -> {writes_after})"
    );
    let obj = with_managed_fields(env, NS_SSA, name)?;
    // The other manager's condition survived the operator's write, unchanged and still its.
    ensure!(
        foreign_of(&obj) == foreign_of(&before) && foreign_of(&obj).is_some(),
        "the other manager's condition after the operator's status write: {:?} (was {:?})",
        foreign_of(&obj),
        foreign_of(&before)
    );
    let cond = |t: &str| format!(r#"k:{{"type":"{t}"}}"#);
    let foreign_owners = owners(&obj, &["f:status", "f:conditions", &cond("ExternalCheck")]);
    ensure!(
        foreign_owners == ["other-tool"],
        "ExternalCheck owned by {foreign_owners:?}"
    );
    let ready_owners = owners(&obj, &["f:status", "f:conditions", &cond("Ready")]);
    ensure!(
        ready_owners == [OPERATOR_MANAGER],
        "Ready owned by {ready_owners:?}"
    );
    ensure!(
        obj["status"]["conditions"].as_array().is_some_and(|a| a
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")),
        "Ready after the refresh: {}",
        obj["status"]["conditions"]
    );

    // Ownership: the operator's manager owns status (and at most finalizers), nothing else.
    let entries = managed(&obj);
    let ours: Vec<_> = entries
        .iter()
        .filter(|(m, _, _, _)| m == OPERATOR_MANAGER)
        .collect();
    ensure!(
        !ours.is_empty(),
        "no managedFields entry of {OPERATOR_MANAGER}"
    );
    for (_, op, sub, fields) in &ours {
        let top: Vec<&String> = fields
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        let meta: Vec<&String> = fields["f:metadata"]
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        ensure!(
            op == "Apply"
                && sub == "status"
                && top.iter().all(|k| *k == "f:status" || *k == "f:metadata")
                && meta.iter().all(|k| *k == "f:finalizers"),
            "{OPERATOR_MANAGER} owns more than status: {op} subresource={sub:?} {fields}"
        );
    }
    for path in [
        &["f:metadata", "f:annotations", "f:cloudquota.io/refresh"][..],
        &["f:metadata", "f:labels", "f:team"],
        &["f:spec", "f:endpoint"],
        &["f:spec", "f:interval"],
    ] {
        let o = owners(&obj, path);
        ensure!(o == [STANDIN], "{path:?} owned by {o:?}, want [{STANDIN}]");
    }
    ensure!(
        obj["metadata"]["generation"] == json!(1),
        "spec written after the stand-in's apply: generation {}",
        obj["metadata"]["generation"]
    );
    no_drift(env, &refreshed, "after the operator recorded the refresh")?;
    eprintln!("gitops_live_ownership: {:.1}s", t.elapsed().as_secs_f64());
    Ok(())
}

/// renewTime of the operator's Lease.
async fn lease_renewed(env: &Env) -> Result<Timestamp> {
    let api: Api<Lease> = Api::namespaced(env.admin.clone(), OPERATOR_NS);
    let lease = api.get("cloudquota").await.map_err(|e| e.to_string())?;
    lease
        .spec
        .and_then(|s| s.renew_time)
        .map(|t| t.0)
        .ok_or_else(|| "the operator's Lease has no renewTime".into())
}

fn since(t: Timestamp) -> Duration {
    Timestamp::now().duration_since(t).unsigned_abs()
}

fn secs(d: SignedDuration) -> f64 {
    d.as_secs_f64()
}

/// Issue #13 item 4, and the "just edited" state of item 1: the operator is SIGKILLed (its
/// Lease stays held but is no longer renewed) and started again whatever happens.
pub async fn gitops_live_operator_stopped(env: &mut Env) -> Result {
    let t = Instant::now();
    let fresh = fresh_object(env).await?;
    env.apply_cq(NS, "edited", ims(env, "p-gl-edit")).await?;
    env.sim_set("ims", "p-gl-edit", "image", None, 10, Some(100))
        .await?;
    env.wait_cq(NS, "edited", WAIT, is_ready).await?;
    let status = fresh.status.clone().unwrap_or_default();
    ensure!(
        status.operator_lease.as_deref() == Some(&format!("{OPERATOR_NS}/cloudquota")),
        "status.operatorLease is {:?}",
        status.operator_lease
    );
    let synced = status
        .last_sync_time
        .as_ref()
        .map(|t| t.0)
        .ok_or("fresh: no lastSyncTime")?;
    // The healthy fleet: polled every 30 s, nothing changed, nothing written, so lastSyncTime
    // grows older than the max age while the Lease vouches for the data.
    let polls_at_start = env.sim_requests_for("ims", FRESH_PROJECT).await?;
    let waited = Instant::now();
    env.eventually(
        "fresh: lastSyncTime older than the max age",
        MAX_AGE + Duration::from_secs(15),
        || async {
            let age = since(synced);
            if age > MAX_AGE + Duration::from_secs(1) {
                Ok(())
            } else {
                Err(format!("{age:?}"))
            }
        },
    )
    .await?;
    let waited = waited.elapsed();
    let now = env.get_cq(NS, FRESH).await?;
    ensure!(
        now.status
            .as_ref()
            .and_then(|s| s.last_sync_time.as_ref())
            .map(|t| t.0)
            == Some(synced),
        "fresh: the status was rewritten although nothing changed"
    );
    let polls = env.sim_requests_for("ims", FRESH_PROJECT).await?;
    ensure!(
        polls >= 3,
        "fresh: {polls} polls in {:.0}s at interval 30s",
        since(synced).as_secs_f64()
    );
    let c = check(env, NS, FRESH, Some(MAX_AGE))?;
    ensure!(
        c.code == 0 && c.verdict == "Available",
        "check --max-age 90s with lastSyncTime {:.0}s old and a renewed Lease: {c:?}",
        since(synced).as_secs_f64()
    );
    eprintln!(
        "gitops_live_operator_stopped: Available at lastSyncTime age {:.0}s (waited {:.0}s, {} polls meanwhile)",
        since(synced).as_secs_f64(),
        waited.as_secs_f64(),
        polls - polls_at_start
    );

    let killed_at = Timestamp::now();
    env.kill_operator()?;
    let stopped = operator_stopped(env, killed_at).await;
    // Whatever happened: the next scenarios need an operator.
    let started = env.start_operator().await;
    let (edited_gen, results) = match (stopped, started) {
        (Ok(v), Ok(())) => v,
        (Err(e), _) | (Ok(_), Err(e)) => return Err(e),
    };

    // The new leader polls the edited generation: Healthy again, and kubectl wait returns.
    env.wait_cq(NS, "edited", WAIT, |c| {
        is_ready(c) && c.status.as_ref().and_then(|s| s.observed_generation) == Some(edited_gen)
    })
    .await?;
    let (code, out, err) = kubectl_code(
        env,
        &[
            "wait",
            "--for=condition=Ready",
            "--timeout=10s",
            "cloudquota/edited",
            "-n",
            NS,
        ],
    )?;
    ensure!(
        code == 0,
        "kubectl wait Ready after the new generation's poll: exit {code}: {out}{err}"
    );
    check_health(&[(
        "edited, then polled",
        live_object(env, NS, "edited")?,
        expect("Healthy", &["Quota Ok"], "Current", "Current"),
    )])?;
    let c = check(env, NS, "edited", None)?;
    ensure!(
        c.code == 0 && c.verdict == "Available",
        "check after the new generation's poll: {c:?}"
    );
    eprintln!(
        "gitops_live_operator_stopped: {results} ({:.1}s)",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What holds while the operator is dead: returns the edited object's generation and a
/// summary of the timings.
async fn operator_stopped(env: &Env, killed_at: Timestamp) -> Result<(i64, String)> {
    let renewed = lease_renewed(env).await?;
    ensure!(
        renewed <= killed_at && since(renewed) < Duration::from_secs(15),
        "Lease renewed at {renewed}, the operator was killed at {killed_at}"
    );

    // Just edited, with no operator to poll the new generation.
    let mut spec = ims(env, "p-gl-edit");
    spec["thresholds"] = json!({"warning": 70, "critical": 90});
    env.apply_cq(NS, "edited", spec).await?;
    let edited = env.get_cq(NS, "edited").await?;
    let generation = edited.metadata.generation.unwrap_or_default();
    ensure!(
        generation == 2 && edited.status.as_ref().and_then(|s| s.observed_generation) == Some(1),
        "edited: generation {generation}, observedGeneration {:?}",
        edited.status.as_ref().and_then(|s| s.observed_generation)
    );
    check_health(&[(
        "just edited",
        live_object(env, NS, "edited")?,
        expect("Progressing", &["generation 2"], "InProgress", "InProgress"),
    )])?;
    let c = check(env, NS, "edited", None)?;
    ensure!(
        c.code == 2 && c.verdict == "Unknown" && c.reason.contains("edited since its last poll"),
        "check right after an edit: {c:?}"
    );
    // Ready=True of generation 1 does not satisfy kubectl wait on generation 2.
    let (code, out, err) = kubectl_code(
        env,
        &[
            "wait",
            "--for=condition=Ready",
            "--timeout=2s",
            "cloudquota/edited",
            "-n",
            NS,
        ],
    )?;
    ensure!(
        code != 0 && err.contains("timed out"),
        "kubectl wait Ready on an edited, unpolled object: exit {code}: {out}{err}"
    );

    // The data's age is the Lease's age plus one interval and its slack (a quarter interval
    // and 30 s, README "How old is the data?"), so with --max-age 90s and interval 30s check
    // turns Unknown 22.5 s after the last renewal.
    let vouch = FRESH_INTERVAL + FRESH_INTERVAL / 4 + Duration::from_secs(30);
    let flip = renewed
        .checked_add(MAX_AGE - vouch)
        .map_err(|e| e.to_string())?;
    let give_up = flip
        .checked_add(Duration::from_secs(15))
        .map_err(|e| e.to_string())?;
    let mut last_available: Option<Timestamp> = None;
    let (unknown_from, unknown_to, unknown) = loop {
        let t0 = Timestamp::now();
        let c = check(env, NS, FRESH, Some(MAX_AGE))?;
        let t1 = Timestamp::now();
        match (c.code, c.verdict.as_str()) {
            (2, "Unknown") => break (t0, t1, c),
            (0, "Available") => last_available = Some(t0),
            _ => return Err(format!("check with the operator dead: {c:?}")),
        }
        ensure!(
            t1 < give_up,
            "check still Available {:.1}s after the last renewal (expected Unknown after {:.1}s)",
            secs(t1.duration_since(renewed)),
            (MAX_AGE - vouch).as_secs_f64()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    ensure!(
        unknown.reason.contains("more than the max age 1m30s"),
        "Unknown for another reason: {unknown:?}"
    );
    let last_available = last_available.ok_or(
        "check was never Available after the kill: the Lease's last renewal did not vouch for the data",
    )?;
    // Not before the flip (the check finished after it), and soon after it (poll period,
    // the check's own run time, a loaded machine).
    ensure!(
        unknown_to >= flip,
        "Unknown already {:.1}s after the last renewal, before {:.1}s",
        secs(unknown_to.duration_since(renewed)),
        (MAX_AGE - vouch).as_secs_f64()
    );
    ensure!(
        unknown_from
            <= flip
                .checked_add(Duration::from_secs(5))
                .map_err(|e| e.to_string())?,
        "Unknown only {:.1}s after the last renewal, want {:.1}s",
        secs(unknown_from.duration_since(renewed)),
        (MAX_AGE - vouch).as_secs_f64()
    );
    // The default max age is three intervals: 90 s for `fresh` (so Unknown as well), 15 min
    // for the 5 min objects (still Available: their Lease was renewed seconds ago).
    let c = check(env, NS, FRESH, None)?;
    ensure!(
        c.code == 2 && c.reason.contains("more than the max age 1m30s"),
        "check without --max-age, interval 30s, operator dead: {c:?}"
    );
    let c = check(env, NS, "synced", None)?;
    ensure!(
        c.code == 0 && c.verdict == "Available",
        "check without --max-age, interval 5m, operator dead for {:.0}s: {c:?}",
        since(renewed).as_secs_f64()
    );
    Ok((
        generation,
        format!(
            "killed {:.1}s after the Lease's renewal; last Available at +{:.1}s, Unknown at +{:.1}..{:.1}s (expected +{:.1}s)",
            secs(killed_at.duration_since(renewed)),
            secs(last_available.duration_since(renewed)),
            secs(unknown_from.duration_since(renewed)),
            secs(unknown_to.duration_since(renewed)),
            (MAX_AGE - vouch).as_secs_f64()
        ),
    ))
}
