use std::process::ExitCode;

fn main() -> ExitCode {
    // Before the runtime's threads exist (see src/memory.rs).
    cloudquota::memory::limit_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
        .block_on(cloudquota::cli::main())
}
