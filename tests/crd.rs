//! The CRD is a public API: the committed YAML must match the types, and the contract's
//! invariants (names, columns, validation, structural schema) must hold.

use cloudquota::cli::crd_yaml;
use serde_json::Value;

fn crd() -> Value {
    serde_yaml::from_str(&crd_yaml()).expect("generated CRD is YAML")
}

fn schema(crd: &Value) -> &Value {
    &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
}

#[test]
fn committed_crd_matches_generated() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/cloudquota.yaml"))
            .expect("crds/cloudquota.yaml exists");
    assert!(
        committed == crd_yaml(),
        "crds/cloudquota.yaml is stale: regenerate with `cargo run -- crd > crds/cloudquota.yaml`"
    );
}

#[test]
fn names_and_scope() {
    let crd = crd();
    let spec = &crd["spec"];
    assert_eq!(crd["metadata"]["name"], "cloudquotas.cloudquota.io");
    assert_eq!(spec["group"], "cloudquota.io");
    assert_eq!(spec["scope"], "Namespaced");
    assert_eq!(spec["names"]["kind"], "CloudQuota");
    assert_eq!(spec["names"]["plural"], "cloudquotas");
    assert_eq!(spec["names"]["shortNames"], serde_json::json!(["cq"]));
    let v = &spec["versions"][0];
    assert_eq!(v["name"], "v1alpha1");
    assert_eq!(v["served"], true);
    assert_eq!(v["storage"], true);
    assert!(
        v["subresources"]["status"].is_object(),
        "status subresource"
    );
}

#[test]
fn printer_columns() {
    let crd = crd();
    let cols = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .unwrap();
    let names: Vec<_> = cols
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_uppercase())
        .collect();
    assert_eq!(
        names,
        [
            "PROVIDER",
            "SERVICE",
            "REGION",
            "LEVEL",
            "WORST",
            "READY",
            "AGE",
            "LAST SYNC",
            "CA QUOTA VALID"
        ]
    );
    // Wide only: the default columns are a contract.
    assert_eq!(cols[8]["priority"], 1);
    assert_eq!(cols[8]["jsonPath"], ".status.capacityQuota.valid");
    let last = cols.last().unwrap();
    assert_eq!(last["priority"], 1);
    assert!(cols[..7].iter().all(|c| c.get("priority").is_none()));
}

/// Walk every node of the schema and check it against a predicate.
fn walk(v: &Value, path: &str, f: &mut dyn FnMut(&str, &serde_json::Map<String, Value>)) {
    if let Value::Object(m) = v {
        f(path, m);
        if let Some(Value::Object(props)) = m.get("properties") {
            for (k, p) in props {
                walk(p, &format!("{path}.{k}"), f);
            }
        }
        if let Some(items) = m.get("items") {
            walk(items, &format!("{path}[]"), f);
        }
    }
}

#[test]
fn schema_is_structural_documented_and_signed_integers_only() {
    let crd = crd();
    let mut problems = Vec::new();
    walk(
        &schema(&crd)["properties"]["spec"],
        "spec",
        &mut |path, m| {
            // Items of scalar lists are described by their list.
            if !path.ends_with("[]") && !m.contains_key("description") {
                problems.push(format!("{path}: no description"));
            }
        },
    );
    walk(schema(&crd), "", &mut |path, m| {
        for forbidden in ["$ref", "anyOf", "oneOf", "allOf"] {
            if m.contains_key(forbidden) {
                problems.push(format!("{path}: uses {forbidden}"));
            }
        }
        if let Some(f) = m.get("format").and_then(Value::as_str)
            && (f.starts_with("uint") || f == "int32")
        {
            problems.push(format!("{path}: format {f}, integers must be int64"));
        }
        if m.get("type").map(|t| t.is_array()).unwrap_or(false) {
            problems.push(format!("{path}: type is a list"));
        }
        if let Some(Value::Array(e)) = m.get("enum")
            && e.iter().any(Value::is_null)
        {
            problems.push(format!("{path}: null in enum"));
        }
    });
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn spec_contract_fields_defaults_and_rules() {
    let crd = crd();
    let spec = &schema(&crd)["properties"]["spec"];
    let props = spec["properties"].as_object().unwrap();
    for f in [
        "provider",
        "service",
        "region",
        "projectId",
        "endpoint",
        "zones",
        "credentialsSecretRef",
        "interval",
        "thresholds",
        "suspend",
    ] {
        assert!(props.contains_key(f), "spec.{f} missing");
    }
    assert_eq!(
        spec["required"],
        serde_json::json!(["credentialsSecretRef", "provider", "service"])
    );
    assert_eq!(
        props["provider"]["enum"],
        serde_json::json!(["huaweicloud", "zenlayer"])
    );
    assert_eq!(
        props["service"]["enum"],
        serde_json::json!(["ims", "dws", "evs", "ecs", "vm"])
    );
    assert_eq!(props["interval"]["default"], "5m");
    assert_eq!(
        props["thresholds"]["default"],
        serde_json::json!({"warning": 80, "critical": 95})
    );
    let rules: Vec<String> = spec["x-kubernetes-validations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap().to_string())
        .collect();
    assert!(
        rules
            .iter()
            .any(|r| r.contains("self.service in ['ims', 'dws', 'evs', 'ecs']"))
    );
    assert!(rules.iter().any(|r| r.contains("has(self.projectId)")));
    assert_eq!(
        props["interval"]["x-kubernetes-validations"][0]["rule"],
        "duration(self) >= duration('30s')"
    );
    assert_eq!(
        props["thresholds"]["x-kubernetes-validations"][0]["rule"],
        "self.warning <= self.critical"
    );
    // A Secret reference carries a name only: no namespace field can point elsewhere.
    let secret_ref = props["credentialsSecretRef"]["properties"]
        .as_object()
        .unwrap();
    assert_eq!(secret_ref.keys().collect::<Vec<_>>(), ["name"]);
}

#[test]
fn status_contract_fields() {
    let crd = crd();
    let status = &schema(&crd)["properties"]["status"]["properties"];
    for f in [
        "observedGeneration",
        "lastSyncTime",
        "lastAttemptTime",
        "endpoint",
        "resources",
        "level",
        "worst",
        "conditions",
    ] {
        assert!(status.get(f).is_some(), "status.{f} missing");
    }
    let res = &status["resources"]["items"]["properties"];
    for f in [
        "name",
        "zone",
        "used",
        "limit",
        "unlimited",
        "reserved",
        "min",
        "max",
        "unit",
        "usagePercent",
        "available",
        "level",
    ] {
        assert!(res.get(f).is_some(), "status.resources[].{f} missing");
    }
    assert_eq!(
        res["level"]["enum"],
        serde_json::json!(["Unlimited", "Ok", "Warning", "Critical", "Exhausted"])
    );
}

#[test]
fn samples_parse_as_cloudquotas() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");
    let mut seen = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).unwrap();
            if v["kind"] == "CloudQuota" {
                let cq: cloudquota::crd::CloudQuota = serde_json::from_value(v.clone())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                seen.insert(format!("{}/{}", cq.spec.provider, cq.spec.service));
                let secret = &cq.spec.credentials_secret_ref.name;
                assert!(
                    text.contains(&format!("name: {secret}")),
                    "{}: Secret {secret} not in the file",
                    path.display()
                );
            }
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [
            "huaweicloud/dws",
            "huaweicloud/ecs",
            "huaweicloud/evs",
            "huaweicloud/ims",
            "zenlayer/vm"
        ]
    );
}

use serde::Deserialize;
