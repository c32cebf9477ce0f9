#!/usr/bin/env bash
# The whole test suite, exactly what CI runs (.ci/run): formatting and lints, unit and
# integration tests, the end-to-end suite against a real kube-apiserver + etcd, the chart's live
# install/upgrade/uninstall, bounded fuzzing, the N=100 benchmark against its targets, and a
# bounded run of the demo. Tools are built from source and cached on the first run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
start=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

step "cargo fmt --check"
cargo fmt --check
step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings
step "build kube-apiserver, etcd, kubectl, helm from Go modules (cached)"
hack/build-tools.sh >/dev/null
HELM="$(hack/build-tools.sh --print-bin-dir)/helm"
export HELM
step "cargo test (unit, integration, chart, e2e on a real control plane)"
cargo test --all-targets --locked
step "GitOps health definitions: Argo CD Lua, kstatus, Flux CEL on the fixtures"
hack/gitops-test.sh
step "chart: lint, snapshots, schema, live install/upgrade/uninstall"
hack/chart-test.sh --no-build
if [ -x hack/fuzz.sh ]; then
  step "fuzzing (${CLOUDQUOTA_FUZZ_SECONDS:=60}s per target)"
  CLOUDQUOTA_FUZZ_SECONDS=$CLOUDQUOTA_FUZZ_SECONDS hack/fuzz.sh
fi
if [ -x hack/bench.sh ]; then
  step "benchmark N=100 against its targets"
  hack/bench.sh --ci
fi
step "demo, bounded"
CLOUDQUOTA_DEMO_DIR=$(mktemp -d) hack/demo.sh --duration 20 --step 5 >/dev/null
step "all tests passed"
