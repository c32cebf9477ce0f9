#!/usr/bin/env bash
# Tests for the Helm chart in charts/cloudquota.
#
# Usage: hack/chart-test.sh [--update] [--offline] [--no-build]
#   --update    rewrite the snapshots (charts/cloudquota/snapshots/*.yaml), the chart's CRD
#               template (hack/sync-chart-crd.sh) and docs/kube-state-metrics.yaml instead of
#               failing on drift
#   --offline   only the parts that need no API server (lint, render, snapshots, schema)
#   --no-build  fail instead of building helm when it is missing
#
# Offline part:
#   1. templates/crd.yaml is crds/cloudquota.yaml verbatim (hack/sync-chart-crd.sh --check) and
#      docs/kube-state-metrics.yaml is the chart's files/kube-state-metrics.yaml
#   2. helm lint --strict with the default values and with ci/*-values.yaml
#   3. helm template with the default values and ci/all-features-values.yaml must equal
#      snapshots/default.yaml and snapshots/all-features.yaml (release "cloudquota", namespace
#      "cloudquota-system"); the PrometheusRule's expressions and `for` durations must load
#      in Prometheus' PromQL parser (promql-check, hack/tools/promql)
#   4. every ci/invalid/*-values.yaml must be rejected (values.schema.json or a template check)
# Live part (a throw-away etcd + kube-apiserver from hack/controlplane.sh, in a temp dir that
# is destroyed on exit):
#   5. server-side apply of both snapshots (every object must be accepted; ServiceMonitor and
#      PrometheusRule against the minimal CRDs in ci/fixtures/monitoring-crds.yaml), in a
#      namespace that enforces Pod Security "restricted" (any warning fails the test), plus
#      samples/*.yaml against the chart's CRD
#   6. the operator's effective RBAC with `kubectl auth can-i --as=<its ServiceAccount>`
#   7. helm install, helm upgrade (--set, then to the all-features values: cluster-wide to
#      namespaced RBAC), helm uninstall; CRD kept or deleted according to crds.keep
#
# No check depends on timing: command output is captured before it is searched (a pipe into
# `grep -q` under pipefail fails when grep exits first), and what the API server does
# asynchronously (RBAC caches, CRD serving, deletions) is polled for with a deadline.
# With CLOUDQUOTA_ARTIFACTS_DIR set (hack/test.sh), the control plane's logs are kept below it.
#
# Tools: helm (and promql-check, taken from next to helm) from $HELM, $CLOUDQUOTA_TOOLS_BIN or
# hack/build-tools.sh (built there if missing; concurrent builds wait on its lock). kubectl
# comes with the control plane.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=hack/lib/artifacts.sh
. "${ROOT}/hack/lib/artifacts.sh"
CHART="${ROOT}/charts/cloudquota"
SNAPSHOTS="${CHART}/snapshots"
RELEASE=cloudquota
NAMESPACE=cloudquota-system
# Seconds to wait for what the API server does asynchronously. Generous: a loaded 2-core CI
# machine, and a passing run never waits for it.
DEADLINE=60

UPDATE=0 OFFLINE=0 NO_BUILD=0
for arg in "$@"; do
  case "${arg}" in
    --update) UPDATE=1 ;;
    --offline) OFFLINE=1 ;;
    --no-build) NO_BUILD=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) printf 'chart-test: unknown argument: %s\n' "${arg}" >&2; exit 2 ;;
  esac
done

STEP=""
step() { STEP="$*"; printf '\n== %s\n' "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
fail() { printf 'chart-test: FAIL (%s): %s\n' "${STEP}" "$*" >&2; exit 1; }

# ------------------------------------------------------------------ helm ---

find_helm() {
  local bin_dir
  if [[ -n "${HELM:-}" ]]; then
    [[ -x "${HELM}" ]] || fail "HELM=${HELM} is not executable"
    return 0
  fi
  if [[ -n "${CLOUDQUOTA_TOOLS_BIN:-}" && -x "${CLOUDQUOTA_TOOLS_BIN}/helm" ]]; then
    HELM="${CLOUDQUOTA_TOOLS_BIN}/helm"
    return 0
  fi
  bin_dir="$("${ROOT}/hack/build-tools.sh" --print-bin-dir)"
  if [[ ! -x "${bin_dir}/helm" ]]; then
    (( NO_BUILD == 0 )) || fail "helm not found in ${bin_dir}; build it with: hack/build-tools.sh helm"
    echo "helm is missing; building it with hack/build-tools.sh helm (waits for a running build)"
    bin_dir="$("${ROOT}/hack/build-tools.sh" helm | tail -n 1)"
  fi
  [[ -x "${bin_dir}/helm" ]] || fail "helm not found in ${bin_dir}"
  HELM="${bin_dir}/helm"
}

# promql-check (hack/tools/promql) next to helm, else from hack/build-tools.sh.
find_promql_check() {
  local bin_dir
  PROMQL_CHECK="$(dirname "${HELM}")/promql-check"
  [[ -x "${PROMQL_CHECK}" ]] && return 0
  bin_dir="$("${ROOT}/hack/build-tools.sh" --print-bin-dir)"
  if [[ ! -x "${bin_dir}/promql-check" ]]; then
    (( NO_BUILD == 0 )) || fail "promql-check not found; build it with: hack/build-tools.sh promql-check"
    bin_dir="$("${ROOT}/hack/build-tools.sh" promql-check | tail -n 1)"
  fi
  PROMQL_CHECK="${bin_dir}/promql-check"
  [[ -x "${PROMQL_CHECK}" ]] || fail "promql-check not found in ${bin_dir}"
}

render() { # values-file-or-empty
  local args=(template "${RELEASE}" "${CHART}" --namespace "${NAMESPACE}")
  [[ -z "${1:-}" ]] || args+=(--values "$1")
  "${HELM}" "${args[@]}"
}

# -------------------------------------------------------------- offline ---

offline() {
  step "CRD template and kube-state-metrics doc are in sync"
  if (( UPDATE )); then
    "${ROOT}/hack/sync-chart-crd.sh"
    cp "${CHART}/files/kube-state-metrics.yaml" "${ROOT}/docs/kube-state-metrics.yaml"
  fi
  "${ROOT}/hack/sync-chart-crd.sh" --check || fail "run hack/chart-test.sh --update"
  ok "templates/crd.yaml == crds/cloudquota.yaml + chart wrapper"
  cmp -s "${CHART}/files/kube-state-metrics.yaml" "${ROOT}/docs/kube-state-metrics.yaml" ||
    fail "docs/kube-state-metrics.yaml differs from charts/cloudquota/files/kube-state-metrics.yaml; run hack/chart-test.sh --update"
  ok "docs/kube-state-metrics.yaml == files/kube-state-metrics.yaml"

  step "helm lint --strict"
  "${HELM}" lint --strict "${CHART}" --namespace "${NAMESPACE}" >/dev/null ||
    { "${HELM}" lint --strict "${CHART}"; fail "default values"; }
  ok "default values"
  local f
  for f in "${CHART}"/ci/*-values.yaml; do
    "${HELM}" lint --strict "${CHART}" --namespace "${NAMESPACE}" --values "${f}" >/dev/null ||
      { "${HELM}" lint --strict "${CHART}" --values "${f}"; fail "${f#"${ROOT}"/}"; }
    ok "${f#"${ROOT}"/}"
  done

  step "helm template matches the snapshots"
  mkdir -p "${SNAPSHOTS}"
  local name values out drift=0
  for name in default all-features; do
    values=""
    [[ "${name}" == default ]] || values="${CHART}/ci/${name}-values.yaml"
    out="${WORK}/${name}.yaml"
    render "${values}" > "${out}" || fail "helm template (${name}) failed"
    if (( UPDATE )); then
      cp "${out}" "${SNAPSHOTS}/${name}.yaml"
      ok "wrote snapshots/${name}.yaml"
    elif ! cmp -s "${out}" "${SNAPSHOTS}/${name}.yaml"; then
      diff -u "${SNAPSHOTS}/${name}.yaml" "${out}" > "${WORK}/${name}.diff" || true
      head -n 60 "${WORK}/${name}.diff" >&2
      printf 'snapshots/%s.yaml is stale (diff above, first 60 lines)\n' "${name}" >&2
      drift=1
    else
      ok "snapshots/${name}.yaml"
    fi
  done
  (( drift == 0 )) || fail "rendered chart differs from the snapshots; review and run hack/chart-test.sh --update"

  step "PrometheusRule expressions parse (Prometheus' PromQL parser)"
  find_promql_check
  local rules
  rules="$("${PROMQL_CHECK}" "${WORK}/all-features.yaml")" ||
    { printf '%s\n' "${rules}" >&2; fail "the chart's PrometheusRule does not load"; }
  ok "$(grep -c '^ok' <<<"${rules}") rules of the all-features PrometheusRule"

  step "invalid values are rejected"
  local err reason n=0
  for f in "${CHART}"/ci/invalid/*-values.yaml; do
    if err="$(render "${f}" 2>&1 >/dev/null)"; then
      fail "${f#"${ROOT}"/} was accepted"
    fi
    n=$((n + 1))
    # First schema or template error line, else the first line (here-strings: no pipe to cut).
    reason="$(grep -m1 -E "^- at '|execution error" <<<"${err}" || true)"
    [[ -n "${reason}" ]] || reason="${err%%$'\n'*}"
    reason="$(sed -e 's/^[- ]*//' -e 's/^Error: //' <<<"${reason}")"
    ok "${f#"${CHART}"/}: ${reason}"
  done
  (( n > 0 )) || fail "no ci/invalid/*-values.yaml files"
  # The acceptance criterion of the issue, spelled out: log.format: xml fails schema validation.
  err="$("${HELM}" template "${RELEASE}" "${CHART}" --set log.format=xml 2>&1 >/dev/null)" &&
    fail "--set log.format=xml was accepted"
  [[ "${err}" == *"/log/format"* ]] || fail "log.format=xml failed for another reason: ${err}"
  ok "--set log.format=xml: schema error at /log/format"
}

# ----------------------------------------------------------------- live ---

CP_DIR=""
cleanup() {
  local rc=$?
  if [[ -n "${CP_DIR}" ]]; then
    # (hack/test.sh prints the saved logs itself.)
    if (( rc != 0 )) && [[ -z "${CLOUDQUOTA_ARTIFACTS_DIR:-}" && -f "${CP_DIR}/kube-apiserver.log" ]]; then
      echo "--- last kube-apiserver log lines" >&2
      tail -n 15 "${CP_DIR}/kube-apiserver.log" >&2 || true
    fi
    "${ROOT}/hack/controlplane.sh" destroy "${CP_DIR}" >/dev/null 2>&1 || true
  fi
  rm -rf "${WORK}"
  exit "${rc}"
}

k() { "${KUBECTL}" "$@"; }

# Apply with server-side apply; any warning (e.g. Pod Security) fails.
apply_file() { # file
  local errf="${WORK}/apply.err"
  if ! k apply --server-side --field-manager=chart-test -f "$1" > "${WORK}/apply.out" 2> "${errf}"; then
    cat "${errf}" >&2
    fail "kubectl apply --server-side -f ${1#"${ROOT}"/}"
  fi
  if grep -qi 'warning' "${errf}"; then
    cat "${errf}" >&2
    fail "warnings while applying ${1#"${ROOT}"/}"
  fi
  ok "applied $(wc -l < "${WORK}/apply.out") objects from ${1#"${ROOT}"/}"
}

# The RBAC authorizer reads Roles and bindings from informer caches that lag the writes, so a
# "yes" is polled for (until DEADLINE seconds); a "no" is checked once. Each block of checks
# starts with a "yes" for the bindings it is about, so its "no"s are asked of a filled cache.
can() { # yes|no namespace-or-"-A" sa-namespace sa verb resource [subresource]
  local want="$1" ns="$2" sa="system:serviceaccount:$3:$4" verb="$5" res="$6" sub="${7:-}" args got
  local deadline=$(( SECONDS + DEADLINE ))
  args=(auth can-i "${verb}" "${res}" --as="${sa}")
  if [[ "${ns}" == "-A" ]]; then args+=(--all-namespaces); else args+=(--namespace "${ns}"); fi
  [[ -z "${sub}" ]] || args+=(--subresource "${sub}")
  while :; do
    got="$(k "${args[@]}" 2>/dev/null || true)"
    [[ "${got}" == "${want}" || "${want}" == no ]] && break
    (( SECONDS < deadline )) || break
    sleep 0.2
  done
  [[ "${got}" == "${want}" ]] || fail "can-i ${verb} ${res}${sub:+/${sub}} in ${ns} as ${sa}: got '${got}', want '${want}'"
}

# retry CMD...: run until it succeeds or DEADLINE seconds pass (then print its output and
# return 1). For what the API server makes true asynchronously, e.g. serving a new CRD.
retry() {
  local deadline=$(( SECONDS + DEADLINE )) out="${WORK}/retry.out"
  until "$@" > "${out}" 2>&1; do
    if (( SECONDS >= deadline )); then
      cat "${out}" >&2
      return 1
    fi
    sleep 0.5
  done
}

wait_gone() { # kind/name [namespace]
  local deadline=$(( SECONDS + DEADLINE ))
  while k get "$1" ${2:+--namespace "$2"} >/dev/null 2>&1; do
    (( SECONDS < deadline )) || fail "$1 still exists after ${DEADLINE}s"
    sleep 0.2
  done
}

# has_arg deployment namespace ARG: the first container's args include ARG exactly. The args
# are captured first and matched in bash (no `kubectl | grep -q`: SIGPIPE under pipefail).
has_arg() {
  local args
  args="$(k get deployment "$1" --namespace "$2" -o jsonpath='{range .spec.template.spec.containers[0].args[*]}{@}{"\n"}{end}')" ||
    fail "kubectl get deployment $1"
  [[ $'\n'"${args}"$'\n' == *$'\n'"$3"$'\n'* ]]
}

live() {
  step "start a local control plane"
  CP_DIR="${WORK}/cp"
  local envf
  envf="$("${ROOT}/hack/controlplane.sh" start "${CP_DIR}" 2>"${WORK}/cp.err" | tail -n 1)" ||
    { cat "${WORK}/cp.err" >&2; fail "hack/controlplane.sh start"; }
  # shellcheck disable=SC1090
  . "${envf}"
  KUBECTL="${CLOUDQUOTA_KUBECTL}"
  export KUBECONFIG
  ok "kube-apiserver $(k get --raw /version | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p') at ${CLOUDQUOTA_APISERVER_URL}"

  step "prepare namespaces and the monitoring CRD stand-ins"
  local ns
  for ns in "${NAMESPACE}" team-a team-b; do
    k create namespace "${ns}" >/dev/null
    # Enforce (and warn on) the restricted Pod Security profile: the Deployment's pod template
    # must pass it without a warning.
    k label namespace "${ns}" pod-security.kubernetes.io/enforce=restricted \
      pod-security.kubernetes.io/warn=restricted >/dev/null
  done
  ok "namespaces ${NAMESPACE}, team-a, team-b (Pod Security: restricted)"
  apply_file "${CHART}/ci/fixtures/monitoring-crds.yaml"
  k wait --for=condition=Established --timeout=60s \
    crd/servicemonitors.monitoring.coreos.com crd/prometheusrules.monitoring.coreos.com >/dev/null

  step "server-side apply of the rendered snapshots"
  apply_file "${SNAPSHOTS}/default.yaml"
  k wait --for=condition=Established --timeout=60s crd/cloudquotas.cloudquota.io >/dev/null
  apply_file "${SNAPSHOTS}/all-features.yaml"
  k get -f "${SNAPSHOTS}/default.yaml" -f "${SNAPSHOTS}/all-features.yaml" -o name > "${WORK}/objects"
  ok "$(wc -l < "${WORK}/objects") objects exist: $(cut -d/ -f1 "${WORK}/objects" | sort -u | tr '\n' ' ')"
  local f
  for f in "${ROOT}"/samples/*.yaml; do
    retry k apply --server-side --field-manager=chart-test --namespace team-a -f "${f}" ||
      fail "sample ${f#"${ROOT}"/} rejected by the chart's CRD"
  done
  ok "samples/*.yaml accepted by the CRD installed from the chart"

  step "effective RBAC of the operator (kubectl auth can-i)"
  # Default values: cluster-wide.
  local s=("${NAMESPACE}" "${RELEASE}")
  can yes -A "${s[@]}" list cloudquotas.cloudquota.io
  can yes -A "${s[@]}" watch cloudquotas.cloudquota.io
  can yes team-b "${s[@]}" get cloudquotas.cloudquota.io
  can yes team-b "${s[@]}" patch cloudquotas.cloudquota.io status
  can no team-b "${s[@]}" update cloudquotas.cloudquota.io status
  can no team-b "${s[@]}" patch cloudquotas.cloudquota.io
  can no team-b "${s[@]}" delete cloudquotas.cloudquota.io
  can yes team-b "${s[@]}" get secrets
  can no team-b "${s[@]}" list secrets
  can no -A "${s[@]}" list secrets
  can no team-b "${s[@]}" watch secrets
  can no team-b "${s[@]}" get configmaps
  can yes team-b "${s[@]}" create events.events.k8s.io
  can yes team-b "${s[@]}" patch events.events.k8s.io
  can yes team-b "${s[@]}" list events.events.k8s.io
  can no team-b "${s[@]}" watch events.events.k8s.io
  can no team-b "${s[@]}" create events
  can yes "${NAMESPACE}" "${s[@]}" create leases.coordination.k8s.io
  can yes "${NAMESPACE}" "${s[@]}" get leases.coordination.k8s.io/cloudquota
  can yes "${NAMESPACE}" "${s[@]}" update leases.coordination.k8s.io/cloudquota
  can yes "${NAMESPACE}" "${s[@]}" patch leases.coordination.k8s.io/cloudquota
  can no "${NAMESPACE}" "${s[@]}" update leases.coordination.k8s.io/someone-else
  can no "${NAMESPACE}" "${s[@]}" delete leases.coordination.k8s.io/cloudquota
  can no team-b "${s[@]}" create leases.coordination.k8s.io
  can no -A "${s[@]}" list nodes
  ok "default values: cloudquotas cluster-wide, secrets get only, events, one Lease"
  # All-features values: only in team-a and team-b.
  s=("${NAMESPACE}" cq-operator-sa)
  can yes team-a "${s[@]}" list cloudquotas.cloudquota.io
  can yes team-b "${s[@]}" watch cloudquotas.cloudquota.io
  can no -A "${s[@]}" list cloudquotas.cloudquota.io
  can no default "${s[@]}" list cloudquotas.cloudquota.io
  can yes team-a "${s[@]}" patch cloudquotas.cloudquota.io status
  can yes team-a "${s[@]}" get secrets
  can no team-a "${s[@]}" list secrets
  can no default "${s[@]}" get secrets
  can yes team-b "${s[@]}" create events.events.k8s.io
  can no default "${s[@]}" create events.events.k8s.io
  can yes "${NAMESPACE}" "${s[@]}" update leases.coordination.k8s.io/cq-operator-leader
  can no "${NAMESPACE}" "${s[@]}" update leases.coordination.k8s.io/cloudquota
  # capacityQuota (enabled, trusting team-a): Nodes read cluster-wide, the finalizer patch
  # only in team-a. (The CapacityQuota verbs need its CRD installed for kubectl to resolve the
  # group: tests/e2e/capacity.rs checks them.)
  can yes -A "${s[@]}" watch nodes
  can no -A "${s[@]}" patch nodes
  can yes team-a "${s[@]}" patch cloudquotas.cloudquota.io
  can no team-b "${s[@]}" patch cloudquotas.cloudquota.io
  ok "all-features values: only team-a and team-b, secrets get only, its own Lease"
  s=(monitoring kube-state-metrics)
  can yes -A "${s[@]}" list cloudquotas.cloudquota.io
  can no -A "${s[@]}" get secrets
  ok "kube-state-metrics: list/watch cloudquotas, no secrets"

  step "delete the applied objects"
  k delete -f "${SNAPSHOTS}/all-features.yaml" -f "${SNAPSHOTS}/default.yaml" --ignore-not-found \
    --wait=true --timeout=60s >/dev/null
  wait_gone crd/cloudquotas.cloudquota.io
  ok "deleted (CRD and its CloudQuotas gone)"

  step "helm install (default values)"
  "${HELM}" install "${RELEASE}" "${CHART}" --namespace "${NAMESPACE}" > "${WORK}/helm.out" ||
    { cat "${WORK}/helm.out" >&2; fail "helm install"; }
  grep -q "STATUS: deployed" "${WORK}/helm.out" || fail "release not deployed"
  k wait --for=condition=Established --timeout=60s crd/cloudquotas.cloudquota.io >/dev/null
  [[ "$(k get crd cloudquotas.cloudquota.io -o jsonpath='{.metadata.annotations.helm\.sh/resource-policy}')" == keep ]] ||
    fail "CRD lacks helm.sh/resource-policy: keep"
  k get deployment/"${RELEASE}" service/"${RELEASE}" serviceaccount/"${RELEASE}" \
    role/"${RELEASE}"-leader-election rolebinding/"${RELEASE}"-leader-election --namespace "${NAMESPACE}" >/dev/null ||
    fail "namespaced objects missing"
  k get clusterrole/"${RELEASE}" clusterrolebinding/"${RELEASE}" >/dev/null || fail "cluster RBAC missing"
  has_arg "${RELEASE}" "${NAMESPACE}" --leader-elect || fail "--leader-elect missing"
  ok "deployed; CRD established with resource-policy keep; Deployment, Service, RBAC present"
  retry k apply --server-side --field-manager=chart-test --namespace team-a -f "${ROOT}/samples/huaweicloud-ims.yaml" ||
    fail "sample CloudQuota rejected"
  ok "a CloudQuota can be created"

  step "helm upgrade (--set)"
  "${HELM}" upgrade "${RELEASE}" "${CHART}" --namespace "${NAMESPACE}" --reuse-values \
    --set heartbeat=5m --set log.level=debug --set log.format=text > "${WORK}/helm.out" ||
    { cat "${WORK}/helm.out" >&2; fail "helm upgrade"; }
  grep -q "REVISION: 2" "${WORK}/helm.out" || fail "expected revision 2"
  has_arg "${RELEASE}" "${NAMESPACE}" --heartbeat=5m || fail "--heartbeat=5m not applied"
  has_arg "${RELEASE}" "${NAMESPACE}" --log-format=text || fail "--log-format=text not applied"
  [[ "$(k get deployment "${RELEASE}" --namespace "${NAMESPACE}" \
    -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="RUST_LOG")].value}')" == debug ]] ||
    fail "RUST_LOG=debug not applied"
  ok "revision 2: --heartbeat=5m, --log-format=text, RUST_LOG=debug"

  step "helm upgrade (all-features values: namespaced RBAC, monitoring, NetworkPolicy)"
  "${HELM}" upgrade "${RELEASE}" "${CHART}" --namespace "${NAMESPACE}" \
    --values "${CHART}/ci/all-features-values.yaml" > "${WORK}/helm.out" ||
    { cat "${WORK}/helm.out" >&2; fail "helm upgrade"; }
  grep -q "REVISION: 3" "${WORK}/helm.out" || fail "expected revision 3"
  k get deployment/cq-operator service/cq-operator servicemonitor/cq-operator prometheusrule/cq-operator \
    networkpolicy/cq-operator configmap/cq-operator-kube-state-metrics --namespace "${NAMESPACE}" >/dev/null ||
    fail "all-features objects missing"
  k get role/cq-operator rolebinding/cq-operator --namespace team-a >/dev/null || fail "Role in team-a missing"
  k get role/cq-operator rolebinding/cq-operator --namespace team-b >/dev/null || fail "Role in team-b missing"
  wait_gone clusterrolebinding/"${RELEASE}"
  wait_gone deployment/"${RELEASE}" "${NAMESPACE}"
  [[ "$(k get crd cloudquotas.cloudquota.io -o jsonpath='{.metadata.annotations.helm\.sh/resource-policy}')" == "" ]] ||
    fail "resource-policy annotation should be gone with crds.keep=false"
  has_arg cq-operator "${NAMESPACE}" --watch-namespace=team-a || fail "--watch-namespace missing"
  ok "revision 3: renamed objects, Roles in team-a/team-b, old cluster-wide RBAC removed"

  step "helm uninstall (crds.keep=false: CRD deleted)"
  "${HELM}" uninstall "${RELEASE}" --namespace "${NAMESPACE}" --wait --timeout 60s >/dev/null || fail "helm uninstall"
  wait_gone crd/cloudquotas.cloudquota.io
  wait_gone deployment/cq-operator "${NAMESPACE}"
  wait_gone role/cq-operator team-a
  wait_gone clusterrole/cq-operator-kube-state-metrics
  "${HELM}" status "${RELEASE}" --namespace "${NAMESPACE}" >/dev/null 2>&1 && fail "release still exists"
  ok "release, objects and CRD gone"

  step "helm install + uninstall (crds.keep=true: CRD and CloudQuotas survive)"
  "${HELM}" install "${RELEASE}" "${CHART}" --namespace "${NAMESPACE}" >/dev/null || fail "helm install"
  k wait --for=condition=Established --timeout=60s crd/cloudquotas.cloudquota.io >/dev/null
  retry k apply --server-side --field-manager=chart-test --namespace team-a -f "${ROOT}/samples/huaweicloud-ims.yaml" ||
    fail "sample CloudQuota rejected"
  "${HELM}" uninstall "${RELEASE}" --namespace "${NAMESPACE}" --wait --timeout 60s > "${WORK}/helm.out" 2>&1 ||
    { cat "${WORK}/helm.out" >&2; fail "helm uninstall"; }
  wait_gone deployment/"${RELEASE}" "${NAMESPACE}"
  wait_gone clusterrole/"${RELEASE}"
  k get crd cloudquotas.cloudquota.io >/dev/null 2>&1 || fail "CRD was deleted despite crds.keep=true"
  k get cloudquota images --namespace team-a >/dev/null || fail "CloudQuota was deleted"
  ok "CRD kept, CloudQuota team-a/images still there"
}

# ----------------------------------------------------------------- main ---

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cloudquota-chart-test.XXXXXX")"
trap cleanup EXIT
# Keep helm's repositories, cache and plugins out of the user's home.
export HELM_CACHE_HOME="${WORK}/helm/cache" HELM_CONFIG_HOME="${WORK}/helm/config" HELM_DATA_HOME="${WORK}/helm/data"
# kubectl's discovery cache too: this run deletes and re-creates the CRD, and a cache shared
# with other runs (keyed by host:port, ports get reused) could map kinds from a stale state.
export KUBECACHEDIR="${WORK}/kube-cache"
find_helm
echo "helm: ${HELM} ($("${HELM}" version --short))"
offline
if (( OFFLINE == 0 )); then
  (( UPDATE == 0 )) || echo "(--update: snapshots rewritten; running the live part against them)"
  live
fi
if (( OFFLINE )); then
  printf '\nchart-test: all passed (offline part only)\n'
else
  printf '\nchart-test: all passed\n'
fi
