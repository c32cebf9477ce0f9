//! GitOps health of live CloudQuota objects: the shipped definitions (deploy/gitops/) rated by
//! the engines GitOps tools run, through `gitops-health check` (hack/tools/gitops-health):
//! Argo CD's Lua VM running the script embedded in argocd-cm.yaml, kstatus (`status.Compute`),
//! and Flux's CEL status reader fed the Kustomization's healthCheckExprs. The same tool checks
//! the fixtures in tests/fixtures/gitops/ (hack/gitops-test.sh); this module points it at
//! objects the operator really wrote, so fixtures and operator cannot drift apart unnoticed.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::env::{Env, Result, root, run};

/// The verdict each engine must give (the strings the engines print: Argo CD `Healthy`,
/// `Progressing`, `Degraded`, `Suspended`; kstatus and Flux `Current`, `InProgress`, `Failed`,
/// `Unknown`). The table in README.md ("GitOps") lists them per state.
#[derive(Clone, Copy, Debug)]
#[allow(dead_code)]
pub struct Expect {
    pub argocd: &'static str,
    /// Substrings the Argo CD health message must contain (e.g. the failure reason, or the
    /// worst resource).
    pub argocd_message: &'static [&'static str],
    pub kstatus: &'static str,
    pub flux: &'static str,
}

/// The object as the API server returns it (`kubectl get -o json`: every field, also those the
/// typed `CloudQuota` would drop), for `check_health`.
#[allow(dead_code)]
pub fn live_object(env: &Env, ns: &str, name: &str) -> Result<Value> {
    let text = env.kubectl(&["get", "cloudquota", "-n", ns, name, "-o", "json"])?;
    serde_json::from_str(&text).map_err(|e| format!("kubectl get {ns}/{name} -o json: {e}"))
}

/// Rates every `(name, object, expectation)` with the three engines; `Err` lists every engine
/// whose verdict differs (with its message), or says why the tool could not run.
#[allow(dead_code)]
pub fn check_health(cases: &[(&str, Value, Expect)]) -> Result {
    if cases.is_empty() {
        return Err("check_health: no cases".into());
    }
    let input = Value::Array(
        cases
            .iter()
            .map(|(name, object, e)| {
                json!({
                    "name": name,
                    "object": object,
                    "expect": {
                        "argocd": e.argocd,
                        "argocdMessage": e.argocd_message,
                        "kstatus": e.kstatus,
                        "flux": e.flux,
                    },
                })
            })
            .collect(),
    );
    let gitops = root().join("deploy/gitops");
    let mut cmd = Command::new(gitops_health()?);
    cmd.arg("check")
        .arg("--argocd-cm")
        .arg(gitops.join("argocd-cm.yaml"))
        .arg("--kustomization")
        .arg(gitops.join("flux-kustomization.yaml"))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("{cmd:?}: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("gitops-health: no stdin")?
        .write_all(input.to_string().as_bytes())
        .map_err(|e| format!("gitops-health stdin: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("gitops-health: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Exit 1 is "some verdict differs", with the verdicts on stdout; anything else but 0 is a
    // failure to run (bad input, unreadable definitions).
    if !matches!(out.status.code(), Some(0 | 1)) {
        return Err(format!(
            "gitops-health failed ({}): {stderr}{stdout}",
            out.status
        ));
    }
    let results: Vec<Value> = serde_json::from_str(&stdout)
        .map_err(|e| format!("gitops-health output: {e}: {stdout}"))?;
    if results.len() != cases.len() {
        return Err(format!(
            "gitops-health rated {} of {} cases: {stdout}",
            results.len(),
            cases.len()
        ));
    }
    let mut bad = Vec::new();
    for r in &results {
        let name = r["name"].as_str().unwrap_or("?");
        if r["ok"] != json!(true) {
            let why: Vec<&str> = r["mismatches"]
                .as_array()
                .map(|m| m.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            bad.push(format!("{name}: {}", why.join("; ")));
        }
    }
    if !bad.is_empty() || !out.status.success() {
        return Err(format!(
            "GitOps health verdicts differ:\n  {}\n(exit {})",
            bad.join("\n  "),
            out.status
        ));
    }
    Ok(())
}

/// `gitops-health`, built by hack/build-tools.sh (cached; the bin dir is its last stdout line).
fn gitops_health() -> Result<PathBuf> {
    let out = run(Command::new(root().join("hack/build-tools.sh")).arg("gitops-health"))?;
    let dir = out
        .lines()
        .last()
        .ok_or("hack/build-tools.sh printed no bin dir")?;
    let bin = PathBuf::from(dir).join("gitops-health");
    if !bin.is_file() {
        return Err(format!("{} was not built", bin.display()));
    }
    Ok(bin)
}
