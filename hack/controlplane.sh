#!/usr/bin/env bash
# Local Kubernetes control plane (etcd + kube-apiserver, loopback only) for
# cloudquota's integration tests and demo. Binaries come from
# hack/build-tools.sh (built on first use if missing).
#
# Usage: hack/controlplane.sh COMMAND [DIR]
#   start              create certs/config if missing, start etcd and
#                      kube-apiserver, wait until ready (idempotent)
#   stop               stop kube-apiserver then etcd (data is kept)
#   restart-apiserver  stop and start kube-apiserver (same ports, certs)
#   restart-etcd       stop and start etcd (same ports, data); the
#                      apiserver keeps running and must reconnect
#   stop-apiserver | start-apiserver | stop-etcd | start-etcd
#                      the single steps, for fault-injection tests
#   status             print state; exit 0 iff both run and /readyz is ok
#   env                print DIR/env (eval "$(hack/controlplane.sh env)")
#   destroy            stop (SIGKILL unless CLOUDQUOTA_CP_STOP_SIGNAL is set:
#                      the data is deleted anyway), then delete DIR; its *.log
#                      files are first copied to $CLOUDQUOTA_ARTIFACTS_DIR/
#                      <DIR's name>/ when that is set (hack/lib/artifacts.sh)
#   kubectl ARGS...    run the built kubectl against the control plane
#                      (DIR from CLOUDQUOTA_CP_DIR only)
#
# DIR defaults to ${CLOUDQUOTA_CP_DIR:-/tmp/cloudquota-cp}. Files in DIR:
#   env                 exports KUBECONFIG, CLOUDQUOTA_TOOLS_BIN, URLs, pids
#   kubeconfig          admin (CN=admin, O=system:masters) kubeconfig
#   pki/                ca, apiserver serving cert (127.0.0.1, localhost),
#                       service-account key pair, admin client cert
#   ports.env           chosen loopback ports (reused on later starts)
#   etcd/               etcd data dir
#   etcd.log, kube-apiserver.log, etcd.pid, kube-apiserver.pid
#   audit-policy.yaml   audit policy (override: CLOUDQUOTA_AUDIT_POLICY)
#   audit.log           JSON audit log, one line per request
#
# There is no kube-controller-manager, scheduler or kubelet: ServiceAccounts
# (and their tokens) are not created automatically (start creates
# default/default only), namespaces are never finalized after deletion,
# garbage collection does not run and pods never run.
#
# Environment:
#   CLOUDQUOTA_CP_DIR                  default DIR
#   CLOUDQUOTA_TOOLS_BIN               bin dir with kube-apiserver, etcd,
#                                      kubectl, helm (default: from
#                                      hack/build-tools.sh)
#   CLOUDQUOTA_AUDIT_POLICY            audit policy file to use instead
#   CLOUDQUOTA_APISERVER_EXTRA_ARGS    extra kube-apiserver flags (split on
#                                      whitespace)
#   CLOUDQUOTA_ETCD_EXTRA_ARGS         extra etcd flags
#   CLOUDQUOTA_ETCD_FSYNC=1            keep etcd's fsync (default: disabled
#                                      with --unsafe-no-fsync for speed; a
#                                      killed process loses nothing, only a
#                                      machine crash would)
#   CLOUDQUOTA_CP_TIMEOUT              seconds to wait for readiness (90)
#   CLOUDQUOTA_ARTIFACTS_DIR           where destroy keeps the logs (set by
#                                      hack/test.sh for each step)
#   CLOUDQUOTA_CP_STOP_SIGNAL          signal for stop/restart-* (TERM);
#                                      KILL simulates a crash and is
#                                      faster: a graceful etcd stop waits
#                                      ~7s for the apiserver's open watches
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/lib/artifacts.sh
. "${HACK_DIR}/lib/artifacts.sh"
SERVICE_CIDR="10.96.0.0/16"   # config value only; nothing routes there
SA_ISSUER="https://kubernetes.default.svc.cluster.local"
TIMEOUT="${CLOUDQUOTA_CP_TIMEOUT:-90}"
STOP_SIGNAL="${CLOUDQUOTA_CP_STOP_SIGNAL:-TERM}"
STOP_SIGNAL="${STOP_SIGNAL#SIG}"
LAUNCHED=()

log() { printf '[controlplane] %s\n' "$*" >&2; }
die() { printf '[controlplane] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- setup ---

set_dir() {
  DIR="${1:-${CLOUDQUOTA_CP_DIR:-/tmp/cloudquota-cp}}"
  mkdir -p "${DIR}"
  DIR="$(cd "${DIR}" && pwd)"
  PKI="${DIR}/pki"
  KUBECONFIG_FILE="${DIR}/kubeconfig"
  AUDIT_LOG="${DIR}/audit.log"
  # Serialise commands on one DIR. fd 9 is closed for the daemons.
  exec 9>"${DIR}/.lock"
  flock 9
  touch "${DIR}/.cloudquota-cp"
}

find_bins() {
  local t bin_dir="${CLOUDQUOTA_TOOLS_BIN:-}"
  if [[ -z "${bin_dir}" ]]; then
    bin_dir="$("${HACK_DIR}/build-tools.sh" --print-bin-dir)"
    for t in kube-apiserver etcd kubectl helm; do
      if [[ ! -x "${bin_dir}/${t}" ]]; then
        log "tools are missing; running hack/build-tools.sh (slow on a cold cache)"
        bin_dir="$("${HACK_DIR}/build-tools.sh" | tail -n 1)"
        break
      fi
    done
  fi
  for t in kube-apiserver etcd kubectl; do
    [[ -x "${bin_dir}/${t}" ]] || die "${bin_dir}/${t} not found (run hack/build-tools.sh)"
  done
  BIN="${bin_dir}"
  KUBECTL="${BIN}/kubectl"
}

port_in_use() {
  if command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

pick_port() { # VAR: set VAR to a free loopback port not picked before
  local p i
  for i in $(seq 1 200); do
    # Below the ephemeral range (32768+), so outgoing sockets do not race us.
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 12000 ))
    if ! port_in_use "${p}" && [[ " ${PICKED_PORTS:-} " != *" ${p} "* ]]; then
      PICKED_PORTS="${PICKED_PORTS:-} ${p}"
      printf -v "$1" '%s' "${p}"
      return 0
    fi
    : "${i}"
  done
  die "no free loopback port found"
}

load_ports() {
  [[ -f "${DIR}/ports.env" ]] || die "${DIR} has no ports.env; run: $0 start ${DIR}"
  # shellcheck disable=SC1091
  . "${DIR}/ports.env"
}

# Reuse the recorded ports when they are free (or held by our own
# processes); pick new ones otherwise.
choose_ports() {
  local reuse=1
  if [[ -f "${DIR}/ports.env" ]]; then
    # shellcheck disable=SC1091
    . "${DIR}/ports.env"
    if ! running etcd; then
      port_in_use "${ETCD_CLIENT_PORT}" && reuse=0
      port_in_use "${ETCD_PEER_PORT}" && reuse=0
    fi
    if ! running kube-apiserver; then
      port_in_use "${APISERVER_PORT}" && reuse=0
    fi
  else
    reuse=0
  fi
  if (( reuse == 0 )); then
    running etcd && die "etcd runs but its ports are unknown; run: $0 stop ${DIR}"
    pick_port ETCD_CLIENT_PORT
    pick_port ETCD_PEER_PORT
    pick_port APISERVER_PORT
    cat > "${DIR}/ports.env" <<EOF
ETCD_CLIENT_PORT=${ETCD_CLIENT_PORT}
ETCD_PEER_PORT=${ETCD_PEER_PORT}
APISERVER_PORT=${APISERVER_PORT}
EOF
  fi
}

gen_certs() {
  mkdir -p "${PKI}"
  chmod 700 "${PKI}"
  if [[ -f "${PKI}/admin.crt" && -f "${PKI}/sa.pub" && -f "${PKI}/apiserver.crt" ]]; then
    return 0
  fi
  log "generating certificates in ${PKI}"
  (
    cd "${PKI}"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -keyout ca.key -out ca.crt -subj "/CN=cloudquota-local-ca" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,digitalSignature,keyCertSign,cRLSign" 2>/dev/null
    # name subject extfile
    sign() {
      openssl req -new -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
      openssl x509 -req -sha256 -days 3650 -in "$1.csr" -CA ca.crt -CAkey ca.key \
        -set_serial "0x$(openssl rand -hex 16)" -extfile "$3" -out "$1.crt" 2>/dev/null
      rm -f "$1.csr" "$3"
    }
    cat > apiserver.ext <<'EOF'
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1
EOF
    sign apiserver "/CN=kube-apiserver" apiserver.ext
    cat > admin.ext <<'EOF'
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
EOF
    sign admin "/O=system:masters/CN=admin" admin.ext
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
    openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
    chmod 644 ca.crt apiserver.crt admin.crt sa.pub
  )
}

write_kubeconfig() {
  local tmp="${KUBECONFIG_FILE}.tmp"
  (
    umask 077
    cat > "${tmp}" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: cloudquota-local
  cluster:
    server: https://127.0.0.1:${APISERVER_PORT}
    certificate-authority-data: $(base64 -w0 < "${PKI}/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(base64 -w0 < "${PKI}/admin.crt")
    client-key-data: $(base64 -w0 < "${PKI}/admin.key")
contexts:
- name: cloudquota-local
  context:
    cluster: cloudquota-local
    user: admin
    namespace: default
current-context: cloudquota-local
EOF
  )
  mv -f "${tmp}" "${KUBECONFIG_FILE}"
}

write_audit_policy() {
  if [[ -n "${CLOUDQUOTA_AUDIT_POLICY:-}" ]]; then
    cp "${CLOUDQUOTA_AUDIT_POLICY}" "${DIR}/audit-policy.yaml"
    return 0
  fi
  # One line per request (ResponseComplete/Panic only), Metadata level, for
  # every resource and verb (cloudquotas, their /status, events, leases...)
  # except the apiserver's own loopback traffic and health probes.
  cat > "${DIR}/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages:
- RequestReceived
- ResponseStarted
rules:
- level: None
  users: ["system:apiserver"]
- level: None
  nonResourceURLs: ["/healthz*", "/livez*", "/readyz*", "/version"]
- level: Metadata
EOF
}

write_env() {
  local tmp="${DIR}/env.tmp"
  cat > "${tmp}" <<EOF
# Generated by hack/controlplane.sh; pids change on restart-* (see *.pid).
export CLOUDQUOTA_CP_DIR='${DIR}'
export KUBECONFIG='${KUBECONFIG_FILE}'
export CLOUDQUOTA_TOOLS_BIN='${BIN}'
export CLOUDQUOTA_KUBECTL='${BIN}/kubectl'
export CLOUDQUOTA_HELM='${BIN}/helm'
export CLOUDQUOTA_APISERVER_URL='https://127.0.0.1:${APISERVER_PORT}'
export CLOUDQUOTA_APISERVER_PORT='${APISERVER_PORT}'
export CLOUDQUOTA_CA_FILE='${PKI}/ca.crt'
export CLOUDQUOTA_ETCD_URL='http://127.0.0.1:${ETCD_CLIENT_PORT}'
export CLOUDQUOTA_AUDIT_LOG='${AUDIT_LOG}'
export CLOUDQUOTA_APISERVER_PID='$(pid_of kube-apiserver)'
export CLOUDQUOTA_ETCD_PID='$(pid_of etcd)'
EOF
  mv -f "${tmp}" "${DIR}/env"
}

# ------------------------------------------------------------ processes ---

pid_of() { cat "${DIR}/$1.pid" 2>/dev/null || true; }

# Is NAME (etcd|kube-apiserver) running from this DIR?
running() {
  local pid state cmd
  pid="$(pid_of "$1")"
  [[ -n "${pid}" && -r "/proc/${pid}/cmdline" ]] || return 1
  state="$(awk '{ print $3 }' "/proc/${pid}/stat" 2>/dev/null || true)"
  [[ -n "${state}" && "${state}" != Z && "${state}" != X ]] || return 1
  cmd="$(tr '\0' ' ' < "/proc/${pid}/cmdline")"
  [[ "${cmd}" == *"/$1 "* && "${cmd}" == *"${DIR}/"* ]]
}

launch() { # name args...
  local name="$1"; shift
  LAUNCHED+=("${name}")
  rm -f "${DIR}/${name}.pid"
  printf '\n==== %s starting %s\n' "$(date -u +%FT%TZ)" "${name}" >> "${DIR}/${name}.log"
  # setsid: own session, survives this script and its terminal. The inner
  # bash records its pid and execs the server, so the pid is the server's.
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "${DIR}/${name}.pid" "$@" \
    >> "${DIR}/${name}.log" 2>&1 < /dev/null 9>&- &
  disown "$!" 2>/dev/null || true
  # A deadline, not a count of sleeps: on a loaded machine the fork alone can take seconds.
  local deadline=$(( SECONDS + 30 ))
  until [[ -s "${DIR}/${name}.pid" ]]; do
    (( SECONDS < deadline )) || die "${name} did not start within 30s; see ${DIR}/${name}.log"
    sleep 0.1
  done
}

stop_proc() { # name
  local name="$1" pid i
  if ! running "${name}"; then
    rm -f "${DIR}/${name}.pid"
    return 0
  fi
  pid="$(pid_of "${name}")"
  log "stopping ${name} (pid ${pid}, SIG${STOP_SIGNAL})"
  kill -s "${STOP_SIGNAL}" "${pid}" 2>/dev/null || true
  for i in $(seq 1 300); do
    running "${name}" || break
    sleep 0.1
    : "${i}"
  done
  if running "${name}"; then
    log "${name} did not exit after 30s; killing"
    kill -KILL "${pid}" 2>/dev/null || true
    for i in $(seq 1 50); do
      running "${name}" || break
      sleep 0.1
    done
  fi
  running "${name}" && die "could not stop ${name} (pid ${pid})"
  rm -f "${DIR}/${name}.pid"
}

etcd_healthy() {
  local body
  body="$( {
    exec 3<>"/dev/tcp/127.0.0.1/${ETCD_CLIENT_PORT}" || exit 0
    printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    timeout 5 cat <&3
  } 2>/dev/null || true)"
  [[ "${body}" == *'"health":"true"'* ]]
}

apiserver_ready() {
  [[ "$("${KUBECTL}" --kubeconfig "${KUBECONFIG_FILE}" --request-timeout=5s \
    get --raw=/readyz 2>/dev/null)" == ok ]]
}

wait_for() { # what name check-fn
  local deadline=$(( SECONDS + TIMEOUT ))
  until "$3"; do
    running "$2" || die "$2 exited; last log lines:$(printf '\n'; tail -n 20 "${DIR}/$2.log")"
    (( SECONDS < deadline )) || die "$1 not ready after ${TIMEOUT}s; see ${DIR}/$2.log"
    sleep 0.2
  done
}

start_etcd() {
  if running etcd; then
    log "etcd already running (pid $(pid_of etcd))"
    return 0
  fi
  local args=(
    --name=cloudquota
    --data-dir="${DIR}/etcd"
    --listen-client-urls="http://127.0.0.1:${ETCD_CLIENT_PORT}"
    --advertise-client-urls="http://127.0.0.1:${ETCD_CLIENT_PORT}"
    --listen-peer-urls="http://127.0.0.1:${ETCD_PEER_PORT}"
    --initial-advertise-peer-urls="http://127.0.0.1:${ETCD_PEER_PORT}"
    --initial-cluster="cloudquota=http://127.0.0.1:${ETCD_PEER_PORT}"
    --initial-cluster-state=new
    --log-level=warn
  )
  [[ "${CLOUDQUOTA_ETCD_FSYNC:-0}" == 1 ]] || args+=(--unsafe-no-fsync)
  # shellcheck disable=SC2206
  args+=(${CLOUDQUOTA_ETCD_EXTRA_ARGS:-})
  log "starting etcd on 127.0.0.1:${ETCD_CLIENT_PORT}"
  launch etcd "${BIN}/etcd" "${args[@]}"
  wait_for etcd etcd etcd_healthy
}

start_apiserver() {
  if running kube-apiserver; then
    log "kube-apiserver already running (pid $(pid_of kube-apiserver))"
  else
    # shellcheck disable=SC2054 # Node,RBAC is one flag value
    local args=(
      --advertise-address=127.0.0.1
      --bind-address=127.0.0.1
      --secure-port="${APISERVER_PORT}"
      --etcd-servers="http://127.0.0.1:${ETCD_CLIENT_PORT}"
      --cert-dir="${PKI}"
      --tls-cert-file="${PKI}/apiserver.crt"
      --tls-private-key-file="${PKI}/apiserver.key"
      --client-ca-file="${PKI}/ca.crt"
      --service-account-issuer="${SA_ISSUER}"
      --service-account-key-file="${PKI}/sa.pub"
      --service-account-signing-key-file="${PKI}/sa.key"
      --service-cluster-ip-range="${SERVICE_CIDR}"
      --authorization-mode=Node,RBAC
      --endpoint-reconciler-type=none
      --audit-policy-file="${DIR}/audit-policy.yaml"
      --audit-log-path="${AUDIT_LOG}"
      --audit-log-format=json
      --audit-log-mode=blocking
      --audit-log-maxsize=0
      --profiling=false
    )
    # shellcheck disable=SC2206
    args+=(${CLOUDQUOTA_APISERVER_EXTRA_ARGS:-})
    log "starting kube-apiserver on https://127.0.0.1:${APISERVER_PORT}"
    launch kube-apiserver "${BIN}/kube-apiserver" "${args[@]}"
  fi
  wait_for kube-apiserver kube-apiserver apiserver_ready
}

# Objects a controller-manager would create and the tests rely on.
bootstrap_objects() {
  local k=("${KUBECTL}" --kubeconfig "${KUBECONFIG_FILE}")
  local deadline=$(( SECONDS + TIMEOUT ))
  until "${k[@]}" get namespace default >/dev/null 2>&1; do
    (( SECONDS < deadline )) || die "namespace default was not created"
    sleep 0.2
  done
  if ! "${k[@]}" -n default get serviceaccount default >/dev/null 2>&1; then
    "${k[@]}" -n default create serviceaccount default >/dev/null
  fi
}

# -------------------------------------------------------------- commands ---

# A failed start stops what it launched, so tests leak no processes.
start_failed() {
  local rc=$? n
  if (( rc != 0 )); then
    for n in "${LAUNCHED[@]}"; do
      STOP_SIGNAL=KILL stop_proc "${n}" || true
    done
  fi
}

cmd_start() {
  local t0=${SECONDS}
  trap start_failed EXIT
  find_bins
  gen_certs
  choose_ports
  write_kubeconfig
  write_audit_policy
  start_etcd
  start_apiserver
  bootstrap_objects
  write_env
  trap - EXIT
  log "ready in $(( SECONDS - t0 ))s: source ${DIR}/env  (KUBECONFIG=${KUBECONFIG_FILE})"
  printf '%s\n' "${DIR}/env"
}

cmd_stop() {
  stop_proc kube-apiserver
  stop_proc etcd
  if [[ -f "${DIR}/ports.env" ]]; then
    load_ports
    find_bins_quiet
    write_env
  fi
  log "stopped"
}

# The env file needs BIN; don't trigger a build just to stop.
find_bins_quiet() {
  BIN="${CLOUDQUOTA_TOOLS_BIN:-$("${HACK_DIR}/build-tools.sh" --print-bin-dir)}"
  KUBECTL="${BIN}/kubectl"
}

cmd_start_etcd() { find_bins; load_ports; start_etcd; write_env; }
cmd_stop_etcd() { find_bins_quiet; load_ports; stop_proc etcd; write_env; }
cmd_start_apiserver() {
  find_bins; load_ports
  running etcd || die "etcd is not running; run: $0 start-etcd ${DIR}"
  start_apiserver; write_env
}
cmd_stop_apiserver() { find_bins_quiet; load_ports; stop_proc kube-apiserver; write_env; }

cmd_restart_apiserver() {
  local t0=${SECONDS}
  find_bins; load_ports
  running etcd || die "etcd is not running; run: $0 start ${DIR}"
  stop_proc kube-apiserver
  start_apiserver
  write_env
  log "kube-apiserver restarted in $(( SECONDS - t0 ))s"
}

cmd_restart_etcd() {
  local t0=${SECONDS}
  find_bins; load_ports
  stop_proc etcd
  start_etcd
  if running kube-apiserver; then
    wait_for kube-apiserver kube-apiserver apiserver_ready
  fi
  write_env
  log "etcd restarted in $(( SECONDS - t0 ))s"
}

cmd_status() {
  local rc=0 n
  find_bins_quiet
  if [[ ! -f "${DIR}/ports.env" ]]; then
    echo "dir: ${DIR} (never started)"
    return 1
  fi
  load_ports
  echo "dir: ${DIR}"
  for n in etcd kube-apiserver; do
    if running "${n}"; then
      echo "${n}: running (pid $(pid_of "${n}"))"
    else
      echo "${n}: stopped"; rc=1
    fi
  done
  if running etcd && etcd_healthy; then
    echo "etcd: healthy at http://127.0.0.1:${ETCD_CLIENT_PORT}"
  else
    echo "etcd: not healthy"; rc=1
  fi
  if [[ -x "${KUBECTL}" ]] && running kube-apiserver && apiserver_ready; then
    echo "kube-apiserver: ready at https://127.0.0.1:${APISERVER_PORT}"
  else
    echo "kube-apiserver: not ready"; rc=1
  fi
  echo "kubeconfig: ${KUBECONFIG_FILE}"
  echo "audit log: ${AUDIT_LOG}"
  return "${rc}"
}

cmd_destroy() {
  # Logs first, so that they end with what happened, not with our shutdown.
  [[ ! -f "${DIR}/.cloudquota-cp" ]] || artifacts_save "${DIR}" "$(basename "${DIR}")"
  # No graceful stop for data about to be deleted (etcd's waits ~7 s for open watches).
  [[ -n "${CLOUDQUOTA_CP_STOP_SIGNAL:-}" ]] || STOP_SIGNAL=KILL
  cmd_stop
  [[ -f "${DIR}/.cloudquota-cp" ]] || die "${DIR} is not a control-plane dir; not deleting"
  rm -rf "${DIR}"
  log "deleted ${DIR}"
}

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "${cmd}" in
    kubectl)
      set_dir ""
      find_bins_quiet
      exec 9>&-
      exec "${KUBECTL}" --kubeconfig "${KUBECONFIG_FILE}" "$@"
      ;;
    -h|--help|help) usage; return 0 ;;
    "") usage >&2; exit 2 ;;
  esac
  (( $# <= 1 )) || die "too many arguments; usage: $0 ${cmd} [DIR]"
  case "${cmd}" in
    start|stop|status|destroy|restart-apiserver|restart-etcd|start-etcd|stop-etcd|start-apiserver|stop-apiserver|env) ;;
    *) usage >&2; die "unknown command: ${cmd}" ;;
  esac
  set_dir "${1:-}"
  case "${cmd}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    destroy) cmd_destroy ;;
    restart-apiserver) cmd_restart_apiserver ;;
    restart-etcd) cmd_restart_etcd ;;
    start-etcd) cmd_start_etcd ;;
    stop-etcd) cmd_stop_etcd ;;
    start-apiserver) cmd_start_apiserver ;;
    stop-apiserver) cmd_stop_apiserver ;;
    env) cat "${DIR}/env" 2>/dev/null || die "${DIR}/env not found; run: $0 start ${DIR}" ;;
  esac
}

main "$@"
