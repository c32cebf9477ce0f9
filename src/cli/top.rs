//! `cloudquota top` (`kubectl cloudquota top`): the fullest resources across CloudQuotas.
//!
//! The IO is one list call; choosing, sorting and formatting the rows is the pure [`rows`] and
//! [`table`], unit-tested below.

use std::cmp::Ordering;

use clap::Args;
use serde::Serialize;

use super::Output;
use crate::crd::{CloudQuota, Level};
use crate::domain::status::resource_label;

#[derive(Args, Debug)]
pub struct TopArgs {
    /// List CloudQuotas in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Namespace (default: the kubeconfig context's namespace). Ignored with -A.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Only resources at this level or worse: Ok, Warning, Critical or Exhausted.
    #[arg(long, value_parser = parse_level)]
    pub level: Option<Level>,
    /// Print at most this many resources (0: all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

fn parse_level(s: &str) -> Result<Level, String> {
    [Level::Ok, Level::Warning, Level::Critical, Level::Exhausted]
        .into_iter()
        .find(|l| l.as_str().eq_ignore_ascii_case(s))
        .ok_or_else(|| format!("{s:?}: expected Ok, Warning, Critical or Exhausted"))
}

/// One resource of one CloudQuota.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub namespace: String,
    pub name: String,
    /// `name` or `name@zone`, as `status.worst` and `cloudquota check` spell it.
    pub resource: String,
    pub used: i64,
    pub limit: i64,
    pub unit: Option<String>,
    pub usage_percent: f64,
    pub level: Level,
    pub provider: String,
    pub service: String,
    pub region: Option<String>,
}

/// The limited resources of `objects` at `min_level` or worse, fullest first (usage, then
/// level, then namespace, object and resource, so the order is stable), at most `limit` (0:
/// all). Unlimited resources can never run out and are left out, as are objects without status.
pub fn rows(objects: &[CloudQuota], min_level: Option<Level>, limit: usize) -> Vec<Row> {
    let mut out: Vec<Row> = objects
        .iter()
        .flat_map(|cq| {
            let resources = cq.status.as_ref().map(|s| s.resources.as_slice());
            resources.unwrap_or_default().iter().filter_map(move |r| {
                let l = r.limit.filter(|_| !r.unlimited)?;
                Some(Row {
                    namespace: cq.metadata.namespace.clone().unwrap_or_default(),
                    name: cq.metadata.name.clone().unwrap_or_default(),
                    resource: resource_label(&r.name, r.zone.as_deref()),
                    used: r.used,
                    limit: l,
                    unit: r.unit.clone(),
                    // Older status may lack usagePercent; same rule as the operator's.
                    usage_percent: r
                        .usage_percent
                        .unwrap_or_else(|| crate::domain::thresholds::usage_percent(r.used, l)),
                    level: r.level,
                    provider: cq.spec.provider.to_string(),
                    service: cq.spec.service.to_string(),
                    region: cq.spec.region.clone(),
                })
            })
        })
        .filter(|r| r.level != Level::Unlimited && min_level.is_none_or(|m| r.level >= m))
        .collect();
    out.sort_by(|a, b| {
        b.usage_percent
            .partial_cmp(&a.usage_percent)
            .unwrap_or(Ordering::Equal)
            .then(b.level.cmp(&a.level))
            .then_with(|| {
                (&a.namespace, &a.name, &a.resource).cmp(&(&b.namespace, &b.name, &b.resource))
            })
    });
    if limit > 0 {
        out.truncate(limit);
    }
    out
}

/// An aligned table; the NAMESPACE column only when listing all namespaces.
pub fn table(rows: &[Row], all_namespaces: bool) -> String {
    let mut lines = vec![
        [
            "NAMESPACE",
            "CLOUDQUOTA",
            "RESOURCE",
            "USED/LIMIT",
            "USAGE",
            "LEVEL",
            "PROVIDER",
            "SERVICE",
            "REGION",
        ]
        .map(String::from),
    ];
    for r in rows {
        let unit = r
            .unit
            .as_deref()
            .map(|u| format!(" {u}"))
            .unwrap_or_default();
        lines.push([
            r.namespace.clone(),
            r.name.clone(),
            r.resource.clone(),
            format!("{}/{}{unit}", r.used, r.limit),
            format!("{:.1}%", r.usage_percent),
            r.level.to_string(),
            r.provider.clone(),
            r.service.clone(),
            r.region.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    if !all_namespaces {
        let lines: Vec<[String; 8]> = lines
            .into_iter()
            .map(|[_, a, b, c, d, e, f, g, h]| [a, b, c, d, e, f, g, h])
            .collect();
        return super::table(&lines);
    }
    super::table(&lines)
}

/// Lists the CloudQuotas through the user's kubeconfig and prints the rows.
pub async fn top(args: TopArgs) -> Result<String, String> {
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("Kubernetes client: {e}"))?;
    let (api, scope): (kube::Api<CloudQuota>, String) = if args.all_namespaces {
        (kube::Api::all(client), "all namespaces".into())
    } else {
        let ns = args
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        (
            kube::Api::namespaced(client, &ns),
            format!("namespace {ns}"),
        )
    };
    let list = api
        .list(&Default::default())
        .await
        .map_err(|e| format!("listing CloudQuotas in {scope}: {e}"))?;
    let rows = rows(&list.items, args.level, args.limit);
    Ok(match args.output {
        Output::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&rows).expect("serialisable")
        ),
        Output::Table if rows.is_empty() => format!("No matching resources in {scope}.\n"),
        Output::Table => table(&rows, args.all_namespaces),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{CloudQuotaSpec, CloudQuotaStatus, ResourceStatus};

    fn res(name: &str, used: i64, limit: Option<i64>, level: Level) -> ResourceStatus {
        ResourceStatus {
            level,
            ..ResourceStatus::example(name, used, limit)
        }
    }

    fn cq(
        ns: &str,
        name: &str,
        spec: serde_json::Value,
        resources: Vec<ResourceStatus>,
    ) -> CloudQuota {
        let spec: CloudQuotaSpec = serde_json::from_value(spec).unwrap();
        let mut cq = CloudQuota::new(name, spec);
        cq.metadata.namespace = Some(ns.into());
        cq.status = Some(CloudQuotaStatus {
            resources,
            ..Default::default()
        });
        cq
    }

    fn fleet() -> Vec<CloudQuota> {
        let huawei = serde_json::json!({"provider": "huaweicloud", "service": "evs", "region": "cn-north-4",
            "projectId": "p", "credentialsSecretRef": {"name": "c"}});
        let zenlayer = serde_json::json!({"provider": "zenlayer", "service": "vm", "credentialsSecretRef": {"name": "z"}});
        let mut zoned = res("image", 9, Some(10), Level::Critical);
        zoned.zone = Some("sa-jeddah-1a".into());
        vec![
            cq(
                "team-a",
                "disks",
                huawei,
                vec![
                    res("volumes", 85, Some(100), Level::Warning),
                    res("snapshots", 3, None, Level::Unlimited),
                    res("gigabytes", 10, Some(100), Level::Ok),
                    // Usage went down inside the hysteresis band: still Warning at 79%.
                    res("backups", 79, Some(100), Level::Warning),
                ],
            ),
            cq(
                "team-b",
                "vms",
                zenlayer,
                vec![zoned, res("instance", 5, Some(5), Level::Exhausted)],
            ),
            // Never polled: no status, nothing to show.
            {
                let mut c = cq(
                    "team-b",
                    "new",
                    serde_json::json!({"provider": "zenlayer", "service": "vm",
                    "credentialsSecretRef": {"name": "z"}}),
                    vec![],
                );
                c.status = None;
                c
            },
        ]
    }

    fn ids(rows: &[Row]) -> Vec<String> {
        rows.iter()
            .map(|r| format!("{}/{} {}", r.namespace, r.name, r.resource))
            .collect()
    }

    #[test]
    fn fullest_first_unlimited_left_out() {
        let r = rows(&fleet(), None, 0);
        assert_eq!(
            ids(&r),
            [
                "team-b/vms instance",
                "team-b/vms image@sa-jeddah-1a",
                "team-a/disks volumes",
                "team-a/disks backups",
                "team-a/disks gigabytes",
            ]
        );
        assert_eq!(r[0].usage_percent, 100.0);
        assert_eq!(r[1].region, None);
        assert_eq!(r[2].provider, "huaweicloud");
        assert_eq!(r[2].region.as_deref(), Some("cn-north-4"));
    }

    #[test]
    fn level_filter_is_at_least() {
        let r = rows(&fleet(), Some(Level::Warning), 0);
        assert_eq!(r.len(), 4, "{:?}", ids(&r));
        assert!(r.iter().all(|x| x.level >= Level::Warning));
        let r = rows(&fleet(), Some(Level::Critical), 0);
        assert_eq!(
            ids(&r),
            ["team-b/vms instance", "team-b/vms image@sa-jeddah-1a"]
        );
        assert_eq!(parse_level("critical"), Ok(Level::Critical));
        assert!(parse_level("Unlimited").is_err());
    }

    #[test]
    fn equal_usage_sorts_by_level_then_name() {
        let spec = serde_json::json!({"provider": "zenlayer", "service": "vm", "credentialsSecretRef": {"name": "z"}});
        let objects = vec![
            cq(
                "b",
                "q",
                spec.clone(),
                vec![res("x", 80, Some(100), Level::Ok)],
            ),
            cq(
                "a",
                "q",
                spec.clone(),
                vec![res("x", 80, Some(100), Level::Ok)],
            ),
            cq(
                "c",
                "q",
                spec,
                vec![res("x", 80, Some(100), Level::Warning)],
            ),
        ];
        assert_eq!(ids(&rows(&objects, None, 0)), ["c/q x", "a/q x", "b/q x"]);
        assert_eq!(ids(&rows(&objects, None, 2)), ["c/q x", "a/q x"]);
    }

    #[test]
    fn command_line() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "kubectl-cloudquota",
            "top",
            "-A",
            "--level",
            "warning",
        ])
        .unwrap();
        match cli.command {
            crate::cli::Command::Top(a) => {
                assert!(a.all_namespaces);
                assert_eq!(a.level, Some(Level::Warning));
                assert_eq!(a.limit, 20);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            crate::cli::Cli::try_parse_from(["cloudquota", "top", "--level", "Unlimited"]).is_err()
        );
    }

    #[test]
    fn table_columns() {
        let r = rows(&fleet(), Some(Level::Exhausted), 0);
        assert_eq!(
            table(&r, true),
            "NAMESPACE  CLOUDQUOTA  RESOURCE  USED/LIMIT  USAGE   LEVEL      PROVIDER  SERVICE  REGION\n\
             team-b     vms         instance  5/5         100.0%  Exhausted  zenlayer  vm       -\n"
        );
        assert!(table(&r, false).starts_with("CLOUDQUOTA  RESOURCE"));
    }
}
