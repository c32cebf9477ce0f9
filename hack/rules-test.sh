#!/usr/bin/env bash
# Tests of the chart's alerting rules and Grafana dashboard, on the RENDERED chart.
#
# Usage: hack/rules-test.sh [--update] [--no-build]
#   --update    copy charts/cloudquota/files/grafana-dashboard.json (the source) to
#               docs/dashboards/cloudquota.json instead of failing when they differ
#   --no-build  fail instead of building missing tools
#
#   1. docs/dashboards/cloudquota.json is the chart's files/grafana-dashboard.json, and the
#      rendered dashboard ConfigMap carries exactly that JSON
#   2. dashboard-check (hack/tools/dashboard): the JSON decodes strictly with the Grafana
#      Foundation SDK's types for the schemaVersion it declares and passes its validation;
#      every panel query parses with Prometheus' PromQL parser; the namespace, provider, service
#      and region variables exist
#   3. the PrometheusRule rendered with the default values (prometheusRule.enabled=true) and
#      with ci/all-features-values.yaml: `promtool check rules` on its spec
#   4. `promtool test rules` with hack/rules-tests/*.test.yaml against the default rendering
#   5. the unit tests are sensitive: a rendering with a different usage `for:` must fail them
#
# Tools: helm, promtool and dashboard-check from $CLOUDQUOTA_TOOLS_BIN or hack/build-tools.sh
# (promtool is built from the Prometheus module pinned in hack/tools/promtool and cached).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="${ROOT}/charts/cloudquota"
DASHBOARD="${CHART}/files/grafana-dashboard.json"
DOC_DASHBOARD="${ROOT}/docs/dashboards/cloudquota.json"
RELEASE=cloudquota
NAMESPACE=cloudquota-system

UPDATE=0 NO_BUILD=0
for arg in "$@"; do
  case "${arg}" in
    --update) UPDATE=1 ;;
    --no-build) NO_BUILD=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) printf 'rules-test: unknown argument: %s\n' "${arg}" >&2; exit 2 ;;
  esac
done

STEP=""
step() { STEP="$*"; printf '\n== %s\n' "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
fail() { printf 'rules-test: FAIL (%s): %s\n' "${STEP}" "$*" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cloudquota-rules-test.XXXXXX")"
trap 'rm -rf "${WORK}"' EXIT
export HELM_CACHE_HOME="${WORK}/helm/cache" HELM_CONFIG_HOME="${WORK}/helm/config" HELM_DATA_HOME="${WORK}/helm/data"

tool() { # name: print the path of a built tool, building it unless --no-build
  local bin_dir
  if [[ -n "${CLOUDQUOTA_TOOLS_BIN:-}" && -x "${CLOUDQUOTA_TOOLS_BIN}/$1" ]]; then
    printf '%s\n' "${CLOUDQUOTA_TOOLS_BIN}/$1"
    return 0
  fi
  if (( NO_BUILD )); then
    bin_dir="$("${ROOT}/hack/build-tools.sh" --print-bin-dir)"
    [[ -x "${bin_dir}/$1" ]] || fail "$1 is not built; build it with: hack/build-tools.sh $1"
  else
    # Builds it, or checks that the cached binary matches its pinned inputs.
    bin_dir="$("${ROOT}/hack/build-tools.sh" "$1" | tail -n 1)"
  fi
  [[ -x "${bin_dir}/$1" ]] || fail "$1 not found in ${bin_dir}"
  printf '%s\n' "${bin_dir}/$1"
}

step "tools"
HELM="${HELM:-$(tool helm)}"
PROMTOOL="$(tool promtool)"
DASHBOARD_CHECK="$(tool dashboard-check)"
ok "helm $("${HELM}" version --short), promtool of Prometheus $(awk '$1 == "github.com/prometheus/prometheus" { print $2 }' "${ROOT}/hack/tools/promtool/go.mod")"

render() { # template [helm args...]: one template of the chart, rendered
  local template="$1"
  shift
  "${HELM}" template "${RELEASE}" "${CHART}" --namespace "${NAMESPACE}" --show-only "${template}" "$@"
}

# The rules file of a rendered PrometheusRule: its spec (groups:), un-indented. spec is the
# last top-level key of templates/prometheusrule.yaml.
rules_of() { # rendered-file out-file
  awk '/^spec:/ { on = 1; next } on && /^[^ ]/ { on = 0 } on { sub(/^  /, ""); print }' "$1" > "$2"
  grep -q '^groups:' "$2" || fail "no spec.groups in $1"
}

step "dashboard: docs copy and ConfigMap"
if (( UPDATE )); then
  mkdir -p "$(dirname "${DOC_DASHBOARD}")"
  cp "${DASHBOARD}" "${DOC_DASHBOARD}"
fi
cmp -s "${DASHBOARD}" "${DOC_DASHBOARD}" ||
  fail "docs/dashboards/cloudquota.json differs from charts/cloudquota/files/grafana-dashboard.json; run hack/rules-test.sh --update"
ok "docs/dashboards/cloudquota.json == files/grafana-dashboard.json"
render templates/grafana-dashboard.yaml --set grafanaDashboard.enabled=true > "${WORK}/dashboard-cm.yaml" ||
  fail "helm template with grafanaDashboard.enabled=true"
grep -q '^    grafana_dashboard: "1"$' "${WORK}/dashboard-cm.yaml" ||
  fail "the ConfigMap lacks the sidecar label grafana_dashboard: \"1\""
# The data block: every line after `cloudquota.json: |-`, without its 4-space indent.
awk 'on { sub(/^    /, ""); print } /^  cloudquota.json: \|-$/ { on = 1 }' "${WORK}/dashboard-cm.yaml" > "${WORK}/from-cm.json"
cmp -s "${WORK}/from-cm.json" "${DASHBOARD}" || fail "the rendered ConfigMap does not carry files/grafana-dashboard.json verbatim"
ok "ConfigMap ${RELEASE}-dashboard carries the dashboard JSON, label grafana_dashboard=\"1\""

step "dashboard: schema and PromQL (dashboard-check)"
out="$("${DASHBOARD_CHECK}" --require-vars=namespace,provider,service,region "${DASHBOARD}" 2>&1)" ||
  { printf '%s\n' "${out}" >&2; fail "dashboard-check"; }
ok "$(grep -c '^ok' <<<"${out}") panel queries parse; schemaVersion $(grep -m1 -o '"schemaVersion": [0-9]*' "${DASHBOARD}" | grep -o '[0-9]*$') decodes strictly"
metrics="$("${DASHBOARD_CHECK}" --metrics "${DASHBOARD}")"
ok "metrics read: $(tr '\n' ' ' <<<"${metrics}")"

step "PrometheusRule: promtool check rules"
render templates/prometheusrule.yaml --set prometheusRule.enabled=true > "${WORK}/default.yaml" ||
  fail "helm template with prometheusRule.enabled=true"
rules_of "${WORK}/default.yaml" "${WORK}/rules.yaml"
render templates/prometheusrule.yaml --values "${CHART}/ci/all-features-values.yaml" > "${WORK}/all-features.yaml" ||
  fail "helm template with ci/all-features-values.yaml"
rules_of "${WORK}/all-features.yaml" "${WORK}/rules-all-features.yaml"
for f in rules.yaml rules-all-features.yaml; do
  out="$("${PROMTOOL}" check rules "${WORK}/${f}" 2>&1)" || { printf '%s\n' "${out}" >&2; fail "promtool check rules (${f})"; }
  ok "${f}: $(grep -o 'SUCCESS.*' <<<"${out}")"
done

step "PrometheusRule: promtool test rules (hack/rules-tests)"
n=0
for t in "${ROOT}"/hack/rules-tests/*.test.yaml; do
  cp "${t}" "${WORK}/"
  n=$((n + 1))
done
(( n > 0 )) || fail "no hack/rules-tests/*.test.yaml"
out="$(cd "${WORK}" && "${PROMTOOL}" test rules ./*.test.yaml 2>&1)" || { printf '%s\n' "${out}" >&2; fail "promtool test rules"; }
printf '%s\n' "${out}" | sed 's/^/   /'
ok "${n} test file(s) pass against the default rendering"

step "the unit tests notice a changed rule"
render templates/prometheusrule.yaml --set prometheusRule.enabled=true --set prometheusRule.usage.for=1m > "${WORK}/mutant.yaml"
rules_of "${WORK}/mutant.yaml" "${WORK}/rules.yaml"
if out="$(cd "${WORK}" && "${PROMTOOL}" test rules ./*.test.yaml 2>&1)"; then
  fail "promtool test rules passed with prometheusRule.usage.for=1m"
fi
ok "usage.for=1m fails $(grep -c 'FAILED' <<<"${out}" || true) test group(s)"

printf '\nrules-test: all passed\n'
