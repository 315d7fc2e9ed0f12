#!/usr/bin/env bash
# Load benchmark through the real nginx gateway, loopback only, bounded in time:
# login, catalogue, /api/me, consume and ticket create, each for DURATION with wrk. Prints
# ONE summary table: requests/s, p50, p99 and non-2xx answers per scenario, and the resident
# memory (VmRSS from /proc, after the run) of each service process.
#
#   bench/load/run.sh
#
# It starts its own stack so it never disturbs a running `scripts/start.sh up` platform: a
# fresh database (zimmer_bench_load, dropped at the end), auth, marketplace and support on
# ports 18901/18902/18904, and a gateway on 18980 rendered from deploy/nginx with the
# per-address limit_req lines removed (wrk is one client address: with the production limits
# of 20 r/s almost every request would be a 429, which measures nginx, not the platform).
# auth's login throttle (THROTTLE_LOGIN_IP) and support's per-customer ticket limit
# (TICKETS_PER_HOUR) are raised the same way for the same reason.
#
# Needs what scripts/start.sh needs (PostgreSQL, Redis, RabbitMQ, nginx, curl, psql) plus wrk
# (apt-get install -y wrk). Environment: DURATION (10s per scenario), CONNECTIONS (16),
# THREADS (2), PROFILE (release; debug uses the debug binaries), SKIP_BUILD=1,
# DATABASE_URL / REDIS_URL / AMQP_URL (README defaults).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-16}"
THREADS="${THREADS:-2}"
PROFILE="${PROFILE:-release}"
GATEWAY_PORT=18980
declare -A PORT=([auth]=18901 [marketplace]=18902 [support]=18904)
BENCH_DB=zimmer_bench_load
DEMO_TOKEN="load-demo-token"
EMAIL="load-customer@example.com"
PASSWORD="Load-bench-password-1"

export DATABASE_URL="${DATABASE_URL:-$ZIMMER_DEFAULT_DATABASE_URL}"
export REDIS_URL="${REDIS_URL:-$ZIMMER_DEFAULT_REDIS_URL}"
export AMQP_URL="${AMQP_URL:-$ZIMMER_DEFAULT_AMQP_URL}"

command -v wrk >/dev/null || zimmer_die "wrk is missing: apt-get install -y wrk"
command -v curl >/dev/null || zimmer_die "curl is missing: apt-get install -y curl"
command -v psql >/dev/null || zimmer_die "psql is missing: apt-get install -y postgresql-client"
NGINX="$(zimmer_nginx_bin)" || zimmer_die "nginx is missing: apt-get install -y nginx"
zimmer_ensure_backing_services

ADMIN_URL="$(zimmer_db_admin_url)"
zimmer_parse_url "$DATABASE_URL" 5432
BENCH_URL="$ZURL_SCHEME://$ZURL_AUTHORITY/$BENCH_DB$ZURL_QUERY"

case "$PROFILE" in
    release) BIN="$(zimmer_target_dir)/release"; CARGO_PROFILE=(--release) ;;
    debug) BIN="$(zimmer_target_dir)/debug"; CARGO_PROFILE=() ;;
    *) zimmer_die "PROFILE must be release or debug" ;;
esac
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    cargo build "${CARGO_PROFILE[@]}" -p zimmer-auth -p zimmer-marketplace -p zimmer-support --bins
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/zimmer-load.XXXXXX")"
declare -A PID=()
NGINX_PID=""
cleanup() {
    if [[ -n "$NGINX_PID" ]]; then kill "$NGINX_PID" 2>/dev/null || true; fi
    for svc in "${!PID[@]}"; do kill "${PID[$svc]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql "$ADMIN_URL" -Xq -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

for p in "${PORT[@]}" "$GATEWAY_PORT"; do
    zimmer_port_open 127.0.0.1 "$p" && zimmer_die "port $p is in use"
done

zimmer_log "fresh database $BENCH_DB"
psql "$ADMIN_URL" -Xq -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
psql "$ADMIN_URL" -Xq -c "CREATE DATABASE $BENCH_DB" >/dev/null

export DATABASE_URL="$BENCH_URL" HTTP_HOST=127.0.0.1 HTTP_WORKERS=2 DATABASE_POOL_SIZE=16
export REDIS_PREFIX="load:$$:" AMQP_EXCHANGE="load$$.events" AMQP_TRANSIENT=true
export LOG_FORMAT=json RUST_LOG=warn APP_ENV=development COOKIE_SECURE=false
export JWT_PRIVATE_KEY_FILE="$WORK/jwt-ed25519.pem"
export HEALTH_CHECK_ENABLED=false DEMO_SERVICE_TOKEN="$DEMO_TOKEN" FAKE_VENDOR_URL="http://127.0.0.1:9"
export THROTTLE_LOGIN_IP="100000000/1"
export TICKETS_PER_HOUR=100000000 # the per-customer ticket limit (20/h), raised likewise
export AUTH_INTERNAL_URL="http://127.0.0.1:${PORT[auth]}"
export JWKS_URL="http://127.0.0.1:${PORT[auth]}/.well-known/jwks.json"
export MARKETPLACE_INTERNAL_URL="http://127.0.0.1:${PORT[marketplace]}"
"$BIN/zimmer-auth" gen-key "$JWT_PRIVATE_KEY_FILE" >/dev/null
"$BIN/zimmer-auth" migrate >/dev/null
"$BIN/zimmer-marketplace" seed-demo >/dev/null
psql "$BENCH_URL" -Xq -c "UPDATE automations SET provision_url = NULL, health_check_url = NULL" >/dev/null 2>&1 ||
    psql "$BENCH_URL" -Xq -c "UPDATE automations SET provision_url = NULL" >/dev/null

# auth first: the others fetch its JWKS when they start.
start() {
    local svc="$1"
    HTTP_PORT="${PORT[$svc]}" "$BIN/zimmer-$svc" serve >"$WORK/$svc.log" 2>&1 &
    PID[$svc]=$!
}
ready() {
    local svc="$1"
    for _ in $(seq 1 150); do
        [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT[$svc]}/readyz")" == 200 ]] && return 0
        sleep 0.2
    done
    tail -20 "$WORK/$svc.log"
    zimmer_die "$svc did not become ready"
}
start auth
ready auth
start marketplace
start support
ready marketplace
ready support

zimmer_log "gateway on :$GATEWAY_PORT (per-address rate limits off for this run)"
mkdir -p "$WORK/nginx"
AUTH_ADDRS="127.0.0.1:${PORT[auth]}" MARKETPLACE_ADDRS="127.0.0.1:${PORT[marketplace]}" \
    SUPPORT_ADDRS="127.0.0.1:${PORT[support]}" BILLING_ADDRS="127.0.0.1:9" ADMIN_ADDRS="127.0.0.1:9" \
    GATEWAY_LISTEN="127.0.0.1:$GATEWAY_PORT" \
    bash deploy/nginx/render.sh - | sed '/limit_req zone=/d' >"$WORK/nginx/zimmer.conf"
cp deploy/nginx/nginx.conf "$WORK/nginx/nginx.conf"
mapfile -t NGINX_FLAGS < <(zimmer_nginx_error_flag "$NGINX")
"$NGINX" -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" "${NGINX_FLAGS[@]}" \
    >"$WORK/nginx/out.log" 2>"$WORK/nginx/error.log" &
NGINX_PID=$!
zimmer_wait_port gateway 127.0.0.1 "$GATEWAY_PORT" 10
GW="http://127.0.0.1:$GATEWAY_PORT"

# A customer signs up through the gateway, adds the demo support bot and is credited enough
# tokens for the whole run through the internal ledger API.
SIGNUP="$(curl -sf -X POST "$GW/api/auth/signup" -H 'Content-Type: application/json' \
    -d "{\"name\":\"Load\",\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\",\"confirm_password\":\"$PASSWORD\"}")" ||
    zimmer_die "signup through the gateway failed"
ACCESS="$(sed -E 's/.*"access_token":"([^"]+)".*/\1/' <<<"$SIGNUP")"
USER_ID="$(psql "$BENCH_URL" -XtAc "SELECT id FROM users WHERE email = '$EMAIL'")"
# The demo support bot (slug support-bot): its service token is DEMO_SERVICE_TOKEN.support-bot.
AUTOMATION="$(psql "$BENCH_URL" -XtAc "SELECT id FROM automations WHERE name = 'ربات پشتیبانی تلگرام'")"
SLUG=support-bot
ADDED="$(curl -s -w ' %{http_code}' -X POST "$GW/api/user/automations/$AUTOMATION" -H "Authorization: Bearer $ACCESS")"
[[ "$ADDED" == *" 201" ]] || { tail -5 "$WORK/marketplace.log"; zimmer_die "could not add automation $AUTOMATION: $ADDED"; }
UA="$(psql "$BENCH_URL" -XtAc "SELECT id FROM user_automations WHERE user_id = $USER_ID")"
# The credit's actor must be staff: a manager row that never logs in.
MANAGER="$(psql "$BENCH_URL" -XtAc "INSERT INTO users (name, email, password_hash, role) VALUES ('Load manager', 'load-manager@example.com', 'x', 'manager') RETURNING id" | head -1)"
CREDITED="$(curl -s -w ' %{http_code}' -X POST "http://127.0.0.1:${PORT[marketplace]}/internal/tokens/adjust" \
    -H "X-Internal-Token: ${INTERNAL_API_TOKEN:-dev-internal-token-admin}" -H 'Content-Type: application/json' \
    -d "{\"user_automation_id\":$UA,\"delta\":1000000,\"reason\":\"load benchmark\",\"idempotency_key\":\"load-fund\",\"actor_id\":$MANAGER}")"
[[ "$CREDITED" == *" 201" ]] || zimmer_die "could not credit the benchmark user automation: $CREDITED"

export BENCH_EMAIL="$EMAIL" BENCH_PASSWORD="$PASSWORD" BENCH_ACCESS="$ACCESS" BENCH_USER_ID="$USER_ID"
export BENCH_UA="$UA" SERVICE_TOKEN="$DEMO_TOKEN.$SLUG" BENCH_RUN="$$"

# Sanity: every scenario answers 2xx once before it is measured.
curl -sf -o /dev/null -X POST "$GW/api/auth/login" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" || zimmer_die "login fails"
curl -sf -o /dev/null "$GW/api/me" -H "Authorization: Bearer $ACCESS" || zimmer_die "/api/me fails"
curl -sf -o /dev/null "$GW/api/automations/marketplace" || zimmer_die "catalogue fails"
curl -sf -o /dev/null -X POST "$GW/api/automation-usage/consume" -H "X-Zimmer-Service-Token: $SERVICE_TOKEN" \
    -H 'Content-Type: application/json' -d "{\"user_automation_id\":$UA,\"units\":1}" || zimmer_die "consume fails"

ROWS=()
measure() { # name, url, [wrk -s script]
    local name="$1" url="$2" out
    shift 2
    zimmer_log "measuring $name for $DURATION"
    out="$(wrk --latency -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$@" "$url")"
    local rps p50 p99 total non2xx
    rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
    p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    total="$(awk '/requests in/ {print $1}' <<<"$out")"
    non2xx="$(awk '/Non-2xx/ {print $NF}' <<<"$out")"
    ROWS+=("$(printf '%-34s %10s %10s %10s %10s %8s' "$name" "$rps" "$p50" "$p99" "$total" "${non2xx:-0}")")
}
measure "POST /api/auth/login" "$GW/api/auth/login" -s bench/load/login.lua
measure "GET /api/automations/marketplace" "$GW/api/automations/marketplace"
measure "GET /api/me" "$GW/api/me" -s bench/load/bearer.lua
measure "POST /api/automation-usage/consume" "$GW/api/automation-usage/consume" -s bench/load/consume.lua
measure "POST /api/tickets (multipart)" "$GW/api/tickets" -s bench/load/ticket.lua

rss() { awk '/^VmRSS:/ {printf "%.1f MiB", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }
echo
echo "# Zimmer load benchmark: $(nproc) CPU(s), $PROFILE build, wrk -t$THREADS -c$CONNECTIONS -d$DURATION per scenario, through nginx"
printf '%-34s %10s %10s %10s %10s %8s\n' "scenario" "req/s" "p50" "p99" "requests" "non-2xx"
printf '%s\n' "${ROWS[@]}"
printf 'RSS after the run: auth %s, marketplace %s, support %s, nginx master %s\n' \
    "$(rss "${PID[auth]}")" "$(rss "${PID[marketplace]}")" "$(rss "${PID[support]}")" "$(rss "$NGINX_PID")"
