# syntax=docker/dockerfile:1
# The Bulwark image: built from the lock file in a full Rust image, run from a distroless
# one (no shell, no package manager) as a numeric non-root user, on a read-only root
# filesystem (everything it writes goes to the /data volume).
#
#   docker build -t bulwark .
#   docker run --read-only -v bulwark-data:/data -p 8080:8080 -v /run/secrets:/run/secrets:ro \
#       -e BULWARK_JWT_SECRET_FILE=/run/secrets/jwt -e BULWARK_MASTER_KEYS_FILE=/run/secrets/master \
#       -e BULWARK_PUBLIC_URL=https://crm.example.com \
#       -e BULWARK_METRICS_TOKEN_FILE=/run/secrets/metrics bulwark
#
# Pin both base images by digest when you build (`docker buildx imagetools inspect IMAGE`
# prints it): the CI machines of this project have no registry access to look the digests
# up, so the tags below are pinned and the digests are yours to add (README, "Container
# image"). The production profile is the default; the secrets it needs come in as files.

FROM docker.io/library/rust:1.95.0-slim-bookworm AS build
WORKDIR /src
# The manifest names the bench and the test suite, so they come along (they are not built).
COPY Cargo.toml Cargo.lock rust-toolchain.toml README.md build.rs ./
# The start-up functions' order in the text (build.rs, scripts/symbol-order.sh).
COPY link ./link
COPY src ./src
COPY migrations ./migrations
COPY benches ./benches
COPY tests ./tests
RUN cargo build --release --locked --bin bulwark \
    && install -D -m 0555 target/release/bulwark /out/bulwark \
    && install -d -o 65532 -g 65532 -m 0700 /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/bulwark /usr/local/bin/bulwark
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV BULWARK_ENV=production \
    BULWARK_LISTEN=0.0.0.0:8080 \
    BULWARK_METRICS_LISTEN=0.0.0.0:9090 \
    BULWARK_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/bulwark", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/bulwark"]
CMD ["serve"]
