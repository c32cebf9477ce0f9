#!/usr/bin/env bash
# The test suite.
#
#   hack/test.sh           the full tier, exactly what CI runs (.ci/run): formatting, lints,
#                          ShellCheck, unit and integration tests, the chart's offline checks and
#                          its live install/upgrade/uninstall, the end-to-end suite against a real
#                          kube-apiserver + etcd, bounded fuzzing, the N=100 benchmark against its
#                          targets and a bounded run of the demo. Tools are built from source and
#                          cached on the first run.
#   hack/test.sh --quick   the daily loop (under 3 minutes warm): formatting, lints, shellcheck,
#                          unit and integration tests (no e2e) and the chart's offline checks
#                          (lint, snapshots, schema, PromQL parsing). No control plane is started.
#   --only NAME[,NAME...]  run only these steps of the tier (e.g. `--only chart` to repeat a
#                          failed one); the others are listed as not run.
#
# Steps. Each step is one call: `step NAME COMMAND [ARGS...]` (NAME: lower-case, no spaces; the
# command runs from the repository root with `set -e`, and may be a function defined here).
# The first failing step stops the suite with its exit status. A new step goes into the block
# of its tier at the end of this file: both tiers, quick only, or full only (what needs a control
# plane or takes more than a few seconds).
#
# Logs ("artifacts"). For every step, test.sh exports
#     CLOUDQUOTA_ARTIFACTS_DIR=<repo>/target/test-artifacts/<NAME>
# (emptied when the step starts). Anything a step starts keeps its logs below that directory as
# *.log files, so that they survive the step's clean-up:
#   - hack/controlplane.sh destroy copies DIR/*.log (kube-apiserver.log, etcd.log and whatever its
#     user wrote into DIR, e.g. the e2e harness's operator.log and simulator.log; not audit.log)
#     to $CLOUDQUOTA_ARTIFACTS_DIR/<name of DIR>/ before deleting DIR;
#   - hack/chart-test.sh (through controlplane.sh), hack/demo.sh, hack/bench.sh and hack/fuzz.sh
#     copy theirs with the two functions of hack/lib/artifacts.sh: `artifacts_save DIR NAME`
#     (DIR/*.log to NAME/) and `artifacts_file FILE [NAME]`;
#   - a new script sources hack/lib/artifacts.sh and does the same before removing its work
#     dir, or writes its *.log files straight into $CLOUDQUOTA_ARTIFACTS_DIR. When the variable
#     is unset (a script run by hand) nothing is copied.
# When a step fails, test.sh prints the last 60 lines of every *.log below the step's directory
# and the directory's path, so a CI failure can be understood from the output alone; CI may
# upload target/test-artifacts/ as well (every step of the last run).
#
# Disk. The free space of the repository's filesystem is printed at the start (with a warning
# under what a full run from a clean checkout needs), after every step (with the size of target/
# and fuzz/target/) and with a failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
ARTIFACTS="${ROOT}/target/test-artifacts"
LOG_LINES=60

QUICK=0 ONLY=""
while (( $# > 0 )); do
  case "$1" in
    --quick) QUICK=1 ;;
    --only) ONLY=",${2:?--only needs step names},"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

start=${SECONDS}
DONE=()

# Disk. A full run from a clean checkout writes about 5 GiB (target/ and fuzz/target/; measured:
# 4.7), and 5 more when the tools are built the first time (the Go build cache). Out of space, a
# run fails far from its cause (the linker died of SIGBUS in CI), so free space is printed first,
# after every step and with a failure.
TOOLS_BIN="$(hack/build-tools.sh --print-bin-dir)"
FOOTPRINT_GIB=5
[[ -x "${TOOLS_BIN}/kube-apiserver" ]] || FOOTPRINT_GIB=10
free_gib() { df -Pk "${ROOT}" | awk 'NR == 2 { printf "%.1f", $4 / 1048576 }'; }
free_below() { awk -v f="$(free_gib)" -v n="$1" 'BEGIN { exit !(f < n) }'; } # GIB
build_gib() { du -sk "${ROOT}/target" "${ROOT}/fuzz/target" 2>/dev/null | awk '{ k += $1 } END { printf "%.1f", k / 1048576 }'; }
disk_line() { printf 'target/ + fuzz/target/ %s GiB, %s GiB free' "$(build_gib)" "$(free_gib)"; }
echo "== disk: $(disk_line)"
if free_below "${FOOTPRINT_GIB}"; then
  echo "== WARNING: under ${FOOTPRINT_GIB} GiB free; a full run from a clean checkout may run out of disk" >&2
fi

# Prints the failed step's logs (see the header) and where all of them are.
report_failure() { # name dir status seconds
  local name="$1" dir="$2" rc="$3" took="$4" f n logs=()
  printf '\n== FAILED: %s (exit %s after %ss)\n' "${name}" "${rc}" "${took}"
  mapfile -t logs < <(find "${dir}" -type f -name '*.log' | sort)
  if (( ${#logs[@]} == 0 )); then
    echo "(this step kept no log files; its own output is above)"
  fi
  for f in "${logs[@]}"; do
    # The operator runs at trace level in the e2e suite: its TRACE and DEBUG lines (tracing's
    # format: timestamp, level) would fill the tail, so they are left out here (not in the file).
    grep -v -E '^[0-9][^ ]* +(TRACE|DEBUG) ' "${f}" > "${dir}/.tail" || true
    n=$(wc -l < "${dir}/.tail")
    printf '\n--- %s (last %s of %s lines%s)\n' "${f#"${ROOT}"/}" "$(( n < LOG_LINES ? n : LOG_LINES ))" \
      "${n}" "$( (( n == $(wc -l < "${f}") )) || echo ' without TRACE/DEBUG')"
    tail -n "${LOG_LINES}" "${dir}/.tail"
  done
  rm -f "${dir}/.tail"
  printf '\n== disk: %s\n' "$(disk_line)"
  if free_below 1; then
    echo "== the disk is (nearly) full: a linker 'Bus error' (SIGBUS on its mmap'd output) or 'No space left on device' above is this"
  fi
  printf '\n== FAILED: step %s (exit %s). Its logs: %s\n' "${name}" "${rc}" "${dir}"
  printf '   every step'"'"'s logs of this run: %s/\n' "${ARTIFACTS}"
}

step() { # NAME COMMAND [ARGS...]
  local name="$1" dir t0 rc
  shift
  if [[ -n "${ONLY}" && "${ONLY}" != *",${name},"* ]]; then
    DONE+=("$(printf '%-18s %s' "${name}" 'not run (--only)')")
    return 0
  fi
  dir="${ARTIFACTS}/${name}"
  rm -rf "${dir}"
  mkdir -p "${dir}"
  export CLOUDQUOTA_ARTIFACTS_DIR="${dir}"
  printf '\n== %s: %s (at %ss)\n' "${name}" "$*" "$(( SECONDS - start ))"
  t0=${SECONDS}
  # A subshell with its own `set -e` (in an `if` or `||` bash would ignore -e inside functions).
  set +e
  ( set -e; "$@" )
  rc=$?
  set -e
  if (( rc != 0 )); then
    report_failure "${name}" "${dir}" "${rc}" "$(( SECONDS - t0 ))"
    exit "${rc}"
  fi
  DONE+=("$(printf '%-18s %5ss   %s' "${name}" "$(( SECONDS - t0 ))" "$(disk_line)")")
  unset CLOUDQUOTA_ARTIFACTS_DIR
}

# cargo test for every target of the workspace's default members except the e2e suite (its own
# step): the unit tests of libraries and binaries, and every integration test.
unit_and_integration() {
  local meta args=()
  meta="$(cargo metadata --no-deps --format-version 1 --locked)"
  mapfile -t args < <(python3 -c '
import json, sys
m = json.load(sys.stdin)
members = set(m.get("workspace_default_members") or m["workspace_members"])
out = set()
for p in m["packages"]:
    if p["id"] not in members:
        continue
    for t in p["targets"]:
        kinds = t["kind"]
        if "test" in kinds and t["name"] != "e2e":
            out.add("--test=" + t["name"])
        elif "bench" in kinds:
            out.add("--bench=" + t["name"])
        elif "example" in kinds:
            out.add("--example=" + t["name"])
        elif "bin" in kinds:
            out.add("--bin=" + t["name"])
        elif any(k in kinds for k in ("lib", "rlib", "proc-macro")):
            out.add("--lib")
print("\n".join(sorted(out)))
' <<<"${meta}")
  (( ${#args[@]} > 1 )) || { echo "no test targets found in cargo metadata" >&2; return 1; }
  cargo test --locked "${args[@]}"
}

# The e2e suite runs the workspace's binaries (the simulator is another package's, so building
# the e2e test alone would not build it).
e2e() {
  cargo build --locked --bins
  cargo test --locked --test e2e
}

build_tools() { # [TOOL...]
  hack/build-tools.sh "$@" >/dev/null
}

demo_bounded() {
  local dir
  dir="$(mktemp -d "${TMPDIR:-/tmp}/cloudquota-demo.XXXXXX")"
  # The tables go to a file (kept with the step's logs); progress and errors stay on stderr.
  CLOUDQUOTA_DEMO_DIR="${dir}" hack/demo.sh --duration 20 --step 5 --clean \
    > "${CLOUDQUOTA_ARTIFACTS_DIR}/demo-output.txt"
}

# ------------------------------------------------------------------ both tiers ---
step fmt cargo fmt --check
step clippy cargo clippy --all-targets --locked -- -D warnings
step shellcheck hack/shellcheck.sh
if (( QUICK )); then
  step tools build_tools helm promql-check
else
  step tools build_tools
fi
HELM="${TOOLS_BIN}/helm"
export HELM
step unit-integration unit_and_integration
step gitops hack/gitops-test.sh
step rules hack/rules-test.sh

# ------------------------------------------------------------------ quick tier only ---
if (( QUICK )); then
  step chart-offline hack/chart-test.sh --offline --no-build
fi

# ------------------------------------------------------------------ full tier only ---
if (( ! QUICK )); then
  # The signing vectors are generated from the vendors' SDKs: regenerated and compared.
  step vectors hack/gen-vectors.sh --check
  step chart hack/chart-test.sh --no-build
  step e2e e2e
  step fuzz hack/fuzz.sh "${CLOUDQUOTA_FUZZ_SECONDS:-60}"
  step bench hack/bench.sh --ci
  # The container image under the chart's pod spec, and the release workflow (actionlint).
  step image hack/image.sh test
  step demo demo_bounded
fi

tier=full
(( QUICK )) && tier=quick
if [[ -n "${ONLY}" ]]; then
  printf '\n== the selected steps of the %s tier passed in %ss (--only: not the whole suite)\n' "${tier}" "$(( SECONDS - start ))"
else
  printf '\n== all tests passed (%s tier) in %ss\n' "${tier}" "$(( SECONDS - start ))"
fi
printf '   %s\n' "${DONE[@]}"
