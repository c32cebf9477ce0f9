//! Fault scenarios: the control plane restarted under the operator, the operator killed
//! mid-reconcile, a standby replica taking over, and a provider that misbehaves in every way the
//! simulator can. Each runs in its own namespace and leaves the suite's shared processes as it
//! found them (control plane up, one leading operator with the default flags, no sim faults).
//!
//! Assertions are built to be deterministic: where timing decides what the operator gets to do
//! before a fault (a poll in flight at SIGKILL, a retry during an outage), the scenario waits for
//! the sim to have received the request before pulling the plug.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cloudquota::crd::{CloudQuota, Level, ResourceStatus};
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

use crate::cq::{
    ensure, events_of, failing_with, huawei_spec, is_ready, level, ready_cond, resource, resources,
    used,
};
use crate::env::{Env, Result, metric, metric_sum, rss_kib};

const WAIT: Duration = Duration::from_secs(20);
/// `--lease-duration` of the e2e operator.
const LEASE: Duration = Duration::from_secs(15);
/// A takeover after SIGKILL: the lease runs out (at most LEASE after the last renewal), then the
/// new holder's next try (every LEASE/3 = 5 s), its lock (up to ~1 s of collision avoidance) and
/// process start-up, which a loaded 2-core CI machine stretches: 21 s can be exceeded without
/// anything wrong. Twice LEASE still catches a new leader that never takes over or waits out a
/// second lease period (2 x LEASE plus its next try).
const TAKEOVER: Duration = Duration::from_secs(LEASE.as_secs() * 2);

fn evs_spec(env: &Env, project: &str) -> Value {
    huawei_spec(env, "evs", project)
}

async fn setup_ns(env: &Env, ns: &str) -> Result {
    env.namespace(ns).await?;
    env.secret(ns, "creds", &env.demo_secret()).await
}

/// EVS objects `name -> project` with `backups` at 10/100, Ready with that number.
async fn evs_objects(env: &Env, ns: &str, objects: &[(&str, &str)]) -> Result {
    for (name, project) in objects {
        env.sim_set("evs", project, "backups", None, 10, Some(100))
            .await?;
        env.apply_cq(ns, name, evs_spec(env, project)).await?;
    }
    for (name, _) in objects {
        env.wait_cq(ns, name, WAIT, |c| {
            is_ready(c) && used(c, "backups") == Some(10)
        })
        .await?;
    }
    Ok(())
}

async fn delete_all(env: &Env, ns: &str, names: &[&str]) -> Result {
    for n in names {
        env.delete_cq(ns, n).await?;
    }
    Ok(())
}

/// Their reasons, sorted (creation timestamps have one-second resolution, so order is not
/// asserted; counts are).
async fn reasons_of(env: &Env, ns: &str, name: &str) -> Result<Vec<String>> {
    let mut r: Vec<String> = events_of(env, ns, name)
        .await?
        .into_iter()
        .map(|e| e.reason.unwrap_or_default())
        .collect();
    r.sort();
    Ok(r)
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Waits until every object has exactly the expected Event reasons, then checks that nothing
/// more arrives for `settle` and that no Event was re-published as a series.
async fn expect_events(
    env: &Env,
    ns: &str,
    expected: &[(&str, &[&str])],
    settle: Duration,
) -> Result {
    for (name, want) in expected {
        let want = sorted(want);
        env.eventually(&format!("Events of {ns}/{name}"), WAIT, || async {
            let got = reasons_of(env, ns, name).await?;
            if got == want {
                Ok(())
            } else {
                Err(format!("{got:?}, want {want:?}"))
            }
        })
        .await?;
    }
    tokio::time::sleep(settle).await;
    for (name, want) in expected {
        let got = reasons_of(env, ns, name).await?;
        ensure!(
            got == sorted(want),
            "{ns}/{name}: Events {got:?}, want exactly {want:?} (a duplicate announcement)"
        );
    }
    let repeated: Vec<String> = env
        .events(ns)
        .await?
        .into_iter()
        .filter(|e| e.series.is_some())
        .map(|e| format!("{:?} {:?}", e.reason, e.note))
        .collect();
    ensure!(
        repeated.is_empty(),
        "Events re-published as a series: {repeated:?}"
    );
    Ok(())
}

/// Event counts of every other namespace, by namespace.
async fn events_elsewhere(env: &Env, ns: &str) -> Result<BTreeMap<String, usize>> {
    let mut m = BTreeMap::new();
    for e in env.all_events().await? {
        let n = e.metadata.namespace.unwrap_or_default();
        if n != ns {
            *m.entry(n).or_insert(0) += 1;
        }
    }
    Ok(m)
}

/// `ns/name -> (resources, Ready status)` of every CloudQuota in other namespaces.
async fn statuses_elsewhere(env: &Env, ns: &str) -> Result<BTreeMap<String, String>> {
    let api: Api<CloudQuota> = Api::all(env.admin.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?;
    Ok(list
        .items
        .iter()
        .filter(|c| c.metadata.namespace.as_deref() != Some(ns))
        .map(|c| {
            (
                format!(
                    "{}/{}",
                    c.metadata.namespace.as_deref().unwrap_or(""),
                    c.metadata.name.as_deref().unwrap_or("")
                ),
                format!(
                    "{} ready={:?}",
                    serde_json::to_string(&resources(c)).unwrap(),
                    ready_cond(c).map(|r| r.0.to_string())
                ),
            )
        })
        .collect())
}

/// Status resources equal the simulator's numbers for the project.
async fn matches_sim(env: &Env, ns: &str, name: &str, project: &str) -> Result {
    let sim = env
        .sim(
            reqwest::Method::GET,
            &format!("/_sim/quota/evs/{project}"),
            None,
        )
        .await?;
    let cq = env.get_cq(ns, name).await?;
    let sim_res = sim["resources"].as_array().cloned().unwrap_or_default();
    ensure!(
        sim_res.len() == resources(&cq).len(),
        "{ns}/{name}: {} resources in status, {} in the sim",
        resources(&cq).len(),
        sim_res.len()
    );
    for r in sim_res {
        let rname = r["name"].as_str().unwrap_or_default();
        let limit = r["limit"].as_i64().filter(|l| *l >= 0);
        let got = resource(&cq, rname, None);
        ensure!(
            got.is_some_and(|g| Some(g.used) == r["used"].as_i64() && g.limit == limit),
            "{ns}/{name}: {rname} in status {:?}, in the sim {r}",
            got.map(|g| (g.used, g.limit))
        );
    }
    Ok(())
}

/// "lost leadership" lines in the operator log so far.
fn leadership_losses(env: &Env) -> usize {
    std::fs::read_to_string(&env.operator_log)
        .unwrap_or_default()
        .matches("lost leadership")
        .count()
}

async fn leader_metric(env: &Env, port: u16) -> Result<f64> {
    let m = env.metrics_at(port).await?;
    metric(&m, "cloudquota_leader").ok_or_else(|| "no cloudquota_leader".to_string())
}

// ---------------------------------------------------------------------------------------------
// 1. The control plane restarted under the operator
// ---------------------------------------------------------------------------------------------

/// kube-apiserver SIGKILLed for longer than the lease duration and started again: the leader
/// steps down at its renew deadline, leads again afterwards, and the object whose retry was due
/// in the outage recovers, announced once; watches resume; the operator stays up.
pub async fn fault_apiserver_restart(env: &mut Env) -> Result {
    control_plane_outage(
        env,
        "e2e-fault-apiserver",
        "p-fa",
        ("stop-apiserver", "start-apiserver"),
        LEASE + Duration::from_secs(2),
    )
    .await
}

/// The same with etcd SIGKILLed under a running kube-apiserver (until the leader has stepped down).
pub async fn fault_etcd_restart(env: &mut Env) -> Result {
    control_plane_outage(
        env,
        "e2e-fault-etcd",
        "p-fe",
        ("stop-etcd", "start-etcd"),
        Duration::ZERO,
    )
    .await
}

async fn control_plane_outage(
    env: &mut Env,
    ns: &str,
    prefix: &str,
    (stop, start): (&str, &str),
    min_outage: Duration,
) -> Result {
    // A 60 s Secret cache, so that the retry falling into the outage reaches the provider (with
    // the e2e's 1 s it stops at the Secret read) and what the outage hits is its Event and
    // status write.
    env.restart_operator_with(&["--secret-ttl", "60s"]).await?;
    let result = outage(env, ns, prefix, (stop, start), min_outage).await;
    let restored = env.restart_operator_with(&[]).await;
    result?;
    restored
}

async fn outage(
    env: &mut Env,
    ns: &str,
    prefix: &str,
    (stop, start): (&str, &str),
    min_outage: Duration,
) -> Result {
    setup_ns(env, ns).await?;
    let steady = format!("{prefix}-steady");
    let flaky = format!("{prefix}-flaky");
    evs_objects(env, ns, &[("steady", &steady), ("flaky", &flaky)]).await?;
    let statuses_before = statuses_elsewhere(env, ns).await?;
    let events_before = events_elsewhere(env, ns).await?;
    let steady_before = resources(&env.get_cq(ns, "steady").await?);
    let identity = env.operator_identity.clone();
    let lost_before = leadership_losses(env);

    // A provider failure, reported: two polls of three attempts each (a healthy object reports
    // a transient failure only when the next answer fails too). Its retry is due in the outage.
    env.sim_fault(json!({"service": "evs", "key": flaky, "count": 6,
                         "fault": {"kind": "status", "status": 503}}))
        .await?;
    env.refresh(ns, "flaky").await?;
    env.wait_cq(ns, "flaky", WAIT, |c| failing_with(c, "UpstreamError"))
        .await?;

    let t = Instant::now();
    env.controlplane(stop, "KILL").await?;
    let during = async {
        // Usage crosses the warning threshold while nobody can ask for a refresh.
        env.sim_set("evs", &steady, "backups", None, 85, None)
            .await?;
        // No Lease renewal can be confirmed: the leader steps down at the renew deadline (10 s
        // after its last confirmed renewal) and drops its work, the retry due in the outage
        // included (before the write fence, it went on as leader and retried into the outage).
        env.eventually(
            "the leader steps down in the outage",
            Duration::from_secs(20),
            || async {
                match leader_metric(env, env.metrics_port).await? {
                    0.0 => Ok(()),
                    l => Err(format!("cloudquota_leader {l}")),
                }
            },
        )
        .await?;
        tokio::time::sleep(min_outage.saturating_sub(t.elapsed())).await;
        ensure!(
            env.operator_running(),
            "the operator exited during the {stop} outage"
        );
        Ok(())
    }
    .await;
    // Always bring the control plane back, whatever happened above.
    let started = env.controlplane(start, "KILL").await;
    let ready = env.wait_apiserver_ready(Duration::from_secs(60)).await;
    let outage = t.elapsed();
    during?;
    started?;
    ready?;

    // Watches resumed: a refresh asked for as soon as the API server is back is seen within
    // seconds (the watch's retry backoff is capped at 5 s; the 410 Gone that follows a restart
    // costs one more step).
    let t = Instant::now();
    env.eventually("refresh after the restart", WAIT, || {
        env.refresh(ns, "steady")
    })
    .await?;
    env.wait_cq(ns, "steady", Duration::from_secs(15), |c| {
        used(c, "backups") == Some(85) && level(c, "backups") == Some(Level::Warning)
    })
    .await?;
    let resumed_after = t.elapsed();
    // The retry that fell into the outage is made by the leader after it (the failing stored
    // status makes the object due at once).
    env.wait_cq(ns, "flaky", WAIT, is_ready).await?;
    let recovered_after = t.elapsed();
    expect_events(
        env,
        ns,
        &[
            ("flaky", &["QuotaFetchFailed", "QuotaFetchRecovered"]),
            ("steady", &["ThresholdExceeded"]),
        ],
        Duration::from_secs(2),
    )
    .await?;
    // No status lost: the untouched resources are as before, every other object as before.
    let steady_after = resources(&env.get_cq(ns, "steady").await?);
    let strip = |v: &[ResourceStatus]| -> Vec<ResourceStatus> {
        v.iter().filter(|r| r.name != "backups").cloned().collect()
    };
    ensure!(
        strip(&steady_after) == strip(&steady_before) && !steady_after.is_empty(),
        "steady's other resources changed across the {stop} outage"
    );
    matches_sim(env, ns, "steady", &steady).await?;
    matches_sim(env, ns, "flaky", &flaky).await?;
    let statuses_after = statuses_elsewhere(env, ns).await?;
    ensure!(
        statuses_after == statuses_before,
        "other CloudQuotas' status changed across the outage:\nbefore {statuses_before:?}\nafter {statuses_after:?}"
    );
    let events_after = events_elsewhere(env, ns).await?;
    ensure!(
        events_after == events_before,
        "Events elsewhere changed: {events_before:?} -> {events_after:?}"
    );
    // Still running, still (or again) the leader.
    ensure!(env.operator_running(), "the operator exited after {stop}");
    env.eventually(
        "leader after the outage",
        Duration::from_secs(40),
        || async {
            let l = leader_metric(env, env.metrics_port).await?;
            let holder = env.lease_holder().await?;
            if l == 1.0 && holder.as_deref() == Some(identity.as_str()) {
                Ok(())
            } else {
                Err(format!("cloudquota_leader {l}, lease holder {holder:?}"))
            }
        },
    )
    .await?;
    eprintln!(
        "    {stop}: outage {:.1}s, leadership lost and regained {} times; after it a refresh was seen in {:.1}s, the object whose retry fell into it recovered in {:.1}s",
        outage.as_secs_f64(),
        leadership_losses(env) - lost_before,
        resumed_after.as_secs_f64(),
        recovered_after.as_secs_f64()
    );
    delete_all(env, ns, &["steady", "flaky"]).await
}

// ---------------------------------------------------------------------------------------------
// 2. The operator SIGKILLed mid-reconcile
// ---------------------------------------------------------------------------------------------

/// SIGKILL while three polls are held by the provider: the Lease is not released, a new
/// instance takes over when it expires, and every crossing is announced exactly once.
pub async fn fault_operator_sigkill(env: &mut Env) -> Result {
    let ns = "e2e-fault-kill";
    setup_ns(env, ns).await?;
    let inflight = [
        ("inflight-0", "p-fk-0"),
        ("inflight-1", "p-fk-1"),
        ("inflight-2", "p-fk-2"),
    ];
    let mut objects = vec![("done", "p-fk-done")];
    objects.extend(inflight);
    evs_objects(env, ns, &objects).await?;
    let events_before = events_elsewhere(env, ns).await?;

    // A crossing fully handled before the kill.
    env.sim_set("evs", "p-fk-done", "backups", None, 85, None)
        .await?;
    env.refresh(ns, "done").await?;
    env.wait_cq(ns, "done", WAIT, |c| {
        level(c, "backups") == Some(Level::Warning)
    })
    .await?;
    expect_events(env, ns, &[("done", &["ThresholdExceeded"])], Duration::ZERO).await?;

    // Crossings in flight: each poll is held 4 s by the provider when the operator dies.
    let mut held = Vec::new();
    for (name, project) in inflight {
        env.sim_fault(json!({"service": "evs", "key": project, "count": 1,
                             "fault": {"kind": "latency", "ms": 4000}}))
            .await?;
        env.sim_set("evs", project, "backups", None, 85, None)
            .await?;
        held.push(env.sim_requests_for("evs", project).await?);
        env.refresh(ns, name).await?;
    }
    env.eventually("the polls reach the provider", WAIT, || async {
        for ((_, project), before) in inflight.iter().zip(&held) {
            let n = env.sim_requests_for("evs", project).await?;
            if n <= *before {
                return Err(format!("{project}: {n} requests"));
            }
        }
        Ok(())
    })
    .await?;

    let old = env.operator_identity.clone();
    let t = Instant::now();
    env.kill_operator()?;
    let holder = env.lease_holder().await?;
    ensure!(
        holder.as_deref() == Some(old.as_str()),
        "after SIGKILL the Lease names {holder:?}, not the dead {old}"
    );
    env.start_operator().await?;
    let takeover = t.elapsed();
    ensure!(
        takeover <= TAKEOVER,
        "the new instance led only {takeover:?} after the SIGKILL"
    );
    let holder = env.lease_holder().await?;
    ensure!(
        holder.as_deref() == Some(env.operator_identity.as_str()),
        "Lease holder {holder:?} after the takeover"
    );
    // The refreshes asked for before the kill are recorded nowhere yet (status has no
    // observedRefresh for them), so the new leader acts on them by itself.
    for (name, _) in inflight {
        env.wait_cq(ns, name, WAIT, |c| used(c, "backups") == Some(85))
            .await
            .map_err(|e| format!("pending refresh not honoured after the takeover: {e}"))?;
    }

    // After the takeover: every crossing is seen and announced once; the old one is not
    // re-announced; a new one is.
    for (name, _) in inflight {
        env.refresh(ns, name).await?;
    }
    env.sim_set("evs", "p-fk-done", "backups", None, 96, None)
        .await?;
    env.refresh(ns, "done").await?;
    for (name, _) in inflight {
        env.wait_cq(ns, name, WAIT, |c| {
            used(c, "backups") == Some(85) && level(c, "backups") == Some(Level::Warning)
        })
        .await?;
    }
    env.wait_cq(ns, "done", WAIT, |c| {
        level(c, "backups") == Some(Level::Critical)
    })
    .await?;
    expect_events(
        env,
        ns,
        &[
            ("done", &["ThresholdExceeded", "ThresholdExceeded"]),
            ("inflight-0", &["ThresholdExceeded"]),
            ("inflight-1", &["ThresholdExceeded"]),
            ("inflight-2", &["ThresholdExceeded"]),
        ],
        Duration::from_secs(2),
    )
    .await?;
    for (name, project) in &objects {
        matches_sim(env, ns, name, project).await?;
    }
    let events_after = events_elsewhere(env, ns).await?;
    ensure!(
        events_after == events_before,
        "Events elsewhere changed: {events_before:?} -> {events_after:?}"
    );
    eprintln!("    takeover {:.1}s after SIGKILL", takeover.as_secs_f64());
    let names: Vec<&str> = objects.iter().map(|(n, _)| *n).collect();
    delete_all(env, ns, &names).await
}

// ---------------------------------------------------------------------------------------------
// 3. Two replicas
// ---------------------------------------------------------------------------------------------

/// A standby replica neither polls nor writes; when the leader is SIGKILLed it takes over within
/// the lease duration and announces only what is new.
pub async fn fault_leader_failover(env: &mut Env) -> Result {
    let ns = "e2e-fault-ha";
    let project = "p-ha";
    setup_ns(env, ns).await?;
    evs_objects(env, ns, &[("q", project)]).await?;
    let mut standby = env.spawn_replica().await?;
    let events_before = events_elsewhere(env, ns).await?;

    let sim_total = |c: &Value| c["total"].as_u64().unwrap_or(0);
    let upstream = |m: &str| metric_sum(m, "cloudquota_upstream_requests_total");
    let key_before = env.sim_requests_for("evs", project).await?;
    let sim_before = sim_total(&env.sim_counters().await?);
    let leader_before = upstream(&env.metrics().await?);
    for u in [20, 30, 85] {
        env.sim_set("evs", project, "backups", None, u, None)
            .await?;
        env.refresh(ns, "q").await?;
        env.wait_cq(ns, "q", WAIT, |c| used(c, "backups") == Some(u))
            .await?;
    }
    expect_events(
        env,
        ns,
        &[("q", &["ThresholdExceeded"])],
        Duration::from_millis(500),
    )
    .await?;
    let m = env.metrics_at(standby.metrics_port).await?;
    // Unlabelled series must be exported (a standby that exports nothing would pass otherwise).
    for name in ["cloudquota_leader", "cloudquota_status_writes_total"] {
        let got = metric(&m, name);
        ensure!(got == Some(0.0), "standby {name} = {got:?}, want Some(0.0)");
    }
    // Labelled families have no series until something happens: their sum is 0.
    for name in [
        "cloudquota_polls_total",
        "cloudquota_events_total",
        "cloudquota_upstream_requests_total",
    ] {
        let got = metric_sum(&m, name);
        ensure!(got == 0.0, "standby {name} = {got}, want 0");
    }
    ensure!(standby.running(), "the standby exited");
    let key_delta = env.sim_requests_for("evs", project).await? - key_before;
    ensure!(
        key_delta == 3,
        "{key_delta} requests for {project} for 3 refreshes (someone polled twice)"
    );
    // Every request the sim saw was sent by the leader.
    env.eventually(
        "sim requests = leader's requests",
        Duration::from_secs(5),
        || async {
            let sim = sim_total(&env.sim_counters().await?) - sim_before;
            let sent = upstream(&env.metrics().await?) - leader_before;
            if sim as f64 == sent {
                Ok(())
            } else {
                Err(format!("sim saw {sim}, the leader sent {sent}"))
            }
        },
    )
    .await?;

    // Failover.
    let t = Instant::now();
    env.kill_operator()?;
    let identity = standby.identity.clone();
    let port = standby.metrics_port;
    env.eventually(
        "the standby takes over",
        TAKEOVER + Duration::from_secs(5),
        || async {
            let l = leader_metric(env, port).await?;
            if l == 1.0 {
                Ok(())
            } else {
                Err(format!("cloudquota_leader {l}"))
            }
        },
    )
    .await?;
    let takeover = t.elapsed();
    env.adopt(standby)?;
    ensure!(
        takeover <= TAKEOVER,
        "the standby led only {takeover:?} after the leader's SIGKILL"
    );
    let holder = env.lease_holder().await?;
    ensure!(
        holder.as_deref() == Some(identity.as_str()),
        "Lease holder {holder:?}"
    );
    // Nothing re-announced by the new leader; a new crossing is announced once, by it.
    env.sim_set("evs", project, "backups", None, 96, None)
        .await?;
    env.refresh(ns, "q").await?;
    env.wait_cq(ns, "q", WAIT, |c| {
        level(c, "backups") == Some(Level::Critical)
    })
    .await?;
    expect_events(
        env,
        ns,
        &[("q", &["ThresholdExceeded", "ThresholdExceeded"])],
        Duration::from_secs(2),
    )
    .await?;
    let evs = events_of(env, ns, "q").await?;
    ensure!(
        evs.iter().any(
            |e| e.reporting_instance.as_deref() == Some(identity.as_str())
                && e.note.as_deref().is_some_and(|n| n.contains("Critical"))
        ),
        "the Critical crossing was not announced by the new leader {identity}: {:?}",
        evs.iter()
            .map(|e| (&e.reporting_instance, &e.note))
            .collect::<Vec<_>>()
    );
    matches_sim(env, ns, "q", project).await?;
    let events_after = events_elsewhere(env, ns).await?;
    ensure!(
        events_after == events_before,
        "Events elsewhere changed: {events_before:?} -> {events_after:?}"
    );
    eprintln!(
        "    standby took over {:.1}s after the leader's SIGKILL",
        takeover.as_secs_f64()
    );
    delete_all(env, ns, &["q"]).await
}

// ---------------------------------------------------------------------------------------------
// 4. Provider faults
// ---------------------------------------------------------------------------------------------

/// Name, project and the fault its project gets (None: the canary).
const PROVIDER_OBJECTS: [(&str, &str, Option<&str>); 9] = [
    ("canary", "p-fp-canary", None),
    (
        "throttle",
        "p-fp-throttle",
        Some(r#"{"kind": "throttle", "retry_after": 2}"#),
    ),
    (
        "throttle-long",
        "p-fp-throttle-long",
        Some(r#"{"kind": "throttle", "retry_after": 22}"#),
    ),
    (
        "upstream",
        "p-fp-5xx",
        Some(r#"{"kind": "status", "status": 503}"#),
    ),
    (
        "malformed",
        "p-fp-malformed",
        Some(r#"{"kind": "malformed_json"}"#),
    ),
    (
        "oversized",
        "p-fp-oversized",
        Some(r#"{"kind": "oversized", "bytes": 2000000}"#),
    ),
    (
        "reset",
        "p-fp-reset",
        Some(r#"{"kind": "connection_reset"}"#),
    ),
    (
        "latency",
        "p-fp-latency",
        Some(r#"{"kind": "latency", "ms": 4000}"#),
    ),
    (
        "drip",
        "p-fp-drip",
        Some(r#"{"kind": "slow_drip", "chunk_bytes": 16, "delay_ms": 300}"#),
    ),
];

fn project_of(name: &str) -> &'static str {
    PROVIDER_OBJECTS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, p, _)| *p)
        .unwrap()
}

/// Every fault at once, each on its own project, with a 2 s provider timeout: the right Ready
/// reason each, the last good resources kept, Retry-After honoured both between retries and
/// between polls, one Event per failure and per recovery, a canary that keeps updating, and
/// flat memory.
pub async fn fault_provider_errors(env: &mut Env) -> Result {
    let ns = "e2e-fault-provider";
    env.restart_operator_with(&["--http-timeout", "2s"]).await?;
    let result = provider_faults(env, ns).await;
    // Whatever happened: no faults left, the operator back on its default flags.
    let cleared = env.sim_clear_faults("evs").await;
    let restored = env.restart_operator_with(&[]).await;
    result?;
    cleared?;
    restored?;
    let names: Vec<&str> = PROVIDER_OBJECTS.iter().map(|(n, _, _)| *n).collect();
    delete_all(env, ns, &names).await
}

async fn provider_faults(env: &mut Env, ns: &str) -> Result {
    setup_ns(env, ns).await?;
    let objects: Vec<(&str, &str)> = PROVIDER_OBJECTS.iter().map(|(n, p, _)| (*n, *p)).collect();
    evs_objects(env, ns, &objects).await?;
    let mut baseline = BTreeMap::new();
    for (name, _) in &objects {
        baseline.insert(*name, resources(&env.get_cq(ns, name).await?));
    }
    let pid = env.operator_pid().ok_or("no operator")?;
    let rss_before = rss_kib(pid)?;

    let mut long_fault = 0;
    for (name, project, fault) in PROVIDER_OBJECTS {
        let Some(fault) = fault else { continue };
        let fault: Value = serde_json::from_str(fault).unwrap();
        // The 5xx burst is three answers: one poll's attempts; the retry poll succeeds.
        let count = (name == "upstream").then_some(3);
        let id = env
            .sim_fault(json!({"service": "evs", "key": project, "count": count, "fault": fault}))
            .await?;
        if name == "throttle-long" {
            long_fault = id;
        }
    }
    let counters = env.sim_counters().await?;
    let before = |project: &str| {
        counters["per_key"][format!("evs/{project}")]
            .as_u64()
            .unwrap_or(0)
    };
    let (throttle_before, long_before, upstream_before) = (
        before(project_of("throttle")),
        before(project_of("throttle-long")),
        before(project_of("upstream")),
    );
    for (name, _, fault) in PROVIDER_OBJECTS {
        if fault.is_some() {
            env.refresh(ns, name).await?;
        }
    }

    let env_ref: &Env = env;
    let (throttle, long, canary, others) = futures::join!(
        throttle_between_retries(env_ref, ns, throttle_before),
        throttle_between_polls(env_ref, ns, long_before, long_fault),
        canary_keeps_updating(env_ref, ns),
        other_faults(env_ref, ns, &baseline, upstream_before, pid, rss_before),
    );
    throttle?;
    let long = long?;
    let canary = canary?;
    let rss_growth = others?;

    // Faults cleared: every object recovers, each announced its failure once and its
    // recovery once; the canary announced nothing.
    env.sim_clear_faults("evs").await?;
    for (name, _, fault) in PROVIDER_OBJECTS {
        if fault.is_some() {
            env.refresh(ns, name).await?;
        }
    }
    // The 5xx burst and the long throttle failed one poll each: never reported.
    let mut expected: Vec<(&str, &[&str])> =
        vec![("canary", &[]), ("upstream", &[]), ("throttle-long", &[])];
    for (name, _, fault) in PROVIDER_OBJECTS {
        if fault.is_some() {
            env.wait_cq(ns, name, WAIT, is_ready).await?;
            if !matches!(name, "upstream" | "throttle-long") {
                expected.push((name, &["QuotaFetchFailed", "QuotaFetchRecovered"]));
            }
        }
    }
    expect_events(env, ns, &expected, Duration::from_secs(1)).await?;
    for (name, project) in &objects {
        matches_sim(env, ns, name, project).await?;
    }
    eprintln!(
        "    canary update latencies {canary:?}; throttled poll resumed {:.1}s after a 22s Retry-After; RSS +{} KiB",
        long.as_secs_f64(),
        rss_growth
    );
    Ok(())
}

/// Retry-After: 2 → the HTTP client's three attempts are ≥ 2 s apart and the next poll waits for
/// the failure backoff (5 s).
async fn throttle_between_retries(env: &Env, ns: &str, before: u64) -> Result {
    let project = project_of("throttle");
    // Wait until 8.5 s after the first request, then judge the spacing from the simulator's
    // own arrival times (sampling the counters from here would add this process's delays).
    let give_up = Instant::now() + Duration::from_secs(10);
    let mut first_seen: Option<Instant> = None;
    loop {
        let n = env.sim_requests_for("evs", project).await?;
        let now = Instant::now();
        if n > before && first_seen.is_none() {
            first_seen = Some(now);
        }
        match first_seen {
            Some(first) if now > first + Duration::from_millis(8500) => break,
            None if now > give_up => return Err("throttle: no request arrived".into()),
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let arrivals = env.sim_arrivals("evs", project).await?;
    let new = arrivals
        .len()
        .min((env.sim_requests_for("evs", project).await? - before) as usize);
    let arrivals = &arrivals[arrivals.len() - new..];
    let first = arrivals[0];
    let window: Vec<f64> = arrivals
        .iter()
        .filter(|a| **a <= first + 8500)
        .map(|a| (a - first) as f64 / 1000.0)
        .collect();
    ensure!(
        window.len() == 3,
        "throttle: {} requests within 8.5 s (arrivals at {window:?} s), want 3: attempts at 0, 2, 4 s, the next poll 5 s after the failure",
        window.len()
    );
    ensure!(
        window.windows(2).all(|w| w[1] - w[0] >= 2.0),
        "throttle: retries closer than the 2 s Retry-After: {window:?}"
    );
    // Reported by the second failed poll (a healthy object's first transient failure is not).
    let cq = env
        .wait_cq(ns, "throttle", WAIT, |c| failing_with(c, "Throttled"))
        .await?;
    ensure!(
        ready_cond(&cq).is_some_and(|(_, _, m)| m.contains("retry after 2s")),
        "throttle: Ready {:?}",
        ready_cond(&cq)
    );
    Ok(())
}

/// Retry-After: 22 (beyond the client's 20 s retry budget) → one attempt, and no poll until
/// 22 s have passed, although the failure backoff alone would retry after 5 s.
async fn throttle_between_polls(env: &Env, ns: &str, before: u64, fault: u64) -> Result<Duration> {
    let project = project_of("throttle-long");
    // One throttled poll of a healthy object is not reported (only a second failed answer
    // would be, and that is 22 s away): it shows in the request counts and the operator log.
    let n = env
        .eventually("throttle-long: the throttled attempt", WAIT, || async {
            let n = env.sim_requests_for("evs", project).await?;
            if n > before {
                Ok(n)
            } else {
                Err(format!("{n} requests"))
            }
        })
        .await?;
    let failed_at = Instant::now();
    env.eventually("throttle-long: the failure logged", WAIT, || async {
        let log = std::fs::read_to_string(&env.operator_log).map_err(|e| e.to_string())?;
        log.lines()
            .any(|l| {
                l.contains("quota poll failed")
                    && l.contains("throttle-long")
                    && l.contains("retry after 22s")
            })
            .then_some(())
            .ok_or_else(|| "no 'quota poll failed' line with 'retry after 22s'".to_string())
    })
    .await?;
    ensure!(
        n == before + 1,
        "throttle-long: {} attempts for a 22 s Retry-After (beyond the retry budget: 1)",
        n - before
    );
    tokio::time::sleep(Duration::from_secs(15)).await;
    let m = env.sim_requests_for("evs", project).await?;
    ensure!(
        m == n,
        "throttle-long: {} more requests within 15 s of a 22 s Retry-After",
        m - n
    );
    let cq = env.get_cq(ns, "throttle-long").await?;
    ensure!(
        is_ready(&cq),
        "throttle-long: one throttled poll was reported: Ready {:?}",
        ready_cond(&cq)
    );
    // The provider is fine again; the operator comes back by itself once Retry-After has passed.
    env.sim_remove_fault(fault).await?;
    env.eventually(
        "throttle-long: the next poll",
        Duration::from_secs(20),
        || async {
            let m = env.sim_requests_for("evs", project).await?;
            if m > n {
                Ok(())
            } else {
                Err(format!("{} requests", m - before))
            }
        },
    )
    .await?;
    let resumed = failed_at.elapsed();
    ensure!(
        resumed >= Duration::from_secs(21),
        "throttle-long: polled again {resumed:?} after a 22 s Retry-After"
    );
    env.wait_cq(ns, "throttle-long", WAIT, is_ready).await?;
    Ok(resumed)
}

/// The canary's usage changes arrive promptly while every other project misbehaves.
async fn canary_keeps_updating(env: &Env, ns: &str) -> Result<Vec<Duration>> {
    let mut took = Vec::new();
    for (i, u) in [11, 12, 13, 14].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(if i == 0 { 300 } else { 2500 })).await;
        env.sim_set("evs", project_of("canary"), "backups", None, u, None)
            .await?;
        let t = Instant::now();
        env.refresh(ns, "canary").await?;
        env.wait_cq(ns, "canary", Duration::from_secs(10), |c| {
            used(c, "backups") == Some(u) && is_ready(c)
        })
        .await?;
        took.push(t.elapsed());
    }
    // Head-of-line blocking behind a fault costs at least one 2 s HTTP timeout per attempt
    // (4 s for the latency fault, 22 s for the long throttle); a healthy update takes well under
    // a second, and up to a few on a loaded CI machine.
    ensure!(
        took.iter().all(|d| *d < Duration::from_secs(5)),
        "canary updates were slow during the faults: {took:?}"
    );
    Ok(took)
}

/// The remaining faults: their Ready reasons, last good resources kept, the 5xx burst's
/// recovery, then a burst of failing polls that must not grow the operator's memory.
async fn other_faults(
    env: &Env,
    ns: &str,
    baseline: &BTreeMap<&str, Vec<ResourceStatus>>,
    upstream_before: u64,
    pid: u32,
    rss_before: u64,
) -> Result<u64> {
    let cases: [(&str, &str, &str); 5] = [
        ("malformed", "InvalidResponse", "not valid JSON"),
        ("oversized", "InvalidResponse", "exceeds"),
        // A reset is reported as whichever step failed ("sending the request failed to ..").
        ("reset", "EndpointUnreachable", "failed to 127.0.0.1"),
        ("latency", "EndpointUnreachable", "timed out"),
        ("drip", "EndpointUnreachable", "timed out"),
    ];
    for (name, reason, text) in cases {
        // Reported by the second failed poll; one poll of the slow faults takes three 2 s
        // timeouts, so that is up to ~20 s after the first.
        let cq = env
            .wait_cq(ns, name, WAIT * 2, |c| failing_with(c, reason))
            .await?;
        let message = ready_cond(&cq).map(|r| r.2).unwrap_or_default();
        ensure!(
            message.contains(text),
            "{name}: Ready message {message:?} lacks {text:?}"
        );
        ensure!(
            resources(&cq) == baseline[name],
            "{name}: the last good resources were not kept: {:?}",
            cq.status
        );
    }
    // 5xx burst: three failed attempts (one poll), the backoff poll succeeds by itself. A
    // healthy object's single transient failure is not reported: no Event, Ready throughout.
    let project = project_of("upstream");
    env.eventually("upstream: the burst and the retry poll", WAIT, || async {
        let n = env.sim_requests_for("evs", project).await? - upstream_before;
        if n >= 4 {
            Ok(())
        } else {
            Err(format!("{n} requests"))
        }
    })
    .await?;
    let cq = env
        .wait_cq(ns, "upstream", WAIT, |c| {
            is_ready(c) && resources(c) == baseline["upstream"]
        })
        .await?;
    ensure!(
        ready_cond(&cq).is_some_and(|(_, r, _)| r == "Synced"),
        "upstream: Ready {:?}",
        ready_cond(&cq)
    );
    let failed = events_of(env, ns, "upstream").await?;
    ensure!(
        failed.is_empty(),
        "upstream: a single transient failure was announced: {:?}",
        failed.iter().map(|e| &e.note).collect::<Vec<_>>()
    );
    let n = env.sim_requests_for("evs", project).await? - upstream_before;
    ensure!(
        n == 4,
        "upstream: {n} requests for a burst of three 503s (want 3 attempts + 1 retry poll)"
    );

    // A burst of failing polls; memory stays flat.
    for _ in 0..15 {
        for name in ["malformed", "oversized", "reset"] {
            env.refresh(ns, name).await?;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (name, reason, _) in &cases[..3] {
        let cq = env.get_cq(ns, name).await?;
        ensure!(
            failing_with(&cq, reason) && resources(&cq) == baseline[name],
            "{name} after the burst: {:?}",
            cq.status
        );
    }
    let rss_after = rss_kib(pid)?;
    let growth = rss_after.saturating_sub(rss_before);
    ensure!(
        growth < 20 * 1024,
        "operator RSS grew {growth} KiB ({rss_before} -> {rss_after} KiB) through the fault burst"
    );
    Ok(growth)
}
