//! `cloudquota-sim`: the simulated Huawei Cloud + Zenlayer quota APIs as a process, for the
//! demo, e2e scripts and benchmarks. The first stdout line is exactly
//! `listening on http://127.0.0.1:PORT` (scripts parse it); logs go to stderr. See
//! `cloudquota_sim` (the library) for the APIs and the `/_sim/` admin endpoints.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use cloudquota_sim::{self as sim, BearerToken, Credential, SimConfig};

#[derive(Parser, Debug)]
#[command(
    name = "cloudquota-sim",
    version,
    about = "Simulated Huawei Cloud (IMS, DWS, EVS) and Zenlayer quota APIs on loopback"
)]
struct Args {
    /// Address to listen on; must be loopback. Port 0 picks a free port.
    #[arg(long, env = "CLOUDQUOTA_SIM_LISTEN", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,

    /// Extra access key as ACCOUNT:AK:SK (repeatable). Valid for Huawei and Zenlayer.
    #[arg(long = "credential", value_name = "ACCOUNT:AK:SK", value_parser = parse_credential)]
    credentials: Vec<Credential>,

    /// Extra Zenlayer bearer token as ACCOUNT:TOKEN (repeatable).
    #[arg(long = "token", value_name = "ACCOUNT:TOKEN", value_parser = parse_token)]
    tokens: Vec<BearerToken>,

    /// Do not accept the built-in demo access key and token.
    #[arg(long)]
    no_demo_credentials: bool,
}

fn parse_credential(s: &str) -> Result<Credential, String> {
    match s.splitn(3, ':').collect::<Vec<_>>().as_slice() {
        [account, ak, sk] if !account.is_empty() && !ak.is_empty() && !sk.is_empty() => {
            Ok(Credential::new(*account, *ak, *sk))
        }
        _ => Err("expected ACCOUNT:AK:SK with non-empty parts".into()),
    }
}

fn parse_token(s: &str) -> Result<BearerToken, String> {
    match s.split_once(':') {
        Some((account, token)) if !account.is_empty() && !token.is_empty() => {
            Ok(BearerToken::new(account, token))
        }
        _ => Err("expected ACCOUNT:TOKEN with non-empty parts".into()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    if !args.listen.ip().is_loopback() {
        eprintln!(
            "cloudquota-sim: refusing to listen on non-loopback address {}",
            args.listen
        );
        return ExitCode::from(2);
    }
    let mut config = SimConfig::default().listen(args.listen);
    if args.no_demo_credentials {
        config = config.without_demo_credentials();
    }
    config.credentials.extend(args.credentials);
    config.tokens.extend(args.tokens);
    let accounts: Vec<String> = config
        .credentials
        .iter()
        .map(|c| c.account.clone())
        .collect();

    let handle = match sim::start(config).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("cloudquota-sim: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {}", handle.base_url());
        let _ = out.flush();
    }
    tracing::info!(addr = %handle.addr(), ?accounts, "simulator started");

    wait_for_signal().await;
    tracing::info!("shutting down");
    handle.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
