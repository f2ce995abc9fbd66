# syntax=docker/dockerfile:1
# Multi-stage build: a locked, LTO- and profile-guided-optimized build
# (profile `dist`, scripts/pgo-build), then a small non-root runtime.
#
#   docker build -t switchyard .
#   docker build --build-arg PGO=0 -t switchyard .   # no training run: ~8 min quicker
#   docker run -p 8080:8080 -e SWITCHYARD_API_KEY=... -e SWITCHYARD_REPLICA_URL=http://vllm:8000 switchyard
#   docker run -p 8080:8080 -v "$PWD/my-config.yaml:/etc/switchyard/config.yaml:ro" switchyard
#
# The admin API listens on 127.0.0.1:9090 inside the container unless the
# config sets server.admin_listen (and then server.admin_token is required).
# The data plane listens on 0.0.0.0:8080 (SWITCHYARD_LISTEN), so the config
# needs `tenants` (client API keys) or `server.allow_unauthenticated: true`:
# the default config (examples/container.yaml) takes its one client key
# from SWITCHYARD_API_KEY and refuses to start without it.

FROM rust:1.95-slim-bookworm AS build
# protoc and the well-known .proto files: etcd-client (the fleet's etcd
# source) compiles etcd's API at build time.
RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler libprotobuf-dev \
 && rm -rf /var/lib/apt/lists/*
# llvm-profdata, which merges the training run's profile (scripts/pgo-build).
RUN rustup component add llvm-tools-preview
WORKDIR /src
COPY . .
# `dist`: the release profile with whole-program LTO (Cargo.toml). With
# PGO=1, scripts/pgo-build trains an instrumented build on loopback (the
# fake replica and the load tester, ~20 s) and builds `dist` with that
# profile: about a quarter fewer instructions per request (BENCHMARKS.md).
ARG PGO=1
RUN if [ "$PGO" = 1 ]; then \
      scripts/pgo-build && cp target/pgo/dist/switchyard /switchyard; \
    else \
      cargo build --profile dist --locked -p switchyard-gateway --bin switchyard \
      && cp target/dist/switchyard /switchyard; \
    fi \
 && strip /switchyard

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin switchyard \
 && mkdir -p /etc/switchyard
COPY --from=build /switchyard /usr/local/bin/switchyard
COPY examples/ /etc/switchyard/examples/
COPY examples/container.yaml /etc/switchyard/config.yaml
USER 10001:10001
ENV SWITCHYARD_LISTEN=0.0.0.0:8080
EXPOSE 8080 9090
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["switchyard", "probe", "127.0.0.1:9090"]
ENTRYPOINT ["switchyard"]
CMD ["run", "--config", "/etc/switchyard/config.yaml"]
