use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    cloudquota::cli::main().await
}
