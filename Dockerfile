# syntax=docker/dockerfile:1
#
# Portcullis container image.
#   docker build -t portcullis:dev .
# Runtime: distroless "cc" (glibc + libgcc, which aws-lc-rs needs), no shell,
# no package manager, runs as the numeric non-root user 65532. Kubernetes
# probes use /ping and /ready (see deploy/kubernetes); there is no
# HEALTHCHECK because the image has no curl/wget to run one.
# For releases, pin both base images by digest (FROM image@sha256:...).

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /build
COPY . .
# --locked: build exactly Cargo.lock. The cache mounts only speed up
# rebuilds; the binary is copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked --bin portcullis \
 && install -D -m 0755 target/release/portcullis /out/portcullis

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/portcullis /portcullis
USER 65532:65532
EXPOSE 4180
ENTRYPOINT ["/portcullis"]
CMD ["--config", "/etc/portcullis/portcullis.toml"]
