#!/usr/bin/env bash
# Scale benchmark of the operator (BENCHMARKS.md): for each N, a fresh local control plane
# (hack/controlplane.sh, in a temp dir), the simulated cloud (cloudquota-sim) and
# `cloudquota-bench scale`, which creates N CloudQuotas over 50 namespaces and K=20 upstream
# keys, starts `cloudquota run` and measures time to Ready, upstream requests, status writes
# and Events in a steady-state interval, CPU, RSS, reconcile latency and how fast a usage
# change reaches every affected object. Everything it starts is torn down, also on failure.
#
#   hack/bench.sh                  # N = 100 1000 5000, interval 60s
#   hack/bench.sh 1000 5000        # chosen sizes
#   hack/bench.sh --ci             # N = 100, interval 30s, exit 1 when a target is missed
#
# Options:
#   --ci               N=100 (unless sizes are given), --interval 30s, targets checked,
#                      debug binaries (CI has them already; add --release for release ones).
#                      Counts are gated as they are (upstream requests <= K, no status
#                      writes, no Events in the steady interval), and so are peak RSS and the
#                      usage-change latency (set by the interval, not by CPU speed). What
#                      depends on how fast and how loaded the machine is gets a bound that
#                      still catches a regression but not a busy CI machine: all Ready within
#                      180s (a run takes a few seconds), steady CPU <= 10% of one core (0.2%
#                      measured; a poll loop would be far above). The measured values are
#                      printed and stored either way. Override with -- --target-ready D,
#                      -- --target-cpu-pct P.
#   --check            check targets (exit 1 when one is missed) without the CI defaults
#   --interval D       poll interval of the CloudQuotas (default 60s; minimum 30s)
#   --keys K           distinct upstream keys (default 20)
#   --no-build         use the existing binaries
#   --debug            build and use debug binaries (target/debug; what CI already has:
#                      no release build, numbers are higher than a release build's)
#   --release          release binaries (the default, except with --ci)
#   --keep             keep the work dir (operator logs, audit logs, results)
#   --label TEXT       stored with the results (e.g. "before fix")
#   -- ARGS            extra `cloudquota-bench scale` arguments, e.g.
#                      -- --operator-arg=--concurrency=64
#
# Environment: CLOUDQUOTA_BENCH_OUT (results JSON lines; default
# target/bench/results-<time>.jsonl), CLOUDQUOTA_BENCH_OPERATOR (operator binary to measure;
# default target/release/cloudquota), CLOUDQUOTA_TOOLS_BIN (control plane binaries).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
# shellcheck source=hack/lib/artifacts.sh
. "${root}/hack/lib/artifacts.sh"

ci=0 check=0 build=1 keep=0 interval="" keys=20 label="" profile=""
sizes=() extra=()
while (( $# > 0 )); do
  case "$1" in
    --ci) ci=1; check=1 ;;
    --check) check=1 ;;
    --interval) interval="$2"; shift ;;
    --keys) keys="$2"; shift ;;
    --no-build) build=0 ;;
    --debug) profile=debug ;;
    --release) profile=release ;;
    --keep) keep=1 ;;
    --label) label="$2"; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    [0-9]*) sizes+=("$1") ;;
    *) echo "bench: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if (( ${#sizes[@]} == 0 )); then
  if (( ci )); then sizes=(100); else sizes=(100 1000 5000); fi
fi
[[ -n "${interval}" ]] || { if (( ci )); then interval=30s; else interval=60s; fi; }
[[ -n "${profile}" ]] || { if (( ci )); then profile=debug; else profile=release; fi; }

log() { printf '[bench.sh] %s\n' "$*" >&2; }
t_start=${SECONDS}

if (( build )); then
  log "building ${profile} binaries (cloudquota, cloudquota-sim, cloudquota-bench)"
  t_build=${SECONDS}
  release=()
  [[ "${profile}" == release ]] && release=(--release)
  cargo build "${release[@]}" --quiet --bin cloudquota --bin cloudquota-sim --bin cloudquota-bench
  log "build took $(( SECONDS - t_build ))s"
fi
bin="${root}/target/${profile}"
for b in cloudquota cloudquota-sim cloudquota-bench; do
  [[ -x "${bin}/${b}" ]] || { log "missing ${bin}/${b}"; exit 2; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/cloudquota-bench.XXXXXX")"
out="${CLOUDQUOTA_BENCH_OUT:-${root}/target/bench/results-$(date -u +%Y%m%dT%H%M%SZ).jsonl}"
mkdir -p "$(dirname "${out}")"
sim_pid="" cp_dir=""

stop_pid() { # pid: TERM, wait up to 10s, KILL
  local pid="$1"
  [[ -n "${pid}" ]] && kill -0 "${pid}" 2>/dev/null || return 0
  kill -TERM "${pid}" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "${pid}" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "${pid}" 2>/dev/null || true
}

teardown_run() {
  if [[ -f "${work}/operator.pid" ]]; then
    stop_pid "$(cat "${work}/operator.pid")"
    rm -f "${work}/operator.pid"
  fi
  stop_pid "${sim_pid}"
  sim_pid=""
  if [[ -n "${cp_dir}" ]]; then
    # The data is thrown away: no need for a graceful stop.
    CLOUDQUOTA_CP_STOP_SIGNAL=KILL "${root}/hack/controlplane.sh" stop "${cp_dir}" >/dev/null 2>&1 || true
    artifacts_save "${cp_dir}" "$(basename "${cp_dir}")"
    if (( keep )); then
      rm -rf "${cp_dir}/etcd" "${cp_dir}/pki"
    else
      rm -rf "${cp_dir}"
    fi
    cp_dir=""
  fi
}

cleanup() {
  local rc=$?
  teardown_run
  # Operator and simulator logs, and the results (hack/lib/artifacts.sh).
  artifacts_save "${work}" bench
  artifacts_file "${out}" "bench/$(basename "${out}")"
  if (( keep )); then
    log "kept ${work}"
  else
    rm -rf "${work}"
  fi
  exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

machine() {
  local model mem
  model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  mem="$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  printf '%s CPUs (%s), %s RAM, %s' "$(nproc)" "${model:-unknown}" "${mem}" "$(uname -sr)"
}
log "machine: $(machine)"
log "sizes: ${sizes[*]}; K=${keys}; interval ${interval}; results: ${out}"

failed=0
for n in "${sizes[@]}"; do
  t_run=${SECONDS}
  cp_dir="${work}/cp-${n}"
  log "N=${n}: starting control plane"
  "${root}/hack/controlplane.sh" start "${cp_dir}" >/dev/null
  # shellcheck disable=SC1091
  . "${cp_dir}/env"

  : > "${work}/sim.out"
  RUST_LOG=warn "${bin}/cloudquota-sim" --listen 127.0.0.1:0 \
    > "${work}/sim.out" 2> "${work}/sim-${n}.log" < /dev/null &
  sim_pid=$!
  sim_url=""
  deadline=$(( SECONDS + 30 ))  # a deadline, not a count of sleeps: the machine may be busy
  while [[ -z "${sim_url}" ]] && (( SECONDS < deadline )); do
    sim_url="$(sed -n '1s/^listening on //p' "${work}/sim.out")"
    [[ -n "${sim_url}" ]] && break
    kill -0 "${sim_pid}" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n "${sim_url}" ]] || { log "simulator did not start"; cat "${work}/sim-${n}.log" >&2; exit 1; }

  args=(scale -n "${n}" --keys "${keys}" --interval "${interval}" --sim-url "${sim_url}"
        --operator-bin "${CLOUDQUOTA_BENCH_OPERATOR:-${bin}/cloudquota}" --audit-log "${CLOUDQUOTA_AUDIT_LOG}"
        --workdir "${work}" --out "${out}")
  (( check )) && args+=(--check)
  if (( ci )); then
    # Generous bounds for what depends on machine speed and load (see --ci above).
    [[ " ${extra[*]} " == *" --target-ready"* ]] || args+=(--target-ready 180s)
    [[ " ${extra[*]} " == *" --target-cpu-pct"* ]] || args+=(--target-cpu-pct 10)
  fi
  [[ -n "${label}" ]] && args+=(--label "${label}")
  [[ "${profile}" == debug && -z "${label}" ]] && args+=(--label "debug build")
  rc=0
  "${bin}/cloudquota-bench" "${args[@]}" "${extra[@]}" || rc=$?
  if (( rc == 3 )); then
    log "N=${n}: a target was missed"
    failed=1
  elif (( rc != 0 )); then
    log "N=${n}: benchmark failed (exit ${rc}); operator log: ${work}/operator-n${n}.log"
    tail -n 20 "${work}/operator-n${n}.log" >&2 || true
    failed=1
  fi
  teardown_run
  log "N=${n}: done in $(( SECONDS - t_run ))s"
done

echo
echo "Machine: $(machine)"
echo
"${bin}/cloudquota-bench" table "${out}"
log "total $(( SECONDS - t_start ))s; results in ${out}"
if (( failed )); then
  log "FAILED: a run failed or missed a target"
  exit 1
fi
