//! `table`: Markdown tables from JSON result lines of `scale --out` and `fetch` (and the
//! Python SDK runs of hack/bench-sdk.sh), optionally checking the targets.

use std::path::PathBuf;

use serde_json::Value;

use crate::scale::ScaleResult;

fn fmt_opt(v: Option<f64>, prec: usize) -> String {
    v.map(|v| format!("{v:.prec$}"))
        .unwrap_or_else(|| "-".into())
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2])
}

/// The tables of every result line in `files`, and whether all checks passed (always true
/// without `min_ratio`).
pub fn table(files: &[PathBuf], min_ratio: Option<f64>) -> Result<(String, bool), String> {
    let mut scale: Vec<ScaleResult> = Vec::new();
    let mut fetches: Vec<Value> = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
            if v["kind"] == "scale" {
                scale.push(serde_json::from_value(v).map_err(|e| e.to_string())?);
            } else if v["kind"] == "fetch" {
                fetches.push(v);
            }
        }
    }
    let mut out = String::new();
    let mut ok = true;
    if !fetches.is_empty() {
        let (t, met) = fetch_table(&fetches, min_ratio.unwrap_or(20.0));
        out.push_str(&t);
        ok &= met || min_ratio.is_none();
    }
    if scale.is_empty() {
        return Ok((out, ok));
    }
    if !out.is_empty() {
        out.push('\n');
    }
    ok &= min_ratio.is_none() || scale.iter().all(|r| r.all_met);
    out.push_str(&scale_table(&scale));
    Ok((out, ok))
}

/// The client comparison: CPU µs per fetch by service and client, best and median of the
/// rounds (other load on the machine only ever adds CPU time, so the best round is the
/// closest to each client's own cost), and the ratios Python SDK / cloudquota.
fn fetch_table(fetches: &[Value], min_ratio: f64) -> (String, bool) {
    let mut services: Vec<String> = Vec::new();
    for v in fetches {
        if let Some(s) = v["service"].as_str()
            && !services.iter().any(|x| x == s)
        {
            services.push(s.to_string());
        }
    }
    let rounds =
        fetches.iter().filter(|v| v["runtime"] == "python").count() / services.len().max(1);
    let mut out = format!(
        "CPU µs per fetch, best / median of {rounds} round(s):\n\n\
         | service | cloudquota, 1 thread | of which sign / parse | cloudquota, in a task on a multi-thread runtime | Python SDK | Python SDK / cloudquota (1 thread), best / median | same, multi-thread runtime |\n\
         |---|---|---|---|---|---|---|\n"
    );
    let mut ok = true;
    for svc in &services {
        let (row, met) = fetch_row(fetches, svc, min_ratio);
        out.push_str(&row);
        ok &= met;
    }
    (out, ok)
}

/// One service's row of [`fetch_table`], and whether its best ratio meets `min_ratio`.
fn fetch_row(fetches: &[Value], svc: &str, min_ratio: f64) -> (String, bool) {
    let us = |v: &Value| {
        v["cpu_us_per_fetch"].as_f64().unwrap_or_else(|| {
            v["cpu_seconds"].as_f64().unwrap_or(0.0) * 1e6 / v["fetches"].as_f64().unwrap_or(1.0)
        })
    };
    let values = |runtime: &str, f: &dyn Fn(&Value) -> Option<f64>| -> Vec<f64> {
        fetches
            .iter()
            .filter(|v| v["service"] == svc && v["runtime"] == runtime)
            .filter_map(f)
            .collect()
    };
    let best = |v: &[f64]| v.iter().copied().reduce(f64::min);
    let cur = values("current", &|v| Some(us(v)));
    let sign = median(values("current", &|v| v["sign_us"].as_f64()));
    let parse = median(values("current", &|v| v["parse_us"].as_f64()));
    let multi = values("multi-task", &|v| Some(us(v)));
    let py = values("python", &|v| Some(us(v)));
    let ratio = |p: Option<f64>, r: Option<f64>| match (p, r) {
        (Some(p), Some(r)) if r > 0.0 => Some(p / r),
        _ => None,
    };
    let r_best = ratio(best(&py), best(&cur));
    let r_med = ratio(median(py.clone()), median(cur.clone()));
    let r_multi = ratio(best(&py), best(&multi));
    let met = r_best.is_some_and(|r| r >= min_ratio);
    let x = |r: Option<f64>| r.map(|r| format!("{r:.1}x")).unwrap_or_else(|| "-".into());
    let row = format!(
        "| {svc} | {} / {} µs | {} / {} µs | {} / {} µs | {} / {} µs | **{}**{} / {} | {} |\n",
        fmt_opt(best(&cur), 1),
        fmt_opt(median(cur.clone()), 1),
        fmt_opt(sign, 1),
        fmt_opt(parse, 1),
        fmt_opt(best(&multi), 1),
        fmt_opt(median(multi.clone()), 1),
        fmt_opt(best(&py), 0),
        fmt_opt(median(py.clone()), 0),
        x(r_best),
        if met { "" } else { " ✗" },
        x(r_med),
        x(r_multi),
    );
    (row, met)
}

/// One row: metric name, target, the cell of one scale result.
type Row = (&'static str, &'static str, fn(&ScaleResult) -> String);

/// The scale results side by side, one column per result.
fn scale_table(scale: &[ScaleResult]) -> String {
    let head: Vec<String> = scale
        .iter()
        .map(|r| {
            if r.label.is_empty() {
                format!("N={}", r.n)
            } else {
                format!("N={} ({})", r.n, r.label)
            }
        })
        .collect();
    let mut out = format!("| metric | target | {} |\n", head.join(" | "));
    out.push_str(&format!("|---|---|{}\n", "---|".repeat(scale.len())));
    let mut push = |rows: &[Row]| {
        for (name, target, f) in rows {
            let cells: Vec<String> = scale.iter().map(f).collect();
            out.push_str(&format!("| {name} | {target} | {} |\n", cells.join(" | ")));
        }
    };
    push(&startup_rows());
    push(&steady_rows());
    push(&resource_rows());
    push(&change_rows());
    out
}

/// " ✗" when the result missed the target whose name starts with `prefix`.
fn mark(r: &ScaleResult, prefix: &str) -> &'static str {
    r.targets
        .iter()
        .find(|t| t.name.starts_with(prefix))
        .map(|t| if t.met { "" } else { " ✗" })
        .unwrap_or("")
}

fn startup_rows() -> [Row; 4] {
    [
        ("K / namespaces / interval", "", |r| {
            format!("{} / {} / {}s", r.keys, r.namespaces, r.interval_s)
        }),
        ("create N objects (s)", "", |r| format!("{:.1}", r.create_s)),
        ("all Ready after operator start (s)", "≤ 60", |r| {
            format!("{:.1}{}", r.ready_s, mark(r, "all Ready"))
        }),
        (
            "startup: upstream requests / status writes / Events",
            "",
            |r| {
                format!(
                    "{} / {} / {}",
                    r.startup_upstream, r.startup_status_writes, r.startup_events
                )
            },
        ),
    ]
}

fn steady_rows() -> [Row; 7] {
    [
        (
            "steady: upstream requests per interval",
            "≤ K, > 0",
            |r| {
                format!(
                    "{:.0} (keys polled {}, max/key {}){}",
                    r.steady_upstream,
                    r.steady_keys_polled,
                    r.steady_max_per_key,
                    mark(r, "upstream")
                )
            },
        ),
        ("steady: status writes (audit / metrics)", "0", |r| {
            format!(
                "{} / {}{}",
                r.steady_status_writes_audit,
                r.steady_status_writes_metrics,
                mark(r, "status writes")
            )
        }),
        ("steady: Events (audit / metrics)", "0", |r| {
            format!(
                "{} / {}{}",
                r.steady_events_audit,
                r.steady_events_metrics,
                mark(r, "Events")
            )
        }),
        ("steady: API requests (non-watch)", "", |r| {
            r.steady_api_requests
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }),
        ("steady: reconciles in window", "", |r| {
            format!("{}", r.steady_reconciles)
        }),
        ("steady: operator CPU (% of one core)", "≤ 2", |r| {
            format!(
                "{:.2} ({:.2}s in {:.0}s){}",
                r.cpu_steady_pct,
                r.cpu_steady_s,
                r.window_s,
                mark(r, "steady-state CPU")
            )
        }),
        ("steady: CPU per reconcile (µs)", "", |r| {
            format!("{:.0}", r.cpu_per_reconcile_us)
        }),
    ]
}

fn resource_rows() -> [Row; 7] {
    [
        ("operator CPU: startup / total (s)", "", |r| {
            format!("{:.2} / {:.2}", r.cpu_startup_s, r.cpu_total_s)
        }),
        (
            "startup CPU: API server / etcd / bench / whole machine (s); load avg",
            "",
            |r| {
                format!(
                    "{:.1} / {:.1} / {:.1} / {:.1}; {:.1}",
                    r.startup_cpu_apiserver_s,
                    r.startup_cpu_etcd_s,
                    r.startup_cpu_bench_s,
                    r.startup_cpu_machine_s,
                    r.loadavg_ready
                )
            },
        ),
        (
            "steady CPU: API server / etcd / whole machine (s); load avg",
            "",
            |r| {
                format!(
                    "{:.2} / {:.2} / {:.1}; {:.1}",
                    r.steady_cpu_apiserver_s,
                    r.steady_cpu_etcd_s,
                    r.steady_cpu_machine_s,
                    r.loadavg_steady
                )
            },
        ),
        (
            "operator peak RSS (MiB)",
            "≤ 100 (N ≤ 5000), ≤ 128",
            |r| format!("{:.1}{}", r.rss_peak_mib, mark(r, "peak RSS")),
        ),
        (
            "operator RSS: all Ready / settled / steady (MiB)",
            "",
            |r| {
                format!(
                    "{:.1} / {:.1} / {:.1}",
                    r.rss_ready_mib, r.rss_settled_mib, r.rss_steady_mib
                )
            },
        ),
        (
            "reconcile latency p50 / p90 / p99 (ms), whole run",
            "",
            |r| {
                format!(
                    "{} / {} / {}",
                    fmt_opt(r.reconcile_p50_ms, 2),
                    fmt_opt(r.reconcile_p90_ms, 2),
                    fmt_opt(r.reconcile_p99_ms, 1)
                )
            },
        ),
        ("reconcile latency p50 / p99 (ms), steady", "", |r| {
            format!(
                "{} / {}",
                fmt_opt(r.steady_reconcile_p50_ms, 3),
                fmt_opt(r.steady_reconcile_p99_ms, 2)
            )
        }),
    ]
}

fn change_rows() -> [Row; 5] {
    [
        ("usage change: objects affected", "", |r| {
            format!("{}", r.change_affected)
        }),
        (
            "usage change visible on all, max / p50 (s)",
            "≤ interval + 5",
            |r| {
                format!(
                    "{:.1} / {:.1}{}",
                    r.change_latency_max_s,
                    r.change_latency_p50_s,
                    mark(r, "usage change")
                )
            },
        ),
        ("usage change: status writes / Events / upstream", "", |r| {
            format!(
                "{} / {} / {}",
                r.change_status_writes, r.change_events, r.change_upstream
            )
        }),
        ("/metrics: size, series, CPU per scrape", "", |r| {
            format!(
                "{:.1} MiB, {}, {:.0} ms",
                r.scrape_bytes as f64 / 1048576.0,
                r.scrape_series,
                r.scrape_cpu_ms
            )
        }),
        ("all targets met", "", |r| {
            if r.all_met {
                "yes".into()
            } else {
                "**no**".into()
            }
        }),
    ]
}
