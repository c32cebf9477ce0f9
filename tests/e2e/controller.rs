//! Issue #12's controller defects, each proven on the real API server (and each failing on the
//! controller as it was before the reshaping; every scenario says why):
//!
//! 1. a deposed leader (cut off from the API server by a TCP proxy) writes nothing once a new
//!    leader has written: the API server's audit log is the witness, each replica told apart by
//!    its User-Agent `cloudquota/<version> (<identity>)`;
//! 2. an Event whose publish is denied is not lost: the status does not record the transition
//!    until the Event is out, then it appears exactly once;
//! 3. moving an object to another account compares nothing across accounts;
//! 4. `kubectl replace --force` (delete, create under the same name) keeps the new object's
//!    metric series through the sweep of the old uid;
//! 5. a persistent 403 on `cloudquotas/status` backs off per object;
//! 6. `/readyz` waits for the CloudQuota cache;
//! 7. SIGTERM with a hanging fetch: out within `--shutdown-timeout`, Lease released;
//! 8. EVS `reserved` counts against the limit.
//!
//! Scenarios that need other RBAC or another kubeconfig stop the suite's operator, run their
//! own replicas (own ServiceAccount or own path to the API server), and start the suite's
//! operator again whatever happened.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cloudquota::crd::Level;
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::cq::{ensure, events_of, huawei_spec, is_ready, level, resource, used};
use crate::env::{Env, OPERATOR_NS, OPERATOR_SA, Replica, Result, metric};

const WAIT: Duration = Duration::from_secs(20);
/// `--lease-duration` of the e2e operator.
const LEASE: Duration = Duration::from_secs(15);
/// Lease expiry plus the standby's next try on a loaded machine (as in faults.rs).
const TAKEOVER: Duration = Duration::from_secs(LEASE.as_secs() * 2);

// ---------------------------------------------------------------------------------------------
// Helpers: a TCP proxy that can be cut, the audit log, ServiceAccounts and RBAC, replicas
// ---------------------------------------------------------------------------------------------

/// A loopback TCP proxy in front of the API server. Cut: every open connection is dropped and
/// new ones are closed on accept; restored: connections pass again. TLS goes through untouched
/// (the serving certificate names 127.0.0.1; the port does not matter to it).
struct Proxy {
    port: u16,
    cut: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("proxy bind: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let (cut, cut_rx) = watch::channel(false);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                if *cut_rx.borrow() {
                    drop(inbound);
                    continue;
                }
                let mut cut = cut_rx.clone();
                tokio::spawn(async move {
                    let (mut inbound, Ok(mut outbound)) =
                        (inbound, TcpStream::connect(upstream).await)
                    else {
                        return;
                    };
                    // Ends when either side closes, on a cut, or when the proxy is dropped
                    // (the sender goes away and `wait_for` fails).
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        Ok(Proxy { port, cut, accept })
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn cut(&self) {
        self.cut.send_replace(true);
    }

    fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut.send_replace(true);
        self.accept.abort();
    }
}

/// One line of the API server's audit log, as far as these scenarios read it.
#[derive(Debug, Clone)]
struct Audit {
    at: Timestamp,
    verb: String,
    user: String,
    agent: String,
    resource: String,
    subresource: String,
    namespace: String,
    name: String,
    code: i64,
}

impl Audit {
    /// A status write or an Event write (what a deposed leader must not do).
    fn is_operator_write(&self) -> bool {
        let write = matches!(self.verb.as_str(), "create" | "patch" | "update");
        let status = self.resource == "cloudquotas" && self.subresource == "status";
        write && (status || self.resource == "events")
    }

    fn show(&self) -> String {
        format!(
            "{} {} {}/{} {}/{} by {:?} ({}) -> {}",
            self.at,
            self.verb,
            self.resource,
            self.subresource,
            self.namespace,
            self.name,
            self.agent,
            self.user,
            self.code
        )
    }
}

fn audit_path(env: &Env) -> PathBuf {
    env.dir.join("audit.log")
}

/// Where the audit log ends now: later reads start here.
fn audit_offset(env: &Env) -> Result<u64> {
    std::fs::metadata(audit_path(env))
        .map(|m| m.len())
        .map_err(|e| {
            format!(
                "the API server's audit log ({}): {e}",
                audit_path(env).display()
            )
        })
}

/// The audit entries written since `offset`.
fn audit_since(env: &Env, offset: u64) -> Result<Vec<Audit>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(audit_path(env)).map_err(|e| e.to_string())?;
    f.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
    let mut text = String::new();
    f.read_to_string(&mut text).map_err(|e| e.to_string())?;
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            let at: Timestamp = v["requestReceivedTimestamp"].as_str()?.parse().ok()?;
            Some(Audit {
                at,
                verb: s(&v["verb"]),
                user: s(&v["user"]["username"]),
                agent: s(&v["userAgent"]),
                resource: s(&v["objectRef"]["resource"]),
                subresource: s(&v["objectRef"]["subresource"]),
                namespace: s(&v["objectRef"]["namespace"]),
                name: s(&v["objectRef"]["name"]),
                code: v["responseStatus"]["code"].as_i64().unwrap_or(0),
            })
        })
        .collect())
}

/// The User-Agent part that names a replica (`cloudquota/<version> (<identity>)`).
fn agent_of(identity: &str) -> String {
    format!("({identity})")
}

fn sa_user(sa: &str) -> String {
    format!("system:serviceaccount:{OPERATOR_NS}:{sa}")
}

/// `kubectl apply` of one object (JSON).
fn apply(env: &Env, doc: Value) -> Result {
    let (ok, out) = env.kubectl_try(
        &["apply", "--server-side", "--field-manager=e2e", "-f", "-"],
        Some(&doc.to_string()),
    );
    ensure!(ok, "kubectl apply {doc}: {out}");
    Ok(())
}

/// The ClusterRoles the restricted operators are granted piece by piece (RBAC is additive:
/// to deny, a piece is simply not bound). Together they are the chart's ClusterRole.
fn cluster_roles(env: &Env) -> Result {
    let roles: [(&str, Value); 5] = [
        (
            "watch",
            json!({"apiGroups": ["cloudquota.io"], "resources": ["cloudquotas"], "verbs": ["get", "list", "watch"]}),
        ),
        (
            "status",
            json!({"apiGroups": ["cloudquota.io"], "resources": ["cloudquotas/status"], "verbs": ["get", "patch"]}),
        ),
        (
            "secrets",
            json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}),
        ),
        (
            "events-read",
            json!({"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["list", "patch"]}),
        ),
        (
            "events-create",
            json!({"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]}),
        ),
    ];
    for (name, rule) in roles {
        apply(
            env,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": format!("cq-e2e-{name}")}, "rules": [rule]}),
        )?;
    }
    Ok(())
}

/// Each piece of [`cluster_roles`] with the (verb, resource) that shows it is granted.
const PIECES: [(&str, (&str, &str)); 5] = [
    ("watch", ("watch", "cloudquotas.cloudquota.io")),
    ("status", ("patch", "cloudquotas.cloudquota.io/status")),
    ("secrets", ("get", "secrets")),
    ("events-read", ("list", "events.events.k8s.io")),
    ("events-create", ("create", "events.events.k8s.io")),
];

/// Grants `sa` in `ns` everything the chart's ClusterRole does except the piece `denied`.
async fn grant_all_but(env: &Env, ns: &str, sa: &str, denied: &str) -> Result {
    cluster_roles(env)?;
    for (piece, check) in PIECES.into_iter().filter(|(p, _)| *p != denied) {
        grant(env, ns, sa, piece, check).await?;
    }
    Ok(())
}

/// Binds ClusterRole `cq-e2e-<piece>` to ServiceAccount `sa` in namespace `ns`, and waits until
/// the authorizer says yes to `check` (verb, resource) there.
async fn grant(env: &Env, ns: &str, sa: &str, piece: &str, check: (&str, &str)) -> Result {
    apply(
        env,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": format!("{sa}-{piece}"), "namespace": ns},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": format!("cq-e2e-{piece}")},
               "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": OPERATOR_NS}]}),
    )?;
    let user = sa_user(sa);
    let mut args = vec!["auth", "can-i", check.0, "-n", ns, "--as", &user];
    let sub;
    match check.1.split_once('/') {
        Some((res, subresource)) => {
            sub = format!("--subresource={subresource}");
            args.extend([res, sub.as_str()]);
        }
        None => args.push(check.1),
    }
    env.eventually(
        &format!("RBAC: {sa} may {} {} in {ns}", check.0, check.1),
        Duration::from_secs(10),
        || async {
            let (_, out) = env.kubectl_try(&args, None);
            if out.trim() == "yes" {
                Ok(())
            } else {
                Err(out)
            }
        },
    )
    .await
}

/// The API server's URL and CA file, from the operator's kubeconfig.
fn apiserver(env: &Env) -> Result<(String, String)> {
    let kc =
        kube::config::Kubeconfig::read_from(&env.operator_kubeconfig).map_err(|e| e.to_string())?;
    let cluster = kc
        .clusters
        .first()
        .and_then(|c| c.cluster.clone())
        .ok_or("operator kubeconfig has no cluster")?;
    Ok((
        cluster.server.ok_or("no server")?,
        cluster.certificate_authority.ok_or("no CA file")?,
    ))
}

/// A kubeconfig for ServiceAccount `sa` (created if missing, with the chart's leader-election
/// Role) reaching the API server at `server` (default: directly).
async fn kubeconfig_for(env: &Env, sa: &str, server: Option<&str>) -> Result<PathBuf> {
    let (direct, ca) = apiserver(env)?;
    apply(
        env,
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": sa, "namespace": OPERATOR_NS}}),
    )?;
    if sa != OPERATOR_SA {
        apply(
            env,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": format!("{sa}-leader-election"), "namespace": OPERATOR_NS},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                               "name": "cloudquota-leader-election"},
                   "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": OPERATOR_NS}]}),
        )?;
    }
    let token = env.kubectl(&["create", "token", sa, "-n", OPERATOR_NS, "--duration=1h"])?;
    let path = env
        .dir
        .join(format!("{sa}-{}.kubeconfig", server.is_some()));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {}\n    certificate-authority: {ca}\nusers:\n- name: sa\n  user:\n    token: {}\ncontexts:\n- name: sa\n  context:\n    cluster: local\n    user: sa\n    namespace: default\ncurrent-context: sa\n",
            server.unwrap_or(&direct),
            token.trim()
        ),
    )
    .map_err(|e| e.to_string())?;
    Ok(path)
}

async fn leader_at(env: &Env, port: u16) -> Result<f64> {
    let m = env.metrics_at(port).await?;
    metric(&m, "cloudquota_leader").ok_or_else(|| "no cloudquota_leader".to_string())
}

async fn wait_leader(env: &Env, r: &Replica, timeout: Duration) -> Result {
    env.eventually(&format!("{} leads", r.identity), timeout, || async {
        match leader_at(env, r.metrics_port).await? {
            1.0 => Ok(()),
            l => Err(format!("cloudquota_leader {l}")),
        }
    })
    .await
}

async fn readyz(env: &Env, port: u16) -> Result<u16> {
    let resp = env
        .http
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    Ok(resp.status().as_u16())
}

/// Stops replicas gracefully (SIGTERM: the leader releases the Lease for the suite's operator).
async fn stop_replicas(replicas: Vec<Replica>) -> Result {
    let mut result = Ok(());
    for mut r in replicas {
        let Some(pid) = r.pid() else { continue };
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while r.running() {
            if Instant::now() > deadline {
                result = result.and(Err(format!(
                    "{} did not stop within 30s of SIGTERM",
                    r.identity
                )));
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    result
}

/// Runs `body` with the suite's operator stopped, and starts it again (default flags)
/// whatever happened.
async fn without_suite_operator<F>(env: &mut Env, body: F) -> Result
where
    F: AsyncFnOnce(&mut Env) -> Result,
{
    env.stop_operator()?;
    let result = body(env).await;
    env.operator_args.clear();
    let restored = env.start_operator().await;
    result.and(restored)
}

/// Runs `scenario` against one replica, in place of the suite's operator, that acts as `sa`
/// and watches only `ns`; the replica is stopped afterwards whatever the outcome.
async fn with_restricted_replica<F>(env: &mut Env, ns: &str, sa: &str, scenario: F) -> Result
where
    F: AsyncFnOnce(&Env, &Replica) -> Result,
{
    let kubeconfig = kubeconfig_for(env, sa, None).await?;
    without_suite_operator(env, async |env| {
        let r = env
            .spawn_replica_with(&kubeconfig, &["--watch-namespace", ns])
            .await?;
        let result = scenario(env, &r).await;
        result.and(stop_replicas(vec![r]).await)
    })
    .await
}

/// Asks for a poll of `ns/q` and waits until the simulator has an EVS request for `project`:
/// the poll is then in flight (held there by whatever fault the caller injected).
async fn refresh_until_polled(env: &Env, ns: &str, project: &str, what: &str) -> Result {
    let before = env.sim_requests_for("evs", project).await?;
    env.refresh(ns, "q").await?;
    env.eventually(what, WAIT, || async {
        let n = env.sim_requests_for("evs", project).await?;
        if n > before {
            Ok(())
        } else {
            Err(format!("{n} requests"))
        }
    })
    .await
}

async fn setup_ns(env: &Env, ns: &str) -> Result {
    env.namespace(ns).await?;
    env.secret(ns, "creds", &env.demo_secret()).await
}

fn evs_spec(env: &Env, project: &str) -> Value {
    huawei_spec(env, "evs", project)
}

/// The value of one per-resource series of an object (`cloudquota_resource_*`).
fn resource_metric(text: &str, family: &str, ns: &str, name: &str, res: &str) -> Option<f64> {
    let object = format!(r#"namespace="{ns}",name="{name}""#);
    let res = format!(r#"resource="{res}""#);
    text.lines()
        .filter(|l| l.starts_with(family) && l[family.len()..].starts_with('{'))
        .find(|l| l.contains(&object) && l.contains(&res))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The operator log from `offset` on.
fn log_since(env: &Env, offset: u64) -> String {
    let text = std::fs::read(&env.operator_log).unwrap_or_default();
    String::from_utf8_lossy(&text[(offset as usize).min(text.len())..]).into_owned()
}

fn log_offset(env: &Env) -> u64 {
    std::fs::metadata(&env.operator_log)
        .map(|m| m.len())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// 1. A deposed leader writes nothing
// ---------------------------------------------------------------------------------------------

/// Replica A leads through a TCP proxy, B stands by. A poll of A's is held by the provider when
/// the proxy is cut: A's Lease runs out, B takes over and writes. Then A's path is restored
/// while its held round is still pending. The audit log must show no status or Event write by
/// A's User-Agent after B's first write.
///
/// Before the reshaping this failed: kube-lease-manager only says "lost" once it sees another
/// holder, so A went on believing it led; when its path came back, its round (and the graceful
/// drain on loss) published the Event and patched status after B had.
pub async fn deposed_leader_writes_nothing(env: &mut Env) -> Result {
    let ns = "e2e-ctl-deposed";
    let project = "p-ctl-deposed";
    setup_ns(env, ns).await?;
    let (server, _) = apiserver(env)?;
    let upstream: SocketAddr = server
        .trim_start_matches("https://")
        .parse()
        .map_err(|e| format!("API server address {server}: {e}"))?;
    let proxy = Proxy::start(upstream).await?;
    // A uses the operator's own ServiceAccount; only its path to the API server differs.
    let via_proxy = kubeconfig_for(env, OPERATOR_SA, Some(&proxy.url())).await?;
    let direct = env.operator_kubeconfig.clone();
    without_suite_operator(env, async |env| {
        let mut replicas = Vec::new();
        let result = deposed(env, ns, project, &proxy, &via_proxy, &direct, &mut replicas).await;
        proxy.restore();
        let stopped = stop_replicas(replicas).await;
        result.and(stopped)
    })
    .await?;
    let _ = env.sim_clear_faults("evs").await;
    env.delete_cq(ns, "q").await
}

#[allow(clippy::too_many_arguments)]
async fn deposed(
    env: &mut Env,
    ns: &str,
    project: &str,
    proxy: &Proxy,
    via_proxy: &Path,
    direct: &Path,
    replicas: &mut Vec<Replica>,
) -> Result {
    let offset = audit_offset(env)?;
    // A's held poll must outlast the takeover and the restore, so its client may not time out.
    let a = env
        .spawn_replica_with(via_proxy, &["--http-timeout", "60s"])
        .await?;
    let (a_id, a_port) = (a.identity.clone(), a.metrics_port);
    replicas.push(a);
    env.eventually("A leads", Duration::from_secs(40), || async {
        match leader_at(env, a_port).await? {
            1.0 => Ok(()),
            l => Err(format!("cloudquota_leader {l}")),
        }
    })
    .await?;
    let b = env.spawn_replica_with(direct, &[]).await?;
    let (b_id, b_port) = (b.identity.clone(), b.metrics_port);
    replicas.push(b);

    env.sim_set("evs", project, "backups", None, 10, Some(100))
        .await?;
    env.apply_cq(ns, "q", evs_spec(env, project)).await?;
    env.wait_cq(ns, "q", WAIT, |c| {
        is_ready(c) && used(c, "backups") == Some(10)
    })
    .await?;
    // The audit log tells the replicas apart: A's writes so far carry its User-Agent.
    let a_agent = agent_of(&a_id);
    let b_agent = agent_of(&b_id);
    let a_wrote = env
        .eventually("A's status write in the audit log", WAIT, || async {
            let n = audit_since(env, offset)?
                .iter()
                .filter(|e| e.agent.contains(&a_agent) && e.is_operator_write())
                .count();
            if n > 0 {
                Ok(n)
            } else {
                Err("no status or Event write with A's User-Agent (does the operator's kube client send `cloudquota/<version> (<identity>)`?)".into())
            }
        })
        .await?;

    // A round in flight: a crossing, its poll held 40 s by the provider.
    const HELD: Duration = Duration::from_secs(40);
    env.sim_fault(json!({"service": "evs", "key": project, "count": 1,
                         "fault": {"kind": "latency", "ms": HELD.as_millis() as u64}}))
        .await?;
    env.sim_set("evs", project, "backups", None, 85, None)
        .await?;
    refresh_until_polled(env, ns, project, "A's poll reaches the provider").await?;
    let answered = Instant::now() + HELD;

    proxy.cut();
    let cut = Instant::now();
    env.eventually(
        "B takes over",
        TAKEOVER + Duration::from_secs(5),
        || async {
            match leader_at(env, b_port).await? {
                1.0 => Ok(()),
                l => Err(format!("cloudquota_leader {l}")),
            }
        },
    )
    .await?;
    let takeover = cut.elapsed();
    // B acts on the pending refresh by itself: its Event and status write.
    let b_first = env
        .eventually("B's first write", WAIT, || async {
            audit_since(env, offset)?
                .into_iter()
                .filter(|e| e.agent.contains(&b_agent) && e.is_operator_write())
                .map(|e| e.at)
                .min()
                .ok_or_else(|| "none yet".to_string())
        })
        .await?;
    ensure!(
        Instant::now() + Duration::from_secs(3) < answered,
        "the takeover took {takeover:?}: A's held poll ({HELD:?}) ends too soon to test its round"
    );
    proxy.restore();
    let restored = Timestamp::now();

    // A is back in touch (its requests reach the API server again), knows it does not lead,
    // and its held poll has been answered: a round still alive would have written by now.
    env.eventually(
        "A reconnected, deposed, its held poll answered",
        HELD + WAIT,
        || async {
            let back = audit_since(env, offset)?
                .iter()
                .any(|e| e.agent.contains(&a_agent) && e.at > restored);
            let leads = leader_at(env, a_port).await?;
            let waited = Instant::now() > answered + Duration::from_secs(3);
            if back && leads == 0.0 && waited {
                Ok(())
            } else {
                Err(format!(
                    "A's requests since the restore: {back}; A's cloudquota_leader {leads}; held poll answered +3s: {waited}"
                ))
            }
        },
    )
    .await?;
    let late: Vec<String> = audit_since(env, offset)?
        .iter()
        .filter(|e| e.agent.contains(&a_agent) && e.is_operator_write() && e.at > b_first)
        .map(Audit::show)
        .collect();
    ensure!(
        late.is_empty(),
        "the deposed leader {a_id} wrote after the new leader's first write ({b_first}):\n{}",
        late.join("\n")
    );
    // The crossing is announced once (by B) and recorded.
    let cq = env.get_cq(ns, "q").await?;
    ensure!(
        level(&cq, "backups") == Some(Level::Warning),
        "status: {:?}",
        cq.status
    );
    let exceeded: Vec<Option<String>> = events_of(env, ns, "q")
        .await?
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("ThresholdExceeded"))
        .map(|e| e.reporting_instance)
        .collect();
    ensure!(
        exceeded == [Some(b_id.clone())],
        "ThresholdExceeded Events by {exceeded:?}, want one by {b_id}"
    );
    eprintln!(
        "    A wrote {a_wrote} times before the cut; B led {:.1}s after it and first wrote at {b_first}",
        takeover.as_secs_f64()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2. A failed Event publish is not lost
// ---------------------------------------------------------------------------------------------

/// The operator may not create Events (its role lacks it) when usage crosses a threshold: the
/// status must not record the new level while the Event cannot go out, and once Events are
/// allowed the Event appears exactly once and the status shows the level.
///
/// Before: a failed publish was logged and the status written anyway, so the transition was
/// recorded and its Event never retried: lost.
pub async fn denied_event_is_not_lost(env: &mut Env) -> Result {
    let ns = "e2e-ctl-events";
    let project = "p-ctl-events";
    let sa = "cq-e2e-noevents";
    setup_ns(env, ns).await?;
    grant_all_but(env, ns, sa, "events-create").await?;
    with_restricted_replica(env, ns, sa, async |env, r| {
        event_denied(env, ns, project, sa, r).await
    })
    .await?;
    env.delete_cq(ns, "q").await
}

async fn event_denied(env: &Env, ns: &str, project: &str, sa: &str, r: &Replica) -> Result {
    wait_leader(env, r, Duration::from_secs(40)).await?;
    env.sim_set("evs", project, "backups", None, 10, Some(100))
        .await?;
    env.apply_cq(ns, "q", evs_spec(env, project)).await?;
    env.wait_cq(ns, "q", WAIT, |c| {
        used(c, "backups") == Some(10) && level(c, "backups") == Some(Level::Ok)
    })
    .await?;
    let offset = audit_offset(env)?;
    let user = sa_user(sa);
    env.sim_set("evs", project, "backups", None, 85, None)
        .await?;
    env.refresh(ns, "q").await?;
    // Two denied publishes (the first and its retry); after each, status still shows the old
    // level: nothing recorded the transition.
    for n in 1..=2 {
        env.eventually(&format!("denied Event publish #{n}"), WAIT, || async {
            let denied = audit_since(env, offset)?
                .iter()
                .filter(|e| {
                    e.user == user && e.resource == "events" && e.verb == "create" && e.code == 403
                })
                .count();
            if denied >= n {
                Ok(())
            } else {
                Err(format!("{denied} denied Event creates"))
            }
        })
        .await?;
        let cq = env.get_cq(ns, "q").await?;
        ensure!(
            used(&cq, "backups") == Some(10) && level(&cq, "backups") == Some(Level::Ok),
            "after denied publish #{n} the status recorded the crossing its Event could not announce: {:?}",
            resource(&cq, "backups", None)
        );
    }
    ensure!(
        events_of(env, ns, "q").await?.is_empty(),
        "an Event exists although creating Events is denied"
    );
    grant(
        env,
        ns,
        sa,
        "events-create",
        ("create", "events.events.k8s.io"),
    )
    .await?;
    // The retry after two failures comes 10-12 s later.
    env.wait_cq(ns, "q", Duration::from_secs(30), |c| {
        used(c, "backups") == Some(85) && level(c, "backups") == Some(Level::Warning)
    })
    .await?;
    // Events go out before the status write that records them: it is there now.
    let evs = events_of(env, ns, "q").await?;
    let got: Vec<(Option<String>, bool)> = evs
        .iter()
        .map(|e| (e.reason.clone(), e.series.is_some()))
        .collect();
    ensure!(
        got == [(Some("ThresholdExceeded".to_string()), false)],
        "Events after Events were allowed: {got:?}, want exactly one ThresholdExceeded"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. Editing the target compares nothing across accounts
// ---------------------------------------------------------------------------------------------

/// An object on project A (backups Warning at 85/100) is moved to project B (backups 10/200,
/// gigabytes Critical). Only Events about B's own state may follow: gigabytes exceeded. No
/// ThresholdRecovered (A's backups were Warning, B's never were) and no LimitChanged (100 is
/// A's limit, 200 B's). Status and metrics show B.
///
/// Before: the new account's answer was compared with the old account's status.
pub async fn retarget_emits_no_false_events(env: &mut Env) -> Result {
    let ns = "e2e-ctl-retarget";
    let (a, b) = ("p-ctl-retarget-a", "p-ctl-retarget-b");
    setup_ns(env, ns).await?;
    env.sim_set("evs", a, "backups", None, 85, Some(100))
        .await?;
    env.sim_set("evs", b, "backups", None, 10, Some(200))
        .await?;
    env.sim_set("evs", b, "gigabytes", None, 41000, Some(42790))
        .await?;
    env.apply_cq(ns, "q", evs_spec(env, a)).await?;
    env.wait_cq(ns, "q", WAIT, |c| {
        level(c, "backups") == Some(Level::Warning)
    })
    .await?;
    let on_a: Vec<String> = events_of(env, ns, "q")
        .await?
        .into_iter()
        .filter_map(|e| e.metadata.name)
        .collect();
    ensure!(
        on_a.len() == 1,
        "Events on A: {on_a:?}, want one ThresholdExceeded"
    );

    env.apply_cq(ns, "q", evs_spec(env, b)).await?;
    let cq = env
        .wait_cq(ns, "q", WAIT, |c| {
            used(c, "backups") == Some(10)
                && resource(c, "backups", None).and_then(|r| r.limit) == Some(200)
                && c.status.as_ref().and_then(|s| s.observed_generation) == c.metadata.generation
        })
        .await?;
    ensure!(
        level(&cq, "backups") == Some(Level::Ok)
            && level(&cq, "gigabytes") == Some(Level::Critical),
        "levels on B: {:?}",
        cq.status.as_ref().map(|s| &s.resources)
    );
    // The round's Events were published before its status write, so they are all there.
    let after: Vec<(String, String)> = events_of(env, ns, "q")
        .await?
        .into_iter()
        .filter(|e| !on_a.contains(e.metadata.name.as_ref().unwrap_or(&String::new())))
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect();
    ensure!(
        after.len() == 1
            && after[0].0 == "ThresholdExceeded"
            && after[0].1.starts_with("gigabytes is Critical"),
        "Events after moving to B: {after:?}; want only B's own gigabytes crossing (nothing compares A with B)"
    );
    env.eventually("metrics show B", WAIT, || async {
        let m = env.metrics().await?;
        let got = (
            resource_metric(&m, "cloudquota_resource_used", ns, "q", "backups"),
            resource_metric(&m, "cloudquota_resource_limit", ns, "q", "backups"),
        );
        if got == (Some(10.0), Some(200.0)) {
            Ok(())
        } else {
            Err(format!("backups used/limit series {got:?}"))
        }
    })
    .await?;
    env.delete_cq(ns, "q").await
}

// ---------------------------------------------------------------------------------------------
// 4. Delete and re-create under the same name
// ---------------------------------------------------------------------------------------------

/// `kubectl replace --force`: the object is deleted and created again at once (new uid). The
/// sweep (every 15 s) that forgets the old uid must leave the new object's series alone.
///
/// Before: per-object state and series were keyed by name, so forgetting the old object
/// removed the series the new one publishes under the same labels.
pub async fn recreated_object_keeps_series(env: &mut Env) -> Result {
    let ns = "e2e-ctl-recreate";
    let project = "p-ctl-recreate";
    setup_ns(env, ns).await?;
    env.sim_set("evs", project, "backups", None, 10, Some(100))
        .await?;
    env.apply_cq(ns, "q", evs_spec(env, project)).await?;
    let old = env
        .wait_cq(ns, "q", WAIT, |c| {
            is_ready(c) && used(c, "backups") == Some(10)
        })
        .await?;
    let series = async |want: f64| -> Result {
        let m = env.metrics().await?;
        let used = resource_metric(&m, "cloudquota_resource_used", ns, "q", "backups");
        let ready = m.lines().any(|l| {
            l.starts_with("cloudquota_ready{")
                && l.contains(&format!(r#"namespace="{ns}",name="q""#))
        });
        if used == Some(want) && ready {
            Ok(())
        } else {
            Err(format!(
                "backups used series {used:?}, cloudquota_ready series present: {ready}"
            ))
        }
    };
    env.eventually("the first object's series", WAIT, || series(10.0))
        .await?;
    env.delete_cq(ns, "q").await?;
    env.apply_cq(ns, "q", evs_spec(env, project)).await?;
    // The new object reads the same account: the fresh shared answer serves it at once.
    let new = env
        .wait_cq(ns, "q", WAIT, |c| {
            is_ready(c) && used(c, "backups") == Some(10)
        })
        .await?;
    ensure!(
        new.metadata.uid != old.metadata.uid,
        "the object was not re-created"
    );
    env.eventually("the new object's series", WAIT, || series(10.0))
        .await?;
    // Watch the series through one whole sweep period: the old uid is forgotten in it (if it
    // was not already), and the series must be there at every scrape.
    let sweep = Duration::from_secs(16);
    let t = Instant::now();
    let mut scrapes = 0;
    while t.elapsed() < sweep {
        series(10.0)
            .await
            .map_err(|e| format!("{:.1}s after the re-create: {e}", t.elapsed().as_secs_f64()))?;
        scrapes += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ensure!(scrapes > 10, "only {scrapes} scrapes in {sweep:?}");
    env.delete_cq(ns, "q").await
}

// ---------------------------------------------------------------------------------------------
// 5. A persistent 403 on status backs off per object
// ---------------------------------------------------------------------------------------------

/// The operator may not patch `cloudquotas/status`. Its attempts for the one object, counted
/// in the audit log over 50 s from the first, back off (5, 10, 20, 40 s): at most 4. And a
/// retry lists no Events.
///
/// Before: every failed reconcile was retried after 5-10 s (at least 6 attempts in 50 s), and
/// each retry polled again and listed the object's Events to de-duplicate the crossing.
pub async fn status_forbidden_backs_off(env: &mut Env) -> Result {
    let ns = "e2e-ctl-status-denied";
    let project = "p-ctl-status-denied";
    let sa = "cq-e2e-nostatus";
    setup_ns(env, ns).await?;
    grant_all_but(env, ns, sa, "status").await?;
    // A crossing is waiting, so a poll would have an Event to announce (and de-duplicate).
    env.sim_set("evs", project, "backups", None, 85, Some(100))
        .await?;
    with_restricted_replica(env, ns, sa, async |env, r| {
        forbidden(env, ns, project, sa, r).await
    })
    .await?;
    env.delete_cq(ns, "q").await
}

async fn forbidden(env: &Env, ns: &str, project: &str, sa: &str, r: &Replica) -> Result {
    wait_leader(env, r, Duration::from_secs(40)).await?;
    let offset = audit_offset(env)?;
    let user = sa_user(sa);
    env.apply_cq(ns, "q", evs_spec(env, project)).await?;
    let count = || -> Result<(Vec<Timestamp>, usize)> {
        let entries = audit_since(env, offset)?;
        let patches = entries
            .iter()
            .filter(|e| {
                e.user == user
                    && e.verb == "patch"
                    && e.resource == "cloudquotas"
                    && e.subresource == "status"
                    && e.name == "q"
            })
            .map(|e| e.at)
            .collect();
        let lists = entries
            .iter()
            .filter(|e| e.user == user && e.resource == "events" && e.verb == "list")
            .count();
        Ok((patches, lists))
    };
    let first = env
        .eventually("the first (denied) status patch", WAIT, || async {
            count()?
                .0
                .first()
                .copied()
                .ok_or_else(|| "none".to_string())
        })
        .await?;
    let window = Duration::from_secs(50);
    let end = first + window;
    // Observed until 50 s after the first attempt (a fast failure is reported at once).
    loop {
        let (patches, lists) = count()?;
        let inside: Vec<&Timestamp> = patches.iter().filter(|t| **t <= end).collect();
        ensure!(
            inside.len() <= 4,
            "{} status patch attempts within {window:?} of the first (at {:?}): no backoff",
            inside.len(),
            patches
                .iter()
                .map(|t| format!("+{:.1}s", t.duration_since(first).as_secs_f64()))
                .collect::<Vec<_>>()
        );
        ensure!(
            lists <= 1,
            "{lists} Event LISTs while the status write keeps failing (one per retry?)"
        );
        if Timestamp::now() > end + Duration::from_secs(1) {
            ensure!(
                inside.len() >= 3,
                "only {} attempts in {window:?}: the object is not retried (want 0, ~5, ~15, ~35 s)",
                inside.len()
            );
            let cq = env.get_cq(ns, "q").await?;
            ensure!(cq.status.is_none(), "status was written: {:?}", cq.status);
            eprintln!(
                "    status patch attempts at {:?} after the first",
                inside
                    .iter()
                    .map(|t| format!("{:.1}s", t.duration_since(first).as_secs_f64()))
                    .collect::<Vec<_>>()
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Readiness waits for the cache
// ---------------------------------------------------------------------------------------------

/// The operator leads but may not list CloudQuotas: `/readyz` answers 503 and the watch error
/// is logged as a WARN. Once the list is allowed, the cache syncs, `/readyz` answers 200 and the
/// object waiting there is reconciled.
///
/// Before: an elected operator was ready as soon as its Lease manager was built, with an empty
/// cache, and watch errors were logged at debug level.
pub async fn readyz_waits_for_cache(env: &mut Env) -> Result {
    let ns = "e2e-ctl-readyz";
    let project = "p-ctl-readyz";
    let sa = "cq-e2e-nolist";
    setup_ns(env, ns).await?;
    grant_all_but(env, ns, sa, "watch").await?;
    env.sim_set("evs", project, "backups", None, 10, Some(100))
        .await?;
    env.apply_cq(ns, "q", evs_spec(env, project)).await?;
    let kubeconfig = kubeconfig_for(env, sa, None).await?;
    without_suite_operator(env, async |env| {
        let log = log_offset(env);
        let r = env
            .spawn_replica_with(&kubeconfig, &["--watch-namespace", ns])
            .await?;
        let result = not_ready(env, ns, sa, &r, log).await;
        result.and(stop_replicas(vec![r]).await)
    })
    .await?;
    env.delete_cq(ns, "q").await
}

async fn not_ready(env: &Env, ns: &str, sa: &str, r: &Replica, log: u64) -> Result {
    wait_leader(env, r, Duration::from_secs(40)).await?;
    // Leading, the list forbidden: not ready at every look until the watch error has been
    // logged twice (the watch is retried, and the operator stays unready through it).
    let deadline = Instant::now() + WAIT;
    loop {
        let code = readyz(env, r.metrics_port).await?;
        ensure!(
            code == 503,
            "/readyz {code} while the CloudQuota list is forbidden"
        );
        let warns = log_since(env, log)
            .lines()
            .filter(|l| {
                l.contains("WARN") && l.contains("controller error") && l.contains("forbidden")
            })
            .count();
        if warns >= 2 {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "no WARN about the forbidden CloudQuota watch within {WAIT:?} ({warns} lines)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let code = readyz(env, r.metrics_port).await?;
    ensure!(
        code == 503,
        "/readyz {code} while the CloudQuota list is forbidden"
    );
    grant(env, ns, sa, "watch", ("list", "cloudquotas.cloudquota.io")).await?;
    // The watch is retried within 3 s.
    env.eventually("/readyz 200 once the list is allowed", WAIT, || async {
        match readyz(env, r.metrics_port).await? {
            200 => Ok(()),
            c => Err(format!("/readyz {c}")),
        }
    })
    .await?;
    env.wait_cq(ns, "q", WAIT, is_ready).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 7. Shutdown is bounded and hands over at once
// ---------------------------------------------------------------------------------------------

/// SIGTERM while the leader's poll hangs (the provider holds it 120 s, the HTTP timeout is
/// 60 s): the process exits within `--shutdown-timeout` (8 s) plus a little, with exit code 0,
/// and leaves the Lease released, so the standby leads at once instead of after its expiry.
///
/// Before: shutdown waited for every in-flight reconcile, here a minute of hanging poll.
pub async fn shutdown_is_bounded(env: &mut Env) -> Result {
    let ns = "e2e-ctl-shutdown";
    let project = "p-ctl-shutdown";
    const GRACE: Duration = Duration::from_secs(8);
    setup_ns(env, ns).await?;
    let flags = ["--http-timeout", "60s", "--shutdown-timeout", "8s"];
    env.restart_operator_with(&flags).await?;
    let result = async {
        env.sim_set("evs", project, "backups", None, 10, Some(100))
            .await?;
        env.apply_cq(ns, "q", evs_spec(env, project)).await?;
        env.wait_cq(ns, "q", WAIT, is_ready).await?;
        let mut standby = env.spawn_replica().await?;
        env.sim_fault(json!({"service": "evs", "key": project, "count": 1,
                             "fault": {"kind": "latency", "ms": 120_000}}))
            .await?;
        refresh_until_polled(env, ns, project, "the poll hangs at the provider").await?;
        let old = env.operator_identity.clone();
        let mut child = env.operator.take().ok_or("no operator")?;
        let t = Instant::now();
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let status = env
            .eventually(
                "the leader exits on SIGTERM",
                Duration::from_secs(40),
                || {
                    let s = child.try_wait().map_err(|e| e.to_string());
                    async move { s?.ok_or_else(|| "running".to_string()) }
                },
            )
            .await;
        let took = t.elapsed();
        if status.is_err() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let status = status?;
        ensure!(
            took <= GRACE + Duration::from_secs(6),
            "exited {took:?} after SIGTERM; --shutdown-timeout is {GRACE:?}"
        );
        ensure!(status.success(), "exit status {status} after SIGTERM");
        let holder = env.lease_holder().await?;
        ensure!(
            holder.as_deref() != Some(old.as_str()),
            "the Lease still names {old} after its exit: not released"
        );
        let port = standby.metrics_port;
        env.eventually("the standby leads", Duration::from_secs(12), || async {
            match leader_at(env, port).await? {
                1.0 => Ok(()),
                l => Err(format!("cloudquota_leader {l}")),
            }
        })
        .await?;
        let handover = t.elapsed();
        ensure!(standby.running(), "the standby exited");
        env.adopt(standby)?;
        eprintln!(
            "    exited {:.1}s after SIGTERM (hanging poll); the standby led {:.1}s after it",
            took.as_secs_f64(),
            handover.as_secs_f64()
        );
        Ok(())
    }
    .await;
    let cleared = env.sim_clear_faults("evs").await;
    let restored = env.restart_operator_with(&[]).await;
    result?;
    cleared?;
    restored?;
    env.delete_cq(ns, "q").await
}

// ---------------------------------------------------------------------------------------------
// 8. EVS reserved
// ---------------------------------------------------------------------------------------------

/// EVS reports 70 used and 20 reserved of 100: 90 count against the limit, so 10 are
/// available, usage is 90 % and the level Warning.
///
/// Before: `reserved` was shown but not counted (30 available, 70 %, Ok).
pub async fn evs_reserved_counts(env: &mut Env) -> Result {
    let ns = "e2e-ctl-reserved";
    let project = "p-ctl-reserved";
    setup_ns(env, ns).await?;
    env.sim(
        reqwest::Method::PUT,
        &format!("/_sim/quota/evs/{project}"),
        Some(json!({"resources": [
            {"name": "backups", "used": 70, "limit": 100, "reserved": 20},
            {"name": "volumes", "used": 5, "limit": 100, "reserved": 0}
        ]})),
    )
    .await?;
    env.apply_cq(ns, "q", evs_spec(env, project)).await?;
    let cq = env
        .wait_cq(ns, "q", WAIT, |c| {
            is_ready(c) && used(c, "backups") == Some(70)
        })
        .await?;
    let r = resource(&cq, "backups", None).ok_or("no backups")?;
    ensure!(
        r.reserved == Some(20)
            && r.available == Some(10)
            && r.usage_percent == Some(90.0)
            && r.level == Level::Warning,
        "backups: reserved {:?}, available {:?}, usage {:?}%, level {:?}; want 20, 10, 90, Warning",
        r.reserved,
        r.available,
        r.usage_percent,
        r.level
    );
    let v = resource(&cq, "volumes", None).ok_or("no volumes")?;
    ensure!(
        v.available == Some(95) && v.level == Level::Ok,
        "volumes: {v:?}"
    );
    env.delete_cq(ns, "q").await
}
