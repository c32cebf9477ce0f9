//! Command line: `cloudquota crd | run | fetch | check`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kube::CustomResourceExt;

use crate::crd::CloudQuota;

#[derive(Parser, Debug)]
#[command(
    name = "cloudquota",
    version,
    about = "Cloud provider quotas as Kubernetes objects"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the CloudQuota CustomResourceDefinition as YAML.
    Crd,
}

/// The CRD as the YAML committed in `crds/cloudquota.yaml`.
pub fn crd_yaml() -> String {
    let yaml = serde_yaml::to_string(&CloudQuota::crd()).expect("CRD serialises");
    format!("---\n{yaml}")
}

pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", crd_yaml());
            ExitCode::SUCCESS
        }
    }
}
