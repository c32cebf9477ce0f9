//! `cloudquota fetch` against the simulated cloud: every service, response variant and fault
//! gives the right result or the right error, never a panic, never a secret in the output.

use std::process::{Command, Output};

use cloudquota_sim::{
    self as sim, DEMO_ACCESS_KEY, DEMO_SECRET_KEY, DEMO_TOKEN, Fault, FaultRule, ImsPath, Service,
    SimConfig,
};
use serde_json::Value;

const PROJECT: &str = "fd73a4a14a4a4dfb9771a8475e5198ea";

struct Run {
    out: Output,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    fn json(&self) -> Value {
        assert!(self.out.status.success(), "fetch failed: {}", self.stderr());
        serde_json::from_str(&self.stdout()).unwrap_or_else(|e| panic!("{e}: {}", self.stdout()))
    }
    fn assert_no_secrets(&self) {
        for s in [DEMO_SECRET_KEY, DEMO_TOKEN, "temporary-token-value"] {
            assert!(
                !self.stdout().contains(s) && !self.stderr().contains(s),
                "secret leaked:\n{}\n{}",
                self.stdout(),
                self.stderr()
            );
        }
    }
}

fn fetch(base: &str, provider: &str, service: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloudquota"));
    cmd.args([
        "fetch",
        "--provider",
        provider,
        "--service",
        service,
        "--endpoint",
        base,
    ]);
    if !extra.contains(&"--timeout") {
        cmd.args(["--timeout", "3s"]);
    }
    cmd.args(extra);
    cmd.env_remove("CLOUDQUOTA_ACCESS_KEY_ID")
        .env_remove("CLOUDQUOTA_SECRET_ACCESS_KEY")
        .env_remove("CLOUDQUOTA_SECURITY_TOKEN")
        .env_remove("CLOUDQUOTA_BEARER_TOKEN")
        .env("RUST_LOG", "trace");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let run = Run {
        out: cmd.output().expect("run cloudquota"),
    };
    run.assert_no_secrets();
    run
}

const AKSK: &[(&str, &str)] = &[
    ("CLOUDQUOTA_ACCESS_KEY_ID", DEMO_ACCESS_KEY),
    ("CLOUDQUOTA_SECRET_ACCESS_KEY", DEMO_SECRET_KEY),
];

fn huawei(base: &str, service: &str, extra: &[&str]) -> Run {
    let mut args = vec!["--project-id", PROJECT, "-o", "json"];
    args.extend_from_slice(extra);
    fetch(base, "huaweicloud", service, &args, AKSK)
}

fn resource<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {v}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_service_reads_the_seed_data() {
    let sim = sim::start(SimConfig::default()).await.unwrap();
    let base = sim.base_url();

    let ims = huawei(&base, "ims", &[]).json();
    let image = resource(&ims, "image");
    assert_eq!(
        (
            image["used"].as_i64(),
            image["limit"].as_i64(),
            image["min"].as_i64(),
            image["max"].as_i64()
        ),
        (Some(0), Some(20), Some(1), Some(1000))
    );
    assert_eq!(image["level"], "Ok");
    assert!(
        ims["endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/v1/cloudimages/quota"),
        "{}",
        ims["endpoint"]
    );

    let dws = huawei(&base, "dws", &[]).json();
    assert_eq!(resource(&dws, "disk_capacity")["used"], 600);
    assert_eq!(resource(&dws, "ram")["unit"], "GB");
    assert!(
        resource(&dws, "core").get("unit").is_none(),
        "\"null\" unit dropped"
    );

    let evs = huawei(&base, "evs", &[]).json();
    let ssd = resource(&evs, "volumes_SSD");
    assert_eq!(
        (
            ssd["used"].as_i64(),
            ssd["unlimited"].as_bool(),
            ssd["level"].as_str()
        ),
        (Some(28), Some(true), Some("Unlimited"))
    );
    assert!(ssd.get("limit").is_none() && ssd.get("usagePercent").is_none());
    let snaps = resource(&evs, "snapshots");
    assert_eq!(
        (snaps["usagePercent"].as_f64(), snaps["available"].as_i64()),
        (Some(60.0), Some(4))
    );
    assert!(
        evs["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["name"] != "id")
    );

    let ecs = huawei(&base, "ecs", &[]).json();
    let names: Vec<&str> = ecs["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "cores",
            "floating_ips",
            "instances",
            "ram",
            "security_groups",
            "server_groups",
            "spot_cores",
            "spot_instances",
            "spot_ram"
        ],
        "status order: by name"
    );
    let cores = resource(&ecs, "cores");
    assert_eq!(
        (
            cores["used"].as_i64(),
            cores["limit"].as_i64(),
            cores["usagePercent"].as_f64(),
            cores["level"].as_str()
        ),
        (Some(172), Some(200), Some(86.0), Some("Warning"))
    );
    assert_eq!(resource(&ecs, "ram")["unit"], "MB");
    assert_eq!(resource(&ecs, "spot_cores")["level"], "Unlimited");
    assert!(
        ecs["endpoint"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v1/{PROJECT}/cloudservers/limits")),
        "{}",
        ecs["endpoint"]
    );

    let zl = fetch(
        &base,
        "zenlayer",
        "vm",
        &["-o", "json"],
        &[("CLOUDQUOTA_BEARER_TOKEN", DEMO_TOKEN)],
    )
    .json();
    let zones: Vec<&str> = zl["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["zone"].as_str().unwrap())
        .collect();
    assert!(zones.contains(&"sa-jeddah-1a"), "{zones:?}");
    let zl_aksk = fetch(
        &base,
        "zenlayer",
        "vm",
        &["-o", "json", "--zone", "sa-jeddah-1a"],
        AKSK,
    )
    .json();
    assert_eq!(
        zl_aksk["resources"].as_array().unwrap().len(),
        1,
        "zone filter"
    );

    let table = fetch(
        &base,
        "huaweicloud",
        "evs",
        &["--project-id", PROJECT],
        AKSK,
    );
    assert!(table.out.status.success());
    assert!(
        table.stdout().contains("RESOURCE")
            && table.stdout().contains("volumes_SSD")
            && table.stdout().contains("unlimited"),
        "{}",
        table.stdout()
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn response_variants_are_accepted() {
    let sim = sim::start(SimConfig::default()).await.unwrap();
    let base = sim.base_url();
    sim.add_fault(FaultRule::new(
        Service::Ims,
        Fault::ImsPathNotFound {
            path: ImsPath::ProjectHeader,
        },
    ))
    .unwrap();
    let ims = huawei(&base, "ims", &[]).json();
    assert!(
        ims["endpoint"]
            .as_str()
            .unwrap()
            .contains(&format!("/v1/{PROJECT}/cloudimages/quota")),
        "fell back: {}",
        ims["endpoint"]
    );

    sim.add_fault(FaultRule::new(Service::Vm, Fault::ZenlayerDocShape))
        .unwrap();
    sim.add_fault(FaultRule::new(
        Service::Vm,
        Fault::NumbersAsStrings { strings: true },
    ))
    .unwrap();
    let zl = fetch(
        &base,
        "zenlayer",
        "vm",
        &["-o", "json"],
        &[("CLOUDQUOTA_BEARER_TOKEN", DEMO_TOKEN)],
    )
    .json();
    assert!(!zl["resources"].as_array().unwrap().is_empty());

    sim.add_fault(FaultRule::new(
        Service::Dws,
        Fault::NumbersAsStrings { strings: false },
    ))
    .unwrap();
    sim.add_fault(FaultRule::new(
        Service::Dws,
        Fault::DwsUnit {
            style: sim::UnitStyle::Absent,
        },
    ))
    .unwrap();
    let dws = huawei(&base, "dws", &[]).json();
    assert_eq!(resource(&dws, "core")["used"], 12);

    // Moving usage across a threshold shows in the next fetch.
    sim.set_resource(Service::Evs, PROJECT, "snapshots", None, Some(10), Some(10))
        .unwrap();
    let evs = huawei(&base, "evs", &[]).json();
    assert_eq!(resource(&evs, "snapshots")["level"], "Exhausted");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_give_specific_errors() {
    let sim = sim::start(SimConfig::default()).await.unwrap();
    let base = sim.base_url();
    let cases: Vec<(Fault, &str)> = vec![
        (
            Fault::Status {
                status: 503,
                retry_after: None,
                body: None,
            },
            "UpstreamError",
        ),
        (
            Fault::Throttle {
                retry_after: Some(1),
            },
            "Throttled",
        ),
        (Fault::MalformedJson, "InvalidResponse"),
        (Fault::MissingField { field: None }, "InvalidResponse"),
        (Fault::WrongType { field: None }, "InvalidResponse"),
        (
            Fault::Oversized {
                bytes: 3 * 1024 * 1024,
            },
            "response body exceeds",
        ),
        (Fault::ConnectionReset, "EndpointUnreachable"),
        (Fault::Latency { ms: 5_000 }, "timed out"),
    ];
    for (fault, want) in cases {
        sim.clear_faults(None);
        sim.add_fault(FaultRule::new(Service::Dws, fault.clone()))
            .unwrap();
        let run = huawei(&base, "dws", &["--timeout", "2s"]);
        assert!(!run.out.status.success(), "{fault:?} should fail");
        let stderr = run.stderr();
        // Trace logs go to stderr too; the error is the one line starting with "error: ".
        let err = stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_default()
            .to_string();
        assert!(err.starts_with("error: "), "{stderr}");
        assert!(err.contains(want), "{fault:?}: {err}");
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "one error line: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ecs_faults_name_the_field() {
    let sim = sim::start(SimConfig::default()).await.unwrap();
    let base = sim.base_url();
    for (fault, want) in [
        (
            Fault::MissingField { field: None },
            "absolute.maxTotalInstances: missing",
        ),
        (
            Fault::WrongType {
                field: Some("totalRAMUsed".into()),
            },
            "absolute.totalRAMUsed",
        ),
        (
            Fault::Status {
                status: 403,
                retry_after: None,
                body: Some(
                    r#"{"error_code":"ECS.0003","error_msg":"Policy doesn't allow ecs:cloudServerQuotas:get to be performed."}"#.into(),
                ),
            },
            "ECS.0003",
        ),
    ] {
        sim.clear_faults(None);
        sim.add_fault(FaultRule::new(Service::Ecs, fault.clone()))
            .unwrap();
        let run = huawei(&base, "ecs", &["--timeout", "2s"]);
        assert!(!run.out.status.success(), "{fault:?} should fail");
        let stderr = run.stderr();
        let err = stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_default();
        assert!(err.contains(want), "{fault:?}: {stderr}");
        run.assert_no_secrets();
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_failures_and_bad_usage() {
    let sim = sim::start(SimConfig::default()).await.unwrap();
    let base = sim.base_url();
    let bad = fetch(
        &base,
        "huaweicloud",
        "evs",
        &["--project-id", PROJECT],
        &[
            ("CLOUDQUOTA_ACCESS_KEY_ID", DEMO_ACCESS_KEY),
            ("CLOUDQUOTA_SECRET_ACCESS_KEY", "temporary-token-value"),
        ],
    );
    assert!(!bad.out.status.success());
    assert!(
        bad.stderr().contains("AuthFailed") && bad.stderr().contains("APIGW.0301"),
        "{}",
        bad.stderr()
    );
    let token = fetch(
        &base,
        "zenlayer",
        "vm",
        &[],
        &[("CLOUDQUOTA_BEARER_TOKEN", "temporary-token-value")],
    );
    assert!(token.stderr().contains("AuthFailed"), "{}", token.stderr());
    let none = fetch(&base, "zenlayer", "vm", &[], &[]);
    assert!(
        none.stderr().contains("no credentials"),
        "{}",
        none.stderr()
    );
    let pair = fetch(&base, "huaweicloud", "vm", &["--project-id", "p"], AKSK);
    assert!(pair.stderr().contains("not offered"), "{}", pair.stderr());
    let http = fetch(
        "http://192.0.2.1:80",
        "huaweicloud",
        "evs",
        &["--project-id", "p"],
        AKSK,
    );
    assert!(
        http.stderr().contains("scheme \"http\" is not allowed"),
        "{}",
        http.stderr()
    );
    assert_eq!(sim.counters().auth_failures, 2);
    sim.shutdown().await;
}
