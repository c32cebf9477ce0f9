//! The operator under test as a child process (`cloudquota run`), logging to the workdir and
//! stopped with SIGTERM (then SIGKILL) on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ScaleArgs;
use crate::process::terminate;

pub struct Operator {
    pub child: Child,
    pid_file: PathBuf,
}

impl Operator {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            let _ = std::fs::remove_file(&self.pid_file);
            return;
        }
        terminate(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_file(&self.pid_file);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn free_port() -> Result<u16, String> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port())
}

/// Starts `cloudquota run` with its metrics on `port`; the pid goes to `operator.pid` in the
/// workdir (hack/bench.sh kills it from there if the bench dies).
pub fn start_operator(a: &ScaleArgs, port: u16) -> Result<Operator, String> {
    std::fs::create_dir_all(&a.workdir).map_err(|e| e.to_string())?;
    let log_path = a.workdir.join(format!("operator-n{}.log", a.n));
    let log_file = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    let err_file = log_file.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&a.operator_bin);
    cmd.args([
        "run",
        "--allow-insecure-loopback",
        "--metrics-addr",
        &format!("127.0.0.1:{port}"),
    ])
    .args(&a.operator_args)
    .env_remove("RUST_LOG")
    .stdin(Stdio::null())
    .stdout(Stdio::from(log_file))
    .stderr(Stdio::from(err_file));
    let child = cmd
        .spawn()
        .map_err(|e| format!("{}: {e}", a.operator_bin.display()))?;
    let pid_file = a.workdir.join("operator.pid");
    std::fs::write(&pid_file, format!("{}\n", child.id())).map_err(|e| e.to_string())?;
    Ok(Operator { child, pid_file })
}
