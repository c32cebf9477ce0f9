# syntax=docker/dockerfile:1
# Container image of the cloudquota operator.
#
#   docker build -t ghcr.io/cloudquota/cloudquota:0.1.0 .          # compile in the Rust image
#   podman build -t ghcr.io/cloudquota/cloudquota:0.1.0 .          # same, with podman
#
#   cargo build --release --locked -p cloudquota --bin cloudquota  # or: reuse a cargo build
#   mkdir -p dist && cp target/release/cloudquota dist/
#   docker build --build-arg BINARY=prebuilt -f Dockerfile -t cloudquota:dev dist/
#
# Build arguments:
#   BINARY        build (default): compile in BUILDER_IMAGE from the locked dependencies
#                 (with cargo-auditable, so the binary carries its dependency list);
#                 prebuilt: copy ./cloudquota from the build context (a glibc binary built on
#                 a system whose glibc is not newer than the runtime base's, e.g. Debian 12)
#   BUILDER_IMAGE the Rust toolchain image of the build stage (Debian 12, like the runtime)
#   RUNTIME_BASE  the runtime base: glibc, libgcc_s, CA certificates, user 65532, no shell.
#                 The default is distroless; hack/image.sh passes a base it assembles from the
#                 same Debian packages, on machines that cannot pull one.
#   VERSION, REVISION, CREATED   OCI labels (the release workflow sets them from the tag)
#
# Only the stage that BINARY selects is built (BuildKit and buildah skip unused stages), so a
# prebuilt build never pulls BUILDER_IMAGE.

ARG BUILDER_IMAGE=docker.io/library/rust:1.95.0-bookworm
ARG RUNTIME_BASE=gcr.io/distroless/cc-debian12:nonroot
ARG BINARY=build

FROM ${BUILDER_IMAGE} AS binary-build
# cargo-auditable embeds the list of crates compiled into the binary, so SBOM scanners (syft,
# as the release workflow runs it) and `cargo audit bin` can see them.
# `-p cloudquota`: only the operator's features (the workspace's test tools enable more).
ARG CARGO_AUDITABLE_VERSION=0.7.7
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo install --locked "cargo-auditable@${CARGO_AUDITABLE_VERSION}"
WORKDIR /src
# The workspace's manifests and sources: .dockerignore lets nothing else in.
COPY . ./
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo auditable build --release --locked -p cloudquota --bin cloudquota \
 && install -D -m 0755 target/release/cloudquota /out/cloudquota

FROM scratch AS binary-prebuilt
COPY --chmod=0755 cloudquota /out/cloudquota

FROM binary-${BINARY} AS binary

FROM ${RUNTIME_BASE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="cloudquota" \
      org.opencontainers.image.description="Kubernetes operator that turns Huawei Cloud and Zenlayer quotas into CloudQuota objects" \
      org.opencontainers.image.source="https://github.com/cloudquota/cloudquota" \
      org.opencontainers.image.url="https://github.com/cloudquota/cloudquota" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
COPY --from=binary /out/cloudquota /cloudquota
USER 65532:65532
# /metrics, /healthz, /readyz
EXPOSE 8080
ENTRYPOINT ["/cloudquota"]
CMD ["run", "--leader-elect"]
