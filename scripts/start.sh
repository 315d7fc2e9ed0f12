#!/usr/bin/env bash
# Start Zimmer locally: the five services behind the nginx gateway.
#
#   scripts/start.sh [up]        check/start PostgreSQL, Redis, RabbitMQ; create the
#                                database; build; generate the JWT key; migrate; seed
#                                the demo data; start the services and the gateway;
#                                wait until all are ready (running it again restarts)
#   scripts/start.sh down        stop what "up" started
#   scripts/start.sh status      show what runs and whether it is ready
#   scripts/start.sh logs [SVC]  follow the logs (auth, marketplace, billing, support,
#                                admin, nginx, nginx-access; auth-2 ... for instance 2)
#
# Needs: Debian packages postgresql redis-server rabbitmq-server nginx curl, and a
# Rust toolchain. Environment: see README.md. PROFILE=release builds optimised
# binaries; SKIP_BUILD=1 uses the binaries already built; READY_TIMEOUT (seconds,
# default 60) bounds the wait; GATEWAY_LISTEN (default 127.0.0.1:8080); INSTANCES
# (1 to 9, default 1) runs that many instances of every service behind the gateway:
# instance N of a service listens on its port + 100*(N-1) (8001, 8101, 8201, ...).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

DATA="$ROOT/.data"
LOGS="$DATA/logs"
PIDS="$DATA/pids"
NGINX_PREFIX="$DATA/nginx"

SERVICES=(auth marketplace billing support admin)
declare -A PORT=([auth]=8001 [marketplace]=8002 [billing]=8003 [support]=8004 [admin]=8005)
INSTANCES="${INSTANCES:-1}"
[[ "$INSTANCES" =~ ^[1-9]$ ]] || zimmer_die "INSTANCES must be 1 to 9, not '$INSTANCES'"

export DATABASE_URL="${DATABASE_URL:-$ZIMMER_DEFAULT_DATABASE_URL}"
export REDIS_URL="${REDIS_URL:-$ZIMMER_DEFAULT_REDIS_URL}"
export AMQP_URL="${AMQP_URL:-$ZIMMER_DEFAULT_AMQP_URL}"
export CORS_ORIGINS="${CORS_ORIGINS-$ZIMMER_DEFAULT_CORS_ORIGINS}"
export APP_ENV="${APP_ENV:-development}"
export HTTP_HOST="${HTTP_HOST:-127.0.0.1}"
export COOKIE_SECURE="${COOKIE_SECURE:-false}"
export LOG_FORMAT="${LOG_FORMAT:-pretty}"
export JWT_PRIVATE_KEY_FILE="${JWT_PRIVATE_KEY_FILE:-$DATA/jwt-ed25519.pem}"
# Where the payment result sends the browser: the host the panel is opened on (docs/panels.md).
export FRONTEND_URL="${FRONTEND_URL:-http://127.0.0.1:3000}"
# Admin's PostgreSQL backups (the backups page; pg_dump/pg_restore from postgresql-client).
export BACKUP_DIR="${BACKUP_DIR:-$DATA/backups}"
# The fake automation vendor (crates/fake-vendor) runs the demo
# automations: seed-demo points their provision/health URLs at FAKE_VENDOR_URL and derives
# their service tokens from DEMO_SERVICE_TOKEN, as the fake vendor does.
FAKE_VENDOR_PORT="${FAKE_VENDOR_PORT:-8090}"
export FAKE_VENDOR_URL="${FAKE_VENDOR_URL:-http://127.0.0.1:$FAKE_VENDOR_PORT}"
export DEMO_SERVICE_TOKEN="${DEMO_SERVICE_TOKEN:-zimmer-dev-demo-vendor-token}"
# Billing pays through the local fake Zarinpal (started below) unless ZARINPAL_BASE_URL points
# elsewhere; the gateway's callback address is set once the gateway address is known.
FAKE_ZARINPAL_PORT="${FAKE_ZARINPAL_PORT:-8091}"
FAKE_ZARINPAL_URL="http://127.0.0.1:$FAKE_ZARINPAL_PORT"
export ZARINPAL_BASE_URL="${ZARINPAL_BASE_URL:-$FAKE_ZARINPAL_URL}"
# Admin's OpenAI key test calls the local fake OpenAI (crates/fake-openai, accepting the keys in
# FAKE_OPENAI_KEYS) unless OPENAI_BASE_URL points elsewhere.
FAKE_OPENAI_PORT="${FAKE_OPENAI_PORT:-8093}"
FAKE_OPENAI_URL="http://127.0.0.1:$FAKE_OPENAI_PORT/v1"
export OPENAI_BASE_URL="${OPENAI_BASE_URL:-$FAKE_OPENAI_URL}"
GATEWAY_LISTEN="${GATEWAY_LISTEN:-127.0.0.1:8080}"
PROFILE="${PROFILE:-debug}"
READY_TIMEOUT="${READY_TIMEOUT:-60}"
DEMO_EMAIL="${DEMO_MANAGER_EMAIL:-manager@zimmer.local}"
DEMO_PASSWORD="${DEMO_MANAGER_PASSWORD:-Zimmer-demo-2026!}"

# Where to reach a listener from this machine.
local_addr() {
    local host="$1"
    case "$host" in "" | 0.0.0.0 | "*" | "::" | "[::]") host=127.0.0.1 ;; esac
    printf '%s' "$host"
}
# Instance N (1-based, default 1) of a service: its port, its name for pid and log files
# ("auth" for the first, "auth-2" for the second, ...) and its URL.
instance_port() {
    printf '%s' "$((PORT[$1] + 100 * (${2:-1} - 1)))"
}
instance_name() {
    if [[ "${2:-1}" == 1 ]]; then printf '%s' "$1"; else printf '%s-%s' "$1" "$2"; fi
}
service_url() {
    printf 'http://%s:%s' "$(local_addr "$HTTP_HOST")" "$(instance_port "$1" "${2:-1}")"
}
gateway_host() {
    if [[ "$GATEWAY_LISTEN" == *:* ]]; then local_addr "${GATEWAY_LISTEN%:*}"; else printf '127.0.0.1'; fi
}
gateway_port() {
    printf '%s' "${GATEWAY_LISTEN##*:}"
}
gateway_url() {
    printf 'http://%s:%s' "$(gateway_host)" "$(gateway_port)"
}

bin_dir() {
    case "$PROFILE" in
        debug | dev) printf '%s/debug' "$(zimmer_target_dir)" ;;
        release) printf '%s/release' "$(zimmer_target_dir)" ;;
        *) zimmer_die "PROFILE must be debug or release, not '$PROFILE'" ;;
    esac
}

# pid from a pid file, only if that process still runs the expected program.
live_pid() {
    local file="$PIDS/$1.pid" expect="$2" pid
    [[ -f "$file" ]] || return 1
    pid="$(cat "$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$expect" || return 1
    printf '%s' "$pid"
}

stop_one() {
    local name="$1" expect="$2" pid i
    if pid="$(live_pid "$name" "$expect")"; then
        zimmer_log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 40; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        if kill -0 "$pid" 2>/dev/null; then
            zimmer_warn "$name did not stop in 10 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$PIDS/$name.pid"
}

cmd_down() {
    stop_one nginx "$NGINX_PREFIX/nginx.conf"
    stop_one fake-vendor zimmer-fake-vendor
    stop_one fake-zarinpal zimmer-fake-zarinpal
    stop_one fake-openai zimmer-fake-openai
    # Every instance a previous "up" started (whatever INSTANCES was then), all at once:
    # each drains for a moment before it exits.
    local svc file name
    for svc in "${SERVICES[@]}"; do
        for file in "$PIDS/$svc.pid" "$PIDS/$svc"-[0-9].pid; do
            [[ -f "$file" ]] || continue
            name="$(basename "$file" .pid)"
            stop_one "$name" "zimmer-$svc" &
        done
    done
    wait
}

http_code() {
    curl -s -o /dev/null -m 3 -w '%{http_code}' "$1" 2>/dev/null || true
}

rotate_log() {
    [[ -f "$1" ]] && mv -f "$1" "$1.1"
    : >"$1"
}

ensure_database() {
    local name admin exists
    name="$(zimmer_db_name)"
    [[ "$name" =~ ^[A-Za-z0-9_]+$ ]] || zimmer_die "unexpected database name '$name' in DATABASE_URL"
    admin="$(zimmer_db_admin_url)"
    exists="$(psql "$admin" -XtAc "SELECT 1 FROM pg_database WHERE datname = '$name'")" ||
        zimmer_die "cannot connect to PostgreSQL with DATABASE_URL (check user and password)"
    if [[ "$exists" != 1 ]]; then
        zimmer_log "creating database $name"
        psql "$admin" -Xq -c "CREATE DATABASE \"$name\"" >/dev/null
    fi
}

build() {
    if [[ "${SKIP_BUILD:-0}" == 1 ]]; then
        zimmer_log "SKIP_BUILD=1: using the binaries in $(bin_dir)"
        return
    fi
    local -a args=(build --bins)
    [[ "$PROFILE" == release ]] && args+=(--release)
    local svc
    for svc in "${SERVICES[@]}"; do args+=(-p "zimmer-$svc"); done
    # The fakes are crates of their own (crates/fake-*), not binaries of the services.
    args+=(-p zimmer-fake-zarinpal -p zimmer-fake-vendor -p zimmer-fake-openai)
    zimmer_log "cargo ${args[*]}"
    cargo "${args[@]}"
}

start_services() {
    local dir svc pid i port name
    local -a tunables
    dir="$(bin_dir)"
    for svc in "${SERVICES[@]}"; do
        [[ -x "$dir/zimmer-$svc" ]] || zimmer_die "$dir/zimmer-$svc not found (build failed or SKIP_BUILD without a build)"
        for ((i = 1; i <= INSTANCES; i++)); do
            port="$(instance_port "$svc" "$i")"
            if zimmer_port_open "$(local_addr "$HTTP_HOST")" "$port"; then
                zimmer_die "port $port ($(instance_name "$svc" "$i")) is already in use by a process this script did not start"
            fi
        done
    done
    for svc in "${SERVICES[@]}"; do
        for ((i = 1; i <= INSTANCES; i++)); do
            name="$(instance_name "$svc" "$i")"
            rotate_log "$LOGS/$name.log"
            # auth as in the image (Dockerfile): argon2's 19 MiB blocks mmapped, so they leave
            # the process when freed (auth 105 MiB -> 30 MiB after bench/load/run.sh's logins).
            tunables=()
            [[ $svc != auth ]] || tunables=(GLIBC_TUNABLES="${GLIBC_TUNABLES-glibc.malloc.mmap_threshold=4194304}")
            env "${tunables[@]}" HTTP_PORT="$(instance_port "$svc" "$i")" setsid "$dir/zimmer-$svc" serve \
                >>"$LOGS/$name.log" 2>&1 </dev/null &
            pid=$!
            echo "$pid" >"$PIDS/$name.pid"
            zimmer_log "started $name on $(service_url "$svc" "$i") (pid $pid, log .data/logs/$name.log)"
        done
    done
}

# The fake payment gateway (crates/fake-zarinpal), when billing is pointed at it.
start_fake_zarinpal() {
    [[ "$ZARINPAL_BASE_URL" == "$FAKE_ZARINPAL_URL" ]] || return 0
    local dir
    dir="$(bin_dir)"
    [[ -x "$dir/zimmer-fake-zarinpal" ]] || zimmer_die "$dir/zimmer-fake-zarinpal not found"
    if zimmer_port_open 127.0.0.1 "$FAKE_ZARINPAL_PORT"; then
        zimmer_die "port $FAKE_ZARINPAL_PORT (fake Zarinpal) is already in use by a process this script did not start"
    fi
    rotate_log "$LOGS/fake-zarinpal.log"
    FAKE_ZARINPAL_ADDR="127.0.0.1:$FAKE_ZARINPAL_PORT" setsid "$dir/zimmer-fake-zarinpal" \
        >>"$LOGS/fake-zarinpal.log" 2>&1 </dev/null &
    echo "$!" >"$PIDS/fake-zarinpal.pid"
    zimmer_log "started the fake Zarinpal on $FAKE_ZARINPAL_URL (pid $!, log .data/logs/fake-zarinpal.log)"
}

# The fake OpenAI (crates/fake-openai), when admin's key test is pointed at it.
start_fake_openai() {
    [[ "$OPENAI_BASE_URL" == "$FAKE_OPENAI_URL" ]] || return 0
    local dir
    dir="$(bin_dir)"
    [[ -x "$dir/zimmer-fake-openai" ]] || zimmer_die "$dir/zimmer-fake-openai not found"
    if zimmer_port_open 127.0.0.1 "$FAKE_OPENAI_PORT"; then
        zimmer_die "port $FAKE_OPENAI_PORT (fake OpenAI) is already in use by a process this script did not start"
    fi
    rotate_log "$LOGS/fake-openai.log"
    FAKE_OPENAI_ADDR="127.0.0.1:$FAKE_OPENAI_PORT" setsid "$dir/zimmer-fake-openai" \
        >>"$LOGS/fake-openai.log" 2>&1 </dev/null &
    echo "$!" >"$PIDS/fake-openai.pid"
    zimmer_log "started the fake OpenAI on $FAKE_OPENAI_URL (pid $!, log .data/logs/fake-openai.log)"
}

# The fake automation vendor, when the demo automations point at the local one.
start_fake_vendor() {
    [[ "$FAKE_VENDOR_URL" == "http://127.0.0.1:$FAKE_VENDOR_PORT" ]] || return 0
    local dir
    dir="$(bin_dir)"
    [[ -x "$dir/zimmer-fake-vendor" ]] || zimmer_die "$dir/zimmer-fake-vendor not found"
    if zimmer_port_open 127.0.0.1 "$FAKE_VENDOR_PORT"; then
        zimmer_die "port $FAKE_VENDOR_PORT (fake vendor) is already in use by a process this script did not start"
    fi
    rotate_log "$LOGS/fake-vendor.log"
    FAKE_VENDOR_LISTEN="127.0.0.1:$FAKE_VENDOR_PORT" MARKETPLACE_URL="$(service_url marketplace)" \
        setsid "$dir/zimmer-fake-vendor" >>"$LOGS/fake-vendor.log" 2>&1 </dev/null &
    echo "$!" >"$PIDS/fake-vendor.pid"
    zimmer_log "started the fake automation vendor on $FAKE_VENDOR_URL (pid $!, log .data/logs/fake-vendor.log)"
}

start_gateway() {
    local nginx
    local -a flags
    nginx="$(zimmer_nginx_bin)" || zimmer_die "nginx not found"
    mapfile -t flags < <(zimmer_nginx_error_flag "$nginx")
    mkdir -p "$NGINX_PREFIX"
    # Every instance of the service, comma-separated: one upstream server line each.
    addr_of() {
        local i out=""
        for ((i = 1; i <= INSTANCES; i++)); do
            out+="${out:+,}$(local_addr "$HTTP_HOST"):$(instance_port "$1" "$i")"
        done
        printf '%s' "$out"
    }
    AUTH_ADDRS="$(addr_of auth)" MARKETPLACE_ADDRS="$(addr_of marketplace)" \
        BILLING_ADDRS="$(addr_of billing)" SUPPORT_ADDRS="$(addr_of support)" \
        ADMIN_ADDRS="$(addr_of admin)" GATEWAY_LISTEN="$GATEWAY_LISTEN" CORS_ORIGINS="$CORS_ORIGINS" \
        bash "$ROOT/deploy/nginx/render.sh" "$NGINX_PREFIX/zimmer.conf"
    cp "$ROOT/deploy/nginx/nginx.conf" "$NGINX_PREFIX/nginx.conf"
    if ! "$nginx" -t -q -p "$NGINX_PREFIX/" -c "$NGINX_PREFIX/nginx.conf" "${flags[@]}"; then
        zimmer_die "the rendered gateway config in .data/nginx/ does not pass nginx -t"
    fi
    if zimmer_port_open "$(gateway_host)" "$(gateway_port)"; then
        zimmer_die "gateway port $GATEWAY_LISTEN is already in use by a process this script did not start"
    fi
    rotate_log "$LOGS/nginx.log"
    rotate_log "$LOGS/nginx-access.log"
    setsid "$nginx" -p "$NGINX_PREFIX/" -c "$NGINX_PREFIX/nginx.conf" "${flags[@]}" \
        >>"$LOGS/nginx-access.log" 2>>"$LOGS/nginx.log" </dev/null &
    echo "$!" >"$PIDS/nginx.pid"
    zimmer_log "started the gateway on $(gateway_url) (pid $!, logs .data/logs/nginx*.log)"
}

wait_ready() {
    local deadline=$((SECONDS + READY_TIMEOUT)) svc pending code i name
    zimmer_log "waiting up to ${READY_TIMEOUT}s for /readyz of every service and for the gateway"
    while :; do
        pending=()
        for svc in "${SERVICES[@]}"; do
            for ((i = 1; i <= INSTANCES; i++)); do
                name="$(instance_name "$svc" "$i")"
                if ! live_pid "$name" "zimmer-$svc" >/dev/null; then
                    tail -n 30 "$LOGS/$name.log" >&2 || true
                    zimmer_die "$name exited during start-up (log above, .data/logs/$name.log)"
                fi
                code="$(http_code "$(service_url "$svc" "$i")/readyz")"
                [[ "$code" == 200 ]] || pending+=("$name($code)")
            done
        done
        if ! live_pid nginx "$NGINX_PREFIX/nginx.conf" >/dev/null; then
            tail -n 30 "$LOGS/nginx.log" >&2 || true
            zimmer_die "nginx exited during start-up (log above)"
        fi
        code="$(http_code "$(gateway_url)/.well-known/jwks.json")"
        [[ "$code" == 200 ]] || pending+=("gateway($code)")
        ((${#pending[@]} == 0)) && return 0
        if ((SECONDS >= deadline)); then
            for svc in "${SERVICES[@]}"; do
                for ((i = 1; i <= INSTANCES; i++)); do
                    name="$(instance_name "$svc" "$i")"
                    printf -- '--- .data/logs/%s.log (last lines)\n' "$name" >&2
                    tail -n 8 "$LOGS/$name.log" >&2 || true
                done
            done
            zimmer_die "not ready after ${READY_TIMEOUT}s: ${pending[*]} (processes left running; scripts/start.sh down stops them)"
        fi
        sleep 1
    done
}

cmd_up() {
    zimmer_require_packages nginx curl
    zimmer_ensure_backing_services
    mkdir -p "$LOGS" "$PIDS" "$(dirname "$JWT_PRIVATE_KEY_FILE")"
    ensure_database
    build
    cmd_down

    local dir
    dir="$(bin_dir)"
    zimmer_log "JWT signing key: $JWT_PRIVATE_KEY_FILE"
    "$dir/zimmer-auth" gen-key "$JWT_PRIVATE_KEY_FILE"
    zimmer_log "migrations"
    "$dir/zimmer-auth" migrate
    zimmer_log "demo data"
    "$dir/zimmer-auth" seed-demo
    "$dir/zimmer-marketplace" seed-demo

    export ZARINPAL_CALLBACK_URL="${ZARINPAL_CALLBACK_URL:-$(gateway_url)/api/payments/zarinpal/callback}"
    start_fake_zarinpal
    start_fake_openai
    start_fake_vendor
    start_services
    start_gateway
    wait_ready

    local svc i
    cat <<EOF

Zimmer is up.
  Gateway (the API):  $(gateway_url)   e.g. $(gateway_url)/api/automations/marketplace
  Services (direct, /healthz /readyz /metrics):
EOF
    for svc in "${SERVICES[@]}"; do
        for ((i = 1; i <= INSTANCES; i++)); do
            printf '    %-14s %s\n' "$(instance_name "$svc" "$i")" "$(service_url "$svc" "$i")"
        done
    done
    cat <<EOF
  Payment gateway:    $ZARINPAL_BASE_URL
  OpenAI (key tests): $OPENAI_BASE_URL
  Automation vendor:  $FAKE_VENDOR_URL   (demo automations; GET /state, PUT /control)
  Demo manager:       $DEMO_EMAIL / $DEMO_PASSWORD
  Logs:               .data/logs/   (scripts/start.sh logs [service])
  Stop:               scripts/start.sh down
EOF
}

cmd_status() {
    local svc pid code file name i
    for svc in "${SERVICES[@]}"; do
        # Instance 1 always; the others as far as a previous "up" started them.
        for file in "$PIDS/$svc.pid" "$PIDS/$svc"-[0-9].pid; do
            name="$(basename "$file" .pid)"
            i="${name#"$svc"}"
            i="${i#-}"
            if pid="$(live_pid "$name" "zimmer-$svc")"; then
                code="$(http_code "$(service_url "$svc" "${i:-1}")/readyz")"
                printf '%-14s running (pid %s)  %s/readyz -> %s\n' "$name" "$pid" "$(service_url "$svc" "${i:-1}")" "$code"
            elif [[ "$name" == "$svc" ]]; then
                printf '%-14s stopped\n' "$name"
            fi
        done
    done
    if pid="$(live_pid nginx "$NGINX_PREFIX/nginx.conf")"; then
        code="$(http_code "$(gateway_url)/.well-known/jwks.json")"
        printf '%-14s running (pid %s)  %s/.well-known/jwks.json -> %s\n' gateway "$pid" "$(gateway_url)" "$code"
    else
        printf '%-14s stopped\n' gateway
    fi
}

cmd_logs() {
    local -a files=()
    if (($#)); then
        local name
        for name in "$@"; do files+=("$LOGS/$name.log"); done
    else
        files=("$LOGS"/*.log)
    fi
    local f
    for f in "${files[@]}"; do [[ -f "$f" ]] || zimmer_die "no log $f (has scripts/start.sh up run?)"; done
    exec tail -n 50 -F "${files[@]}"
}

case "${1:-up}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    logs) shift; cmd_logs "$@" ;;
    -h | --help | help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) zimmer_die "unknown command '$1' (up, down, status, logs)" ;;
esac
