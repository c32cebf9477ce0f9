//! The Helm chart (`charts/cloudquota`), the container image and the monitoring assets.
//!
//! Most checks read committed files only (the chart, its rendered snapshots, the CRD, the
//! Dockerfile), so they run everywhere. `hack/chart-test.sh --offline` (helm lint, snapshot
//! drift, schema rejection of bad values) runs when helm is available; in CI (env `CI` set) a
//! missing helm is a failure, not a skip. `CLOUDQUOTA_CHART_LIVE=1` also runs the live part
//! (install/upgrade/uninstall against a local kube-apiserver).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_yaml::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// All non-empty documents of a multi-document YAML file.
fn documents(rel: &str) -> Vec<Value> {
    let text = read(rel);
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{rel}: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn default_snapshot() -> Vec<Value> {
    documents("charts/cloudquota/snapshots/default.yaml")
}

fn all_features_snapshot() -> Vec<Value> {
    documents("charts/cloudquota/snapshots/all-features.yaml")
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn kind(doc: &Value) -> &str {
    s(&doc["kind"])
}

fn name(doc: &Value) -> &str {
    s(&doc["metadata"]["name"])
}

fn namespace(doc: &Value) -> &str {
    s(&doc["metadata"]["namespace"])
}

fn find<'a>(docs: &'a [Value], k: &str, n: &str) -> &'a Value {
    docs.iter()
        .find(|d| kind(d) == k && name(d) == n)
        .unwrap_or_else(|| panic!("no {k} {n} in the rendered chart"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|seq| seq.iter().map(|x| s(x).to_string()).collect())
        .unwrap_or_default()
}

fn container(deploy: &Value) -> &Value {
    &deploy["spec"]["template"]["spec"]["containers"][0]
}

fn args(deploy: &Value) -> Vec<String> {
    strings(&container(deploy)["args"])
}

// ------------------------------------------------------------------ CRD ---

#[test]
fn chart_crd_template_is_the_committed_crd() {
    let template = read("charts/cloudquota/templates/crd.yaml");
    let lines: Vec<&str> = template.split_inclusive('\n').collect();
    assert_eq!(
        lines.first().copied(),
        Some("{{- if .Values.crds.install }}\n"),
        "first line of templates/crd.yaml"
    );
    assert_eq!(
        lines.last().copied(),
        Some("{{- end }}\n"),
        "last line of templates/crd.yaml"
    );
    let mut stripped = String::new();
    let mut in_block = false;
    let mut blocks = 0;
    for line in &lines[1..lines.len() - 1] {
        if line.starts_with("{{- /* chart-managed metadata: begin") {
            assert!(!in_block, "nested chart-managed block");
            in_block = true;
            blocks += 1;
        } else if line.starts_with("{{- /* chart-managed metadata: end") {
            assert!(in_block, "unbalanced chart-managed block");
            in_block = false;
        } else if !in_block {
            stripped.push_str(line);
        }
    }
    assert_eq!(blocks, 1, "exactly one chart-managed metadata block");
    assert!(
        stripped == read("crds/cloudquota.yaml"),
        "charts/cloudquota/templates/crd.yaml is not crds/cloudquota.yaml verbatim: run \
         hack/sync-chart-crd.sh, then hack/chart-test.sh --update"
    );
}

#[test]
fn rendered_crd_equals_committed_crd_apart_from_chart_metadata() {
    let committed: Value = serde_yaml::from_str(&read("crds/cloudquota.yaml")).unwrap();
    let default = default_snapshot();
    let mut rendered = find(
        &default,
        "CustomResourceDefinition",
        "cloudquotas.cloudquota.io",
    )
    .clone();
    let meta = rendered["metadata"].as_mapping_mut().unwrap();
    let annotations = meta
        .remove("annotations")
        .expect("CRD annotations (crds.keep=true)");
    assert_eq!(annotations["helm.sh/resource-policy"], "keep");
    assert!(meta.remove("labels").is_some(), "chart labels on the CRD");
    assert_eq!(
        rendered, committed,
        "snapshots/default.yaml has a different CRD: run hack/chart-test.sh --update"
    );
    // crds.keep=false leaves the annotation out.
    let all = all_features_snapshot();
    let crd = find(
        &all,
        "CustomResourceDefinition",
        "cloudquotas.cloudquota.io",
    );
    assert!(crd["metadata"]["annotations"].is_null());
}

// ----------------------------------------------------------------- RBAC ---

/// One permission: (apiGroup, resource, verb, resourceName or "").
type Perm = (String, String, String, String);

fn perms(role: &Value) -> BTreeSet<Perm> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_sequence().expect("rules") {
        let groups = strings(&rule["apiGroups"]);
        let resources = strings(&rule["resources"]);
        let verbs = strings(&rule["verbs"]);
        let mut names = strings(&rule["resourceNames"]);
        assert!(
            rule["nonResourceURLs"].is_null(),
            "{}: nonResourceURLs",
            name(role)
        );
        for field in [&groups, &resources, &verbs, &names] {
            assert!(
                !field.iter().any(|x| x.contains('*')),
                "{} {}: wildcard in rule {rule:?}",
                kind(role),
                name(role)
            );
        }
        assert!(!groups.is_empty() && !resources.is_empty() && !verbs.is_empty());
        if names.is_empty() {
            names.push(String::new());
        }
        for g in &groups {
            for r in &resources {
                for v in &verbs {
                    for n in &names {
                        out.insert((g.clone(), r.clone(), v.clone(), n.clone()));
                    }
                }
            }
        }
    }
    out
}

fn perm(g: &str, r: &str, v: &str, n: &str) -> Perm {
    (g.into(), r.into(), v.into(), n.into())
}

fn watch_perms() -> BTreeSet<Perm> {
    [
        perm("cloudquota.io", "cloudquotas", "get", ""),
        perm("cloudquota.io", "cloudquotas", "list", ""),
        perm("cloudquota.io", "cloudquotas", "watch", ""),
        perm("cloudquota.io", "cloudquotas/status", "get", ""),
        perm("cloudquota.io", "cloudquotas/status", "patch", ""),
        perm("", "secrets", "get", ""),
        perm("events.k8s.io", "events", "create", ""),
        perm("events.k8s.io", "events", "patch", ""),
        perm("events.k8s.io", "events", "list", ""),
    ]
    .into()
}

fn lease_perms(lease: &str) -> BTreeSet<Perm> {
    [
        perm("coordination.k8s.io", "leases", "create", ""),
        perm("coordination.k8s.io", "leases", "get", lease),
        perm("coordination.k8s.io", "leases", "update", lease),
        perm("coordination.k8s.io", "leases", "patch", lease),
    ]
    .into()
}

fn roles(docs: &[Value]) -> impl Iterator<Item = &Value> {
    docs.iter()
        .filter(|d| kind(d) == "ClusterRole" || kind(d) == "Role")
}

/// No role in the chart may read Secrets other than by name, or use a wildcard.
fn assert_no_secret_listing(docs: &[Value]) {
    for role in roles(docs) {
        for (g, r, v, _) in perms(role) {
            if g.is_empty() && r == "secrets" {
                assert_eq!(v, "get", "{} {} may {v} secrets", kind(role), name(role));
            }
        }
    }
}

#[test]
fn operator_rbac_default_is_cluster_wide_and_minimal() {
    let docs = default_snapshot();
    assert_no_secret_listing(&docs);
    let cluster_roles: Vec<_> = docs.iter().filter(|d| kind(d) == "ClusterRole").collect();
    assert_eq!(cluster_roles.len(), 1, "one ClusterRole by default");
    assert_eq!(perms(cluster_roles[0]), watch_perms());

    let binding = find(&docs, "ClusterRoleBinding", "cloudquota");
    assert_eq!(binding["roleRef"]["name"], "cloudquota");
    assert_eq!(binding["subjects"][0]["name"], "cloudquota");
    assert_eq!(binding["subjects"][0]["namespace"], "cloudquota-system");

    let lease_role = find(&docs, "Role", "cloudquota-leader-election");
    assert_eq!(namespace(lease_role), "cloudquota-system");
    assert_eq!(perms(lease_role), lease_perms("cloudquota"));
    let deploy = find(&docs, "Deployment", "cloudquota");
    let a = args(deploy);
    assert!(a.contains(&"--leader-elect".to_string()));
    assert!(a.contains(&"--lease-name=cloudquota".to_string()));
    assert!(a.contains(&"--lease-namespace=cloudquota-system".to_string()));
    assert!(!a.iter().any(|x| x.starts_with("--watch-namespace")));
}

#[test]
fn operator_rbac_with_watch_namespaces_is_namespaced() {
    let docs = all_features_snapshot();
    assert_no_secret_listing(&docs);
    // The only ClusterRoles are kube-state-metrics' read-only one and the CapacityQuota
    // publisher's (capacity_quota_rbac_only_when_enabled).
    for role in docs
        .iter()
        .filter(|d| kind(d) == "ClusterRole" && name(d) != "cq-operator-capacity-quota")
    {
        assert_eq!(name(role), "cq-operator-kube-state-metrics");
        let p = perms(role);
        assert!(
            p.iter().all(|(_, _, v, _)| v == "list" || v == "watch"),
            "{p:?}"
        );
        assert!(
            p.iter()
                .all(|(_, r, _, _)| r == "cloudquotas" || r == "customresourcedefinitions")
        );
    }
    for ns in ["team-a", "team-b"] {
        let role = docs
            .iter()
            .find(|d| kind(d) == "Role" && name(d) == "cq-operator" && namespace(d) == ns)
            .unwrap_or_else(|| panic!("no Role in {ns}"));
        assert_eq!(perms(role), watch_perms(), "Role in {ns}");
        let binding = docs
            .iter()
            .find(|d| kind(d) == "RoleBinding" && name(d) == "cq-operator" && namespace(d) == ns)
            .unwrap_or_else(|| panic!("no RoleBinding in {ns}"));
        assert_eq!(binding["roleRef"]["kind"], "Role");
        assert_eq!(binding["subjects"][0]["name"], "cq-operator-sa");
        assert_eq!(binding["subjects"][0]["namespace"], "cloudquota-system");
    }
    assert!(
        !docs
            .iter()
            .any(|d| kind(d) == "ClusterRoleBinding" && name(d) == "cq-operator")
    );
    let lease_role = find(&docs, "Role", "cq-operator-leader-election");
    assert_eq!(perms(lease_role), lease_perms("cq-operator-leader"));
    let a = args(find(&docs, "Deployment", "cq-operator"));
    assert!(a.contains(&"--watch-namespace=team-a".to_string()));
    assert!(a.contains(&"--watch-namespace=team-b".to_string()));
    assert!(a.contains(&"--lease-name=cq-operator-leader".to_string()));
}

#[test]
fn capacity_quota_rbac_only_when_enabled() {
    // Off by default: no Node or CapacityQuota access, no flag.
    let docs = default_snapshot();
    for role in roles(&docs) {
        for (g, r, _, _) in perms(role) {
            assert!(
                g != "autoscaling.x-k8s.io" && r != "nodes",
                "{} grants {g}/{r} by default",
                name(role)
            );
        }
    }
    assert!(
        !args(find(&docs, "Deployment", "cloudquota"))
            .iter()
            .any(|a| a.starts_with("--capacity"))
    );
    // On (all-features, trusting team-a): exactly these, cluster-wide and in team-a.
    let docs = all_features_snapshot();
    let role = find(&docs, "ClusterRole", "cq-operator-capacity-quota");
    let mut want: BTreeSet<Perm> = ["get", "list", "watch", "create", "patch", "delete"]
        .iter()
        .map(|v| perm("autoscaling.x-k8s.io", "capacityquotas", v, ""))
        .collect();
    for v in ["get", "list", "watch"] {
        want.insert(perm("", "nodes", v, ""));
    }
    assert_eq!(perms(role), want);
    let binding = find(&docs, "ClusterRoleBinding", "cq-operator-capacity-quota");
    assert_eq!(binding["roleRef"]["name"], "cq-operator-capacity-quota");
    assert_eq!(binding["subjects"][0]["name"], "cq-operator-sa");
    let finalizer: Vec<&Value> = docs
        .iter()
        .filter(|d| kind(d) == "Role" && name(d) == "cq-operator-capacity-quota")
        .collect();
    assert_eq!(
        finalizer.len(),
        1,
        "one Role, in the trusted namespace only"
    );
    assert_eq!(namespace(finalizer[0]), "team-a");
    assert_eq!(
        perms(finalizer[0]),
        [perm("cloudquota.io", "cloudquotas", "patch", "")].into()
    );
    let a = args(find(&docs, "Deployment", "cq-operator"));
    assert!(a.contains(&"--capacity-quotas".to_string()), "{a:?}");
    assert!(
        a.contains(&"--capacity-quota-namespace=team-a".to_string()),
        "{a:?}"
    );
}

// ----------------------------------------------------------- Deployment ---

#[test]
fn deployment_is_hardened() {
    for (snapshot, docs, deploy_name) in [
        ("default", default_snapshot(), "cloudquota"),
        ("all-features", all_features_snapshot(), "cq-operator"),
    ] {
        let deploy = find(&docs, "Deployment", deploy_name);
        let pod = &deploy["spec"]["template"]["spec"];
        let c = container(deploy);
        let ctx = format!("{snapshot}: Deployment {deploy_name}");
        assert_eq!(pod["automountServiceAccountToken"], true, "{ctx}");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{ctx}");
        assert_eq!(pod["securityContext"]["runAsUser"], 65532, "{ctx}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{ctx}"
        );
        let sc = &c["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{ctx}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{ctx}");
        assert_eq!(sc["runAsNonRoot"], true, "{ctx}");
        assert_eq!(sc["runAsUser"], 65532, "{ctx}");
        assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"], "{ctx}");
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{ctx}");
        assert!(
            sc["privileged"].is_null() || sc["privileged"] == false,
            "{ctx}"
        );
        for k in ["requests", "limits"] {
            assert!(
                c["resources"][k]["memory"].is_string(),
                "{ctx}: resources.{k}.memory"
            );
        }
        assert!(
            c["resources"]["requests"]["cpu"].is_string(),
            "{ctx}: requests.cpu"
        );
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "{ctx}");
        assert_eq!(c["livenessProbe"]["httpGet"]["port"], "metrics", "{ctx}");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{ctx}");
        assert_eq!(c["readinessProbe"]["httpGet"]["port"], "metrics", "{ctx}");
        let env = c["env"].as_sequence().unwrap();
        for (var, field) in [
            ("POD_NAME", "metadata.name"),
            ("POD_NAMESPACE", "metadata.namespace"),
        ] {
            let e = env
                .iter()
                .find(|e| e["name"] == var)
                .unwrap_or_else(|| panic!("{ctx}: {var}"));
            assert_eq!(
                e["valueFrom"]["fieldRef"]["fieldPath"], field,
                "{ctx}: {var}"
            );
        }
        assert!(
            env.iter().any(|e| e["name"] == "RUST_LOG"),
            "{ctx}: RUST_LOG"
        );
        let a = args(deploy);
        assert_eq!(a[0], "run", "{ctx}: first arg");
        assert!(a.contains(&"--leader-elect".to_string()), "{ctx}");
        assert!(
            !a.iter().any(|x| x.contains("allow-insecure-loopback")),
            "{ctx}: --allow-insecure-loopback must never be set by the chart"
        );
        // The metrics port is the same everywhere.
        let port = c["ports"][0]["containerPort"].as_u64().unwrap();
        assert_eq!(c["ports"][0]["name"], "metrics");
        assert!(
            a.contains(&format!("--metrics-addr=0.0.0.0:{port}")),
            "{ctx}"
        );
        let svc = find(&docs, "Service", deploy_name);
        assert_eq!(
            svc["spec"]["ports"][0]["port"].as_u64(),
            Some(port),
            "{ctx}"
        );
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], "metrics", "{ctx}");
        let sa = find(&docs, "ServiceAccount", s(&pod["serviceAccountName"]));
        assert_eq!(sa["automountServiceAccountToken"], true, "{ctx}");
    }
    let default = default_snapshot();
    let deploy = find(&default, "Deployment", "cloudquota");
    assert_eq!(deploy["spec"]["replicas"], 1);
    let a = args(deploy);
    for host in [
        "*.myhuaweicloud.com",
        "*.myhuaweicloud.eu",
        "console.zenlayer.com",
    ] {
        assert!(
            a.contains(&format!("--allowed-host={host}")),
            "default allowlist: {host}"
        );
    }
    assert!(a.contains(&"--log-format=json".to_string()));
}

#[test]
fn ca_bundle_flag_points_at_the_mounted_configmap() {
    let docs = all_features_snapshot();
    let deploy = find(&docs, "Deployment", "cq-operator");
    let a = args(deploy);
    assert!(
        a.contains(&"--ca-bundle=/etc/cloudquota/ca/bundle.pem".to_string()),
        "{a:?}"
    );
    let mount = container(deploy)["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "ca-bundle")
        .expect("ca-bundle mount");
    assert_eq!(mount["mountPath"], "/etc/cloudquota/ca");
    assert_eq!(mount["readOnly"], true);
    let vol = deploy["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "ca-bundle")
        .expect("ca-bundle volume");
    assert_eq!(vol["configMap"]["name"], "private-cloud-ca");
    assert_eq!(vol["configMap"]["items"][0]["key"], "bundle.pem");
    assert_eq!(vol["configMap"]["items"][0]["path"], "bundle.pem");
}

/// Every flag the chart passes to `cloudquota run` must exist and its value must parse. Until
/// the `run` subcommand exists this only checks the chart against the documented flag list.
#[test]
fn chart_args_parse_with_operator_cli() {
    const DOCUMENTED: &[&str] = &[
        "--allowed-host",
        "--heartbeat",
        "--concurrency",
        "--watch-namespace",
        "--metrics-addr",
        "--leader-elect",
        "--lease-name",
        "--lease-namespace",
        "--lease-duration",
        "--log-format",
        "--ca-bundle",
        "--http-timeout",
        "--shutdown-timeout",
        "--export-thresholds",
        "--capacity-quotas",
        "--capacity-quota-namespace",
    ];
    // extraArgs in ci/all-features-values.yaml, not an operator flag.
    const EXTRA: &str = "--some-future-flag=value";
    let mut rendered = Vec::new();
    for (docs, deploy) in [
        (default_snapshot(), "cloudquota"),
        (all_features_snapshot(), "cq-operator"),
    ] {
        let a: Vec<String> = args(find(&docs, "Deployment", deploy))
            .into_iter()
            .filter(|a| a != EXTRA)
            .collect();
        for flag in &a[1..] {
            let name = flag.split('=').next().unwrap();
            assert!(
                DOCUMENTED.contains(&name),
                "chart passes undocumented flag {name}"
            );
        }
        rendered.push(a);
    }
    let bin = env!("CARGO_BIN_EXE_cloudquota");
    let top = Command::new(bin)
        .arg("--help")
        .output()
        .expect("run cloudquota --help");
    let top = String::from_utf8_lossy(&top.stdout);
    if !top.lines().any(|l| l.trim_start().starts_with("run ")) {
        eprintln!(
            "note: `cloudquota run` does not exist yet; chart flags checked against the \
             documented list only"
        );
        return;
    }
    // clap parses (and validates) every argument before it acts on the trailing --help, so
    // exit 0 means the whole command line is accepted.
    for a in rendered {
        let out = Command::new(bin)
            .args(&a)
            .arg("--help")
            .output()
            .expect("run cloudquota");
        assert!(
            out.status.success(),
            "`cloudquota {}` is rejected by the operator: {}",
            a.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ----------------------------------------------------------- monitoring ---

#[test]
fn prometheus_rule_alerts() {
    let docs = all_features_snapshot();
    let rule = find(&docs, "PrometheusRule", "cq-operator");
    let rules = rule["spec"]["groups"][0]["rules"].as_sequence().unwrap();
    let alert = |n: &str| -> &Value {
        rules
            .iter()
            .find(|r| r["alert"] == n)
            .unwrap_or_else(|| panic!("alert {n}"))
    };
    let names: Vec<_> = rules.iter().map(|r| s(&r["alert"])).collect();
    assert_eq!(
        names,
        [
            "CloudQuotaUsageHigh",
            "CloudQuotaUsageCritical",
            "CloudQuotaExhausted",
            "CloudQuotaFillingUp",
            "CloudQuotaStatusStale",
            "CloudQuotaFetchFailing",
            "CloudQuotaOperatorDown",
            "CloudQuotaNoLeader"
        ]
    );
    // The usage alerts follow each object's level (its own thresholds), not chart ratios;
    // their behaviour is unit-tested with promtool (hack/rules-test.sh).
    assert_eq!(
        alert("CloudQuotaUsageHigh")["expr"],
        "cloudquota_resource_usage_ratio and (cloudquota_resource_level == 1)"
    );
    assert_eq!(alert("CloudQuotaUsageHigh")["for"], "30m");
    assert_eq!(
        alert("CloudQuotaUsageCritical")["expr"],
        "cloudquota_resource_usage_ratio and (cloudquota_resource_level == 2)"
    );
    assert_eq!(
        alert("CloudQuotaExhausted")["expr"],
        "cloudquota_resource_usage_ratio and (cloudquota_resource_level == 3)"
    );
    assert_eq!(
        alert("CloudQuotaFillingUp")["expr"],
        "(cloudquota_resource_usage_ratio >= 0.6) and (cloudquota_resource_level < 3) and \
         (predict_linear(cloudquota_resource_used[12h], 172800) >= cloudquota_resource_limit)"
    );
    assert_eq!(alert("CloudQuotaFillingUp")["for"], "2h");
    assert!(s(&alert("CloudQuotaFillingUp")["annotations"]["description"]).contains("within 2d."));
    // Each object's own interval, 4 missed intervals.
    assert_eq!(
        alert("CloudQuotaStatusStale")["expr"],
        "time() - cloudquota_last_success_timestamp_seconds > 4 * cloudquota_poll_interval_seconds"
    );
    assert_eq!(
        alert("CloudQuotaFetchFailing")["expr"],
        "cloudquota_ready == 0"
    );
    assert_eq!(
        alert("CloudQuotaOperatorDown")["expr"],
        r#"absent(up{job="cq-operator",namespace="cloudquota-system"} == 1)"#
    );
    for r in rules {
        assert!(r["labels"]["severity"].is_string(), "{r:?}");
        assert_eq!(r["labels"]["team"], "platform");
        assert!(s(&r["annotations"]["runbook_url"]).starts_with("https://runbooks.example.com/"));
        // Prometheus templates survive Helm rendering.
        let d = s(&r["annotations"]["description"]);
        assert!(!d.contains("<no value>"), "{d}");
    }
    assert!(
        s(&alert("CloudQuotaUsageHigh")["annotations"]["description"])
            .contains("{{ $labels.resource }}")
    );
    // The ServiceMonitor keeps the CloudQuota's namespace label.
    let sm = find(&docs, "ServiceMonitor", "cq-operator");
    assert_eq!(sm["spec"]["endpoints"][0]["honorLabels"], true);
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    // The dashboard ConfigMap for the Grafana sidecar carries the dashboard file.
    let dash = find(&docs, "ConfigMap", "cq-operator-dashboard");
    assert_eq!(dash["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(dash["metadata"]["annotations"]["grafana_folder"], "Cloud");
    assert_eq!(
        s(&dash["data"]["cloudquota.json"]),
        read("charts/cloudquota/files/grafana-dashboard.json").trim_end()
    );
    // Nothing optional by default.
    let default = default_snapshot();
    for k in [
        "PrometheusRule",
        "ServiceMonitor",
        "NetworkPolicy",
        "ConfigMap",
    ] {
        assert!(
            !default.iter().any(|d| kind(d) == k),
            "{k} rendered by default"
        );
    }
}

#[test]
fn kube_state_metrics_config() {
    let chart_file = read("charts/cloudquota/files/kube-state-metrics.yaml");
    assert!(
        chart_file == read("docs/kube-state-metrics.yaml"),
        "docs/kube-state-metrics.yaml differs from charts/cloudquota/files/kube-state-metrics.yaml: \
         run hack/chart-test.sh --update"
    );
    let config: Value = serde_yaml::from_str(&chart_file).unwrap();
    assert_eq!(config["kind"], "CustomResourceStateMetrics");
    let crd: Value = serde_yaml::from_str(&read("crds/cloudquota.yaml")).unwrap();
    let version = &crd["spec"]["versions"][0];
    let schema = &version["schema"]["openAPIV3Schema"];
    let res = &config["spec"]["resources"][0];
    assert_eq!(res["groupVersionKind"]["group"], crd["spec"]["group"]);
    assert_eq!(res["groupVersionKind"]["version"], version["name"]);
    assert_eq!(
        res["groupVersionKind"]["kind"],
        crd["spec"]["names"]["kind"]
    );

    // Every path the config reads exists in the CRD schema.
    fn lookup<'a>(mut node: &'a Value, path: &[String]) -> Option<&'a Value> {
        for seg in path {
            if node["type"] == "array" {
                node = &node["items"];
            }
            node = node["properties"].get(seg.as_str())?;
        }
        if node["type"] == "array" {
            node = &node["items"];
        }
        Some(node)
    }
    let check = |base: &Value, path: &[String], what: &str| -> Value {
        lookup(base, path)
            .unwrap_or_else(|| panic!("{what}: {path:?} is not in the CloudQuota schema"))
            .clone()
    };
    for (label, path) in res["labelsFromPath"].as_mapping().unwrap() {
        let path = strings(path);
        if path[0] != "metadata" {
            check(schema, &path, s(label));
        }
    }
    let levels = strings(&schema["properties"]["status"]["properties"]["level"]["enum"]);
    for metric in res["metrics"].as_sequence().unwrap() {
        let n = s(&metric["name"]);
        let each = &metric["each"];
        let body = match s(&each["type"]) {
            "Gauge" => &each["gauge"],
            "StateSet" => &each["stateSet"],
            "Info" => &each["info"],
            t => panic!("{n}: unknown type {t}"),
        };
        let base = check(schema, &strings(&body["path"]), n);
        if !body["valueFrom"].is_null() {
            check(&base, &strings(&body["valueFrom"]), n);
        }
        if let Some(labels) = body["labelsFromPath"].as_mapping() {
            for (label, path) in labels {
                check(&base, &strings(path), &format!("{n}.{}", s(label)));
            }
        }
        if each["type"] == "StateSet" {
            assert_eq!(strings(&body["list"]), levels, "{n}: levels");
        }
    }

    // The chart ships the same file as a ConfigMap.
    let docs = all_features_snapshot();
    let cm = find(&docs, "ConfigMap", "cq-operator-kube-state-metrics");
    assert_eq!(s(&cm["data"]["config.yaml"]), chart_file);
}

// ---------------------------------------------------------------- values ---

/// Values that are Kubernetes objects, documented as a whole.
const OBJECT_VALUES: &[&str] = &[
    "resources",
    "podSecurityContext",
    "securityContext",
    "strategy",
];

/// Dotted paths of every leaf in values.yaml (maps are descended, lists are leaves).
fn leaves(prefix: &str, v: &Value, out: &mut Vec<String>) {
    match v.as_mapping() {
        Some(m) if !m.is_empty() && !OBJECT_VALUES.contains(&prefix) => {
            for (k, child) in m {
                let key = if prefix.is_empty() {
                    s(k).to_string()
                } else {
                    format!("{prefix}.{}", s(k))
                };
                leaves(&key, child, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

#[test]
fn every_value_is_documented_and_in_the_schema() {
    let values: Value = serde_yaml::from_str(&read("charts/cloudquota/values.yaml")).unwrap();
    let readme = read("charts/cloudquota/README.md");
    let schema: serde_json::Value =
        serde_json::from_str(&read("charts/cloudquota/values.schema.json")).unwrap();
    let mut keys = Vec::new();
    leaves("", &values, &mut keys);
    assert!(keys.len() > 50, "{keys:?}");
    for key in &keys {
        assert!(
            readme.contains(&format!("| `{key}` |")),
            "charts/cloudquota/README.md does not document `{key}`"
        );
        let mut node = &schema;
        for seg in key.split('.') {
            node = node["properties"]
                .get(seg)
                .unwrap_or_else(|| panic!("values.schema.json has no {key}"));
        }
    }
    assert_eq!(
        schema["properties"]["log"]["properties"]["format"]["enum"],
        serde_json::json!(["text", "json"])
    );
    assert_eq!(schema["additionalProperties"], false);
}

#[test]
fn chart_metadata() {
    let chart: Value = serde_yaml::from_str(&read("charts/cloudquota/Chart.yaml")).unwrap();
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], "cloudquota");
    assert_eq!(chart["version"], "0.1.0");
    assert_eq!(
        chart["appVersion"],
        env!("CARGO_PKG_VERSION"),
        "appVersion follows the crate version"
    );
    assert_eq!(chart["kubeVersion"], ">=1.30.0-0");
}

// ----------------------------------------------------------------- image ---

#[test]
fn dockerfile_contract() {
    let dockerfile = read("Dockerfile");
    for needle in [
        "build --release --locked -p cloudquota --bin cloudquota",
        // The bases are build arguments; the defaults are the public ones.
        "ARG RUNTIME_BASE=gcr.io/distroless/cc-debian12:nonroot",
        "FROM ${RUNTIME_BASE}",
        "ARG BINARY=build",
        "USER 65532:65532",
        r#"ENTRYPOINT ["/cloudquota"]"#,
        r#"CMD ["run", "--leader-elect"]"#,
        "org.opencontainers.image.title",
        "org.opencontainers.image.source",
        "org.opencontainers.image.licenses",
        "org.opencontainers.image.version",
        "org.opencontainers.image.description",
    ] {
        assert!(dockerfile.contains(needle), "Dockerfile lacks {needle}");
    }
    // The default builder's Rust is at least the crate's rust-version.
    let pinned = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("ARG BUILDER_IMAGE="))
        .and_then(|image| {
            image
                .rsplit_once(":rust:")
                .map(|(_, t)| t)
                .or_else(|| image.split_once("rust:").map(|(_, t)| t))
        })
        .and_then(|tag| tag.split('-').next())
        .expect("ARG BUILDER_IMAGE=...rust:<version>-...");
    let parse = |v: &str| -> Vec<u32> { v.split('.').map(|x| x.parse().unwrap()).collect() };
    let manifest = read("Cargo.toml");
    let required = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_string())
        .expect("rust-version in Cargo.toml");
    assert!(
        parse(pinned) >= parse(&required),
        "Rust {pinned} < rust-version {required}"
    );
    let version = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("ARG VERSION="))
        .expect("ARG VERSION=");
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    // The build context is an allowlist: everything out, then the sources back in; target/,
    // caches and .git never.
    let ignore = read(".dockerignore");
    let rules: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        rules.first(),
        Some(&"*"),
        ".dockerignore starts by leaving everything out"
    );
    for entry in ["target", ".cache", ".git"] {
        assert!(
            !rules.iter().any(|l| l
                .strip_prefix('!')
                .is_some_and(|p| p.trim_start_matches('/').starts_with(entry))),
            ".dockerignore lets {entry} in"
        );
    }
}

// ------------------------------------------------------------------ helm ---

fn find_helm() -> Option<PathBuf> {
    if let Some(h) = std::env::var_os("HELM") {
        return Some(PathBuf::from(h));
    }
    if let Some(dir) = std::env::var_os("CLOUDQUOTA_TOOLS_BIN") {
        let h = Path::new(&dir).join("helm");
        if h.exists() {
            return Some(h);
        }
    }
    let out = Command::new(root().join("hack/build-tools.sh"))
        .arg("--print-bin-dir")
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    let h = Path::new(dir.trim()).join("helm");
    h.exists().then_some(h)
}

#[test]
fn chart_test_script() {
    let Some(helm) = find_helm() else {
        let msg = "helm is not built: run `hack/build-tools.sh helm` (or set HELM=/path/to/helm); \
                   the chart's lint, snapshot and schema tests (hack/chart-test.sh) need it";
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIPPED chart_test_script: {msg}");
        return;
    };
    let live = std::env::var("CLOUDQUOTA_CHART_LIVE").is_ok_and(|v| v == "1");
    let mut cmd = Command::new(root().join("hack/chart-test.sh"));
    cmd.arg("--no-build").env("HELM", &helm);
    if !live {
        cmd.arg("--offline");
    }
    let out = cmd.output().expect("run hack/chart-test.sh");
    assert!(
        out.status.success(),
        "hack/chart-test.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
