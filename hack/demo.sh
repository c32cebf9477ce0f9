#!/usr/bin/env bash
# The demo: a local control plane (kube-apiserver + etcd built from Go modules), the simulated
# cloud and the operator, with the four sample CloudQuotas; usage moves across thresholds and
# the table and Events update. Runs until Ctrl-C, or for --duration SECONDS and exits 0 if
# every sample CloudQuota is Ready (1 otherwise).
#
#   hack/demo.sh                 # run until Ctrl-C
#   hack/demo.sh --duration 90   # bounded run (CI-friendly)
#   --step S    seconds between usage changes (default 8)
#   --clean     delete the demo dir (control plane data, logs) on exit
# The dir is $CLOUDQUOTA_DEMO_DIR (default /tmp/cloudquota-demo). With CLOUDQUOTA_ARTIFACTS_DIR
# set (hack/test.sh), its logs (operator, simulator, control plane) are copied there on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/lib/artifacts.sh
. hack/lib/artifacts.sh

duration=0
step=8
clean=0
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --step) step=$2; shift 2 ;;
    --clean) clean=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

dir=${CLOUDQUOTA_DEMO_DIR:-/tmp/cloudquota-demo}
log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

pids=()
cleanup() {
  trap - EXIT INT TERM
  log "stopping"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  hack/controlplane.sh stop "$dir" >/dev/null 2>&1 || true
  artifacts_save "$dir" demo
  if [ "$clean" = 1 ]; then
    CLOUDQUOTA_ARTIFACTS_DIR='' hack/controlplane.sh destroy "$dir" >/dev/null 2>&1 || true  # saved above
  fi
}
trap cleanup EXIT
trap 'exit 0' INT TERM

log "building cloudquota (cargo build)"
cargo build --quiet --bin cloudquota --bin cloudquota-sim
log "starting the local control plane (builds kube-apiserver, etcd, kubectl, helm the first time: several minutes)"
hack/controlplane.sh start "$dir" >/dev/null
# shellcheck disable=SC1091
. "$dir/env"
kubectl() { "$CLOUDQUOTA_KUBECTL" "$@"; }

log "starting the simulated cloud"
exec 3< <(RUST_LOG=warn target/debug/cloudquota-sim --listen 127.0.0.1:0 2>"$dir/sim.log")
pids+=($!)
# Bounded: a simulator that dies before its first line would otherwise block here forever.
if ! read -r -t 60 first <&3; then
  log "the simulated cloud did not start within 60s; $dir/sim.log:"
  cat "$dir/sim.log" >&2 || true
  exit 1
fi
sim=${first#listening on }
log "simulated cloud at $sim"

kubectl apply --server-side --field-manager=demo -f crds/cloudquota.yaml >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd/cloudquotas.cloudquota.io >/dev/null
kubectl create namespace demo --dry-run=client -o yaml | kubectl apply -f - >/dev/null

log "starting the operator (only loopback endpoints are allowed: no real cloud is ever called)"
target/debug/cloudquota run --allow-insecure-loopback --allowed-host 'demo.invalid' \
  --metrics-addr 127.0.0.1:0 --secret-ttl 1s >"$dir/operator.log" 2>&1 &
pids+=($!)

log "applying the samples, pointed at the simulated cloud"
for f in samples/*.yaml; do
  awk -v ep="$sim" '{print} /^spec:$/ {print "  endpoint: " ep}' "$f" | kubectl apply -n demo --server-side --field-manager=demo -f - >/dev/null
done

cat >&2 <<MSG

  Point kubectl at the demo cluster from another shell:
    export KUBECONFIG=$KUBECONFIG
    $CLOUDQUOTA_KUBECTL get cloudquotas -A
  Operator log: $dir/operator.log   Simulator: $sim (admin API under /_sim/)

MSG

sim_set() { # service key resource used
  curl -fsS -X POST -H 'content-type: application/json' \
    -d "{\"resource\":\"$3\",\"used\":$4}" "$sim/_sim/quota/$1/$2" >/dev/null
}
refresh_all() {
  kubectl annotate -n demo cloudquotas --all --overwrite "cloudquota.io/refresh=$(date +%s%N)" >/dev/null
}
show() {
  echo
  date '+%H:%M:%S'
  kubectl get cloudquotas -A
  echo
  kubectl get events.events.k8s.io -n demo --sort-by=.metadata.creationTimestamp \
    -o custom-columns='TYPE:.type,REASON:.reason,OBJECT:.regarding.name,NOTE:.note' 2>/dev/null | tail -n 8
}

# A story: EVS snapshots fill up (override: warning 60%, critical 80%), images fill up, then
# space is freed again.
evs=cd631140887d4b6e9c786b67a6dd4c02
ims=fd73a4a14a4a4dfb9771a8475e5198ea
story=(
  "evs $evs snapshots 7"
  "ims $ims image 17"
  "evs $evs snapshots 9"
  "ims $ims image 20"
  "evs $evs snapshots 4"
  "ims $ims image 5"
)
sleep 2
show
start=$(date +%s)
i=0
while :; do
  if [ "$duration" -gt 0 ] && [ $(( $(date +%s) - start )) -ge "$duration" ]; then
    # The demo's promise, checked: every sample reaches Ready (waited for, not sampled).
    if ! kubectl wait --for=condition=Ready=True --timeout=60s -n demo cloudquotas --all >&2; then
      log "not every CloudQuota is Ready; operator log: $dir/operator.log"
      kubectl get cloudquotas -n demo -o wide >&2 || true
      exit 1
    fi
    log "bounded run of ${duration}s done"
    exit 0
  fi
  sleep "$step"
  # shellcheck disable=SC2086
  set -- ${story[$((i % ${#story[@]}))]}
  log "simulated cloud: $1 $2 $3 used -> $4"
  sim_set "$1" "$2" "$3" "$4"
  refresh_all
  sleep 2
  show
  i=$((i + 1))
done
