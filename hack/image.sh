#!/usr/bin/env bash
# The container image: build it with podman from the repository's Dockerfile, assert its facts,
# and run it on the local control plane exactly as the chart's Deployment would (hack/test.sh
# runs `hack/image.sh test`).
#
# Usage: hack/image.sh [COMMAND]
#   test            (default) lint-workflows + base + build + facts + run, then a summary
#   base            build (or reuse) the local runtime base image; print its name
#   build           build the operator image from the release binary; print its name
#   facts           assert the image's facts: size, user, no shell, CA bundle, OCI labels
#   run             run the image on a local control plane under the chart's pod spec
#   lint-workflows  actionlint on .github/workflows (built by hack/build-tools.sh)
#
# No base image can be pulled on the project's machines, so the runtime base is assembled from
# Debian packages (libc6, libgcc-s1, ca-certificates: what the distroless "cc" base holds for a
# glibc binary) plus a passwd entry for 65532, and imported with `podman import`. The Dockerfile
# is used unchanged: its BINARY=prebuilt path copies the release binary that cargo built (and
# keeps cached in target/), and RUNTIME_BASE names the local base.
#
# `run` installs the chart (with image.repository/tag set to the built image) on a fresh
# control plane, reads the rendered Deployment back from the API server and starts the
# container the way a kubelet would: the Deployment's args and env, its securityContext
# (user 65532, read-only root filesystem, no writable /tmp, all capabilities dropped,
# no-new-privileges, the runtime's default seccomp profile), the ServiceAccount token mounted
# where in-cluster config reads it, and `podman stop -t terminationGracePeriodSeconds`. It
# asserts: Ready (/readyz), leader, a sample reconciled against the simulated cloud, /metrics
# series for it, the process' credentials in /proc, and a clean exit 0 on SIGTERM within the
# grace period.
#
# Cached: podman and runc (apt, installed once), the .deb files and the base image
# (${CLOUDQUOTA_IMAGE_CACHE}, keyed by the packages' versions and this recipe), the release
# binary (target/), podman's layer cache. podman failing to work is an error with the reason,
# never a skip.
#
# Environment:
#   CLOUDQUOTA_IMAGE            image to build/test (default localhost/cloudquota:test)
#   CLOUDQUOTA_IMAGE_CACHE      cache dir (default ${XDG_CACHE_HOME:-~/.cache}/cloudquota/image)
#   CLOUDQUOTA_ARTIFACTS_DIR    when set, logs go to $CLOUDQUOTA_ARTIFACTS_DIR/image/
#   CLOUDQUOTA_IMAGE_MAX_MB     size bound asserted by `facts` (default 64)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
IMAGE="${CLOUDQUOTA_IMAGE:-localhost/cloudquota:test}"
CACHE="${CLOUDQUOTA_IMAGE_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/cloudquota/image}"
MAX_MB="${CLOUDQUOTA_IMAGE_MAX_MB:-64}"
BASE_PACKAGES=(libc6 libgcc-s1 ca-certificates)
# Bump when the base recipe below changes (part of the cache key).
BASE_RECIPE=1
OCI=org.opencontainers.image
TARGET_DIR="${CARGO_TARGET_DIR:-${ROOT}/target}"

log() { printf '[image] %s\n' "$*" >&2; }
die() { printf '[image] FAIL: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------ podman ---

# podman and runc from Debian's packages. The default OCI runtime (crun) cannot create
# containers on hosts with hybrid cgroup v1 hierarchies, so every call uses runc.
ensure_podman() {
  if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || die "podman/runc are missing and apt-get is not available to install them"
    [[ "$(id -u)" == 0 ]] || die "podman/runc are missing; installing them needs root (apt-get install podman runc)"
    log "installing podman and runc (apt-get)"
    local out
    out="$(mktemp)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc; } >"${out}" 2>&1; then
      cat "${out}" >&2
      die "apt-get install podman runc failed (output above)"
    fi
    rm -f "${out}"
  fi
  PODMAN=(podman --runtime runc --events-backend file)
  local info
  # The kernel's overlayfs is used when it works; otherwise vfs, in its own storage root
  # (a storage root remembers its driver, so the two cannot share one).
  if ! info="$("${PODMAN[@]}" info --format '{{.Store.GraphDriverName}} {{.Host.OCIRuntime.Name}}' 2>&1)"; then
    log "podman with its default storage failed (${info}); trying vfs"
    PODMAN+=(--storage-driver vfs --root "${CACHE}/podman-vfs")
    info="$("${PODMAN[@]}" info --format '{{.Store.GraphDriverName}} {{.Host.OCIRuntime.Name}}' 2>&1)" ||
      die "podman does not work on this machine: ${info}"
  fi
  log "$(podman --version) (storage driver, runtime: ${info})"
}

# Flags every container of this script gets: the default ulimits are above what this
# environment grants a container (runc fails with "operation not permitted").
RUN_FLAGS=(--ulimit nofile=20000:20000 --ulimit nproc=1000:1000 --network host --pull never)

# -------------------------------------------------------------------- base ---

deb_arch() { dpkg --print-architecture; }

# name=version of each base package, from apt's package lists (refreshed once if empty).
base_versions() {
  local pkg v out=() tries
  for tries in 1 2; do
    out=()
    for pkg in "${BASE_PACKAGES[@]}"; do
      v="$(apt-cache policy "${pkg}" 2>/dev/null | awk '$1 == "Candidate:" { print $2 }')"
      [[ -n "${v}" && "${v}" != "(none)" ]] || break
      out+=("${pkg}=${v}")
    done
    (( ${#out[@]} == ${#BASE_PACKAGES[@]} )) && { printf '%s\n' "${out[@]}"; return 0; }
    (( tries == 1 )) || break
    log "apt has no candidate for the base packages; apt-get update"
    apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed"
  done
  die "cannot resolve versions of ${BASE_PACKAGES[*]} from apt"
}

# The runtime base: the files of the packages a glibc Rust binary needs, a CA bundle, a
# passwd/group with nonroot 65532, /tmp and /home/nonroot; no shell, no package manager.
build_base() {
  local versions key tag debs root tar
  mapfile -t versions < <(base_versions)
  key="$(printf '%s\n' "recipe=${BASE_RECIPE}" "arch=$(deb_arch)" "${versions[@]}" | sha256sum | cut -c1-12)"
  tag="localhost/cloudquota-base:${key}"
  if "${PODMAN[@]}" image exists "${tag}"; then
    log "base ${tag} is cached (${versions[*]})"
    BASE="${tag}"
    return 0
  fi
  debs="${CACHE}/debs-${key}"
  tar="${CACHE}/base-${key}.tar"
  if [[ ! -s "${tar}" ]]; then
    mkdir -p "${debs}"
    if ! compgen -G "${debs}/*.deb" >/dev/null || (( $(find "${debs}" -name '*.deb' | wc -l) != ${#versions[@]} )); then
      log "downloading ${versions[*]}"
      (cd "${debs}" && rm -f ./*.deb && apt-get download -qq "${versions[@]}" >/dev/null 2>&1) ||
        die "apt-get download ${versions[*]} failed"
    fi
    root="$(mktemp -d)"
    local deb
    for deb in "${debs}"/*.deb; do dpkg-deb -x "${deb}" "${root}"; done
    # What a distroless base leaves out: docs, translations, iconv modules, the CA updater
    # (a shell script; the bundle is generated here instead).
    rm -rf "${root}"/usr/share/{doc,man,info,lintian,locale} "${root}"/usr/lib/*/gconv \
      "${root}"/usr/sbin "${root}"/etc/ca-certificates.conf
    mkdir -p "${root}"/etc/ssl/certs "${root}"/tmp "${root}"/home/nonroot
    find "${root}"/usr/share/ca-certificates -name '*.crt' -print0 | sort -z | xargs -0 cat \
      > "${root}"/etc/ssl/certs/ca-certificates.crt
    cat > "${root}"/etc/passwd <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
    cat > "${root}"/etc/group <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
    printf 'hosts: files dns\n' > "${root}"/etc/nsswitch.conf
    printf 'PRETTY_NAME="cloudquota runtime base (Debian 12 packages: %s)"\n' "${versions[*]}" \
      > "${root}"/etc/os-release
    chmod 1777 "${root}"/tmp
    chmod 0700 "${root}"/home/nonroot
    chown -R 0:0 "${root}"
    chown 65532:65532 "${root}"/home/nonroot
    tar --sort=name --mtime=@0 --numeric-owner -C "${root}" -cf "${tar}.tmp" .
    mv -f "${tar}.tmp" "${tar}"
    rm -rf "${root}"
  fi
  log "importing ${tar} as ${tag}"
  "${PODMAN[@]}" import -q --change 'USER 65532:65532' --change 'WORKDIR /' \
    --message "cloudquota runtime base: ${versions[*]}" "${tar}" "${tag}" >/dev/null ||
    die "podman import ${tar} failed"
  BASE="${tag}"
}

# ------------------------------------------------------------------- image ---

cargo_version() { awk -F'"' '/^version = / { print $2; exit }' Cargo.toml; }

build_image() {
  local ctx rev
  # -p: only the operator's features (the workspace's test tools enable more, e.g. reqwest json).
  log "cargo build --release --locked -p cloudquota --bin cloudquota"
  cargo build --release --locked --quiet -p cloudquota --bin cloudquota
  # A build context holding only the binary: the Dockerfile's BINARY=prebuilt stage copies it.
  ctx="$(mktemp -d)"
  cp "${TARGET_DIR}/release/cloudquota" "${ctx}/cloudquota"
  rev="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
  BUILT_REVISION="${rev}"
  log "podman build ${IMAGE} (RUNTIME_BASE=${BASE}, BINARY=prebuilt)"
  local out before
  before="$("${PODMAN[@]}" images -a -q --no-trunc | sort)"
  out="$(mktemp)"
  if ! "${PODMAN[@]}" build --pull=never -f "${ROOT}/Dockerfile" -t "${IMAGE}" \
      --build-arg BINARY=prebuilt --build-arg "RUNTIME_BASE=${BASE}" \
      --build-arg "VERSION=$(cargo_version)" --build-arg "REVISION=${rev}" \
      --build-arg "CREATED=$(git log -1 --format=%cI 2>/dev/null || echo 1970-01-01T00:00:00Z)" \
      "${ctx}" >"${out}" 2>&1; then
    cat "${out}" >&2
    rm -rf "${ctx}"
    die "podman build failed (output above)"
  fi
  rm -rf "${ctx}" "${out}"
  # Each build leaves the binary stage's image and the replaced image (with its layer cache)
  # untagged, 20 MB each: remove them, and only them (other untagged images are left alone).
  local id
  while read -r id; do
    [[ "$("${PODMAN[@]}" image inspect --format '{{len .RepoTags}}' "${id}" 2>/dev/null)" == 0 ]] || continue
    "${PODMAN[@]}" rmi "${id}" >/dev/null 2>&1 || true # fails for the new image's own parents
  done < <(comm -13 <(printf '%s\n' "${before}") <("${PODMAN[@]}" images -a -q --no-trunc | sort))
  "${PODMAN[@]}" image prune -f --filter "label=${OCI}.source=https://github.com/cloudquota/cloudquota" >/dev/null
}

# --------------------------------------------------------------------- facts ---

label() { "${PODMAN[@]}" image inspect --format "{{ index .Labels \"$1\" }}" "${IMAGE}"; }

facts() {
  local size user entry ctr fs list certs lbl want version rev
  size="$("${PODMAN[@]}" image inspect --format '{{.Size}}' "${IMAGE}")"
  SIZE_MB="$(awk -v s="${size}" 'BEGIN { printf "%.1f", s / 1048576 }')"
  log "image size: ${SIZE_MB} MiB (${size} bytes)"
  (( size < MAX_MB * 1048576 )) || die "image is ${SIZE_MB} MiB, above the ${MAX_MB} MiB bound"

  user="$("${PODMAN[@]}" image inspect --format '{{.Config.User}}' "${IMAGE}")"
  [[ "${user}" == "65532:65532" ]] || die "image user is '${user}', want 65532:65532"
  entry="$("${PODMAN[@]}" image inspect --format '{{json .Config.Entrypoint}}' "${IMAGE}")"
  [[ "${entry}" == '["/cloudquota"]' ]] || die "entrypoint is ${entry}, want [\"/cloudquota\"]"

  # The image's file system, as a list.
  ctr="$("${PODMAN[@]}" create "${IMAGE}")"
  fs="$(mktemp)"
  "${PODMAN[@]}" export -o "${fs}" "${ctr}"
  "${PODMAN[@]}" rm "${ctr}" >/dev/null
  # Member names without a leading ./ (podman export writes none; an import tarball might).
  list="$(tar -tf "${fs}" | sed 's#^\./##')"
  local shells
  shells="$(grep -E '(^|/)(sh|bash|dash|ash|zsh|ksh|mksh|busybox|toybox)$' <<<"${list}" || true)"
  [[ -z "${shells}" ]] || die "the image contains a shell: ${shells//$'\n'/ }"
  # And the runtime agrees: there is no /bin/sh to exec.
  if "${PODMAN[@]}" run --rm "${RUN_FLAGS[@]}" --entrypoint /bin/sh "${IMAGE}" -c true >/dev/null 2>&1; then
    die "/bin/sh ran inside the image"
  fi
  grep -qx 'cloudquota' <<<"${list}" || die "/cloudquota is not in the image"

  certs="$(tar -xOf "${fs}" --wildcards '*etc/ssl/certs/ca-certificates.crt' 2>/dev/null | grep -c 'BEGIN CERTIFICATE' || true)"
  (( certs >= 100 )) || die "CA bundle /etc/ssl/certs/ca-certificates.crt holds ${certs:-no} certificates (want >= 100)"
  rm -f "${fs}"

  version="$(cargo_version)"
  # The commit this invocation built from; a separate `facts` run accepts any commit id.
  rev="${BUILT_REVISION:-$(label "${OCI}.revision")}"
  [[ "${rev}" =~ ^([0-9a-f]{40}|unknown)$ ]] || die "OCI label ${OCI}.revision is '${rev}', not a commit id"
  for lbl in title description source licenses version revision created; do
    [[ -n "$(label "${OCI}.${lbl}")" ]] || die "OCI label ${OCI}.${lbl} is missing"
  done
  for want in "title=cloudquota" "version=${version}" "revision=${rev}" "licenses=Apache-2.0" \
      "source=https://github.com/cloudquota/cloudquota"; do
    [[ "$(label "${OCI}.${want%%=*}")" == "${want#*=}" ]] ||
      die "OCI label ${OCI}.${want%%=*} is '$(label "${OCI}.${want%%=*}")', want '${want#*=}'"
  done

  # The binary runs in it (its glibc and libgcc_s come from the base) without root.
  local out
  out="$("${PODMAN[@]}" run --rm "${RUN_FLAGS[@]}" --read-only --cap-drop=ALL "${IMAGE}" --version 2>&1)" ||
    die "cloudquota --version failed in the image: ${out}"
  [[ "${out}" == *"${version}"* ]] || die "cloudquota --version printed '${out}', want ${version}"
  log "facts ok: ${SIZE_MB} MiB, user 65532:65532, no shell, ${certs} CA certificates, OCI labels, '${out}'"
}

# ---------------------------------------------------------------------- run ---

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# JSONPath of the operator container in the Deployment.
C='{.spec.template.spec.containers[0]'

run_test() {
  local work cp ns=cloudquota-system release=cq sa deploy port sim pod ctr
  work="$(mktemp -d)"
  # Its logs are copied to $CLOUDQUOTA_ARTIFACTS_DIR/controlplane/ by controlplane.sh destroy.
  cp="${work}/controlplane"
  LOGS="${CLOUDQUOTA_ARTIFACTS_DIR:-${work}/logs}"
  mkdir -p "${LOGS}"
  ctr="cloudquota-image-test-$$"
  SIM_PID=""
  # shellcheck disable=SC2064
  trap "run_cleanup '${work}' '${cp}' '${ctr}'" EXIT

  cargo build --locked --quiet --bin cloudquota-sim
  log "starting the control plane (${cp})"
  hack/controlplane.sh start "${cp}" >/dev/null 2>"${LOGS}/controlplane.log" ||
    die "control plane did not start (see ${LOGS}/controlplane.log)"
  # shellcheck disable=SC1091
  . "${cp}/env"
  kubectl() { "${CLOUDQUOTA_KUBECTL}" "$@"; }
  local helm="${CLOUDQUOTA_TOOLS_BIN}/helm"

  log "starting the simulated cloud"
  exec 3< <(RUST_LOG=warn exec "${TARGET_DIR}/debug/cloudquota-sim" --listen 127.0.0.1:0 2>"${LOGS}/sim.log")
  SIM_PID=$!
  local first
  read -r first <&3
  sim="${first#listening on }"
  [[ "${sim}" == http://127.0.0.1:* ]] || die "unexpected simulator output: ${first}"

  # The chart, pointed at the built image; the only non-default values are what a loopback
  # test needs (plain http to the simulator, a free port on the host network).
  port="$(free_port)"
  log "helm install ${release} (image ${IMAGE}, metrics port ${port})"
  "${helm}" install "${release}" charts/cloudquota -n "${ns}" --create-namespace \
    --set "image.repository=${IMAGE%:*}" --set "image.tag=${IMAGE##*:}" \
    --set 'allowedHosts={demo.invalid}' --set 'extraArgs={--allow-insecure-loopback}' \
    --set "metrics.port=${port}" >"${LOGS}/helm-install.log" 2>&1 ||
    die "helm install failed (see ${LOGS}/helm-install.log)"
  kubectl wait --for=condition=Established --timeout=60s crd/cloudquotas.cloudquota.io >/dev/null
  deploy="$(kubectl get deploy -n "${ns}" -l app.kubernetes.io/instance="${release}" -o jsonpath='{.items[0].metadata.name}')"
  kubectl get deploy -n "${ns}" "${deploy}" -o yaml > "${LOGS}/deployment.yaml.log"
  get() { kubectl get deploy -n "${ns}" "${deploy}" -o jsonpath="$1"; }

  # The kubelet's part, from the Deployment as the API server stored it.
  local image grace sc psc memory args=() envs=() name value field
  image="$(get "${C}.image}")"
  [[ "${image}" == "${IMAGE}" ]] || die "the chart's image is ${image}, want ${IMAGE}"
  sc="$(get "${C}.securityContext}")"
  psc="$(get '{.spec.template.spec.securityContext}')"
  # Every field below is mapped to a podman flag; a chart change fails here until it is.
  [[ "${sc}" == '{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]},"readOnlyRootFilesystem":true,"runAsGroup":65532,"runAsNonRoot":true,"runAsUser":65532,"seccompProfile":{"type":"RuntimeDefault"}}' ]] ||
    die "the chart's container securityContext changed (${sc}): update the podman flags in hack/image.sh"
  [[ "${psc}" == '{"fsGroup":65532,"runAsGroup":65532,"runAsNonRoot":true,"runAsUser":65532,"seccompProfile":{"type":"RuntimeDefault"}}' ]] ||
    die "the chart's pod securityContext changed (${psc}): update the podman flags in hack/image.sh"
  grace="$(get '{.spec.template.spec.terminationGracePeriodSeconds}')"
  mapfile -t args < <(get "{range ${C#\{}.args[*]}{@}{\"\n\"}{end}")
  pod="${deploy}-7d4b9c8f6-x2x9q"
  # "|"-separated: a tab is IFS whitespace, and read would merge the empty value of a fieldRef.
  while IFS='|' read -r name value field; do
    [[ -n "${name}" ]] || continue
    case "${field}" in
      "") envs+=(--env "${name}=${value}") ;;
      metadata.name) envs+=(--env "${name}=${pod}") ;;
      metadata.namespace) envs+=(--env "${name}=${ns}") ;;
      *) die "env ${name} uses fieldRef ${field}, which hack/image.sh does not map" ;;
    esac
  done < <(get "{range ${C#\{}.env[*]}{.name}{\"|\"}{.value}{\"|\"}{.valueFrom.fieldRef.fieldPath}{\"\n\"}{end}")
  # In-cluster config: the ServiceAccount's token where the kubelet mounts it, and the
  # kubernetes Service's address (here the API server itself, on the host network).
  sa="$(get '{.spec.template.spec.serviceAccountName}')"
  local sadir="${work}/serviceaccount" api="${CLOUDQUOTA_APISERVER_URL#https://}"
  mkdir -p "${sadir}"
  kubectl create token "${sa}" -n "${ns}" --duration=1h > "${sadir}/token"
  cp "${CLOUDQUOTA_CA_FILE}" "${sadir}/ca.crt"
  printf '%s' "${ns}" > "${sadir}/namespace"
  chmod 0755 "${work}" "${sadir}"
  chmod 0644 "${sadir}"/*

  # The container's memory limit (Ki/Mi/Gi quantities; podman spells them k/m/g).
  memory="$(get "${C}.resources.limits.memory}" | sed -E 's/^([0-9]+)([KMG])i$/\1\L\2/')"
  [[ "${memory}" =~ ^[0-9]+[kmg]$ ]] || die "cannot map the chart's memory limit '$(get "${C}.resources.limits.memory}")' to podman"

  log "podman run ${IMAGE} as the chart's pod ${pod}: ${args[*]}"
  "${PODMAN[@]}" run -d --name "${ctr}" "${RUN_FLAGS[@]}" \
    --user 65532:65532 --group-add 65532 \
    --read-only --read-only-tmpfs=false \
    --cap-drop=ALL --security-opt no-new-privileges \
    --memory "${memory}" \
    --hostname "${pod}" \
    "${envs[@]}" \
    --env "KUBERNETES_SERVICE_HOST=${api%:*}" --env "KUBERNETES_SERVICE_PORT=${api##*:}" \
    -v "${sadir}:/var/run/secrets/kubernetes.io/serviceaccount:ro" \
    "${IMAGE}" "${args[@]}" >/dev/null ||
    die "podman run failed"

  # Readiness as the probe sees it: /readyz on the metrics port.
  local deadline=$(( SECONDS + 60 )) code=""
  until [[ "${code}" == 200 ]]; do
    container_running "${ctr}" || die "the container exited before becoming Ready (log: ${LOGS}/operator-container.log)"
    (( SECONDS < deadline )) || die "/readyz did not answer 200 within 60s (last: ${code:-no answer})"
    sleep 0.5
    code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port}/readyz" || true)"
  done
  [[ "$(curl -fsS "http://127.0.0.1:${port}/healthz")" == ok ]] || die "/healthz is not ok"
  log "Ready: /readyz 200, /healthz ok"

  # The process really runs with the chart's context: read it from /proc on the host.
  local pid status
  pid="$("${PODMAN[@]}" inspect --format '{{.State.Pid}}' "${ctr}")"
  status="$(cat "/proc/${pid}/status")"
  expect_proc "${status}" '^Uid:[[:space:]]+65532[[:space:]]+65532[[:space:]]+65532[[:space:]]+65532$' "runs as uid 65532"
  expect_proc "${status}" '^Gid:[[:space:]]+65532[[:space:]]+65532[[:space:]]+65532[[:space:]]+65532$' "runs as gid 65532"
  expect_proc "${status}" '^Groups:[[:space:]]+65532[[:space:]]*$' "supplementary group 65532 (fsGroup) only"
  expect_proc "${status}" '^CapEff:[[:space:]]+0000000000000000$' "no effective capabilities"
  expect_proc "${status}" '^CapBnd:[[:space:]]+0000000000000000$' "empty capability bounding set"
  expect_proc "${status}" '^NoNewPrivs:[[:space:]]+1$' "no_new_privs set"
  expect_proc "${status}" '^Seccomp:[[:space:]]+2$' "a seccomp filter (the runtime default)"
  local rootmnt
  rootmnt="$(awk '$5 == "/" { print $6 }' "/proc/${pid}/mountinfo")"
  [[ ",${rootmnt}," == *,ro,* ]] || die "the root file system is mounted '${rootmnt}', not read-only"
  if awk '$5 == "/tmp" { found = 1 } END { exit !found }' "/proc/${pid}/mountinfo"; then
    die "/tmp is a separate mount in the container; the chart gives it none"
  fi
  [[ "$("${PODMAN[@]}" inspect --format '{{.HostConfig.Memory}}' "${ctr}")" -gt 0 ]] || die "the container has no memory limit"
  log "process: uid/gid 65532, no capabilities, no_new_privs, seccomp, read-only / (${rootmnt})"

  wait_metric "${port}" '^cloudquota_leader 1$' "leader"
  local holder
  holder="$(kubectl get lease -n "${ns}" "$(get_arg "${args[@]}" --lease-name)" -o jsonpath='{.spec.holderIdentity}')"
  [[ "${holder}" == "${pod}" ]] || die "the Lease is held by '${holder}', want the pod ${pod}"

  # A sample, pointed at the simulator, with a usage the simulator is told first.
  local project=cd631140887d4b6e9c786b67a6dd4c02 sample_ns=image-test
  curl -fsS -X POST -H 'content-type: application/json' -d '{"resource":"snapshots","used":7}' \
    "${sim}/_sim/quota/evs/${project}" >/dev/null
  kubectl create namespace "${sample_ns}" >/dev/null
  awk -v ep="${sim}" '{print} /^spec:$/ {print "  endpoint: " ep}' samples/huaweicloud-evs.yaml |
    kubectl apply -n "${sample_ns}" --server-side --field-manager=image-test -f - >/dev/null
  local ready used
  deadline=$(( SECONDS + 60 ))
  while :; do
    ready="$(kubectl get cloudquota -n "${sample_ns}" disks -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')"
    used="$(kubectl get cloudquota -n "${sample_ns}" disks -o jsonpath='{.status.resources[?(@.name=="snapshots")].used}')"
    [[ "${ready}" == True && "${used}" == 7 ]] && break
    container_running "${ctr}" || die "the container exited while reconciling"
    (( SECONDS < deadline )) || die "CloudQuota disks: Ready=${ready:-?} snapshots.used=${used:-?} after 60s (want True, 7)"
    sleep 0.5
  done
  log "reconciled: CloudQuota ${sample_ns}/disks Ready=True, snapshots used 7 (from the simulator)"
  wait_metric "${port}" "^cloudquota_ready\\{[^}]*name=\"disks\"[^}]*\\} 1$" "cloudquota_ready of disks"
  wait_metric "${port}" "^cloudquota_resource_used\\{[^}]*name=\"disks\"[^}]*resource=\"snapshots\"[^}]*\\} 7$" "snapshots usage of disks"
  log "/metrics: leader 1, cloudquota_ready and the snapshots usage of disks"

  # SIGTERM, then SIGKILL after the grace period: the kubelet's stop.
  local t0 elapsed exit_code
  t0="$(date +%s%N)"
  "${PODMAN[@]}" stop -t "${grace}" "${ctr}" >/dev/null
  elapsed=$(( ($(date +%s%N) - t0) / 1000000 ))
  exit_code="$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' "${ctr}")"
  "${PODMAN[@]}" logs "${ctr}" > "${LOGS}/operator-container.log" 2>&1 || true
  [[ "${exit_code}" == 0 ]] || die "the operator exited with ${exit_code} on SIGTERM (137: killed after the ${grace}s grace period)"
  (( elapsed < grace * 1000 )) || die "the operator took ${elapsed} ms to stop (grace period ${grace}s)"
  holder="$(kubectl get lease -n "${ns}" "$(get_arg "${args[@]}" --lease-name)" -o jsonpath='{.spec.holderIdentity}')"
  [[ "${holder}" != "${pod}" ]] || die "the Lease is still held by ${pod} after a graceful stop"
  if grep -q 'cq-sim-demo-secret-key-0001' "${LOGS}/operator-container.log"; then
    die "the sample's secret access key appears in the container log"
  fi
  STOP_MS="${elapsed}"
  log "SIGTERM: exit 0 after ${elapsed} ms (grace ${grace}s), Lease released"
}

get_arg() { # ARGS... FLAG: the value of --FLAG=VALUE in ARGS
  local flag="${*: -1}" a
  for a in "${@:1:$#-1}"; do
    [[ "${a}" == "${flag}="* ]] && { printf '%s\n' "${a#*=}"; return 0; }
  done
  die "the Deployment has no ${flag}= argument"
}

container_running() { [[ "$("${PODMAN[@]}" inspect --format '{{.State.Running}}' "$1" 2>/dev/null)" == true ]]; }

expect_proc() { # STATUS REGEX WHAT
  grep -Eq "$2" <<<"$1" || die "the container process: want $3; /proc status has: $(grep -E "^${2:1:6}" <<<"$1" || true)"
}

wait_metric() { # PORT REGEX WHAT
  local deadline=$(( SECONDS + 30 )) body=""
  while :; do
    body="$(curl -fsS "http://127.0.0.1:$1/metrics" 2>/dev/null || true)"
    grep -Eq "$2" <<<"${body}" && return 0
    (( SECONDS < deadline )) || { printf '%s\n' "${body}" > "${LOGS}/metrics-scrape.log"; die "/metrics: no $3 within 30s (scrape in ${LOGS}/metrics-scrape.log)"; }
    sleep 0.5
  done
}

run_cleanup() { # WORK CP CTR
  trap - EXIT
  if "${PODMAN[@]}" container exists "$3" 2>/dev/null; then
    [[ -s "${LOGS}/operator-container.log" ]] || "${PODMAN[@]}" logs "$3" > "${LOGS}/operator-container.log" 2>&1 || true
    "${PODMAN[@]}" rm -f -t 0 "$3" >/dev/null 2>&1 || true
  fi
  [[ -z "${SIM_PID}" ]] || kill "${SIM_PID}" 2>/dev/null || true
  # Run by hand, the control plane's logs join the others in the kept work dir.
  [[ -n "${CLOUDQUOTA_ARTIFACTS_DIR:-}" ]] || cp "$2"/{kube-apiserver,etcd}.log "${LOGS}/" 2>/dev/null || true
  hack/controlplane.sh destroy "$2" >/dev/null 2>&1 || true
  if [[ -n "${CLOUDQUOTA_ARTIFACTS_DIR:-}" ]]; then rm -rf "$1"; else log "logs: ${LOGS}"; fi
}

# --------------------------------------------------------------------- main ---

lint_workflows() {
  local bin sc flags=()
  bin="$(hack/build-tools.sh actionlint | tail -n 1)"
  # actionlint also runs shellcheck on `run:` scripts: the pinned one hack/shellcheck.sh
  # installs, else one on PATH, else none (said so).
  sc="$(compgen -G "${CLOUDQUOTA_TOOLS_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/cloudquota/tools}/shellcheck-*/bin/shellcheck" | sort -V | tail -n 1 || true)"
  [[ -n "${sc}" ]] || sc="$(command -v shellcheck || true)"
  if [[ -n "${sc}" ]]; then flags+=("-shellcheck=${sc}"); else flags+=("-shellcheck="); log "no shellcheck: run: scripts are not checked"; fi
  "${bin}/actionlint" "${flags[@]}" .github/workflows/*.yml
  log "$("${bin}/actionlint" --version): .github/workflows/*.yml ok${sc:+ (run: scripts checked by ${sc})}"
}

main() {
  local cmd="${1:-test}" t0=${SECONDS}
  mkdir -p "${CACHE}"
  case "${cmd}" in
    lint-workflows) lint_workflows; return ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; return ;;
    base|build|facts|run|test) ;;
    *) die "unknown command: ${cmd} (see --help)" ;;
  esac
  ensure_podman
  case "${cmd}" in
    base) build_base; printf '%s\n' "${BASE}" ;;
    build) build_base; build_image; printf '%s\n' "${IMAGE}" ;;
    facts) facts ;;
    run) run_test ;;
    test)
      lint_workflows
      build_base
      build_image
      facts
      run_test
      printf 'image %s: %s MiB; Ready, reconciled, /metrics, SIGTERM exit 0 in %s ms; took %ss\n' \
        "${IMAGE}" "${SIZE_MB}" "${STOP_MS}" "$(( SECONDS - t0 ))"
      ;;
  esac
}

main "$@"
