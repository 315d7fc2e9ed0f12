#!/usr/bin/env bash
# Admin stats benchmark: a fresh database on the local PostgreSQL (loopback only), migrated,
# seeded with 100k users / 300k payments / 1M ledger rows (seed.sql), then timed by
# `cargo bench -p zimmer-admin --bench stats` (which also prints the dashboard's query plan).
#
#   bench/admin/run.sh            # create + seed (about a minute) + measure
#   SKIP_SEED=1 bench/admin/run.sh  # measure again on the seeded database
#   DROP=1 bench/admin/run.sh     # drop the benchmark database afterwards
set -euo pipefail
cd "$(dirname "$0")/../.."

PGHOST=127.0.0.1
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
DB=${BENCH_DB:-zimmer_bench_admin}
URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}/${DB}"
# The service refuses to start without it (loopback benchmark: development).
export APP_ENV="${APP_ENV:-development}"
psql_admin() { psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }

if [[ -z "${SKIP_SEED:-}" ]]; then
  echo "== creating ${DB}"
  psql_admin -c "DROP DATABASE IF EXISTS \"${DB}\" WITH (FORCE)"
  psql_admin -c "CREATE DATABASE \"${DB}\""
  echo "== migrating"
  DATABASE_URL="$URL" cargo run -q -p zimmer-admin -- migrate
  echo "== seeding (timed)"
  time psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$DB" -v ON_ERROR_STOP=1 -q -f bench/admin/seed.sql
fi

echo "== measuring"
BENCH_DATABASE_URL="$URL" cargo bench -q -p zimmer-admin --bench stats

if [[ -n "${DROP:-}" ]]; then
  psql_admin -c "DROP DATABASE IF EXISTS \"${DB}\" WITH (FORCE)"
fi
