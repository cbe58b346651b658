# A Dockerfile that drifted from deploy/image/image.toml in every way the check knows
# (tools/oci-image dockerfile; the findings are in bad.Dockerfile.expect).
FROM rust:1.95-bookworm AS builder
RUN cargo build --release --locked
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/portcullis /portcullis
COPY extra /usr/bin/extra
RUN echo hi
USER nonroot
EXPOSE 8080
ENV SSL_CERT_FILE=/x
ENTRYPOINT /portcullis
CMD ["--config", "/other.toml"]
