# syntax=docker/dockerfile:1
# The rentgraph server image: built from source in a Rust stage, run as a non-root user in a
# slim Debian stage with ONNX Runtime (from the same pinned PyPI wheel scripts/fetch-ort
# uses), the shipped model and the trusted-document manifests. Production profile by default;
# configuration through RENTGRAPH__SECTION__KEY environment variables and an optional mounted
# file (`--config /etc/rentgraph/rentgraph.toml`, see deploy/k8s/configmap.yaml).
#
#   podman build --format docker -t rentgraph .   (or docker build; --platform linux/arm64 too;
#                                                  the OCI format drops HEALTHCHECK)
#   podman run -p 8000:8000 -e RENTGRAPH__DATABASE__URL=... -e RENTGRAPH__REDIS__URL=... \
#     -e RENTGRAPH__AUTH__JWT_SECRET=... rentgraph
#
# The base images are build arguments, so a registry mirror can stand in for Docker Hub.
ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-pip ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The cargo registry and target dir are build caches, not layers.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin rentgraph \
    && cp target/release/rentgraph /usr/local/bin/rentgraph
# ONNX Runtime for the image's architecture (x86_64 or aarch64), from PyPI.
RUN PIP_BREAK_SYSTEM_PACKAGES=1 scripts/fetch-ort

FROM ${RUNTIME_IMAGE} AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin rentgraph
WORKDIR /app
COPY --from=build /usr/local/bin/rentgraph /usr/local/bin/rentgraph
COPY --from=build /src/.ort/ /app/.ort/
COPY config/ /app/config/
COPY models/ /app/models/
USER 10001
ENV RENTGRAPH_ENV=production \
    RENTGRAPH__SERVER__HOST=0.0.0.0 \
    RENTGRAPH__SERVER__PORT=8000
EXPOSE 8000 9100
# SIGTERM drains (server.drain_secs), then finishes in-flight requests.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["/bin/sh", "-c", "curl -fsS http://127.0.0.1:8000/health >/dev/null || exit 1"]
ENTRYPOINT ["/usr/local/bin/rentgraph"]
CMD ["serve"]
