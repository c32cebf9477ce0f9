//! The kubectl plugin (`kubectl cloudquota ...`, the operator binary installed as
//! `kubectl-cloudquota`) run by the real kubectl, and the Grafana dashboard's metric names
//! against a live /metrics scrape.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use cloudquota::crd::Level;
use serde_json::Value;

use crate::cq::{ensure, huawei_spec, is_ready, level};
use crate::env::{Env, Result, root};

const POLL: Duration = Duration::from_secs(20);

/// A directory holding `kubectl-cloudquota`, a symlink to the operator binary (the krew
/// layout: the same binary under the plugin's name).
fn plugin_dir(env: &Env) -> Result<PathBuf> {
    let dir = env.dir.join("plugin-bin");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let link = dir.join("kubectl-cloudquota");
    if !link.exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_cloudquota"), &link)
            .map_err(|e| format!("symlink {}: {e}", link.display()))?;
    }
    Ok(dir)
}

/// `kubectl ARGS` with the plugin on PATH: (exit code, stdout, stderr).
fn kubectl_plugin(env: &Env, args: &[&str]) -> Result<(i32, String, String)> {
    let path = format!(
        "{}:{}",
        plugin_dir(env)?.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(&env.kubectl)
        .env("KUBECONFIG", &env.admin_kubeconfig)
        .env("PATH", path)
        .args(args)
        .output()
        .map_err(|e| format!("kubectl {args:?}: {e}"))?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Two CloudQuotas in two namespaces at Warning (90%) and Critical (97%), one Ok (10%).
async fn fleet(env: &mut Env) -> Result {
    for (ns, project, used) in [
        ("e2e-top-a", "p-top-a", 90),
        ("e2e-top-b", "p-top-b", 97),
        ("e2e-top-b", "p-top-c", 10),
    ] {
        env.namespace(ns).await?;
        env.secret(ns, "creds", &env.demo_secret()).await?;
        env.sim_set("ims", project, "image", None, used, Some(100))
            .await?;
        env.apply_cq(ns, project, huawei_spec(env, "ims", project))
            .await?;
    }
    for (ns, name, want) in [
        ("e2e-top-a", "p-top-a", Level::Warning),
        ("e2e-top-b", "p-top-b", Level::Critical),
        ("e2e-top-b", "p-top-c", Level::Ok),
    ] {
        env.wait_cq(ns, name, POLL, |c| {
            is_ready(c) && level(c, "image") == Some(want)
        })
        .await?;
    }
    Ok(())
}

/// `kubectl cloudquota top`: the fullest resources across namespaces, sorted by usage, with
/// the level filter; `kubectl cloudquota check` works through the plugin too.
pub async fn kubectl_plugin_top(env: &mut Env) -> Result {
    fleet(env).await?;
    let (code, list, err) = kubectl_plugin(env, &["plugin", "list"])?;
    ensure!(
        code == 0 && list.contains("kubectl-cloudquota"),
        "kubectl plugin list ({code}): {list}{err}"
    );

    let (code, out, err) = kubectl_plugin(
        env,
        &[
            "cloudquota",
            "top",
            "-A",
            "--level",
            "Warning",
            "-o",
            "json",
        ],
    )?;
    ensure!(code == 0, "top -A -o json exited {code}: {err}");
    let rows: Vec<Value> = serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))?;
    // Other scenarios' objects may be listed too; ours must be in this order.
    let ours: Vec<(String, String, f64, String)> = rows
        .iter()
        .filter(|r| {
            r["namespace"]
                .as_str()
                .unwrap_or("")
                .starts_with("e2e-top-")
        })
        .map(|r| {
            (
                format!(
                    "{}/{}",
                    r["namespace"].as_str().unwrap_or(""),
                    r["name"].as_str().unwrap_or("")
                ),
                r["resource"].as_str().unwrap_or("").to_string(),
                r["usagePercent"].as_f64().unwrap_or(-1.0),
                r["level"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    ensure!(
        ours == [
            (
                "e2e-top-b/p-top-b".to_string(),
                "image".to_string(),
                97.0,
                "Critical".to_string()
            ),
            (
                "e2e-top-a/p-top-a".to_string(),
                "image".to_string(),
                90.0,
                "Warning".to_string()
            ),
        ],
        "top -A --level Warning: {ours:?}\n{out}"
    );
    let usage: Vec<f64> = rows
        .iter()
        .map(|r| r["usagePercent"].as_f64().unwrap_or(-1.0))
        .collect();
    ensure!(
        usage.windows(2).all(|w| w[0] >= w[1]),
        "not sorted by usage: {usage:?}"
    );
    ensure!(
        rows.iter()
            .all(|r| r["level"] != "Ok" && r["level"] != "Unlimited"),
        "--level Warning listed lower levels: {out}"
    );
    let first = rows
        .iter()
        .find(|r| r["name"] == "p-top-b")
        .ok_or("p-top-b missing")?;
    ensure!(
        first["used"] == 97
            && first["limit"] == 100
            && first["provider"] == "huaweicloud"
            && first["service"] == "ims"
            && first["region"] == "cn-north-4",
        "row: {first}"
    );

    // The table, one namespace (no NAMESPACE column), every level.
    let (code, table, err) = kubectl_plugin(env, &["cloudquota", "top", "-n", "e2e-top-b"])?;
    ensure!(code == 0, "top -n exited {code}: {err}");
    let lines: Vec<&str> = table.lines().collect();
    let header: Vec<&str> = lines.first().unwrap_or(&"").split_whitespace().collect();
    ensure!(
        header
            == [
                "CLOUDQUOTA",
                "RESOURCE",
                "USED/LIMIT",
                "USAGE",
                "LEVEL",
                "PROVIDER",
                "SERVICE",
                "REGION"
            ],
        "header: {table}"
    );
    ensure!(
        lines.len() == 3
            && lines[1].split_whitespace().collect::<Vec<_>>()
                == [
                    "p-top-b",
                    "image",
                    "97/100",
                    "97.0%",
                    "Critical",
                    "huaweicloud",
                    "ims",
                    "cn-north-4"
                ]
            && lines[2].starts_with("p-top-c")
            && lines[2].contains("10/100"),
        "table:\n{table}"
    );
    let (code, table, _) = kubectl_plugin(
        env,
        &[
            "cloudquota",
            "top",
            "-n",
            "e2e-top-b",
            "--level",
            "Exhausted",
        ],
    )?;
    ensure!(
        code == 0 && table.starts_with("No matching resources in namespace e2e-top-b"),
        "--level Exhausted: {table}"
    );

    // Help names the kubectl form; check's exit codes pass through kubectl.
    let (code, help, _) = kubectl_plugin(env, &["cloudquota", "top", "--help"])?;
    ensure!(
        code == 0 && help.contains("kubectl cloudquota top"),
        "help: {help}"
    );
    let (code, out, err) = kubectl_plugin(
        env,
        &[
            "cloudquota",
            "check",
            "p-top-b",
            "-n",
            "e2e-top-b",
            "--need",
            "image=5",
        ],
    )?;
    ensure!(
        code == 1 && out.contains("NotAvailable"),
        "check image=5 at 97/100: exit {code}: {out}{err}"
    );
    let (code, out, err) = kubectl_plugin(
        env,
        &[
            "cloudquota",
            "check",
            "p-top-c",
            "-n",
            "e2e-top-b",
            "--need",
            "image=2",
        ],
    )?;
    ensure!(
        code == 0,
        "check image=2 at 10/100: exit {code}: {out}{err}"
    );
    Ok(())
}

/// Every metric the Grafana dashboard queries is exported by the live operator, and the level
/// series agrees with the status.
pub async fn dashboard_metrics_exported(env: &mut Env) -> Result {
    // Objects at Warning, Critical and Ok: level series, Events, polls, upstream requests.
    if env.get_cq("e2e-top-b", "p-top-b").await.is_err() {
        fleet(env).await?;
    }
    let bin = env
        .kubectl
        .parent()
        .map(|d| d.join("dashboard-check"))
        .ok_or("no tools bin dir")?;
    ensure!(
        bin.is_file(),
        "{} is missing: build it with hack/build-tools.sh dashboard-check",
        bin.display()
    );
    let dashboard = root().join("charts/cloudquota/files/grafana-dashboard.json");
    let names = crate::env::run(Command::new(&bin).arg("--metrics").arg(&dashboard))?;
    let wanted: Vec<&str> = names.lines().filter(|l| !l.is_empty()).collect();
    ensure!(
        wanted.len() >= 10 && wanted.contains(&"cloudquota_resource_level"),
        "dashboard metrics: {wanted:?}"
    );
    let exported = |text: &str| -> std::collections::BTreeSet<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.split(['{', ' ']).next())
            .map(str::to_string)
            .collect()
    };
    let text = env
        .eventually("every dashboard metric exported", POLL, || async {
            let text = env.metrics().await?;
            let have = exported(&text);
            let missing: Vec<&&str> = wanted.iter().filter(|m| !have.contains(**m)).collect();
            if missing.is_empty() {
                Ok(text)
            } else {
                Err(format!("not exported: {missing:?}"))
            }
        })
        .await?;
    // The level series agrees with the status (Critical = 2) and carries the resource labels;
    // the interval series is the object's spec.interval (5m).
    let value = |series: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    };
    let level_series = r#"cloudquota_resource_level{namespace="e2e-top-b",name="p-top-b",provider="huaweicloud",service="ims",region="cn-north-4",resource="image",zone=""}"#;
    ensure!(
        value(level_series) == Some(2.0),
        "{level_series} = {:?}:\n{}",
        value(level_series),
        text.lines()
            .filter(|l| l.starts_with("cloudquota_resource_level"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let interval = r#"cloudquota_poll_interval_seconds{namespace="e2e-top-b",name="p-top-b"}"#;
    ensure!(
        value(interval) == Some(300.0),
        "{interval} = {:?}",
        value(interval)
    );
    Ok(())
}
