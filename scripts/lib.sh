# shellcheck shell=bash
# Helpers shared by scripts/start.sh, scripts/test.sh and .ci/run (sourced, not run).
# They make sure PostgreSQL, Redis and RabbitMQ answer at the addresses in
# DATABASE_URL, REDIS_URL and AMQP_URL, starting a local server that is
# installed but stopped, and say exactly what to install when one is missing.

# shellcheck disable=SC2034 # used by the scripts that source this file
ZIMMER_DEFAULT_DATABASE_URL="postgres://postgres@127.0.0.1:5432/zimmer"
ZIMMER_DEFAULT_REDIS_URL="redis://127.0.0.1:6379"
ZIMMER_DEFAULT_AMQP_URL="amqp://guest:guest@127.0.0.1:5672/%2f"
# shellcheck disable=SC2034
ZIMMER_DEFAULT_CORS_ORIGINS="http://localhost:3000,http://localhost:3001,http://127.0.0.1:3000,http://127.0.0.1:3001"

zimmer_log() {
    printf '==> %s\n' "$*" >&2
}

zimmer_warn() {
    printf 'warning: %s\n' "$*" >&2
}

zimmer_die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Run a command as root: directly when we are root, else through sudo -n.
zimmer_as_root() {
    if [[ "$(id -u)" == 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        zimmer_warn "need root for: $* (run it with sudo yourself)"
        return 1
    fi
}

zimmer_is_local_host() {
    case "$1" in
        "" | 127.0.0.1 | localhost | ::1 | "[::1]") return 0 ;;
        *) return 1 ;;
    esac
}

# zimmer_port_open HOST PORT
zimmer_port_open() {
    local host="${1#[}"
    host="${host%]}"
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$2" 2>/dev/null
}

# zimmer_wait_port NAME HOST PORT SECONDS
zimmer_wait_port() {
    local name="$1" host="$2" port="$3" seconds="$4" i
    for ((i = 0; i < seconds * 2; i++)); do
        zimmer_port_open "$host" "$port" && return 0
        sleep 0.5
    done
    zimmer_die "$name did not come up on $host:$port within ${seconds}s"
}

# Split SCHEME://[USERINFO@]HOST[:PORT][/PATH][?QUERY] into ZURL_* variables.
zimmer_parse_url() {
    local url="$1" default_port="$2" rest hostport
    ZURL_SCHEME="${url%%://*}"
    rest="${url#*://}"
    ZURL_AUTHORITY="${rest%%[/?]*}"
    rest="${rest#"$ZURL_AUTHORITY"}"
    ZURL_PATH="${rest%%\?*}"
    ZURL_QUERY=""
    [[ "$rest" == *\?* ]] && ZURL_QUERY="?${rest#*\?}"
    hostport="${ZURL_AUTHORITY##*@}"
    if [[ "$hostport" =~ ^\[([^]]*)\](:([0-9]+))?$ ]]; then
        ZURL_HOST="${BASH_REMATCH[1]}"
        ZURL_PORT="${BASH_REMATCH[3]:-$default_port}"
    elif [[ "$hostport" == *:* ]]; then
        ZURL_HOST="${hostport%%:*}"
        ZURL_PORT="${hostport##*:}"
    else
        ZURL_HOST="$hostport"
        ZURL_PORT="$default_port"
    fi
    [[ -n "$ZURL_HOST" ]] || ZURL_HOST=127.0.0.1
}

# The database name in DATABASE_URL, and a URL to the same server's "postgres" database.
zimmer_db_name() {
    zimmer_parse_url "$DATABASE_URL" 5432
    local name="${ZURL_PATH#/}"
    printf '%s' "${name:-postgres}"
}

zimmer_db_admin_url() {
    zimmer_parse_url "$DATABASE_URL" 5432
    printf '%s://%s/postgres%s' "$ZURL_SCHEME" "$ZURL_AUTHORITY" "$ZURL_QUERY"
}

zimmer_nginx_bin() {
    if command -v nginx >/dev/null 2>&1; then
        command -v nginx
    elif [[ -x /usr/sbin/nginx ]]; then
        printf '/usr/sbin/nginx'
    else
        return 1
    fi
}

# Flags for starting nginx outside /etc/nginx: "-e stderr" (nginx >= 1.19.5)
# keeps it from opening its compiled-in error log before reading our config.
zimmer_nginx_error_flag() {
    if "$1" -h 2>&1 | grep -q -- '-e filename'; then
        printf '%s\n' -e stderr
    fi
}

# Print the apt-get line for whatever local server or tool is missing, then fail.
# Arguments: the extra tools to require besides PostgreSQL, Redis and RabbitMQ
# (e.g. nginx curl).
zimmer_require_packages() {
    local -a missing=()
    zimmer_parse_url "${DATABASE_URL:-$ZIMMER_DEFAULT_DATABASE_URL}" 5432
    if ! command -v psql >/dev/null 2>&1 || ! command -v pg_isready >/dev/null 2>&1; then
        missing+=(postgresql-client)
    fi
    if zimmer_is_local_host "$ZURL_HOST" && ! compgen -G "/etc/postgresql/*/main" >/dev/null; then
        missing+=(postgresql)
    fi
    zimmer_parse_url "${REDIS_URL:-$ZIMMER_DEFAULT_REDIS_URL}" 6379
    if zimmer_is_local_host "$ZURL_HOST" && ! command -v redis-server >/dev/null 2>&1; then
        missing+=(redis-server)
    fi
    zimmer_parse_url "${AMQP_URL:-$ZIMMER_DEFAULT_AMQP_URL}" 5672
    if zimmer_is_local_host "$ZURL_HOST" && ! command -v rabbitmq-server >/dev/null 2>&1 &&
        [[ ! -x /usr/sbin/rabbitmq-server ]]; then
        missing+=(rabbitmq-server)
    fi
    local tool
    for tool in "$@"; do
        case "$tool" in
            nginx) zimmer_nginx_bin >/dev/null || missing+=(nginx) ;;
            *) command -v "$tool" >/dev/null 2>&1 || missing+=("$tool") ;;
        esac
    done
    if ((${#missing[@]})); then
        printf 'error: missing Debian packages. Install them with:\n\n' >&2
        if [[ "$(id -u)" == 0 ]]; then
            printf '    apt-get update && apt-get install -y %s\n\n' "${missing[*]}" >&2
        else
            printf '    sudo apt-get update && sudo apt-get install -y %s\n\n' "${missing[*]}" >&2
        fi
        exit 1
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        zimmer_die "cargo not found: install a Rust toolchain (rustup, https://rustup.rs) and put ~/.cargo/bin on PATH"
    fi
}

zimmer_ensure_postgres() {
    zimmer_parse_url "$DATABASE_URL" 5432
    local host="$ZURL_HOST" port="$ZURL_PORT" i
    if pg_isready -q -h "$host" -p "$port" -t 3; then
        return 0
    fi
    zimmer_is_local_host "$host" || zimmer_die "PostgreSQL at $host:$port does not answer (DATABASE_URL)"
    zimmer_log "starting PostgreSQL"
    local dir version started=0
    for dir in /etc/postgresql/*/main; do
        [[ -d "$dir" ]] || continue
        version="$(basename "$(dirname "$dir")")"
        if command -v pg_ctlcluster >/dev/null 2>&1 &&
            zimmer_as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start; then
            started=1
        fi
    done
    if ((!started)); then
        zimmer_as_root service postgresql start || zimmer_die "could not start PostgreSQL"
    fi
    for ((i = 0; i < 60; i++)); do
        pg_isready -q -h "$host" -p "$port" -t 1 && return 0
        sleep 0.5
    done
    zimmer_die "PostgreSQL did not come up on $host:$port"
}

zimmer_ensure_redis() {
    zimmer_parse_url "$REDIS_URL" 6379
    local host="$ZURL_HOST" port="$ZURL_PORT"
    zimmer_port_open "$host" "$port" && return 0
    zimmer_is_local_host "$host" || zimmer_die "Redis at $host:$port does not answer (REDIS_URL)"
    zimmer_log "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
        --dir "${TMPDIR:-/tmp}" >/dev/null || zimmer_die "could not start Redis"
    zimmer_wait_port Redis "$host" "$port" 30
}

zimmer_ensure_rabbitmq() {
    zimmer_parse_url "$AMQP_URL" 5672
    local host="$ZURL_HOST" port="$ZURL_PORT"
    zimmer_port_open "$host" "$port" && return 0
    zimmer_is_local_host "$host" || zimmer_die "RabbitMQ at $host:$port does not answer (AMQP_URL)"
    zimmer_log "starting RabbitMQ (this takes a few seconds)"
    zimmer_as_root rabbitmq-server -detached || zimmer_die "could not start RabbitMQ"
    zimmer_wait_port RabbitMQ "$host" "$port" 120
}

zimmer_ensure_backing_services() {
    zimmer_ensure_postgres
    zimmer_ensure_redis
    zimmer_ensure_rabbitmq
}

# Install nginx when missing (root only), export ZIMMER_NGINX_BIN.
zimmer_ensure_nginx() {
    local bin
    if ! bin="$(zimmer_nginx_bin)"; then
        if [[ "$(id -u)" == 0 ]]; then
            zimmer_log "installing nginx"
            if ! DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null ||
                ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >/dev/null; then
                zimmer_die "apt-get install nginx failed"
            fi
            bin="$(zimmer_nginx_bin)" || zimmer_die "nginx still not found after installing it"
        else
            zimmer_die "nginx is missing: run  sudo apt-get update && sudo apt-get install -y nginx"
        fi
    fi
    export ZIMMER_NGINX_BIN="$bin"
}

zimmer_chromium_bin() {
    local candidate
    for candidate in chromium chromium-browser google-chrome google-chrome-stable; do
        if command -v "$candidate" >/dev/null 2>&1; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# Install Chromium when missing (root only), export ZIMMER_CHROMIUM_BIN: the browser test of
# crates/platform-tests drives it headless against the gateway.
zimmer_ensure_chromium() {
    local bin
    if [[ -n "${ZIMMER_CHROMIUM_BIN:-}" && -x "$ZIMMER_CHROMIUM_BIN" ]]; then
        return 0
    fi
    if ! bin="$(zimmer_chromium_bin)"; then
        if [[ "$(id -u)" == 0 ]]; then
            zimmer_log "installing chromium (for the browser test)"
            if ! DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null ||
                ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; then
                zimmer_die "apt-get install chromium failed"
            fi
            bin="$(zimmer_chromium_bin)" || zimmer_die "chromium still not found after installing it"
        else
            zimmer_die "chromium is missing (the browser test needs it): run  sudo apt-get update && sudo apt-get install -y chromium"
        fi
    fi
    export ZIMMER_CHROMIUM_BIN="$bin"
}

# Directory cargo builds into.
zimmer_target_dir() {
    printf '%s' "${CARGO_TARGET_DIR:-$PWD/target}"
}
