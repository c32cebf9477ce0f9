//! Command line: `cloudquota crd | run | fetch | check | top`, also installed as the kubectl
//! plugin `kubectl-cloudquota` (the same binary under that name: `kubectl cloudquota top`).

mod top;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kube::CustomResourceExt;

use crate::controller::{self, LeaderElection, RunConfig, Settings};
use crate::crd::{CloudQuota, Provider, ResourceStatus, Service, Thresholds};
use crate::domain::allowlist::{Allowlist, DEFAULT_ALLOWED_HOSTS};
use crate::domain::check::{self, Need, Verdict};
use crate::domain::duration;
use crate::domain::status::resource_label;
use crate::domain::thresholds::Policy;
use crate::providers::http::{HttpClient, HttpConfig};
use crate::providers::{self, Credentials, Providers, Target};
use crate::sign::SecretString;

#[derive(Parser, Debug)]
#[command(
    name = "cloudquota",
    version,
    about = "Cloud provider quotas as Kubernetes objects"
)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, env = "CLOUDQUOTA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the CloudQuota CustomResourceDefinition as YAML.
    Crd,
    /// Run the operator.
    Run(RunArgs),
    /// Read one quota endpoint once and print it (no cluster needed).
    Fetch(FetchArgs),
    /// Pre-check: will the needed amounts fit? Reads a CloudQuota's status from the cluster.
    Check(CheckArgs),
    /// The fullest resources across CloudQuotas, sorted by usage (reads their status).
    Top(top::TopArgs),
}

/// The plugin name kubectl runs for `kubectl cloudquota ...`.
pub const KUBECTL_PLUGIN: &str = "kubectl-cloudquota";

/// Parses the command line; invoked as `kubectl-cloudquota` (as kubectl runs plugins), help
/// and errors name the command `kubectl cloudquota`.
fn parse_cli() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let stem = std::path::Path::new(&argv0)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned());
    let mut command = Cli::command();
    if stem.as_deref() == Some(KUBECTL_PLUGIN) {
        command = command.bin_name("kubectl cloudquota");
    }
    Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    duration::parse(s).map_err(|e| e.to_string())
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Allowed endpoint host glob (repeatable). Replaces the default list of the providers'
    /// official domains.
    #[arg(long = "allowed-host", value_name = "GLOB")]
    pub allowed_hosts: Vec<String>,
    /// Allow plain http:// to loopback hosts (tests and the demo only).
    #[arg(long)]
    pub allow_insecure_loopback: bool,
    /// Unchanged status is rewritten this often as a heartbeat.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub heartbeat: Duration,
    /// Reconciles running at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: u16,
    /// Only watch these namespaces (repeatable; default all).
    #[arg(long = "watch-namespace", value_name = "NS")]
    pub watch_namespaces: Vec<String>,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Use a Lease so only one replica polls and writes.
    #[arg(long)]
    pub leader_elect: bool,
    #[arg(long, default_value = "cloudquota")]
    pub lease_name: String,
    /// Namespace of the Lease (default: $POD_NAMESPACE, else `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Lease duration. Leadership also ends when no renewal could be confirmed within two
    /// thirds of it (the renew deadline), so a replica cut off from the API server stops
    /// writing before a standby may take over.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// On SIGTERM, in-flight reconciles get this long before they are cut off and the Lease is
    /// released: keep it below the pod's terminationGracePeriodSeconds.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Also export each resource's effective warning and critical thresholds as ratios
    /// (`cloudquota_resource_warning_ratio`, `cloudquota_resource_critical_ratio`), for
    /// dashboards that draw threshold lines. Two more series per resource.
    #[arg(long)]
    pub export_thresholds: bool,
    /// Identity for the Lease and Events (default: $POD_NAME, else the host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Extra PEM CA bundle for provider endpoints (private clouds).
    #[arg(long)]
    pub ca_bundle: Option<PathBuf>,
    /// Timeout of one provider request.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub http_timeout: Duration,
    /// Fraction of the interval added at random to each poll, spreading a fleet's requests.
    #[arg(long, default_value_t = 0.1)]
    pub jitter: f64,
    /// How long a credentials Secret read is shared by the objects that use it.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub secret_ttl: Duration,
    /// Publish cluster-autoscaler CapacityQuotas for CloudQuotas with `spec.capacityQuota`
    /// (watches Nodes; needs the chart's capacityQuota RBAC).
    #[arg(long)]
    pub capacity_quotas: bool,
    /// Namespace whose CloudQuotas may publish CapacityQuotas (repeatable; none by default).
    /// A CapacityQuota limits scale-up cluster-wide: trust only namespaces of cluster admins.
    #[arg(
        long = "capacity-quota-namespace",
        value_name = "NS",
        requires = "capacity_quotas"
    )]
    pub capacity_quota_namespaces: Vec<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct FetchArgs {
    #[arg(long, value_parser = parse_provider)]
    pub provider: Provider,
    #[arg(long, value_parser = parse_service)]
    pub service: Service,
    #[arg(long)]
    pub region: Option<String>,
    #[arg(long)]
    pub project_id: Option<String>,
    /// Endpoint URL override. Plain http:// is accepted for loopback hosts only.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Zenlayer zone filter (repeatable).
    #[arg(long = "zone")]
    pub zones: Vec<String>,
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub timeout: Duration,
    #[arg(long)]
    pub ca_bundle: Option<PathBuf>,
    #[arg(long, env = "CLOUDQUOTA_ACCESS_KEY_ID", hide_env_values = true)]
    pub access_key_id: Option<String>,
    #[arg(
        long,
        env = "CLOUDQUOTA_SECRET_ACCESS_KEY",
        hide_env_values = true,
        hide = true
    )]
    pub secret_access_key: Option<String>,
    #[arg(
        long,
        env = "CLOUDQUOTA_SECURITY_TOKEN",
        hide_env_values = true,
        hide = true
    )]
    pub security_token: Option<String>,
    #[arg(
        long,
        env = "CLOUDQUOTA_BEARER_TOKEN",
        hide_env_values = true,
        hide = true
    )]
    pub bearer_token: Option<String>,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// CloudQuota name.
    pub name: String,
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// RESOURCE[@ZONE]=N (repeatable), e.g. volumes_SSD=10.
    #[arg(long = "need", required = true)]
    pub needs: Vec<Need>,
    /// Answer Unknown when the data may be older than this. Default: three times the
    /// object's interval. The age is judged by the operator's Lease while it is fresh (the
    /// operator writes status only on change), else by lastSyncTime.
    #[arg(long, value_parser = parse_duration)]
    pub max_age: Option<Duration>,
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

fn parse_provider(s: &str) -> Result<Provider, String> {
    match s {
        "huaweicloud" => Ok(Provider::Huaweicloud),
        "zenlayer" => Ok(Provider::Zenlayer),
        _ => Err("expected huaweicloud or zenlayer".into()),
    }
}

fn parse_service(s: &str) -> Result<Service, String> {
    match s {
        "ims" => Ok(Service::Ims),
        "dws" => Ok(Service::Dws),
        "evs" => Ok(Service::Evs),
        "ecs" => Ok(Service::Ecs),
        "vm" => Ok(Service::Vm),
        _ => Err("expected ims, dws, evs, ecs or vm".into()),
    }
}

/// The CRD as the YAML committed in `crds/cloudquota.yaml`.
pub fn crd_yaml() -> String {
    let yaml = serde_yaml::to_string(&CloudQuota::crd()).expect("CRD serialises");
    format!("---\n{yaml}")
}

fn init_logging(format: LogFormat, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

pub async fn main() -> ExitCode {
    let cli = parse_cli();
    match cli.command {
        Command::Crd => {
            print!("{}", crd_yaml());
            ExitCode::SUCCESS
        }
        Command::Run(args) => {
            init_logging(cli.log_format, "info,kube_lease_manager=warn");
            match run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "operator failed");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Fetch(args) => {
            init_logging(cli.log_format, "warn");
            match fetch(args).await {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Top(args) => {
            init_logging(cli.log_format, "warn");
            match top::top(args).await {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check(args) => {
            init_logging(cli.log_format, "warn");
            match check(args).await {
                Ok((text, code)) => {
                    print!("{text}");
                    ExitCode::from(code)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// The operator's Kubernetes client. Its User-Agent names the replica, so the API server's
/// audit log tells the replicas' writes apart (who wrote after losing the Lease?).
async fn operator_client(identity: &str) -> Result<kube::Client, String> {
    let mut config = kube::Config::infer()
        .await
        .map_err(|e| format!("Kubernetes client: {e}"))?;
    let agent = format!("cloudquota/{} ({identity})", env!("CARGO_PKG_VERSION"));
    if let Ok(v) = http::HeaderValue::from_str(&agent) {
        config.headers.push((http::header::USER_AGENT, v));
    }
    kube::Client::try_from(config).map_err(|e| format!("Kubernetes client: {e}"))
}

async fn run(args: RunArgs) -> Result<(), String> {
    let hosts: Vec<String> = if args.allowed_hosts.is_empty() {
        DEFAULT_ALLOWED_HOSTS
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        args.allowed_hosts.clone()
    };
    let allowlist =
        Allowlist::new(&hosts, args.allow_insecure_loopback).map_err(|e| e.to_string())?;
    if !(0.0..=1.0).contains(&args.jitter) {
        return Err("--jitter must be between 0 and 1".into());
    }
    if args.leader_elect && args.lease_duration < Duration::from_secs(5) {
        // Renewed every fifth and confirmed within two thirds of it: shorter Leases leave no
        // room for an API round trip.
        return Err("--lease-duration must be at least 5s".into());
    }
    let identity = args
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("cloudquota-{}", std::process::id()));
    let client = operator_client(&identity).await?;
    let lease_namespace = args
        .lease_namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let config = RunConfig {
        settings: Settings {
            allowlist,
            heartbeat: args.heartbeat,
            jitter: args.jitter,
            secret_ttl: args.secret_ttl,
            operator_lease: args
                .leader_elect
                .then(|| format!("{}/{}", lease_namespace, args.lease_name)),
        },
        http: HttpConfig {
            timeout: args.http_timeout,
            ca_bundle: args.ca_bundle,
            allow_loopback: args.allow_insecure_loopback,
            ..HttpConfig::default()
        },
        concurrency: args.concurrency,
        namespaces: args.watch_namespaces,
        metrics_addr: args.metrics_addr,
        leader_election: args.leader_elect.then(|| LeaderElection {
            lease_name: args.lease_name.clone(),
            lease_namespace: lease_namespace.clone(),
            lease_duration: args.lease_duration,
        }),
        identity,
        export_thresholds: args.export_thresholds,
        shutdown_timeout: args.shutdown_timeout,
        capacity: args.capacity_quotas.then(|| controller::capacity::Config {
            trusted_namespaces: args.capacity_quota_namespaces.clone(),
        }),
    };
    tracing::info!(
        allowed_hosts = ?hosts,
        insecure_loopback = args.allow_insecure_loopback,
        namespaces = ?config.namespaces,
        leader_election = args.leader_elect,
        "starting cloudquota operator"
    );
    controller::run(client, config)
        .await
        .map_err(|e| e.to_string())
}

fn fetch_credentials(args: &FetchArgs) -> Result<Credentials, String> {
    let nonempty = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    match (nonempty(&args.access_key_id), nonempty(&args.secret_access_key), nonempty(&args.bearer_token)) {
        (Some(ak), Some(sk), _) => Ok(Credentials::AccessKey {
            access_key_id: ak,
            secret_access_key: SecretString::from(sk),
            security_token: nonempty(&args.security_token).map(SecretString::from),
        }),
        (None, None, Some(t)) => Ok(Credentials::Bearer(SecretString::from(t))),
        (Some(_), None, _) | (None, Some(_), _) => Err("set both CLOUDQUOTA_ACCESS_KEY_ID and CLOUDQUOTA_SECRET_ACCESS_KEY".into()),
        (None, None, None) => Err("no credentials: set CLOUDQUOTA_ACCESS_KEY_ID + CLOUDQUOTA_SECRET_ACCESS_KEY, or CLOUDQUOTA_BEARER_TOKEN".into()),
    }
}

/// `cloudquota fetch`: resources in exactly the `status.resources` shape.
pub async fn fetch(args: FetchArgs) -> Result<String, String> {
    let valid = matches!(
        (args.provider, args.service),
        (
            Provider::Huaweicloud,
            Service::Ims | Service::Dws | Service::Evs | Service::Ecs
        ) | (Provider::Zenlayer, Service::Vm)
    );
    if !valid {
        return Err(format!(
            "service {} is not offered by provider {}",
            args.service, args.provider
        ));
    }
    if args.provider == Provider::Huaweicloud && args.project_id.is_none() {
        return Err("--project-id is required for huaweicloud".into());
    }
    let creds = fetch_credentials(&args)?;
    let endpoint = match &args.endpoint {
        Some(e) => e.clone(),
        None => providers::default_endpoint(args.provider, args.service, args.region.as_deref())
            .map_err(|e| e.to_string())?,
    };
    // The CLI trusts its user with any https host, but plain http only for loopback.
    let allow = Allowlist::new(&["*"], true).map_err(|e| e.to_string())?;
    let url = allow.check(&endpoint).map_err(|e| e.to_string())?;
    let http = HttpClient::new(&HttpConfig {
        timeout: args.timeout,
        ca_bundle: args.ca_bundle.clone(),
        allow_loopback: true,
        ..HttpConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let target = Target {
        provider: args.provider,
        service: args.service,
        endpoint: url,
        project_id: args.project_id.clone(),
        zones: args.zones.clone(),
    };
    let sample = Providers::default()
        .fetch(&http, &target, &creds)
        .await
        .map_err(|e| format!("{}: {e}", e.reason()))?;
    let policy = Policy::new(&Thresholds::default()).map_err(|e| e.to_string())?;
    let resources = crate::domain::status::resources(&sample, &policy, &[]);
    Ok(match args.output {
        Output::Json => {
            let v = serde_json::json!({
                "provider": args.provider,
                "service": args.service,
                "endpoint": sample.endpoint,
                "resources": resources,
            });
            format!(
                "{}\n",
                serde_json::to_string_pretty(&v).expect("serialisable")
            )
        }
        Output::Table => format!(
            "{} {} {}\n{}",
            args.provider,
            args.service,
            sample.endpoint,
            resource_table(&resources)
        ),
    })
}

/// A plain aligned table of resources.
pub fn resource_table(resources: &[ResourceStatus]) -> String {
    let mut rows = vec![[
        "RESOURCE".to_string(),
        "USED".into(),
        "LIMIT".into(),
        "USAGE".into(),
        "AVAILABLE".into(),
        "LEVEL".into(),
    ]];
    for r in resources {
        let unit = r
            .unit
            .as_deref()
            .map(|u| format!(" {u}"))
            .unwrap_or_default();
        rows.push([
            resource_label(&r.name, r.zone.as_deref()),
            format!("{}{unit}", r.used),
            r.limit
                .map(|l| format!("{l}{unit}"))
                .unwrap_or_else(|| "unlimited".into()),
            r.usage_percent
                .map(|p| format!("{p:.1}%"))
                .unwrap_or_else(|| "-".into()),
            r.available
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".into()),
            r.level.to_string(),
        ]);
    }
    table(&rows)
}

fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// When the operator last renewed its Lease (`namespace/name`), if it still holds it. Not
/// being allowed to read it is no error: `check` then judges by `lastSyncTime` alone.
async fn lease_renewal(client: &kube::Client, lease: &str) -> Option<k8s_openapi::jiff::Timestamp> {
    let (ns, name) = lease.split_once('/')?;
    let api: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(client.clone(), ns);
    let spec = api.get_opt(name).await.ok()??.spec?;
    spec.holder_identity.as_ref()?;
    spec.renew_time.map(|t| t.0)
}

async fn check(args: CheckArgs) -> Result<(String, u8), String> {
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("Kubernetes client: {e}"))?;
    let ns = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let api: kube::Api<CloudQuota> = kube::Api::namespaced(client.clone(), &ns);
    let cq = api
        .get_opt(&args.name)
        .await
        .map_err(|e| format!("reading CloudQuota {ns}/{}: {e}", args.name))?;
    let results = match &cq {
        Some(cq) => {
            let lease = cq.status.as_ref().and_then(|s| s.operator_lease.as_deref());
            let lease_renewed = match lease {
                Some(l) => lease_renewal(&client, l).await,
                None => None,
            };
            let observed = check::Observed {
                status: cq.status.as_ref(),
                generation: cq.metadata.generation,
                interval: crate::controller::validate::interval(cq),
                lease_renewed,
            };
            check::evaluate_observed(
                &observed,
                &args.needs,
                args.max_age,
                k8s_openapi::jiff::Timestamp::now(),
            )
        }
        None => args
            .needs
            .iter()
            .map(|n| check::NeedResult {
                need: n.clone(),
                verdict: Verdict::Unknown,
                reason: format!("CloudQuota {ns}/{} not found", args.name),
                used: None,
                limit: None,
                left_after: None,
            })
            .collect(),
    };
    let code = check::exit_code(&results);
    let text = match args.output {
        Output::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(
                &serde_json::json!({"namespace": ns, "name": args.name, "results": results})
            )
            .expect("serialisable")
        ),
        Output::Table => {
            let mut rows = vec![["NEED".to_string(), "VERDICT".into(), "REASON".into()]];
            for r in &results {
                rows.push([
                    format!(
                        "{}={}",
                        resource_label(&r.need.resource, r.need.zone.as_deref()),
                        r.need.amount
                    ),
                    format!("{:?}", r.verdict),
                    r.reason.clone(),
                ]);
            }
            table(&rows)
        }
    };
    Ok((text, code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_parses() {
        Cli::try_parse_from([
            "cloudquota",
            "run",
            "--allowed-host",
            "*.x",
            "--heartbeat",
            "5m",
            "--leader-elect",
        ])
        .unwrap();
        Cli::try_parse_from([
            "cloudquota",
            "check",
            "q",
            "-n",
            "ns",
            "--need",
            "volumes=1",
            "--need",
            "image@z=2",
            "-o",
            "json",
        ])
        .unwrap();
        assert!(Cli::try_parse_from(["cloudquota", "check", "q", "--need", "volumes"]).is_err());
        assert!(
            Cli::try_parse_from([
                "cloudquota",
                "fetch",
                "--provider",
                "aws",
                "--service",
                "ims"
            ])
            .is_err()
        );
    }

    #[test]
    fn table_aligns() {
        let t = table(&[["A".to_string(), "B".into()], ["long".into(), "x".into()]]);
        assert_eq!(t, "A     B\nlong  x\n");
    }
}
