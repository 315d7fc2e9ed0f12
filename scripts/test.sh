#!/usr/bin/env bash
# Run the Zimmer test suite.
#
#   scripts/test.sh [ARGS...]     ARGS go to the test runner (cargo nextest run, or
#                                 cargo test when cargo-nextest is not installed)
#
# Makes sure PostgreSQL, Redis and RabbitMQ answer (starting local ones that are
# installed but stopped; the tests use real servers), installs nginx when it is
# missing and we are root (the gateway tests start it), likewise Chromium (the
# browser test drives it headless), drops test databases (zimmer_test_*) left
# over by earlier runs, builds every binary (some tests start the services as
# processes), then runs the whole workspace's tests.
#
# Exports ZIMMER_NGINX_BIN (path of nginx), ZIMMER_CHROMIUM_BIN (path of
# Chromium) and the DATABASE_URL, REDIS_URL and AMQP_URL defaults of README.md
# when they are not set.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

export DATABASE_URL="${DATABASE_URL:-$ZIMMER_DEFAULT_DATABASE_URL}"
export REDIS_URL="${REDIS_URL:-$ZIMMER_DEFAULT_REDIS_URL}"
export AMQP_URL="${AMQP_URL:-$ZIMMER_DEFAULT_AMQP_URL}"

# shellcheck disable=SC2119 # no extra tools needed here
zimmer_require_packages
zimmer_ensure_backing_services
zimmer_ensure_nginx
zimmer_log "nginx for the gateway tests: $ZIMMER_NGINX_BIN"
zimmer_ensure_chromium
zimmer_log "chromium for the browser test: $ZIMMER_CHROMIUM_BIN"

drop_stale_test_databases() {
    local admin db
    admin="$(zimmer_db_admin_url)"
    local -a stale
    mapfile -t stale < <(psql "$admin" -XtAc \
        "SELECT datname FROM pg_database WHERE datname LIKE 'zimmer\\_test\\_%'") ||
        zimmer_die "cannot connect to PostgreSQL with DATABASE_URL ($admin)"
    ((${#stale[@]})) || return 0
    zimmer_log "dropping ${#stale[@]} stale test database(s)"
    for db in "${stale[@]}"; do
        [[ "$db" =~ ^[A-Za-z0-9_]+$ ]] || continue
        psql "$admin" -Xq -v ON_ERROR_STOP=1 \
            -c "ALTER DATABASE \"$db\" IS_TEMPLATE false" \
            -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null ||
            zimmer_warn "could not drop $db"
    done
}
drop_stale_test_databases

zimmer_log "cargo build --workspace --bins"
cargo build --workspace --bins

if cargo nextest --version >/dev/null 2>&1; then
    zimmer_log "cargo nextest run --workspace --no-fail-fast $*"
    exec cargo nextest run --workspace --no-fail-fast "$@"
else
    zimmer_log "cargo test --workspace --no-fail-fast $* (cargo-nextest not installed)"
    exec cargo test --workspace --no-fail-fast "$@"
fi
