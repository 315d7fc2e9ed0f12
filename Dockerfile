# syntax=docker/dockerfile:1
# One image with all five Zimmer binaries; the command picks the service:
#   docker run -e APP_ENV=production ... IMAGE zimmer-auth serve | zimmer-marketplace | ...
#   docker run -e APP_ENV=production ... IMAGE zimmer-auth migrate
# See docker-compose.yml for the whole stack.

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# The cache mounts keep the crates.io downloads and the target directory between
# builds, so only changed crates are rebuilt; the binaries are copied out of the
# cached target directory because cache mounts are not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
        -p zimmer-auth -p zimmer-marketplace -p zimmer-billing -p zimmer-support -p zimmer-admin \
    && mkdir -p /out \
    && for svc in auth marketplace billing support admin; do \
        cp "target/release/zimmer-$svc" /out/; \
    done

FROM debian:bookworm-slim AS runtime
# pg_dump/pg_restore for admin's backups must be at least the server's major version (16 in
# docker-compose.yml): the PostgreSQL project's own apt repository has postgresql-client-16.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && install -d /usr/share/postgresql-common/pgdg \
    && curl -fsSLo /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
        https://www.postgresql.org/media/keys/ACCC4CF8.asc \
    && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
        > /etc/apt/sources.list.d/pgdg.list \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-16 \
    && apt-get purge -y curl && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 zimmer \
    && useradd --system --uid 10001 --gid zimmer --home-dir /var/lib/zimmer --shell /usr/sbin/nologin zimmer \
    && mkdir -p /var/lib/zimmer/keys /var/lib/zimmer/backups \
    && chown -R zimmer:zimmer /var/lib/zimmer
COPY --from=builder /out/ /usr/local/bin/
USER zimmer:zimmer
WORKDIR /var/lib/zimmer
# No APP_ENV here: whoever runs the image says which environment it is (the services refuse
# to start without it; docker-compose.yml and deploy/k8s set it). No JWT_PRIVATE_KEY_FILE
# either: only auth's container is given the key (and the migration would fail on a path
# to a key it does not have).
# GLIBC_TUNABLES: allocations of 4 MiB and more (auth's 19 MiB argon2 blocks) are mmapped, so a
# block freed after a login burst goes back to the system; glibc's default moves that threshold
# up after the first free and keeps later blocks in its arenas (auth stayed at 85 MiB; README,
# "Performance").
ENV HTTP_HOST=0.0.0.0 \
    LOG_FORMAT=json \
    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4194304
EXPOSE 8001 8002 8003 8004 8005
CMD ["zimmer-auth", "serve"]
