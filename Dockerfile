# syntax=docker/dockerfile:1
#
# Portcullis container image, for docker or buildkit:
#   docker build -t portcullis:dev .
# The same image as scripts/image builds without a daemon (deploy/image/image.toml is
# the description both follow; scripts/check-manifests fails when this file drifts):
# FROM scratch with the static (musl) binary at /portcullis, Debian's CA bundle,
# /etc/passwd and /etc/group naming 65532 "nonroot"; no shell, no libc, no package
# manager, no writable path; runs as the numeric user 65532. Kubernetes probes use
# /ping and /ready (see deploy/kubernetes); there is no HEALTHCHECK because the
# image has no curl/wget to run one.
# scripts/image is the reproducible build (fixed timestamps, one layer, the digest
# CI checks); this file's digest depends on docker's own metadata.
# For releases, pin the builder image by digest (FROM image@sha256:...).

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS builder
# musl-tools: the C compiler for aws-lc-sys, jemalloc and zstd on musl.
# ca-certificates: the bundle copied into the image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /build
COPY . .
# --locked: build exactly Cargo.lock. The cache mounts only speed up
# rebuilds; the binary is copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl --bin portcullis \
 && install -D -m 0755 target/x86_64-unknown-linux-musl/release/portcullis /out/portcullis

FROM scratch
COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY deploy/image/passwd /etc/passwd
COPY deploy/image/group /etc/group
COPY --from=builder --chmod=0755 /out/portcullis /portcullis
USER 65532:65532
EXPOSE 4180
ENTRYPOINT ["/portcullis"]
CMD ["--config", "/etc/portcullis/portcullis.toml"]
