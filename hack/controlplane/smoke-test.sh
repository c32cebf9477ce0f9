#!/usr/bin/env bash
# End-to-end check of hack/build-tools.sh and hack/controlplane.sh: start a
# control plane in a temporary DIR, exercise version stamping, RBAC with a
# ServiceAccount token, a CRD with a status subresource, the audit log and
# helm, restart the apiserver and etcd, then stop and delete it.
#
# Usage: hack/controlplane/smoke-test.sh [DIR]   (default: a new temp dir)
# Exits non-zero on the first failure; ends with "N passed, 0 failed".
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CP="${HACK_DIR}/controlplane.sh"
DIR="${1:-$(mktemp -d /tmp/cloudquota-smoke.XXXXXX)}"
PASSED=0

step() { printf '[smoke] %s\n' "$*" >&2; }
ok() { PASSED=$(( PASSED + 1 )); printf '[smoke] ok: %s\n' "$*" >&2; }
fail() { printf '[smoke] FAIL: %s\n' "$*" >&2; printf '%d passed, 1 failed\n' "${PASSED}"; exit 1; }

cleanup() { "${CP}" destroy "${DIR}" >/dev/null 2>&1 || true; }
trap cleanup EXIT

step "building tools (no-op when cached)"
"${HACK_DIR}/build-tools.sh" >/dev/null

t0=$(date +%s%N)
"${CP}" start "${DIR}" >/dev/null
ok "start took $(( ($(date +%s%N) - t0) / 1000000 )) ms"

# shellcheck disable=SC1091
. "${DIR}/env"
K="${CLOUDQUOTA_KUBECTL}"
want="$("${HACK_DIR}/build-tools.sh" --versions | awk '$1 == "kubernetes" { print $2 }')"
want_helm="$("${HACK_DIR}/build-tools.sh" --versions | awk '$1 == "helm" { print $2 }')"

ver="$("${K}" get --raw /version)"
[[ "${ver}" == *"\"gitVersion\": \"${want}\""* ]] || fail "/version is not ${want}: ${ver}"
ok "/version reports ${want}"

"${K}" create namespace smoke >/dev/null
"${K}" -n smoke create serviceaccount op >/dev/null
token="$("${K}" -n smoke create token op --duration=10m)"
[[ -n "${token}" ]] || fail "kubectl create token returned nothing"
ok "TokenRequest works"

KT=("${K}" --kubeconfig=/dev/null --server="${CLOUDQUOTA_APISERVER_URL}"
  --certificate-authority="${CLOUDQUOTA_CA_FILE}" --token="${token}")
[[ "$("${KT[@]}" auth whoami -o jsonpath='{.status.userInfo.username}')" == system:serviceaccount:smoke:op ]] ||
  fail "token does not authenticate as the ServiceAccount"
[[ "$("${KT[@]}" auth can-i list configmaps -n smoke || true)" == no ]] || fail "RBAC is not enforced"
"${K}" -n smoke create role cm-reader --verb=get,list --resource=configmaps >/dev/null
"${K}" -n smoke create rolebinding op-cm --role=cm-reader --serviceaccount=smoke:op >/dev/null
[[ "$("${KT[@]}" auth can-i list configmaps -n smoke)" == yes ]] || fail "RoleBinding did not grant access"
[[ "$("${KT[@]}" auth can-i list configmaps -n default || true)" == no ]] || fail "access leaked to another namespace"
ok "RBAC enforced for the ServiceAccount token"

"${K}" apply -f - >/dev/null <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.smoke.cloudquota.test
spec:
  group: smoke.cloudquota.test
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
EOF
"${K}" wait --for=condition=Established crd/widgets.smoke.cloudquota.test --timeout=30s >/dev/null
ok "CRD Established"

printf 'apiVersion: smoke.cloudquota.test/v1\nkind: Widget\nmetadata: {name: w1}\n' | "${K}" -n smoke apply -f - >/dev/null
for i in 1 2 3; do
  "${K}" -n smoke patch widget w1 --subresource=status --type=merge -p "{\"status\":{\"n\":${i}}}" >/dev/null
done
n="$(grep '"resource":"widgets"' "${CLOUDQUOTA_AUDIT_LOG}" | grep '"subresource":"status"' | grep -c '"verb":"patch"' || true)"
[[ "${n}" == 3 ]] || fail "expected 3 status patches in the audit log, found ${n}"
ok "audit log counts 3 status writes"

helm_version="$("${CLOUDQUOTA_HELM}" version --short)" || fail "helm version"
[[ "${helm_version}" == "${want_helm}"* ]] || fail "helm version ${helm_version}, want ${want_helm}"
"${CLOUDQUOTA_HELM}" list -A >/dev/null || fail "helm cannot talk to the apiserver"
ok "helm works"

"${CP}" restart-apiserver "${DIR}" 2>/dev/null
"${K}" -n smoke get widget w1 >/dev/null || fail "kubectl after restart-apiserver"
ok "restart-apiserver"

"${CP}" restart-etcd "${DIR}" 2>/dev/null
"${K}" -n smoke create configmap after-etcd >/dev/null || fail "write after restart-etcd"
"${K}" -n smoke get widget w1 >/dev/null || fail "data lost after restart-etcd"
ok "restart-etcd (graceful)"

CLOUDQUOTA_CP_STOP_SIGNAL=KILL "${CP}" restart-etcd "${DIR}" 2>/dev/null
"${K}" -n smoke get configmap after-etcd >/dev/null || fail "data lost after etcd SIGKILL"
ok "restart-etcd (SIGKILL)"

"${CP}" stop "${DIR}" 2>/dev/null
if "${CP}" status "${DIR}" >/dev/null 2>&1; then fail "still running after stop"; fi
ok "stop"

printf '%d passed, 0 failed\n' "${PASSED}"
