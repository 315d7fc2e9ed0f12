#!/usr/bin/env bash
# Load test of the marketplace with wrk, on loopback only, against the real service binary
# (release build) with real PostgreSQL and Redis, behind the real nginx gateway.
#
#   bench/marketplace/run.sh
#
# Measures, each for DURATION with CONNECTIONS connections on THREADS wrk threads:
#   1. GET /api/automations/marketplace through the gateway (cached catalogue)
#   2. the same, straight to the service
#   3. POST /api/automation-usage/consume through the gateway, all calls on one user
#      automation (they serialise on its row lock: the worst case)
#   4. the same, straight to the service
#   5. consume spread over SPREAD user automations, straight to the service
# then checks the books: every accepted call is one ledger row and one token.
#
# Environment: DURATION (10s), CONNECTIONS (32), THREADS (2), SPREAD (50), PROFILE (release;
# "debug" uses the debug binaries), SKIP_BUILD=1, MARKET_PORT (18802), GATEWAY_PORT (18880),
# DATABASE_URL / REDIS_URL / AMQP_URL (README defaults). It makes and drops its own
# database (zimmer_bench_marketplace) and stops what it started.
#
# The gateway's per-client-address rate limit (20 r/s, burst 100) would answer almost every
# benchmark request with 429 (wrk is one client), so the rendered gateway config for this run
# has the limit_req lines removed; everything else is the production config.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
SPREAD="${SPREAD:-50}"
PROFILE="${PROFILE:-release}"
MARKET_PORT="${MARKET_PORT:-18802}"
GATEWAY_PORT="${GATEWAY_PORT:-18880}"
BENCH_DB=zimmer_bench_marketplace
SERVICE_TOKEN_BASE="bench-demo-token"
SERVICE_TOKEN="$SERVICE_TOKEN_BASE.support-bot"

export DATABASE_URL="${DATABASE_URL:-$ZIMMER_DEFAULT_DATABASE_URL}"
export REDIS_URL="${REDIS_URL:-$ZIMMER_DEFAULT_REDIS_URL}"
export AMQP_URL="${AMQP_URL:-$ZIMMER_DEFAULT_AMQP_URL}"

command -v wrk >/dev/null || zimmer_die "wrk is missing: apt-get install -y wrk"
command -v curl >/dev/null || zimmer_die "curl is missing: apt-get install -y curl"
NGINX="$(zimmer_nginx_bin)" || zimmer_die "nginx is missing: apt-get install -y nginx"
zimmer_ensure_backing_services

ADMIN_URL="$(zimmer_db_admin_url)"
zimmer_parse_url "$DATABASE_URL" 5432
BENCH_URL="$ZURL_SCHEME://$ZURL_AUTHORITY/$BENCH_DB$ZURL_QUERY"

case "$PROFILE" in
    release) BIN="$(zimmer_target_dir)/release" ;;
    debug) BIN="$(zimmer_target_dir)/debug" ;;
    *) zimmer_die "PROFILE must be release or debug" ;;
esac
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    if [[ "$PROFILE" == release ]]; then
        cargo build --release -p zimmer-marketplace --bins
    else
        cargo build -p zimmer-marketplace --bins
    fi
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/zimmer-bench.XXXXXX")"
MARKET_PID=""
NGINX_PID=""
cleanup() {
    if [[ -n "$NGINX_PID" ]]; then kill "$NGINX_PID" 2>/dev/null || true; fi
    if [[ -n "$MARKET_PID" ]]; then kill "$MARKET_PID" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    psql "$ADMIN_URL" -Xq -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

zimmer_port_open 127.0.0.1 "$MARKET_PORT" && zimmer_die "port $MARKET_PORT is in use"
zimmer_port_open 127.0.0.1 "$GATEWAY_PORT" && zimmer_die "port $GATEWAY_PORT is in use"

zimmer_log "fresh database $BENCH_DB"
psql "$ADMIN_URL" -Xq -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
psql "$ADMIN_URL" -Xq -c "CREATE DATABASE $BENCH_DB" >/dev/null

export DATABASE_URL="$BENCH_URL"
export HTTP_HOST=127.0.0.1 HTTP_PORT="$MARKET_PORT" HTTP_WORKERS=2 DATABASE_POOL_SIZE=16
export REDIS_PREFIX="bench:$$:" AMQP_EXCHANGE="bench$$.events" AMQP_TRANSIENT=true
export HEALTH_CHECK_ENABLED=false LOG_FORMAT=json RUST_LOG=warn APP_ENV=development
export DEMO_SERVICE_TOKEN="$SERVICE_TOKEN_BASE" FAKE_VENDOR_URL="http://127.0.0.1:9"
"$BIN/zimmer-marketplace" migrate >/dev/null
"$BIN/zimmer-marketplace" seed-demo >/dev/null

zimmer_log "catalogue of 23 automations, $((SPREAD + 1)) customers"
psql "$BENCH_URL" -Xq -v ON_ERROR_STOP=1 >/dev/null <<SQL
UPDATE automations SET provision_url = NULL;
INSERT INTO automations (name, description, price_per_token)
SELECT 'Bench automation ' || g, 'A generated automation for the benchmark, number ' || g, 1000 * g
FROM generate_series(1, 20) g;
INSERT INTO users (name, email, password_hash, role)
SELECT 'Bench ' || g, 'bench' || g || '@example.com', 'x', CASE WHEN g = 0 THEN 'manager' ELSE 'customer' END
FROM generate_series(0, $SPREAD) g;
-- Already provisioned: the bench measures consumption, not the provisioning worker.
INSERT INTO user_automations (user_id, automation_id, integration_status)
SELECT u.id, a.id, 'provisioned'
FROM users u, automations a
WHERE u.role = 'customer' AND a.name = 'ربات پشتیبانی تلگرام';
SQL

zimmer_log "starting the marketplace ($PROFILE) on :$MARKET_PORT"
"$BIN/zimmer-marketplace" serve >"$WORK/marketplace.log" 2>&1 &
MARKET_PID=$!
for _ in $(seq 1 100); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MARKET_PORT/readyz")" == 200 ]] && break
    sleep 0.2
done
[[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MARKET_PORT/readyz")" == 200 ]] ||
    { tail -20 "$WORK/marketplace.log"; zimmer_die "the marketplace did not become ready"; }

# Credit every user automation through the ledger (internal API), enough for the whole run.
MANAGER="$(psql "$BENCH_URL" -XtAc "SELECT id FROM users WHERE role = 'manager'")"
mapfile -t UAS < <(psql "$BENCH_URL" -XtAc "SELECT id FROM user_automations ORDER BY id")
for ua in "${UAS[@]}"; do
    curl -sf -o /dev/null -X POST "http://127.0.0.1:$MARKET_PORT/internal/tokens/adjust" \
        -H "X-Internal-Token: ${INTERNAL_API_TOKEN:-dev-internal-token-admin}" \
        -H 'Content-Type: application/json' \
        -d "{\"user_automation_id\":$ua,\"delta\":1000000,\"reason\":\"benchmark\",\"idempotency_key\":\"bench-$ua\",\"actor_id\":$MANAGER}" ||
        zimmer_die "could not credit user automation $ua"
done
HOT_UA="${UAS[0]}"
ALL_UAS="$(IFS=,; echo "${UAS[*]}")"

zimmer_log "gateway on :$GATEWAY_PORT (rate limits off for this run)"
mkdir -p "$WORK/nginx"
MARKETPLACE_ADDRS="127.0.0.1:$MARKET_PORT" GATEWAY_LISTEN="127.0.0.1:$GATEWAY_PORT" \
    bash deploy/nginx/render.sh - | sed '/limit_req zone=/d' >"$WORK/nginx/zimmer.conf"
cp deploy/nginx/nginx.conf "$WORK/nginx/nginx.conf"
mapfile -t NGINX_FLAGS < <(zimmer_nginx_error_flag "$NGINX")
"$NGINX" -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" "${NGINX_FLAGS[@]}" \
    >"$WORK/nginx/access.log" 2>"$WORK/nginx/error.log" &
NGINX_PID=$!
for _ in $(seq 1 50); do
    zimmer_port_open 127.0.0.1 "$GATEWAY_PORT" && break
    sleep 0.1
done

GW="http://127.0.0.1:$GATEWAY_PORT"
DIRECT="http://127.0.0.1:$MARKET_PORT"
CATALOGUE="/api/automations/marketplace"
CONSUME="/api/automation-usage/consume"
# Warm the cache (and check the routes answer).
curl -sf -o /dev/null "$GW$CATALOGUE" || zimmer_die "the gateway does not answer $CATALOGUE"

RUN_NO=0
run() {
    local title="$1"
    shift
    RUN_NO=$((RUN_NO + 1))
    printf '\n### %s\n' "$title"
    BENCH_RUN="$$-$RUN_NO" wrk --latency -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$@" |
        grep -E 'Requests/sec|Latency  |50%|90%|99%|Non-2xx|Socket errors|not accepted|requests in'
}

echo "# marketplace benchmark: $(nproc) CPU(s), $PROFILE build, wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
run "catalogue through the gateway" "$GW$CATALOGUE"
run "catalogue straight to the service" "$DIRECT$CATALOGUE"
USER_AUTOMATIONS="$HOT_UA" SERVICE_TOKEN="$SERVICE_TOKEN" \
    run "consume through the gateway, one user automation" -s bench/marketplace/consume.lua "$GW$CONSUME"
USER_AUTOMATIONS="$HOT_UA" SERVICE_TOKEN="$SERVICE_TOKEN" \
    run "consume straight to the service, one user automation" -s bench/marketplace/consume.lua "$DIRECT$CONSUME"
USER_AUTOMATIONS="$ALL_UAS" SERVICE_TOKEN="$SERVICE_TOKEN" \
    run "consume straight to the service, spread over ${#UAS[@]} user automations" -s bench/marketplace/consume.lua "$DIRECT$CONSUME"

printf '\n### the books\n'
psql "$BENCH_URL" -XtA <<'SQL'
SELECT 'consumption ledger rows:        ' || count(*) FROM token_ledger WHERE kind = 'consumption';
SELECT 'tokens spent (credits - balance): ' || (SUM(l.credits) - SUM(ua.tokens_remaining))
FROM user_automations ua
JOIN (SELECT user_automation_id, SUM(delta) FILTER (WHERE kind = 'adjustment') AS credits
      FROM token_ledger GROUP BY 1) l ON l.user_automation_id = ua.id;
SELECT 'balances = ledger sums:          ' || bool_and(ua.tokens_remaining = l.s)
FROM user_automations ua
JOIN (SELECT user_automation_id, SUM(delta) AS s FROM token_ledger GROUP BY 1) l
  ON l.user_automation_id = ua.id;
SQL
