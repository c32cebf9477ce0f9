//! The e2e environment: a real control plane (hack/controlplane.sh), the simulated cloud and
//! the operator as processes, the operator running under the Helm chart's RBAC. Everything is
//! torn down on drop, also when a scenario fails.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

use cloudquota::crd::CloudQuota;

pub const OPERATOR_NS: &str = "cloudquota-system";
pub const OPERATOR_SA: &str = "cloudquota";
pub type Result<T = ()> = std::result::Result<T, String>;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A binary of another workspace member (`CARGO_BIN_EXE_*` only names this package's own):
/// it sits in the same profile directory as this test executable (`target/<profile>/deps/..`).
/// `cargo test` at the root builds it (the workspace's default members include its package).
pub fn workspace_bin(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join(name))
        .ok_or_else(|| format!("no profile directory above {}", exe.display()))?;
    if !bin.is_file() {
        return Err(format!(
            "{} not built: run `cargo test --workspace` (or `cargo build -p {name}`) first",
            bin.display()
        ));
    }
    Ok(bin)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Env {
    pub dir: PathBuf,
    pub kubectl: PathBuf,
    pub admin_kubeconfig: PathBuf,
    pub operator_kubeconfig: PathBuf,
    pub admin: kube::Client,
    pub sim: Child,
    pub sim_url: String,
    pub operator: Option<Child>,
    pub metrics_port: u16,
    pub http: reqwest::Client,
    pub operator_log: PathBuf,
    operator_starts: u32,
    /// Extra `cloudquota run` flags for the next `start_operator` (e.g. `--http-timeout 2s`).
    pub operator_args: Vec<String>,
    /// Lease identity of `operator`.
    pub operator_identity: String,
}

fn parse_env_file(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("export ").or(Some(l.trim())))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.to_string(),
                v.trim_matches(|c| c == '"' || c == '\'').to_string(),
            )
        })
        .collect())
}

async fn client_for(kubeconfig: &Path) -> Result<kube::Client> {
    let kc = Kubeconfig::read_from(kubeconfig).map_err(|e| e.to_string())?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    kube::Client::try_from(cfg).map_err(|e| e.to_string())
}

impl Env {
    pub async fn start() -> Result<Env> {
        let dir = std::env::var("CLOUDQUOTA_E2E_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                std::env::temp_dir().join(format!("cloudquota-e2e-{}", std::process::id()))
            });
        let t = Instant::now();
        run(Command::new(root().join("hack/controlplane.sh"))
            .arg("start")
            .arg(&dir))?;
        eprintln!(
            "e2e: control plane up in {:.1}s ({})",
            t.elapsed().as_secs_f64(),
            dir.display()
        );
        let vars = parse_env_file(&dir.join("env"))?;
        let get = |k: &str| {
            vars.get(k)
                .cloned()
                .ok_or_else(|| format!("{k} missing from {}/env", dir.display()))
        };
        let kubectl = PathBuf::from(get("CLOUDQUOTA_KUBECTL")?);
        let admin_kubeconfig = PathBuf::from(get("KUBECONFIG")?);
        let admin = client_for(&admin_kubeconfig).await?;

        // The CRD exactly as committed, and the chart's RBAC exactly as its snapshot renders it.
        run(Command::new(&kubectl)
            .env("KUBECONFIG", &admin_kubeconfig)
            .args(["apply", "--server-side", "--field-manager=e2e", "-f"])
            .arg(root().join("crds/cloudquota.yaml")))?;
        run(Command::new(&kubectl)
            .env("KUBECONFIG", &admin_kubeconfig)
            .args([
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/cloudquotas.cloudquota.io",
            ]))?;
        let rbac = rbac_from_snapshot()?;
        let rbac_file = dir.join("operator-rbac.yaml");
        std::fs::write(&rbac_file, rbac).map_err(|e| e.to_string())?;
        let _ = run(Command::new(&kubectl)
            .env("KUBECONFIG", &admin_kubeconfig)
            .args(["create", "namespace", OPERATOR_NS]));
        run(Command::new(&kubectl)
            .env("KUBECONFIG", &admin_kubeconfig)
            .args(["apply", "--server-side", "--field-manager=e2e", "-f"])
            .arg(&rbac_file))?;
        let token = run(Command::new(&kubectl)
            .env("KUBECONFIG", &admin_kubeconfig)
            .args([
                "create",
                "token",
                OPERATOR_SA,
                "-n",
                OPERATOR_NS,
                "--duration=4h",
            ]))?;
        let server = get("CLOUDQUOTA_APISERVER_URL")?;
        let ca = get("CLOUDQUOTA_CA_FILE")?;
        let operator_kubeconfig = dir.join("operator.kubeconfig");
        std::fs::write(
            &operator_kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\nusers:\n- name: operator\n  user:\n    token: {}\ncontexts:\n- name: operator\n  context:\n    cluster: local\n    user: operator\n    namespace: default\ncurrent-context: operator\n",
                token.trim()
            ),
        )
        .map_err(|e| e.to_string())?;

        let mut sim = Command::new(workspace_bin("cloudquota-sim")?)
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            // In DIR, so that hack/controlplane.sh destroy keeps it with the other logs.
            .stderr(
                std::fs::File::create(dir.join("simulator.log"))
                    .map_err(|e| format!("simulator.log: {e}"))?,
            )
            .spawn()
            .map_err(|e| format!("cloudquota-sim: {e}"))?;
        let mut first = String::new();
        BufReader::new(sim.stdout.take().unwrap())
            .read_line(&mut first)
            .map_err(|e| e.to_string())?;
        let sim_url = first
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected sim output {first:?}"))?
            .to_string();

        let mut env = Env {
            operator_log: dir.join("operator.log"),
            dir,
            kubectl,
            admin_kubeconfig,
            operator_kubeconfig,
            admin,
            sim,
            sim_url,
            operator: None,
            metrics_port: free_port(),
            http: reqwest::Client::new(),
            operator_starts: 0,
            operator_args: Vec::new(),
            operator_identity: String::new(),
        };
        env.start_operator().await?;
        Ok(env)
    }

    pub async fn start_operator(&mut self) -> Result {
        self.operator_starts += 1;
        let identity = format!("e2e-{}", self.operator_starts);
        let child = self.spawn_operator(&identity, self.metrics_port)?;
        self.operator = Some(child);
        self.operator_identity = identity;
        // Ready once it holds the lease.
        self.eventually("operator is leader", Duration::from_secs(40), || async {
            let m = self.metrics().await?;
            (metric(&m, "cloudquota_leader") == Some(1.0))
                .then_some(())
                .ok_or_else(|| "not leader yet".to_string())
        })
        .await
    }

    /// One `cloudquota run` process (leader election on, the e2e flags plus `operator_args`),
    /// logging to `operator_log`.
    fn spawn_operator(&self, identity: &str, metrics_port: u16) -> Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.operator_log)
            .map_err(|e| e.to_string())?;
        // The e2e defaults, unless operator_args sets the flag itself.
        let defaults = [
            ("--lease-duration", "15s"),
            ("--secret-ttl", "1s"),
            ("--heartbeat", "10m"),
        ];
        let defaults = defaults
            .iter()
            .filter(|(flag, _)| !self.operator_args.iter().any(|a| a == flag))
            .flat_map(|(flag, value)| [*flag, *value]);
        Command::new(env!("CARGO_BIN_EXE_cloudquota"))
            .args([
                "run",
                "--allow-insecure-loopback",
                "--leader-elect",
                "--lease-namespace",
                OPERATOR_NS,
            ])
            .args(defaults)
            .args(&self.operator_args)
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .arg("--identity")
            .arg(identity)
            .env("KUBECONFIG", &self.operator_kubeconfig)
            // Trace level, so the secret-leak check reads everything the operator can log.
            .env(
                "RUST_LOG",
                "trace,hyper_util=debug,h2=info,tower=info,rustls=info",
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cloudquota run: {e}"))
    }

    /// SIGTERM and wait: a graceful stop that releases the lease.
    pub fn stop_operator(&mut self) -> Result {
        if let Some(mut child) = self.operator.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                    if !status.success() {
                        return Err(format!("operator exited with {status} on SIGTERM"));
                    }
                    return Ok(());
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    return Err("operator did not stop within 20s of SIGTERM".into());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    pub fn operator_running(&mut self) -> bool {
        self.operator
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        run(Command::new(&self.kubectl)
            .env("KUBECONFIG", &self.admin_kubeconfig)
            .args(args))
    }

    /// kubectl that may fail: (success, stdout+stderr).
    pub fn kubectl_try(&self, args: &[&str], stdin: Option<&str>) -> (bool, String) {
        use std::io::Write;
        let mut child = Command::new(&self.kubectl)
            .env("KUBECONFIG", &self.admin_kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    pub async fn namespace(&self, name: &str) -> Result {
        let api: Api<Namespace> = Api::all(self.admin.clone());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    pub async fn secret(&self, ns: &str, name: &str, data: &[(&str, &str)]) -> Result {
        let api: Api<Secret> = Api::namespaced(self.admin.clone(), ns);
        let string_data: BTreeMap<&str, &str> = data.iter().copied().collect();
        let s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque", "stringData": string_data});
        // Replace the whole data set: apply with the same manager drops keys no longer listed.
        api.patch(name, &PatchParams::apply("e2e").force(), &Patch::Apply(&s))
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    pub fn demo_secret(&self) -> [(&'static str, &'static str); 2] {
        [
            ("accessKeyId", cloudquota_sim::DEMO_ACCESS_KEY),
            ("secretAccessKey", cloudquota_sim::DEMO_SECRET_KEY),
        ]
    }

    pub async fn apply_cq(&self, ns: &str, name: &str, spec: Value) -> Result {
        let api: Api<CloudQuota> = Api::namespaced(self.admin.clone(), ns);
        let obj = json!({"apiVersion": "cloudquota.io/v1alpha1", "kind": "CloudQuota", "metadata": {"name": name}, "spec": spec});
        api.patch(
            name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&obj),
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(())
    }

    pub async fn delete_cq(&self, ns: &str, name: &str) -> Result {
        let api: Api<CloudQuota> = Api::namespaced(self.admin.clone(), ns);
        api.delete(name, &DeleteParams::default())
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    pub async fn get_cq(&self, ns: &str, name: &str) -> Result<CloudQuota> {
        let api: Api<CloudQuota> = Api::namespaced(self.admin.clone(), ns);
        api.get(name).await.map_err(|e| e.to_string())
    }

    /// Asks for an immediate poll through the refresh annotation.
    pub async fn refresh(&self, ns: &str, name: &str) -> Result {
        let api: Api<CloudQuota> = Api::namespaced(self.admin.clone(), ns);
        let v = format!(
            "{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let patch = json!({"metadata": {"annotations": {"cloudquota.io/refresh": v}}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Polls `check` every 200 ms until it succeeds or `timeout` passes.
    pub async fn eventually<F, Fut, T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            match check().await {
                Ok(v) => return Ok(v),
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("{what}: not within {timeout:?}: {e}"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Waits until the object's status satisfies `pred`, returning it.
    pub async fn wait_cq(
        &self,
        ns: &str,
        name: &str,
        timeout: Duration,
        pred: impl Fn(&CloudQuota) -> bool,
    ) -> Result<CloudQuota> {
        self.eventually(&format!("{ns}/{name}"), timeout, || async {
            let cq = self.get_cq(ns, name).await?;
            if pred(&cq) {
                Ok(cq)
            } else {
                Err(format!(
                    "status now: {}",
                    serde_json::to_string(&cq.status).unwrap()
                ))
            }
        })
        .await
    }

    pub async fn events(&self, ns: &str) -> Result<Vec<Event>> {
        let api: Api<Event> = Api::namespaced(self.admin.clone(), ns);
        Ok(api
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items)
    }

    pub async fn sim(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.sim_url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("sim {path}: {status} {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn sim_set(
        &self,
        service: &str,
        key: &str,
        resource: &str,
        zone: Option<&str>,
        used: i64,
        limit: Option<i64>,
    ) -> Result {
        let mut body = json!({"resource": resource, "used": used});
        if let Some(l) = limit {
            body["limit"] = json!(l);
        }
        if let Some(z) = zone {
            body["zone"] = json!(z);
        }
        self.sim(
            reqwest::Method::POST,
            &format!("/_sim/quota/{service}/{key}"),
            Some(body),
        )
        .await
        .map(|_| ())
    }

    /// Removes every fault injected for `service`.
    pub async fn sim_clear_faults(&self, service: &str) -> Result {
        let path = format!("/_sim/faults?service={service}");
        self.sim(reqwest::Method::DELETE, &path, None)
            .await
            .map(|_| ())
    }

    pub async fn sim_requests_for(&self, service: &str, key: &str) -> Result<u64> {
        let c = self
            .sim(reqwest::Method::GET, "/_sim/counters", None)
            .await?;
        Ok(c["per_key"][format!("{service}/{key}")]
            .as_u64()
            .unwrap_or(0))
    }

    /// The simulator's arrival times (Unix ms, oldest first) of the last requests for a key.
    pub async fn sim_arrivals(&self, service: &str, key: &str) -> Result<Vec<u64>> {
        let c = self
            .sim(reqwest::Method::GET, "/_sim/counters", None)
            .await?;
        Ok(c["recent"][format!("{service}/{key}")]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
            .unwrap_or_default())
    }

    pub async fn metrics(&self) -> Result<String> {
        let resp = self
            .http
            .get(format!("http://127.0.0.1:{}/metrics", self.metrics_port))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        resp.text().await.map_err(|e| e.to_string())
    }
}

/// The value of an unlabelled metric (or the first series of a family).
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The operator's RBAC objects from the chart's committed default snapshot.
fn rbac_from_snapshot() -> Result<String> {
    let text = std::fs::read_to_string(root().join("charts/cloudquota/snapshots/default.yaml"))
        .map_err(|e| e.to_string())?;
    let kinds = [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ];
    let docs: Vec<&str> = text
        .split("\n---")
        .filter(|d| {
            d.lines()
                .any(|l| kinds.iter().any(|k| l.trim() == format!("kind: {k}")))
        })
        .collect();
    if docs.len() < 5 {
        return Err(format!(
            "expected the chart's 5 RBAC objects in the snapshot, found {}",
            docs.len()
        ));
    }
    Ok(docs.join("\n---\n"))
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(mut c) = self.operator.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.sim.kill();
        let _ = self.sim.wait();
        if std::env::var_os("CLOUDQUOTA_E2E_KEEP").is_some() {
            eprintln!("e2e: keeping control plane in {}", self.dir.display());
            return;
        }
        // destroy copies DIR/*.log (API server, etcd, operator, simulator) there first.
        if let Some(a) = std::env::var_os("CLOUDQUOTA_ARTIFACTS_DIR") {
            let name = self.dir.file_name().unwrap_or_default();
            eprintln!("e2e: logs kept in {}", Path::new(&a).join(name).display());
        }
        let _ = Command::new(root().join("hack/controlplane.sh"))
            .arg("destroy")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A further operator process (a standby replica), with its own identity and metrics port.
/// Killed on drop unless handed to the Env with [`Env::adopt`].
pub struct Replica {
    child: Option<Child>,
    pub identity: String,
    pub metrics_port: u16,
}

impl Replica {
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Resident set size of a process in KiB (`VmRSS` of /proc/PID/status).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS for pid {pid}"))
}

/// The sum of every series of a metric family (0 when it has none yet).
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// Fault-injection helpers: the control plane's processes, more operator processes, the
/// simulator's fault rules.
impl Env {
    pub fn operator_pid(&self) -> Option<u32> {
        self.operator.as_ref().map(|c| c.id())
    }

    /// SIGKILL (no graceful shutdown, the Lease is not released) and reap.
    pub fn kill_operator(&mut self) -> Result {
        let mut child = self.operator.take().ok_or("no operator to kill")?;
        child.kill().map_err(|e| e.to_string())?;
        child.wait().map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Graceful stop, then start with these extra `cloudquota run` flags (empty: the defaults).
    pub async fn restart_operator_with(&mut self, args: &[&str]) -> Result {
        // Started again even when the stop went wrong, so later scenarios have an operator.
        let stopped = self.stop_operator();
        self.operator_args = args.iter().map(|a| a.to_string()).collect();
        let started = self.start_operator().await;
        stopped.and(started)
    }

    /// Starts one more operator process with its own identity and metrics port and waits until
    /// its /metrics answers (it is a standby while the Env's operator leads).
    pub async fn spawn_replica(&mut self) -> Result<Replica> {
        self.operator_starts += 1;
        let identity = format!("e2e-{}", self.operator_starts);
        let metrics_port = free_port();
        let child = self.spawn_operator(&identity, metrics_port)?;
        let replica = Replica {
            child: Some(child),
            identity,
            metrics_port,
        };
        self.eventually(
            "replica serves /metrics",
            Duration::from_secs(20),
            || async { self.metrics_at(metrics_port).await.map(|_| ()) },
        )
        .await?;
        Ok(replica)
    }

    /// [`Env::spawn_replica`] with another kubeconfig (another ServiceAccount, or the API
    /// server behind a proxy) and these extra flags instead of `operator_args`.
    pub async fn spawn_replica_with(
        &mut self,
        kubeconfig: &Path,
        args: &[&str],
    ) -> Result<Replica> {
        let kubeconfig = std::mem::replace(&mut self.operator_kubeconfig, kubeconfig.into());
        let args = std::mem::replace(
            &mut self.operator_args,
            args.iter().map(|a| a.to_string()).collect(),
        );
        let replica = self.spawn_replica().await;
        self.operator_kubeconfig = kubeconfig;
        self.operator_args = args;
        replica
    }

    /// The replica becomes the Env's operator (the current one must be gone already).
    pub fn adopt(&mut self, mut replica: Replica) -> Result {
        if self.operator_running() {
            return Err("adopt: the current operator still runs".into());
        }
        self.operator = replica.child.take();
        self.metrics_port = replica.metrics_port;
        self.operator_identity = replica.identity.clone();
        Ok(())
    }

    pub async fn metrics_at(&self, port: u16) -> Result<String> {
        let resp = self
            .http
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        resp.text().await.map_err(|e| e.to_string())
    }

    /// `hack/controlplane.sh CMD DIR` with `CLOUDQUOTA_CP_STOP_SIGNAL=signal` (e.g.
    /// `stop-apiserver`, `start-etcd`, `restart-apiserver`), off the async threads.
    pub async fn controlplane(&self, cmd: &str, signal: &str) -> Result<String> {
        let mut c = Command::new(root().join("hack/controlplane.sh"));
        c.arg(cmd)
            .arg(&self.dir)
            .env("CLOUDQUOTA_CP_STOP_SIGNAL", signal);
        tokio::task::spawn_blocking(move || run(&mut c))
            .await
            .map_err(|e| e.to_string())?
    }

    /// Waits until the API server answers /readyz with ok.
    pub async fn wait_apiserver_ready(&self, timeout: Duration) -> Result {
        self.eventually("kube-apiserver /readyz", timeout, || async {
            let (ok, out) =
                self.kubectl_try(&["get", "--raw=/readyz", "--request-timeout=3s"], None);
            if ok && out.trim() == "ok" {
                Ok(())
            } else {
                Err(out)
            }
        })
        .await
    }

    /// holderIdentity of the operator's Lease.
    pub async fn lease_holder(&self) -> Result<Option<String>> {
        use k8s_openapi::api::coordination::v1::Lease;
        let api: Api<Lease> = Api::namespaced(self.admin.clone(), OPERATOR_NS);
        let lease = api.get("cloudquota").await.map_err(|e| e.to_string())?;
        Ok(lease.spec.and_then(|s| s.holder_identity))
    }

    /// events.k8s.io Events of every namespace.
    pub async fn all_events(&self) -> Result<Vec<Event>> {
        let api: Api<Event> = Api::all(self.admin.clone());
        Ok(api
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items)
    }

    /// Installs a simulator fault rule (`{"service","key"?,"count"?,"fault":{"kind",..}}`).
    pub async fn sim_fault(&self, rule: Value) -> Result<u64> {
        let v = self
            .sim(reqwest::Method::POST, "/_sim/faults", Some(rule))
            .await?;
        v["id"]
            .as_u64()
            .ok_or_else(|| format!("no fault id in {v}"))
    }

    pub async fn sim_remove_fault(&self, id: u64) -> Result {
        self.sim(reqwest::Method::DELETE, &format!("/_sim/faults/{id}"), None)
            .await
            .map(|_| ())
    }

    /// Authenticated requests per `service/key`, all at one instant.
    pub async fn sim_counters(&self) -> Result<Value> {
        self.sim(reqwest::Method::GET, "/_sim/counters", None).await
    }
}
