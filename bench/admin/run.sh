#!/usr/bin/env bash
# Admin stats benchmark (issue 16: "admin dashboard stats, 1M ledger rows, uncached: < 50 ms"):
# a database on the local PostgreSQL (loopback only), migrated, seeded with 100k users /
# 300k payments / 1M ledger rows (seed.sql), then `cargo bench -p zimmer-admin --bench stats`:
# the daily rollup brought up to date (as the worker keeps it), the dashboard statement with
# and without it, then auth and admin in-process over HTTP (admin loads the live revocations
# from auth, as deployed), 50 uncached calls of each dashboard endpoint (the cache key is
# deleted before each call), a trivial route as the ceiling, the lists, the query plan, and
# a table for the README's performance section.
#
#   bench/admin/run.sh              # build, create + seed (about 2 minutes) + measure
#   SKIP_SEED=1 bench/admin/run.sh  # measure again on the seeded database
#   SKIP_BUILD=1 ...                # the bench binary is built already
#   DROP=1 bench/admin/run.sh       # drop the benchmark database afterwards
#
# Bounded: seeding and measuring are each killed after 5 minutes (the build is not counted);
# the services run inside the bench process, so nothing outlives it.
set -euo pipefail
cd "$(dirname "$0")/../.."

PGHOST=127.0.0.1
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
DB=${BENCH_DB:-zimmer_bench_admin}
URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}/${DB}"
# The services refuse to start without it (loopback benchmark: development).
export APP_ENV="${APP_ENV:-development}"
psql_admin() { psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  echo "== building (release: the admin binary for migrate, the bench)"
  cargo build -q --release -p zimmer-admin --bin zimmer-admin
  cargo bench -q -p zimmer-admin --bench stats --no-run
fi
# The bench executable cargo built (run directly, so that timeout reaches it, not cargo).
EXE="$(cargo bench -q -p zimmer-admin --bench stats --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)"
[[ -x "$EXE" ]] || { echo "bench executable not found (build first)" >&2; exit 1; }
ADMIN_BIN="$(cargo metadata -q --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release/zimmer-admin"
[[ -x "$ADMIN_BIN" ]] || { echo "$ADMIN_BIN missing (build first)" >&2; exit 1; }

if [[ -z "${SKIP_SEED:-}" ]]; then
  echo "== creating ${DB}"
  psql_admin -c "DROP DATABASE IF EXISTS \"${DB}\" WITH (FORCE)"
  psql_admin -c "CREATE DATABASE \"${DB}\""
fi
echo "== migrating"
DATABASE_URL="$URL" "$ADMIN_BIN" migrate
if [[ -z "${SKIP_SEED:-}" ]]; then
  echo "== seeding (timed)"
  time timeout 300 psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$DB" -v ON_ERROR_STOP=1 -q -f bench/admin/seed.sql
fi

echo "== measuring"
BENCH_DATABASE_URL="$URL" timeout -k 10 300 "$EXE" --bench

if [[ -n "${DROP:-}" ]]; then
  psql_admin -c "DROP DATABASE IF EXISTS \"${DB}\" WITH (FORCE)"
fi
