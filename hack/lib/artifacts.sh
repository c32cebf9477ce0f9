# shellcheck shell=bash
# Test artifacts convention (see the header of hack/test.sh). Source this file; it defines
# functions only.
#
# hack/test.sh sets CLOUDQUOTA_ARTIFACTS_DIR=<repo>/target/test-artifacts/<step> for each step.
# A script that starts processes (control plane, operator, simulator) keeps their logs in its
# own work dir as usual and, before deleting that dir, copies the logs below
# $CLOUDQUOTA_ARTIFACTS_DIR with artifacts_save. When the variable is unset (a script run by
# hand) nothing is copied. On a failed step, hack/test.sh prints the tail of every *.log there.

# artifacts_save SRC_DIR NAME: copy SRC_DIR/*.log (not audit.log: large, one JSON line per API
# request; kept with --keep where a script has it) to $CLOUDQUOTA_ARTIFACTS_DIR/NAME/.
# Never fails: losing a log must not turn a passing run into a failing one.
artifacts_save() {
  local src="$1" name="$2" dest f
  [[ -n "${CLOUDQUOTA_ARTIFACTS_DIR:-}" && -d "${src}" ]] || return 0
  dest="${CLOUDQUOTA_ARTIFACTS_DIR}/${name}"
  mkdir -p "${dest}" 2>/dev/null || return 0
  for f in "${src}"/*.log; do
    [[ -f "${f}" && "${f##*/}" != audit.log ]] || continue
    cp -f "${f}" "${dest}/" 2>/dev/null || true
  done
  return 0
}

# artifacts_file FILE [NAME]: copy one file to $CLOUDQUOTA_ARTIFACTS_DIR/NAME (default: its
# base name).
artifacts_file() {
  local f="$1" name="${2:-${1##*/}}"
  [[ -n "${CLOUDQUOTA_ARTIFACTS_DIR:-}" && -f "${f}" ]] || return 0
  mkdir -p "$(dirname "${CLOUDQUOTA_ARTIFACTS_DIR}/${name}")" 2>/dev/null || return 0
  cp -f "${f}" "${CLOUDQUOTA_ARTIFACTS_DIR}/${name}" 2>/dev/null || true
  return 0
}
