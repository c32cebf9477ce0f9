# syntax=docker/dockerfile:1
# Container image of the cloudquota operator.
#
#   docker build -t ghcr.io/cloudquota/cloudquota:0.1.0 .
#
# Build stage: the pinned Rust toolchain compiles the release binary from the locked
# dependencies. Runtime stage: distroless (glibc, CA certificates, no shell), non-root 65532.

ARG RUST_VERSION=1.95.0

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# Only what the build reads (see .dockerignore).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin cloudquota \
 && install -D -m 0755 target/release/cloudquota /out/cloudquota

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="cloudquota" \
      org.opencontainers.image.description="Kubernetes operator that turns Huawei Cloud and Zenlayer quotas into CloudQuota objects" \
      org.opencontainers.image.source="https://github.com/cloudquota/cloudquota" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/cloudquota /cloudquota
USER 65532:65532
# /metrics, /healthz, /readyz
EXPOSE 8080
ENTRYPOINT ["/cloudquota"]
CMD ["run", "--leader-elect"]
