#!/usr/bin/env bash
# GitOps health definitions (deploy/gitops/) checked with the engines GitOps tools really run:
# every fixture in tests/fixtures/gitops/ is rated by Argo CD's Lua VM (gopher-lua, set up as
# Argo CD runs an argocd-cm health script), by kstatus (sigs.k8s.io/cli-utils) and by Flux's
# CEL status reader fed the Kustomization's healthCheckExprs, and every verdict must match the
# fixture's expectation. Also: argocd-cm.yaml must embed argocd-health.lua byte for byte (it is
# generated from it), README.md's Flux example must be flux-kustomization.yaml's, and the
# checker must reject a wrong expectation.
#
# Usage:
#   hack/gitops-test.sh            build gitops-health (cached) and check everything
#   hack/gitops-test.sh --update   regenerate deploy/gitops/argocd-cm.yaml from the .lua file
set -euo pipefail
cd "$(dirname "$0")/.."

GITOPS=deploy/gitops
LUA="${GITOPS}/argocd-health.lua"
CM="${GITOPS}/argocd-cm.yaml"
KS="${GITOPS}/flux-kustomization.yaml"
FIXTURES=tests/fixtures/gitops
# One fixture per state of the status contract (issue #13); more may exist.
REQUIRED_STATES=(synced-ok warning exhausted exhausted-opt-in auth-failure throttled suspended just-edited)

log() { printf '[gitops-test] %s\n' "$*" >&2; }
die() { printf '[gitops-test] FAIL: %s\n' "$*" >&2; exit 1; }

# argocd-cm.yaml as generated from the Lua script: the script indented under its data key.
render_cm() {
  cat <<'EOF'
# Argo CD health check for cloudquota.io/CloudQuota. GENERATED from argocd-health.lua by
# `hack/gitops-test.sh --update`: edit the .lua file, not this one.
#
# Merge the key into your argocd-cm (other keys are kept):
#   kubectl -n argocd patch configmap argocd-cm --type merge --patch-file deploy/gitops/argocd-cm.yaml
# or put the key under `configs.cm` of the argo-cd Helm chart. The script needs no Lua standard
# libraries: do not set resource.customizations.useOpenLibs.cloudquota.io_CloudQuota.
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
  resource.customizations.health.cloudquota.io_CloudQuota: |
EOF
  # Indent non-empty lines only, so blank lines carry no trailing spaces.
  sed -e 's/^./    &/' "${LUA}"
}

if [[ "${1:-}" == "--update" ]]; then
  render_cm > "${CM}"
  log "wrote ${CM}"
  exit 0
fi

[[ -f "${CM}" ]] || die "${CM} is missing: run hack/gitops-test.sh --update"
if ! render_cm | diff -u "${CM}" - >&2; then
  die "${CM} drifted from ${LUA}: run hack/gitops-test.sh --update"
fi
# README.md shows the Flux example: it must be the file's Kustomization, from apiVersion on.
readme_flux() {
  awk '/^<!-- flux-kustomization.yaml from apiVersion on/ { m = 1; next }
       m == 1 && /^```yaml$/ { m = 2; next }
       m == 2 && /^```$/ { exit }
       m == 2 { print }' README.md
}
if ! sed -n '/^apiVersion:/,$p' "${KS}" | diff -u - <(readme_flux) >&2; then
  die "the Flux example in README.md differs from ${KS} (copy it from apiVersion on)"
fi
for state in "${REQUIRED_STATES[@]}"; do
  [[ -f "${FIXTURES}/${state}.json" ]] || die "no fixture for state ${state}: ${FIXTURES}/${state}.json"
done

build_out="$(hack/build-tools.sh gitops-health)"
BIN="${build_out##*$'\n'}/gitops-health"
[[ -x "${BIN}" ]] || die "hack/build-tools.sh did not produce ${BIN}"
log "$("${BIN}" --version)"

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

# What Argo CD would load from the ConfigMap must be the script file itself (the YAML parser
# has the last word on indentation and block scalar chomping, not the diff above).
"${BIN}" argocd-cm-script "${CM}" > "${work}/embedded.lua"
cmp "${work}/embedded.lua" "${LUA}" >&2 || die "the script embedded in ${CM} differs from ${LUA}"

fixtures=("${FIXTURES}"/*.json)
# All three engines on every fixture; the installed ConfigMap is what Argo CD runs.
rc=0
"${BIN}" check --format table --argocd-cm "${CM}" --kustomization "${KS}" "${fixtures[@]}" \
  > "${work}/table.txt" || rc=$?
cat "${work}/table.txt" >&2
(( rc == 0 )) || die "verdicts differ from the fixtures' expectations (exit ${rc})"
count="$(grep -c ' ok ' "${work}/table.txt" || true)"
(( count == ${#fixtures[@]} )) || die "expected ${#fixtures[@]} matching cases, table shows ${count}"

# The checker itself must be able to fail: a wrong expectation for each engine is rejected.
# (A repeated JSON key overrides the earlier one, so appending it is enough.)
for wrong in '"argocd": "Degraded"' '"kstatus": "Failed"' '"flux": "Failed"' '"argocdMessage": ["no such text"]'; do
  sed -e "s/^    \"flux\": \"Current\"\$/    \"flux\": \"Current\", ${wrong}/" \
    "${FIXTURES}/synced-ok.json" > "${work}/wrong.json"
  rc=0
  "${BIN}" check --argocd-cm "${CM}" --kustomization "${KS}" "${work}/wrong.json" > "${work}/wrong.out" || rc=$?
  (( rc == 1 )) || die "a wrong expectation (${wrong}) was not rejected (exit ${rc})"
done

log "ok: ${#fixtures[@]} fixtures, verdicts of Argo CD (Lua), kstatus and Flux (CEL) as expected"
