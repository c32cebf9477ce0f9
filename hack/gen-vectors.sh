#!/usr/bin/env bash
# Regenerate tests/vectors/{huaweicloud,zenlayer}_sign.json from the official Python SDKs.
#
#   hack/gen-vectors.sh            # venv in ~/.cache/cloudquota/venv-vectors (kept across clones)
#   CLOUDQUOTA_VENV=/path hack/gen-vectors.sh
#   hack/gen-vectors.sh --check    # regenerate into a temporary directory; exit 1 if the
#                                  # committed tests/vectors/*.json differ (drift check)
#
# Creates the venv if missing, installs the pinned hack/vectors/requirements.txt (a no-op when
# already satisfied) and runs hack/vectors/gen_vectors.py. Needs python3 >= 3.8 and PyPI.
# The same venv runs hack/sdk-bench/python_fetch.py.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CLOUDQUOTA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/cloudquota/venv-vectors}"
python="${PYTHON:-python3}"

if [[ ! -x "$venv/bin/python" ]]; then
  echo "creating venv $venv" >&2
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r "$root/hack/vectors/requirements.txt"
if [[ "${1:-}" == "--check" ]]; then
  shift
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  "$venv/bin/python" "$root/hack/vectors/gen_vectors.py" --out-dir "$tmp" "$@"
  stale=0
  for f in huaweicloud_sign.json zenlayer_sign.json; do
    if ! diff -u "$root/tests/vectors/$f" "$tmp/$f" >"$tmp/$f.diff"; then
      echo "tests/vectors/$f is stale (first lines of the diff below); run hack/gen-vectors.sh" >&2
      sed -n 1,40p "$tmp/$f.diff" >&2
      stale=1
    fi
  done
  exit "$stale"
fi
"$venv/bin/python" "$root/hack/vectors/gen_vectors.py" --out-dir "$root/tests/vectors" "$@"
