# syntax=docker/dockerfile:1
# The `triggers` binary in a slim image: `docker build -t triggers .` from the repository root.
# One image for every role: `triggers serve` (the default), `triggers ingest`, `triggers consume`.

# Build: a release build of the workspace's `triggers` binary, with the registry and the target
# directory in BuildKit caches so that a rebuild after a code change recompiles only the workspace.
FROM rust:1.95-slim-bookworm AS build
RUN apt-get update \
    && apt-get install --yes --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin triggers \
    && cp target/release/triggers /usr/local/bin/triggers

# Runtime: Debian slim (the build's glibc) with CA certificates for https webhooks and AWS, and a
# non-root user. bash and coreutils' timeout stay for the ECS health probe, which speaks HTTP through
# bash's /dev/tcp rather than bringing curl in.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install --yes --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 triggers \
    && useradd --system --uid 10001 --gid triggers --home-dir /var/lib/triggers --create-home --shell /usr/sbin/nologin triggers
COPY --from=build /usr/local/bin/triggers /usr/local/bin/triggers
USER 10001:10001
WORKDIR /var/lib/triggers
# The embedded backend's data lives here when the image runs `serve` on its own; the aws backend
# keeps nothing on disk (ECS runs it with a read-only root file system).
ENV TRIGGERS_DATA_DIR=/var/lib/triggers/data \
    TRIGGERS_LISTEN=0.0.0.0:8080
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/triggers"]
CMD ["serve"]
