#!/usr/bin/env bash
# Regenerate tests/vectors/{huaweicloud,zenlayer}_sign.json from the official Python SDKs.
#
#   hack/gen-vectors.sh            # venv in .cache/venv-vectors (git-ignored)
#   CLOUDQUOTA_VENV=/path hack/gen-vectors.sh
#
# Creates the venv if missing, installs the pinned hack/vectors/requirements.txt (a no-op when
# already satisfied) and runs hack/vectors/gen_vectors.py. Needs python3 >= 3.8 and PyPI.
# The same venv runs hack/sdk-bench/python_fetch.py.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CLOUDQUOTA_VENV:-$root/.cache/venv-vectors}"
python="${PYTHON:-python3}"

if [[ ! -x "$venv/bin/python" ]]; then
  echo "creating venv $venv" >&2
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r "$root/hack/vectors/requirements.txt"
"$venv/bin/python" "$root/hack/vectors/gen_vectors.py" --out-dir "$root/tests/vectors" "$@"
