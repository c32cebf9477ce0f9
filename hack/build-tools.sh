#!/usr/bin/env bash
# Build the pinned kube-apiserver, kubectl, etcd and helm binaries used by
# hack/controlplane.sh (and promql-check, used by hack/chart-test.sh) from Go
# modules, and cache them.
#
# Usage:
#   hack/build-tools.sh [TOOL...]      build missing tools (default: all five),
#                                      then print the bin dir on stdout
#   hack/build-tools.sh --print-bin-dir
#                                      print the bin dir only (no build)
#   hack/build-tools.sh --check        exit 0 iff every tool is built
#   hack/build-tools.sh --versions     print the pinned versions
#
# TOOL is one of: kube-apiserver kubectl etcd helm, or a small tool module: a directory
# hack/tools/<dir> with go.mod, go.sum and main.go, registered in MODULE_TOOLS below
# (promql-check, ...). A module tool is rebuilt when any of its files changes.
#
# Layout (TOOLS_DIR = $CLOUDQUOTA_TOOLS_DIR, see below):
#   $TOOLS_DIR/kube-apiserver-<k8s version>/kube-apiserver
#   $TOOLS_DIR/kubectl-<k8s version>/kubectl
#   $TOOLS_DIR/etcd-<etcd version>/etcd
#   $TOOLS_DIR/helm-<helm version>/helm
#   $TOOLS_DIR/promql-check-<prometheus version>/promql-check
#   $TOOLS_DIR/bin-<k8s>_<etcd>_<helm>/{kube-apiserver,kubectl,etcd,helm}
#       symlinks to the above: the "bin dir" printed by this script
#   $TOOLS_DIR/bin-.../tools.env   exports CLOUDQUOTA_TOOLS_BIN (+ versions)
#
# A tool is rebuilt only when its binary is missing, does not run
# `--version`/`version`, or its build inputs (go.mod, go.sum, ldflags)
# changed. The Go module and build caches are the normal ones, so a rebuild
# after a cache hit is fast. Progress goes to stderr.
#
# Environment:
#   CLOUDQUOTA_TOOLS_DIR  cache root (default
#                         ${XDG_CACHE_HOME:-$HOME/.cache}/cloudquota/tools)
#   GO                    go command (default: `go` on PATH, else
#                         /usr/local/go/bin/go)
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KUBE_MOD_DIR="${HACK_DIR}/tools/kube"
ETCD_MOD_DIR="${HACK_DIR}/tools/etcd"

# helm has no replace directives, so `go install pkg@version` works and its
# module checksums are verified against the Go checksum database.
HELM_VERSION="v3.22.0"

TOOLS_DIR="${CLOUDQUOTA_TOOLS_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/cloudquota/tools}"

log() { printf '[build-tools] %s\n' "$*" >&2; }
die() { printf '[build-tools] error: %s\n' "$*" >&2; exit 1; }

find_go() {
  if [[ -n "${GO:-}" ]]; then
    printf '%s\n' "${GO}"
  elif command -v go >/dev/null 2>&1; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    printf '%s\n' /usr/local/go/bin/go
  else
    die "no go command found (set GO=/path/to/go)"
  fi
}

# Version of a required module, read from a committed go.mod.
mod_version() { # go.mod module-path
  local v
  v="$(awk -v m="$2" '($1 == "require" && $2 == m) { print $3; exit } ($1 == m && $2 ~ /^v/) { print $2; exit }' "$1")"
  [[ -n "${v}" ]] || die "cannot find ${2} in ${1}"
  printf '%s\n' "${v}"
}

KUBE_VERSION="$(mod_version "${KUBE_MOD_DIR}/go.mod" k8s.io/kubernetes)"
ETCD_VERSION="$(mod_version "${ETCD_MOD_DIR}/go.mod" go.etcd.io/etcd/server/v3)"
PROMETHEUS_VERSION="$(mod_version "${HACK_DIR}/tools/promql/go.mod" github.com/prometheus/prometheus)"
BIN_DIR="${TOOLS_DIR}/bin-k8s-${KUBE_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}"

KUBE_MAJOR="${KUBE_VERSION#v}"; KUBE_MAJOR="${KUBE_MAJOR%%.*}"
KUBE_MINOR="${KUBE_VERSION#v*.}"; KUBE_MINOR="${KUBE_MINOR%%.*}"

# Small Go tool modules: binary name -> directory under hack/tools. Each builds with
# `go build .` in its directory; its cache key is a hash of go.mod, go.sum and *.go, and it
# must answer `--version` (exit 0). Add one line here to add a tool. `dir:package` builds that
# package of a required module instead of `.` (a main package cannot be imported, so a tool
# like promtool is built in place from a module that lists it with a `tool` directive). An
# optional file `build-tags` in the module directory holds `go build -tags` (part of the key).
declare -A MODULE_TOOLS=(
  [promql-check]=promql
  [gitops-health]=gitops-health
  [actionlint]=actionlint
  [promtool]=promtool:github.com/prometheus/prometheus/cmd/promtool
  [dashboard-check]=dashboard
)

module_dir() { printf '%s/%s\n' "${HACK_DIR}/tools" "${MODULE_TOOLS[$1]%%:*}"; }
module_pkg() { local e="${MODULE_TOOLS[$1]}"; [[ "${e}" == *:* ]] && printf '%s\n' "${e#*:}" || printf '.\n'; }
module_hash() { # files of a tool module, hashed: the module's version
  (cd "$(module_dir "$1")" && cat go.mod go.sum && find . -maxdepth 1 \( -name '*.go' -o -name build-tags \) -print0 |
    sort -z | xargs -0r cat) |
    sha256sum | cut -c1-12
}

ALL_TOOLS=(kube-apiserver kubectl etcd helm "${!MODULE_TOOLS[@]}")

tool_version() {
  case "$1" in
    kube-apiserver|kubectl) printf '%s\n' "${KUBE_VERSION}" ;;
    etcd) printf '%s\n' "${ETCD_VERSION}" ;;
    helm) printf '%s\n' "${HELM_VERSION}" ;;
    *) [[ -n "${MODULE_TOOLS[$1]:-}" ]] && { module_hash "$1"; return; }
       die "unknown tool: $1 (want one of: ${ALL_TOOLS[*]})" ;;
  esac
}

tool_path() { printf '%s/%s-%s/%s\n' "${TOOLS_DIR}" "$1" "$(tool_version "$1")" "$1"; }

# ldflags as used by the upstream release builds (version stamping only).
tool_ldflags() {
  case "$1" in
    kube-apiserver|kubectl)
      local pkg flags="-s -w"
      for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        flags+=" -X ${pkg}.gitVersion=${KUBE_VERSION}"
        flags+=" -X ${pkg}.gitMajor=${KUBE_MAJOR}"
        flags+=" -X ${pkg}.gitMinor=${KUBE_MINOR}"
        flags+=" -X ${pkg}.gitTreeState=clean"
        flags+=" -X ${pkg}.gitCommit="
      done
      printf '%s\n' "${flags}"
      ;;
    helm)
      local flags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
      flags+=" -X helm.sh/helm/v3/internal/version.metadata="
      flags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
      # helm's Makefile derives these from its k8s.io/client-go requirement.
      local cg cg_minor
      cg="$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$(helm_gomod)")"
      cg_minor="${cg#v0.}"; cg_minor="${cg_minor%%.*}"
      flags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1"
      flags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${cg_minor}"
      flags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1"
      flags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${cg_minor}"
      printf '%s\n' "${flags}"
      ;;
    *)
      # etcd: go.etcd.io/etcd/api/v3/version.Version is a constant in the module; the
      # module tools read their library versions from the build info.
      printf '%s\n' "-s -w"
      ;;
  esac
}

helm_gomod() {
  local gomod
  gomod="$(cd "${TOOLS_DIR}" && "${GO_CMD}" mod download -json "helm.sh/helm/v3@${HELM_VERSION}" |
    awk -F'"' '$2 == "GoMod" { print $4 }')"
  [[ -f "${gomod}" ]] || die "cannot download helm.sh/helm/v3@${HELM_VERSION}"
  printf '%s\n' "${gomod}"
}

# Fingerprint of a tool's build inputs; stored next to the binary.
tool_stamp() {
  {
    printf 'tool=%s version=%s go=%s\n' "$1" "$(tool_version "$1")" "$("${GO_CMD}" env GOVERSION)"
    tool_ldflags "$1"
    case "$1" in
      kube-apiserver|kubectl) cat "${KUBE_MOD_DIR}/go.mod" "${KUBE_MOD_DIR}/go.sum" ;;
      etcd) cat "${ETCD_MOD_DIR}/go.mod" "${ETCD_MOD_DIR}/go.sum" "${ETCD_MOD_DIR}/main.go" ;;
      *) [[ -z "${MODULE_TOOLS[$1]:-}" ]] || module_hash "$1" ;;
    esac
  } | sha256sum | awk '{ print $1 }'
}

# Does the cached binary run and report the pinned version?
tool_runs() {
  local bin want out
  bin="$(tool_path "$1")"
  want="$(tool_version "$1")"
  [[ -x "${bin}" ]] || return 1
  case "$1" in
    kube-apiserver) out="$("${bin}" --version 2>&1)" || return 1 ;;
    kubectl) out="$("${bin}" version --client 2>&1)" || return 1 ;;
    etcd) out="$("${bin}" --version 2>&1)" || return 1; want="${want#v}" ;;
    helm) out="$("${bin}" version --short 2>&1)" || return 1 ;;
    *) "${bin}" --version >/dev/null 2>&1 || return 1; return 0 ;;
  esac
  [[ "${out}" == *"${want}"* ]]
}

tool_ok() {
  local dir
  dir="$(dirname "$(tool_path "$1")")"
  tool_runs "$1" && [[ -f "${dir}/.stamp" && "$(cat "${dir}/.stamp")" == "$(tool_stamp "$1")" ]]
}

build_tool() {
  local tool="$1" bin dir tmp ldflags start
  bin="$(tool_path "${tool}")"
  dir="$(dirname "${bin}")"
  if tool_ok "${tool}"; then
    log "${tool} $(tool_version "${tool}") is up to date: ${bin}"
    return 0
  fi
  mkdir -p "${dir}"
  tmp="$(mktemp -d "${dir}/.build.XXXXXX")"
  ldflags="$(tool_ldflags "${tool}")"
  start="$(date +%s)"
  log "building ${tool} $(tool_version "${tool}") (this can take several minutes on a cold cache)..."
  export CGO_ENABLED=0
  case "${tool}" in
    kube-apiserver|kubectl)
      (cd "${KUBE_MOD_DIR}" && "${GO_CMD}" build -mod=readonly -trimpath -ldflags "${ldflags}" \
        -o "${tmp}/${tool}" "k8s.io/kubernetes/cmd/${tool}")
      ;;
    etcd)
      (cd "${ETCD_MOD_DIR}" && "${GO_CMD}" build -mod=readonly -trimpath -ldflags "${ldflags}" \
        -o "${tmp}/etcd" .)
      ;;
    helm)
      (cd "${tmp}" && GOBIN="${tmp}" "${GO_CMD}" install -trimpath -ldflags "${ldflags}" \
        "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}")
      ;;
    *)
      (cd "$(module_dir "${tool}")" && "${GO_CMD}" build -mod=readonly -trimpath -ldflags "${ldflags}" \
        -tags "$(cat build-tags 2>/dev/null || true)" -o "${tmp}/${tool}" "$(module_pkg "${tool}")")
      ;;
  esac
  mv -f "${tmp}/${tool}" "${bin}"
  rmdir "${tmp}"
  tool_stamp "${tool}" > "${dir}/.stamp"
  tool_runs "${tool}" || die "built ${bin} but it does not report version $(tool_version "${tool}")"
  log "built ${tool} in $(( $(date +%s) - start ))s: ${bin}"
}

link_bin_dir() {
  local tool
  mkdir -p "${BIN_DIR}"
  for tool in "${ALL_TOOLS[@]}"; do
    if [[ -x "$(tool_path "${tool}")" ]]; then
      ln -sfn "$(tool_path "${tool}")" "${BIN_DIR}/${tool}"
    fi
  done
  cat > "${BIN_DIR}/tools.env.tmp" <<EOF
# Generated by hack/build-tools.sh
export CLOUDQUOTA_TOOLS_BIN='${BIN_DIR}'
export CLOUDQUOTA_KUBE_VERSION='${KUBE_VERSION}'
export CLOUDQUOTA_ETCD_VERSION='${ETCD_VERSION}'
export CLOUDQUOTA_HELM_VERSION='${HELM_VERSION}'
export CLOUDQUOTA_PROMETHEUS_VERSION='${PROMETHEUS_VERSION}'
EOF
  mv -f "${BIN_DIR}/tools.env.tmp" "${BIN_DIR}/tools.env"
}

main() {
  local tools=() tool
  case "${1:-}" in
    --print-bin-dir) printf '%s\n' "${BIN_DIR}"; return 0 ;;
    --versions)
      printf 'kubernetes %s\netcd %s\nhelm %s\nprometheus (promql-check) %s\n' "${KUBE_VERSION}" "${ETCD_VERSION}" "${HELM_VERSION}" "${PROMETHEUS_VERSION}"
      return 0
      ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; return 0 ;;
  esac
  GO_CMD="$(find_go)"
  mkdir -p "${TOOLS_DIR}"
  if [[ "${1:-}" == "--check" ]]; then
    for tool in "${ALL_TOOLS[@]}"; do
      tool_ok "${tool}" || { log "${tool} needs a build"; return 1; }
    done
    link_bin_dir
    return 0
  fi
  if (( $# > 0 )); then
    tools=("$@")
  else
    tools=("${ALL_TOOLS[@]}")
  fi
  for tool in "${tools[@]}"; do
    tool_version "${tool}" >/dev/null
  done
  # Concurrent runs wait for each other instead of building twice.
  exec 8>"${TOOLS_DIR}/.lock"
  flock 8
  # One at a time: each kube build already uses every core.
  for tool in "${tools[@]}"; do
    build_tool "${tool}"
  done
  link_bin_dir
  log "binaries are in ${BIN_DIR} (source ${BIN_DIR}/tools.env)"
  printf '%s\n' "${BIN_DIR}"
}

main "$@"
