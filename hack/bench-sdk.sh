#!/usr/bin/env bash
# CPU per quota fetch (sign + HTTP round trip + parse): cloudquota's provider clients against
# the official Python SDKs (hack/sdk-bench/python_fetch.py), same simulator, same machine, same
# run (BENCHMARKS.md). The simulator is a separate process, so its CPU is not counted; each
# client measures only its own process (Python: time.process_time(); cloudquota-bench fetch:
# CLOCK_PROCESS_CPUTIME_ID, the same clock), excluding start-up and warm-up fetches.
#
#   hack/bench-sdk.sh              # all four services, 3 rounds, medians
#   hack/bench-sdk.sh --check      # exit 1 when a ratio (1 thread) is below 20
#
# Options:
#   -n N            cloudquota fetches per round and service (default 5000)
#   --py-n N        Python SDK fetches per round and service (default 1000)
#   --rounds R      rounds, interleaved; the table shows medians (default 3)
#   --services "S"  subset of "ims dws evs zenlayer"
#   --check         exit 1 when Python SDK / cloudquota (1 thread) < 20 for a service
#   --no-build      use the existing target/release binaries
#
# cloudquota is measured twice: on a current-thread Tokio runtime (the client's own cost, like
# the SDKs' synchronous loop) and as the operator runs it, in a task on a multi-thread runtime
# (adds Tokio's cross-thread wake-ups while the loop waits for each answer).
#
# The Python venv is CLOUDQUOTA_VENV or ~/.cache/cloudquota/venv-vectors (made by hack/gen-vectors.sh; if
# missing it is created here from hack/vectors/requirements.txt, which needs PyPI).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"

n=5000 py_n=1000 rounds=3 check=0 build=1 services="ims dws evs zenlayer"
while (( $# > 0 )); do
  case "$1" in
    -n) n="$2"; shift ;;
    --py-n) py_n="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    --services) services="$2"; shift ;;
    --check) check=1 ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-sdk: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[bench-sdk] %s\n' "$*" >&2; }

if (( build )); then
  log "building release binaries (cloudquota-sim, cloudquota-bench)"
  cargo build --release --quiet --bin cloudquota-sim --bin cloudquota-bench
fi
bin="${root}/target/release"

venv="${CLOUDQUOTA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/cloudquota/venv-vectors}"
if [[ ! -x "${venv}/bin/python" ]]; then
  log "creating the Python venv ${venv}"
  "${PYTHON:-python3}" -m venv "${venv}"
  "${venv}/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "${root}/hack/vectors/requirements.txt"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/cloudquota-bench-sdk.XXXXXX")"
sim_pid=""
cleanup() {
  local rc=$?
  if [[ -n "${sim_pid}" ]] && kill -0 "${sim_pid}" 2>/dev/null; then
    kill -TERM "${sim_pid}" 2>/dev/null || true
    wait "${sim_pid}" 2>/dev/null || true
  fi
  rm -rf "${work}"
  exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RUST_LOG=warn "${bin}/cloudquota-sim" --listen 127.0.0.1:0 > "${work}/sim.out" 2> "${work}/sim.log" < /dev/null &
sim_pid=$!
url=""
deadline=$(( SECONDS + 30 ))  # a deadline, not a count of sleeps: the machine may be busy
while [[ -z "${url}" ]] && (( SECONDS < deadline )); do
  url="$(sed -n '1s/^listening on //p' "${work}/sim.out")"
  [[ -n "${url}" ]] && break
  kill -0 "${sim_pid}" 2>/dev/null || break
  sleep 0.1
done
[[ -n "${url}" ]] || { log "simulator did not start"; cat "${work}/sim.log" >&2; exit 1; }

ak=CQSIMDEMOACCESSKEY01 sk=cq-sim-demo-secret-key-0001 project=0605767c6200d5e22f4fc00e2b6ee5ae
results="${work}/results.jsonl"
log "simulator ${url}; ${rounds} rounds of ${n} cloudquota and ${py_n} Python SDK fetches per service"
for round in $(seq 1 "${rounds}"); do
  for svc in ${services}; do
    for rt in current multi-task; do
      args=(fetch --endpoint "${url}" --service "${svc}" -n "${n}" --runtime "${rt}")
      [[ "${rt}" == current ]] && args+=(--breakdown)
      "${bin}/cloudquota-bench" "${args[@]}" >> "${results}"
    done
    py=(--service "${svc}" --endpoint "${url}" --ak "${ak}" --sk "${sk}" -n "${py_n}" --warmup 20)
    [[ "${svc}" == zenlayer ]] || py+=(--project-id "${project}")
    "${venv}/bin/python" "${root}/hack/sdk-bench/python_fetch.py" "${py[@]}" \
      | sed 's/^{/{"kind": "fetch", "client": "python-sdk", "runtime": "python", /' >> "${results}"
  done
  log "round ${round} done"
done

echo
echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(uname -sr)"
echo "CPU µs per fetch, median of ${rounds} rounds (cloudquota ${n} fetches, Python SDK ${py_n} fetches per round):"
echo
rc=0
if (( check )); then
  "${bin}/cloudquota-bench" table --check-ratio 20 "${results}" || rc=$?
else
  "${bin}/cloudquota-bench" table "${results}"
fi
if [[ -n "${CLOUDQUOTA_BENCH_OUT:-}" ]]; then
  cat "${results}" >> "${CLOUDQUOTA_BENCH_OUT}"
fi
if (( rc != 0 )); then
  log "FAILED: a ratio is below 20x"
  exit 1
fi
