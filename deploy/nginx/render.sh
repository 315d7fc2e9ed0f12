#!/usr/bin/env bash
# Render deploy/nginx/zimmer.conf.template into an nginx http-context include.
#
#   deploy/nginx/render.sh OUTPUT        (OUTPUT "-" or omitted: standard output)
#
# Environment (all optional):
#   GATEWAY_LISTEN        listen argument                      default 8080
#   AUTH_ADDRS            comma list of host:port              default 127.0.0.1:8001
#   MARKETPLACE_ADDRS                                          default 127.0.0.1:8002
#   BILLING_ADDRS                                              default 127.0.0.1:8003
#   SUPPORT_ADDRS                                              default 127.0.0.1:8004
#   ADMIN_ADDRS                                                default 127.0.0.1:8005
#   CORS_ORIGINS          comma list of origins allowed by CORS
#                         default http://localhost:3000,http://localhost:3001,
#                                 http://127.0.0.1:3000,http://127.0.0.1:3001
#                         (set but empty: no origin is allowed)
#   ZIMMER_NGINX_TEMPLATE template path                        default: next to this script
#
#   GATEWAY_MAX_FAILS     max_fails of every server line      default 2
#   GATEWAY_FAIL_TIMEOUT  fail_timeout of every server line   default 3s
#                         (passive health: see the upstreams in the template)
#
# An address may carry nginx server parameters after a space, e.g.
# AUTH_ADDRS="10.0.0.5:8001 max_fails=3,10.0.0.6:8001"; its own max_fails /
# fail_timeout win over the defaults above.
#
# Plain bash + sed. The same template also works with the official nginx image
# (/etc/nginx/templates/*.template, envsubst): set ZIMMER_LISTEN,
# ZIMMER_{AUTH,MARKETPLACE,BILLING,SUPPORT,ADMIN}_SERVERS ("server host:port;"
# entries), ZIMMER_CORS_ORIGINS ('"http://localhost:3000" 1;' entries) and
# NGINX_ENVSUBST_FILTER=ZIMMER_ (see docker-compose.yml).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
template="${ZIMMER_NGINX_TEMPLATE:-$script_dir/zimmer.conf.template}"
output="${1:--}"

die() {
    echo "render.sh: $*" >&2
    exit 1
}

[[ -r "$template" ]] || die "template not found: $template"

trim() {
    local s="$1"
    s="${s#"${s%%[![:space:]]*}"}"
    s="${s%"${s##*[![:space:]]}"}"
    printf '%s' "$s"
}

# "a:1, b:2" -> "server a:1; server b:2;"
servers() {
    local name="$1" list="$2" out="" item
    local -a items
    IFS=',' read -r -a items <<<"$list"
    for item in "${items[@]}"; do
        item="$(trim "$item")"
        [[ -z "$item" ]] && continue
        [[ "$item" =~ ^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):[0-9]{1,5}(\ +[a-z_]+(=[A-Za-z0-9._]+)?)*$ ||
            "$item" =~ ^unix:/[A-Za-z0-9._/-]+$ ]] ||
            die "$name: not a host:port address: '$item'"
        [[ "$item" == *" max_fails="* ]] || item+=" max_fails=$max_fails"
        [[ "$item" == *" fail_timeout="* ]] || item+=" fail_timeout=$fail_timeout"
        out+="server $item; "
    done
    [[ -n "$out" ]] || die "$name: at least one address is needed"
    printf '%s' "${out% }"
}

# "http://a:3000, https://b" -> '"http://a:3000" 1; "https://b" 1;'
origins() {
    local list="$1" out="" item
    local -a items
    IFS=',' read -r -a items <<<"$list"
    for item in "${items[@]}"; do
        item="$(trim "$item")"
        item="${item%/}"
        [[ -z "$item" ]] && continue
        [[ "$item" =~ ^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$ ]] ||
            die "CORS_ORIGINS: not an origin (scheme://host[:port]): '$item'"
        out+="\"$item\" 1; "
    done
    printf '%s' "${out% }"
}

listen="$(trim "${GATEWAY_LISTEN:-8080}")"
[[ "$listen" =~ ^((\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):)?[0-9]{1,5}$ ]] ||
    die "GATEWAY_LISTEN: expected PORT or HOST:PORT, got '$listen'"

max_fails="$(trim "${GATEWAY_MAX_FAILS:-2}")"
[[ "$max_fails" =~ ^[0-9]{1,3}$ ]] || die "GATEWAY_MAX_FAILS: expected a number, got '$max_fails'"
fail_timeout="$(trim "${GATEWAY_FAIL_TIMEOUT:-3s}")"
[[ "$fail_timeout" =~ ^[0-9]{1,5}(ms|s|m)?$ ]] ||
    die "GATEWAY_FAIL_TIMEOUT: expected an nginx time (3s, 500ms), got '$fail_timeout'"

default_origins="http://localhost:3000,http://localhost:3001,http://127.0.0.1:3000,http://127.0.0.1:3001"

auth="$(servers AUTH_ADDRS "${AUTH_ADDRS:-127.0.0.1:8001}")"
marketplace="$(servers MARKETPLACE_ADDRS "${MARKETPLACE_ADDRS:-127.0.0.1:8002}")"
billing="$(servers BILLING_ADDRS "${BILLING_ADDRS:-127.0.0.1:8003}")"
support="$(servers SUPPORT_ADDRS "${SUPPORT_ADDRS:-127.0.0.1:8004}")"
admin="$(servers ADMIN_ADDRS "${ADMIN_ADDRS:-127.0.0.1:8005}")"
cors="$(origins "${CORS_ORIGINS-$default_origins}")"

# Escape for the replacement side of a sed s||| command.
sed_escape() {
    printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'
}

rendered="$(sed \
    -e "s|\${ZIMMER_LISTEN}|$(sed_escape "$listen")|g" \
    -e "s|\${ZIMMER_AUTH_SERVERS}|$(sed_escape "$auth")|g" \
    -e "s|\${ZIMMER_MARKETPLACE_SERVERS}|$(sed_escape "$marketplace")|g" \
    -e "s|\${ZIMMER_BILLING_SERVERS}|$(sed_escape "$billing")|g" \
    -e "s|\${ZIMMER_SUPPORT_SERVERS}|$(sed_escape "$support")|g" \
    -e "s|\${ZIMMER_ADMIN_SERVERS}|$(sed_escape "$admin")|g" \
    -e "s|\${ZIMMER_CORS_ORIGINS}|$(sed_escape "$cors")|g" \
    "$template")"

# shellcheck disable=SC2016 # literal ${ZIMMER_ placeholders
if grep -q '\${ZIMMER_' <<<"$rendered"; then
    die "unrendered placeholder left in $template: $(grep -o '\${ZIMMER_[A-Z_]*}' <<<"$rendered" | sort -u | tr '\n' ' ')"
fi

if [[ "$output" == "-" ]]; then
    printf '%s\n' "$rendered"
else
    mkdir -p "$(dirname "$output")"
    tmp="$(mktemp "$output.XXXXXX")"
    printf '%s\n' "$rendered" >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$output"
fi
