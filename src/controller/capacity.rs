//! Publishing cluster-autoscaler CapacityQuotas (`spec.capacityQuota`): a second controller
//! over CloudQuota, started only when the feature is on.
//!
//! It reads what the main reconcile wrote (`status.resources`, `Ready`), the Nodes matching the
//! selector (a Node watch, only while the feature is on) and the CapacityQuota itself, and
//! server-side applies the CapacityQuota's spec (field manager `cloudquota`) when a limit or the
//! selector changed. On the CloudQuota it owns `status.capacityQuota` and the
//! `CapacityQuotaPublished` condition through its own field manager (`cloudquota-capacity`), so
//! it and the main status writer never take each other's fields. Every write goes through the
//! leadership fence. The formula lives in [`crate::domain::capacity`].
//!
//! A cluster-scoped CapacityQuota cannot have a namespaced owner, so cleanup is a finalizer on
//! the CloudQuota, present only while it publishes. A CapacityQuota it did not create (no
//! `cloudquota.io/owner` annotation naming this CloudQuota) is never changed or deleted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::leader::{Leadership, NotLeader};
use crate::crd::{CloudQuota, PublishedCapacityQuota};
use crate::domain::capacity::{self as model, Published};

/// Field manager of the CapacityQuota's spec.
pub const APPLY_MANAGER: &str = "cloudquota";
/// Field manager of `status.capacityQuota` and the condition on the CloudQuota.
pub const STATUS_MANAGER: &str = "cloudquota-capacity";
/// Present while the CloudQuota publishes: its deletion first deletes the CapacityQuota.
pub const FINALIZER: &str = "cloudquota.io/capacity-quota";
pub const CONDITION: &str = "CapacityQuotaPublished";

/// Condition reasons.
pub mod reason {
    pub const PUBLISHED: &str = "Published";
    pub const STALE: &str = "StaleCloudData";
    pub const WAITING: &str = "WaitingForCloudData";
    pub const CRD_NOT_INSTALLED: &str = "CRDNotInstalled";
    pub const NOT_OWNED: &str = "NotOwned";
    pub const NAMESPACE_NOT_TRUSTED: &str = "NamespaceNotTrusted";
    pub const INVALID_MAPPING: &str = "InvalidMapping";
    pub const INVALID_SELECTOR: &str = "InvalidSelector";
}

/// How often a publishing CloudQuota is looked at without a change: picks up the autoscaler's
/// `status.used` and validity condition.
const RESYNC: Duration = Duration::from_secs(30);
/// How long a discovery answer (is the CRD served, which version) is reused.
const DISCOVERY_TTL: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Namespaces whose CloudQuotas may publish (`--capacity-quota-namespace`).
    pub trusted_namespaces: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("CloudQuota has no namespace or uid")]
    NotNamespaced,
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    #[error("{0}: {1}")]
    Kube(&'static str, #[source] kube::Error),
}

struct Ctx {
    client: kube::Client,
    leader: Arc<Leadership>,
    trusted: BTreeSet<String>,
    nodes: Store<Node>,
    discovery: Mutex<Option<(Instant, Option<ApiResource>)>>,
}

/// Runs the publisher until `stop` flips (one controller per watched namespace, as the main
/// controller, plus one Node watch).
pub async fn run(
    client: kube::Client,
    config: Config,
    namespaces: Vec<String>,
    leader: Arc<Leadership>,
    stop: watch::Receiver<bool>,
) {
    let (node_reader, node_writer) = reflector::store::<Node>();
    let apis: Vec<Api<CloudQuota>> = if namespaces.is_empty() {
        vec![Api::all(client.clone())]
    } else {
        namespaces
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    };
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        leader,
        trusted: config.trusted_namespaces.into_iter().collect(),
        nodes: node_reader,
        discovery: Mutex::new(None),
    });
    let mut targets: Vec<(
        Store<CloudQuota>,
        mpsc::UnboundedSender<ObjectRef<CloudQuota>>,
    )> = Vec::new();
    let mut controllers = Vec::new();
    for api in apis {
        let (tx, rx) = mpsc::unbounded_channel();
        let (reader, writer) = reflector::store();
        let objects = watcher(api, watcher::Config::default().any_semantic())
            .default_backoff()
            .modify(|cq| cq.managed_fields_mut().clear())
            .reflect(writer)
            .applied_objects();
        targets.push((reader.clone(), tx));
        controllers.push(
            Controller::for_stream(objects, reader)
                .with_config(ControllerConfig::default().concurrency(4))
                .reconcile_on(UnboundedReceiverStream::new(rx))
                .graceful_shutdown_on(wait_stop(stop.clone())),
        );
    }
    // Nodes: only labels and capacity matter; everything else (heartbeats, images,
    // conditions) is dropped before it reaches the store, and only a change of what matters,
    // a deletion or a relist wakes the publishing CloudQuotas.
    let node_watch = async move {
        let api: Api<Node> = Api::all(client);
        let mut seen: HashMap<String, u64> = HashMap::new();
        let events = watcher(api, watcher::Config::default().any_semantic())
            .default_backoff()
            .modify(slim_node)
            .reflect(node_writer);
        futures::pin_mut!(events);
        while let Some(ev) = events.next().await {
            let changed = match ev {
                Ok(watcher::Event::Apply(n)) | Ok(watcher::Event::InitApply(n)) => {
                    let h = node_fingerprint(&n);
                    seen.insert(n.name_any(), h) != Some(h)
                }
                Ok(watcher::Event::Delete(n)) => {
                    seen.remove(&n.name_any());
                    true
                }
                Ok(watcher::Event::InitDone) => true,
                Ok(watcher::Event::Init) => false,
                Err(e) => {
                    tracing::warn!(error = %e, "Node watch failed (capacity quotas)");
                    false
                }
            };
            if changed {
                for (store, tx) in &targets {
                    for cq in store.state() {
                        if involved(&cq) {
                            let _ = tx.send(ObjectRef::from_obj(&*cq));
                        }
                    }
                }
            }
        }
    };
    let runs = controllers.into_iter().map(|c| {
        c.run(reconcile, error_policy, ctx.clone())
            .for_each(|res| async move {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "capacity quota controller");
                }
            })
    });
    tokio::select! {
        _ = futures::future::join_all(runs) => {}
        _ = node_watch => {}
    }
}

async fn wait_stop(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Keeps what the publisher reads: name, labels, capacity.
fn slim_node(n: &mut Node) {
    n.managed_fields_mut().clear();
    n.annotations_mut().clear();
    n.spec = None;
    if let Some(s) = n.status.as_mut() {
        *s = k8s_openapi::api::core::v1::NodeStatus {
            capacity: s.capacity.take(),
            ..Default::default()
        };
    }
}

fn node_fingerprint(n: &Node) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    n.labels().hash(&mut h);
    if let Some(cap) = n.status.as_ref().and_then(|s| s.capacity.as_ref()) {
        for (k, v) in cap {
            (k, &v.0).hash(&mut h);
        }
    }
    h.finish()
}

/// Publishes, or has something to clean up.
fn involved(cq: &CloudQuota) -> bool {
    cq.spec.capacity_quota.is_some() || has_finalizer(cq)
}

fn has_finalizer(cq: &CloudQuota) -> bool {
    cq.finalizers().iter().any(|f| f == FINALIZER)
}

fn error_policy(cq: Arc<CloudQuota>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    // A finalizer patch raced another write of the object (it is conditional on the
    // resourceVersion read): retry soon, with the newer object.
    if let Error::Kube(_, kube::Error::Api(e)) = err
        && e.code == 409
    {
        tracing::debug!(namespace = cq.namespace().unwrap_or_default(), name = cq.name_any(), error = %err, "conflict; retrying");
        return Action::requeue(Duration::from_secs(1));
    }
    tracing::warn!(namespace = cq.namespace().unwrap_or_default(), name = cq.name_any(), error = %err, "publishing the CapacityQuota failed; retrying");
    Action::requeue(Duration::from_secs(10))
}

/// What this round says on the CloudQuota.
struct Report {
    status: bool,
    reason: &'static str,
    message: String,
    published: Option<PublishedCapacityQuota>,
}

impl Report {
    fn failed(reason: &'static str, message: String) -> Report {
        Report {
            status: false,
            reason,
            message,
            published: None,
        }
    }
}

async fn reconcile(cq: Arc<CloudQuota>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let (Some(ns), Some(_uid)) = (cq.namespace(), cq.uid()) else {
        return Err(Error::NotNamespaced);
    };
    let deleting = cq.metadata.deletion_timestamp.is_some();
    let trusted = ctx.trusted.contains(&ns);
    let block = cq
        .spec
        .capacity_quota
        .as_ref()
        .filter(|_| trusted && !deleting);
    let Some(block) = block else {
        if has_finalizer(&cq) {
            cleanup(&ctx, &cq).await?;
        }
        if deleting {
            return Ok(Action::await_change());
        }
        let report = (cq.spec.capacity_quota.is_some()).then(|| {
            Report::failed(
                reason::NAMESPACE_NOT_TRUSTED,
                format!(
                    "namespace {ns} is not trusted to publish cluster-autoscaler CapacityQuotas (operator flag --capacity-quota-namespace); nothing is published"
                ),
            )
        });
        write_status(&ctx, &cq, report).await?;
        return Ok(Action::await_change());
    };
    let name = model::object_name(block.name.as_deref(), &ns, &cq.name_any());
    let Some(ar) = discover(&ctx).await? else {
        let report = Report::failed(
            reason::CRD_NOT_INSTALLED,
            format!(
                "the cluster autoscaler's CapacityQuota CRD ({}/{} or {}) is not served; nothing is published",
                model::GROUP,
                model::VERSIONS[0],
                model::VERSIONS[1]
            ),
        );
        write_status(&ctx, &cq, Some(report)).await?;
        return Ok(Action::requeue(Duration::from_secs(20)));
    };
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &ar);
    let existing = api
        .get_opt(&name)
        .await
        .map_err(|e| Error::Kube("reading the CapacityQuota", e))?;
    let owner = format!("{ns}/{}", cq.name_any());
    if let Some(obj) = &existing
        && obj.annotations().get(model::OWNER_ANNOTATION) != Some(&owner)
    {
        let report = Report::failed(
            reason::NOT_OWNED,
            format!(
                "CapacityQuota {name} exists and was not created by this CloudQuota (no {}={owner} annotation); it is left alone. Set spec.capacityQuota.name to another name",
                model::OWNER_ANNOTATION
            ),
        );
        write_status(&ctx, &cq, Some(report)).await?;
        return Ok(Action::requeue(RESYNC * 4));
    }
    if !has_finalizer(&cq) {
        add_finalizer(&ctx, &cq).await?;
    }
    // spec.capacityQuota.name changed: the one published under the old name goes.
    if let Some(old) = cq
        .status
        .as_ref()
        .and_then(|s| s.capacity_quota.as_ref())
        .map(|p| p.name.as_str())
        .filter(|old| *old != name)
    {
        delete_owned(&ctx, &cq, &ar, old).await?;
    }
    let observed = existing
        .as_ref()
        .map(|o| Published::from_spec(&o.data["spec"]));
    let prev = cq.status.as_ref().and_then(|s| s.capacity_quota.clone());
    let mut published = PublishedCapacityQuota {
        name: name.clone(),
        api_version: Some(ar.api_version.clone()),
        limits: observed
            .as_ref()
            .map(|o| quantities(&o.limits))
            .unwrap_or_default(),
        published_time: prev
            .as_ref()
            .filter(|p| p.name == name)
            .and_then(|p| p.published_time.clone()),
        nodes: prev.as_ref().and_then(|p| p.nodes),
        ..Default::default()
    };
    if let Some(obj) = &existing {
        autoscaler_view(obj, &mut published);
    }
    let status = cq.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| (c.status.as_str(), c.reason.as_str()));
    // Suspended is Ready=True with the last data, which is not current either.
    let fresh = ready.is_some_and(|(s, r)| s == "True" && r != "Suspended")
        && status.is_some_and(|s| !s.resources.is_empty());
    if !fresh {
        let why = match ready {
            Some((s, r)) => format!("Ready={s}/{r}"),
            None => "not polled yet".into(),
        };
        // Fail-static: a stale limit is safer than a vanished one.
        let report = match existing {
            Some(_) => Report {
                status: true,
                reason: reason::STALE,
                message: format!(
                    "cloud data not current ({why}); keeping the limits last published"
                ),
                published: Some(published),
            },
            None => Report::failed(
                reason::WAITING,
                format!("no current cloud data yet ({why}); nothing published"),
            ),
        };
        write_status(&ctx, &cq, Some(report)).await?;
        return Ok(Action::requeue(RESYNC));
    }
    let resources = &status.expect("fresh implies status").resources;
    let selector = match block.selector.clone().map(Selector::try_from).transpose() {
        Ok(s) => s,
        Err(e) => {
            let report = Report::failed(reason::INVALID_SELECTOR, format!("selector: {e}"));
            write_status(&ctx, &cq, Some(report)).await?;
            return Ok(Action::await_change());
        }
    };
    let nodes_listed = tokio::time::timeout(Duration::from_secs(5), ctx.nodes.wait_until_ready());
    if !matches!(nodes_listed.await, Ok(Ok(()))) {
        // Never compute from a partial Node list: it would publish too low a limit.
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let mappings = model::mappings(cq.spec.service.as_str(), &block.resources);
    let names: Vec<&str> = mappings.iter().map(|m| m.name.as_str()).collect();
    let nodes: Vec<BTreeMap<String, i64>> = ctx
        .nodes
        .state()
        .iter()
        .filter(|n| selector.as_ref().is_none_or(|s| s.matches(n.labels())))
        .map(|n| {
            let cap: BTreeMap<String, String> = n
                .status
                .as_ref()
                .and_then(|s| s.capacity.as_ref())
                .map(|c| c.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
                .unwrap_or_default();
            model::node_amounts(&cap, &names)
        })
        .collect();
    let usage = model::sum_usage(&nodes);
    let limits = match model::limits(&mappings, resources, &usage) {
        Ok(l) => l,
        Err(e) => {
            let report = Report {
                status: existing.is_some(),
                reason: reason::INVALID_MAPPING,
                message: if existing.is_some() {
                    format!("{e}; keeping the limits last published")
                } else {
                    e.to_string()
                },
                published: existing.is_some().then_some(published),
            };
            write_status(&ctx, &cq, Some(report)).await?;
            return Ok(Action::requeue(RESYNC));
        }
    };
    let selector_json = block
        .selector
        .as_ref()
        .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
        .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
        .unwrap_or(Value::Null);
    let desired = Published {
        selector: selector_json.clone(),
        limits: limits.clone(),
    };
    let nodes_count = nodes.len() as i64;
    if model::needs_write(&desired, observed.as_ref()) {
        let mut spec = json!({"limits": {"resources": quantities(&limits)}});
        if !selector_json.is_null() {
            spec["selector"] = selector_json;
        }
        let obj = json!({
            "apiVersion": ar.api_version,
            "kind": model::KIND,
            "metadata": {
                "name": name,
                "labels": {model::MANAGED_BY_LABEL: model::MANAGED_BY},
                "annotations": {
                    model::OWNER_ANNOTATION: owner,
                    model::OWNER_UID_ANNOTATION: cq.uid().unwrap_or_default(),
                },
            },
            "spec": spec,
        });
        ctx.leader.ensure()?;
        api.patch(
            &name,
            &PatchParams::apply(APPLY_MANAGER).force(),
            &Patch::Apply(&obj),
        )
        .await
        .map_err(|e| Error::Kube("applying the CapacityQuota", e))?;
        tracing::info!(namespace = %ns, name = cq.name_any(), capacity_quota = %name, limits = ?limits, nodes = nodes_count, "published CapacityQuota limits");
        published.limits = quantities(&limits);
        published.published_time = Some(Time(Timestamp::now()));
    }
    published.nodes = Some(nodes_count);
    let summary: Vec<String> = limits.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let report = Report {
        status: true,
        reason: reason::PUBLISHED,
        message: format!(
            "CapacityQuota {name}: {} over {nodes_count} matching Nodes",
            if summary.is_empty() {
                "no limits (every mapped cloud resource is unlimited)".to_string()
            } else {
                summary.join(", ")
            }
        ),
        published: Some(published),
    };
    write_status(&ctx, &cq, Some(report)).await?;
    Ok(Action::requeue(RESYNC))
}

/// Integer quantities as the API server keeps them (strings).
fn quantities(limits: &BTreeMap<String, i64>) -> BTreeMap<String, String> {
    limits
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect()
}

/// The autoscaler's `status.used` and validity condition.
fn autoscaler_view(obj: &DynamicObject, out: &mut PublishedCapacityQuota) {
    let status = &obj.data["status"];
    out.used = status["used"]["resources"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), s)
                })
                .collect()
        })
        .unwrap_or_default();
    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    let valid = model::VALID_CONDITIONS
        .iter()
        .find_map(|t| conditions.iter().find(|c| c["type"].as_str() == Some(t)));
    out.valid = valid.and_then(|c| c["status"].as_str()).map(str::to_string);
    out.message = valid
        .and_then(|c| c["message"].as_str())
        .filter(|m| !m.is_empty())
        .map(str::to_string);
}

/// Which CapacityQuota version the API server serves: v1beta1 when it does, else v1alpha1,
/// else none (the CRD is not installed).
async fn discover(ctx: &Ctx) -> Result<Option<ApiResource>, Error> {
    if let Some((at, ar)) = ctx
        .discovery
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        && at.elapsed() < DISCOVERY_TTL
    {
        return Ok(ar);
    }
    let groups = ctx
        .client
        .list_api_groups()
        .await
        .map_err(|e| Error::Kube("API discovery", e))?;
    let served: Vec<String> = groups
        .groups
        .iter()
        .filter(|g| g.name == model::GROUP)
        .flat_map(|g| g.versions.iter().map(|v| v.version.clone()))
        .collect();
    let ar = model::VERSIONS
        .iter()
        .find(|v| served.iter().any(|s| s == *v))
        .map(|v| ApiResource {
            group: model::GROUP.into(),
            version: (*v).into(),
            api_version: format!("{}/{v}", model::GROUP),
            kind: model::KIND.into(),
            plural: model::PLURAL.into(),
        });
    *ctx.discovery.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), ar.clone()));
    Ok(ar)
}

/// Deletes the CapacityQuota this CloudQuota created (never another's), then the finalizer.
async fn cleanup(ctx: &Ctx, cq: &CloudQuota) -> Result<(), Error> {
    let ns = cq.namespace().unwrap_or_default();
    let mut names = vec![model::object_name(
        cq.spec
            .capacity_quota
            .as_ref()
            .and_then(|b| b.name.as_deref()),
        &ns,
        &cq.name_any(),
    )];
    if let Some(p) = cq.status.as_ref().and_then(|s| s.capacity_quota.as_ref())
        && !names.contains(&p.name)
    {
        names.push(p.name.clone());
    }
    // The cache may say "not installed" for a CRD installed since; deletion must not rely on it.
    *ctx.discovery.lock().unwrap_or_else(|e| e.into_inner()) = None;
    if let Some(ar) = discover(ctx).await? {
        for name in &names {
            delete_owned(ctx, cq, &ar, name).await?;
        }
    }
    remove_finalizer(ctx, cq).await
}

/// Deletes the CapacityQuota `name` if this CloudQuota owns it (the uid precondition makes sure
/// it is the object just read).
async fn delete_owned(
    ctx: &Ctx,
    cq: &CloudQuota,
    ar: &ApiResource,
    name: &str,
) -> Result<(), Error> {
    let ns = cq.namespace().unwrap_or_default();
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), ar);
    let Some(obj) = api
        .get_opt(name)
        .await
        .map_err(|e| Error::Kube("reading the CapacityQuota", e))?
    else {
        return Ok(());
    };
    if obj.annotations().get(model::OWNER_ANNOTATION) != Some(&format!("{ns}/{}", cq.name_any())) {
        return Ok(());
    }
    ctx.leader.ensure()?;
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: obj.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => {
            tracing::info!(namespace = %ns, name = cq.name_any(), capacity_quota = %name, "deleted CapacityQuota");
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(Error::Kube("deleting the CapacityQuota", e)),
    }
}

async fn add_finalizer(ctx: &Ctx, cq: &CloudQuota) -> Result<(), Error> {
    let mut finalizers = cq.finalizers().to_vec();
    finalizers.push(FINALIZER.into());
    set_finalizers(ctx, cq, finalizers, "adding the finalizer").await
}

async fn remove_finalizer(ctx: &Ctx, cq: &CloudQuota) -> Result<(), Error> {
    if !has_finalizer(cq) {
        return Ok(());
    }
    let finalizers: Vec<String> = cq
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    set_finalizers(ctx, cq, finalizers, "removing the finalizer").await
}

/// Replaces the finalizer list, conditional on the resourceVersion it was read at (a merge
/// patch carrying `resourceVersion` fails with a conflict when the object changed since), so
/// another controller's finalizer added meanwhile is never dropped.
async fn set_finalizers(
    ctx: &Ctx,
    cq: &CloudQuota,
    finalizers: Vec<String>,
    what: &'static str,
) -> Result<(), Error> {
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": cq.resource_version(),
    }});
    let api: Api<CloudQuota> =
        Api::namespaced(ctx.client.clone(), &cq.namespace().unwrap_or_default());
    ctx.leader.ensure()?;
    api.patch(
        &cq.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(|e| Error::Kube(what, e))?;
    Ok(())
}

/// Applies this publisher's part of the status (condition and `status.capacityQuota`) when it
/// differs from what is stored; `None` removes both.
async fn write_status(ctx: &Ctx, cq: &CloudQuota, report: Option<Report>) -> Result<(), Error> {
    let stored = cq.status.as_ref();
    let stored_cond = stored.and_then(|s| s.conditions.iter().find(|c| c.type_ == CONDITION));
    let stored_published = stored.and_then(|s| s.capacity_quota.as_ref());
    let (condition, published) = match report {
        None => {
            if stored_cond.is_none() && stored_published.is_none() {
                return Ok(());
            }
            (None, None)
        }
        Some(r) => {
            let status = if r.status { "True" } else { "False" };
            let unchanged = stored_cond.is_some_and(|c| {
                c.status == status
                    && c.reason == r.reason
                    && c.message == r.message
                    && c.observed_generation == cq.metadata.generation
            }) && stored_published == r.published.as_ref();
            if unchanged {
                return Ok(());
            }
            let transition = stored_cond
                .filter(|c| c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or(Time(Timestamp::now()));
            let cond = Condition {
                type_: CONDITION.into(),
                status: status.into(),
                reason: r.reason.into(),
                message: r.message,
                observed_generation: cq.metadata.generation,
                last_transition_time: transition,
            };
            (Some(cond), r.published)
        }
    };
    let mut status = json!({});
    if let Some(c) = condition {
        status["conditions"] = json!([c]);
    }
    if let Some(p) = published {
        status["capacityQuota"] = serde_json::to_value(p).unwrap_or(Value::Null);
    }
    let patch = json!({
        "apiVersion": CloudQuota::api_version(&()),
        "kind": CloudQuota::kind(&()),
        "status": status,
    });
    let api: Api<CloudQuota> =
        Api::namespaced(ctx.client.clone(), &cq.namespace().unwrap_or_default());
    ctx.leader.ensure()?;
    api.patch_status(
        &cq.name_any(),
        &PatchParams::apply(STATUS_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|e| Error::Kube("writing the CloudQuota status", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(status: Value) -> DynamicObject {
        let mut o = DynamicObject::new("q", &ApiResource::erase::<Node>(&()));
        o.data = json!({"status": status});
        o
    }

    #[test]
    fn the_autoscalers_view_is_read_from_either_validity_condition() {
        for t in model::VALID_CONDITIONS {
            let mut p = PublishedCapacityQuota::default();
            autoscaler_view(
                &quota(json!({
                    "used": {"resources": {"cpu": "24", "nodes": 3}},
                    "conditions": [{"type": "Other", "status": "False"},
                                   {"type": t, "status": "False", "message": "limit too low"}],
                })),
                &mut p,
            );
            assert_eq!(p.valid.as_deref(), Some("False"), "{t}");
            assert_eq!(p.message.as_deref(), Some("limit too low"));
            assert_eq!(p.used.get("cpu").map(String::as_str), Some("24"));
            assert_eq!(p.used.get("nodes").map(String::as_str), Some("3"));
        }
        let mut p = PublishedCapacityQuota::default();
        autoscaler_view(&quota(json!({})), &mut p);
        assert_eq!(p.valid, None, "not judged yet");
        assert!(p.used.is_empty());
    }

    #[test]
    fn only_labels_and_capacity_wake_the_publisher() {
        let node = |labels: Value, cpu: &str, heartbeat: &str| -> Node {
            serde_json::from_value(json!({
                "metadata": {"name": "n", "labels": labels, "annotations": {"a": heartbeat}},
                "status": {"capacity": {"cpu": cpu},
                           "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": heartbeat}]},
            }))
            .unwrap()
        };
        let mut a = node(json!({"pool": "a"}), "8", "2026-01-01T00:00:00Z");
        let mut b = node(json!({"pool": "a"}), "8", "2026-01-01T00:00:10Z");
        slim_node(&mut a);
        slim_node(&mut b);
        assert_eq!(node_fingerprint(&a), node_fingerprint(&b), "a heartbeat");
        assert!(a.status.as_ref().unwrap().conditions.is_none(), "slimmed");
        let mut c = node(json!({"pool": "b"}), "8", "2026-01-01T00:00:00Z");
        let mut d = node(json!({"pool": "a"}), "16", "2026-01-01T00:00:00Z");
        slim_node(&mut c);
        slim_node(&mut d);
        assert_ne!(node_fingerprint(&a), node_fingerprint(&c), "labels");
        assert_ne!(node_fingerprint(&a), node_fingerprint(&d), "capacity");
    }
}
