#!/bin/sh
# The docker-compose stack's secrets, generated at its first start (the "keygen" service)
# instead of defaults written in docker-compose.yml. Each consumer gets its own volume and
# sees only its own secrets:
#   $SECRETS/<service>/  internal-token    the service's own credential for /internal calls
#                        internal-callers  INTERNAL_CALLERS: who may call it (name:sha256)
#                        database-url, redis-url, amqp-url (with the generated passwords)
#                        auth: twofa-key; admin: openai-keys-key; marketplace: bot-tokens-key
#   $SECRETS/postgres/password, $SECRETS/redis/redis.conf, $SECRETS/rabbitmq/password
#   $JWT_KEY             the JWT signing key (auth only)
# A file that exists is kept, so a restart changes nothing (stored 2FA secrets, keys and
# sessions stay readable); "docker compose down -v" deletes them with the data.
set -eu

SECRETS="${SECRETS:-/secrets}"
JWT_KEY="${JWT_KEY:-/var/lib/zimmer/keys/jwt-ed25519.pem}"
APP_UID="${APP_UID:-10001}"
SERVICES="auth marketplace billing support admin"

umask 077

rand_hex() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
rand_b64() { head -c 32 /dev/urandom | base64 | tr -d '\n'; }
sha256() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

# put FILE VALUE: writes FILE (atomically) unless it exists already.
put() {
    [ -s "$1" ] && return 0
    mkdir -p "$(dirname "$1")"
    printf '%s\n' "$2" >"$1.tmp"
    mv "$1.tmp" "$1"
}
# set FILE VALUE: (re)writes FILE: values derived from the kept ones above.
set_file() {
    mkdir -p "$(dirname "$1")"
    printf '%s\n' "$2" >"$1.tmp"
    mv "$1.tmp" "$1"
}

zimmer-auth gen-key "$JWT_KEY"
chown "$APP_UID:$APP_UID" "$JWT_KEY"

# Backing services. Their containers run as their own users: readable there (only those
# containers mount these volumes).
put "$SECRETS/postgres/password" "$(rand_hex)"
put "$SECRETS/rabbitmq/password" "$(rand_hex)"
put "$SECRETS/redis/password" "$(rand_hex)"
pg="$(cat "$SECRETS/postgres/password")"
mq="$(cat "$SECRETS/rabbitmq/password")"
rd="$(cat "$SECRETS/redis/password")"
set_file "$SECRETS/redis/redis.conf" "requirepass $rd"
chmod 0755 "$SECRETS/postgres" "$SECRETS/rabbitmq" "$SECRETS/redis"
chmod 0444 "$SECRETS/postgres/password" "$SECRETS/rabbitmq/password" \
    "$SECRETS/redis/password" "$SECRETS/redis/redis.conf"

for svc in $SERVICES; do
    dir="$SECRETS/$svc"
    put "$dir/internal-token" "$(rand_hex)"
    set_file "$dir/database-url" "postgres://zimmer:$pg@postgres:5432/zimmer"
    set_file "$dir/redis-url" "redis://:$rd@redis:6379"
    set_file "$dir/amqp-url" "amqp://zimmer:$mq@rabbitmq:5672/%2f"
done
put "$SECRETS/auth/twofa-key" "$(rand_b64)"
put "$SECRETS/admin/openai-keys-key" "$(rand_b64)"
put "$SECRETS/marketplace/bot-tokens-key" "$(rand_b64)"

# Who may call whom: every other service fetches auth's revocations; only admin calls the
# owners' internal APIs; nobody calls admin's.
entry() { printf '%s:%s' "$1" "$(sha256 "$(cat "$SECRETS/$1/internal-token")")"; }
set_file "$SECRETS/auth/internal-callers" \
    "$(entry admin),$(entry marketplace),$(entry billing),$(entry support)"
for svc in marketplace billing support; do
    set_file "$SECRETS/$svc/internal-callers" "$(entry admin)"
done
set_file "$SECRETS/admin/internal-callers" "none"

for svc in $SERVICES; do
    chown -R "$APP_UID:$APP_UID" "$SECRETS/$svc"
    chmod 0400 "$SECRETS/$svc"/*
done
echo "keygen: secrets ready"
