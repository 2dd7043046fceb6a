#!/usr/bin/env bash
# Scale-out figures of issue 20: one, two and three release instances behind a round-robin
# HAProxy, as production runs them — PostgreSQL behind PgBouncer in transaction mode
# (BULWARK_DATABASE_POOLER=transaction), one Redis — measured with wrk through the proxy
# (GET /api/v1/me and contact creation), then the propagation of a kill switch and of a
# session revocation across three instances (bench/propagation.py: p50/p99/max).
#
# Everything shares this machine's cores (wrk, HAProxy, the instances, PgBouncer, PostgreSQL,
# Redis), so more instances cannot mean more throughput here: the figures show that nothing
# serialises across instances, not linear growth.
#
#   bench/scale-out.sh         # appends to bench/results/<date>.md
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${BENCH_DURATION:-10s}
WORK=$(mktemp -d /tmp/bulwark-scale.XXXXXX)
PIDS=()
INSTANCES=()
LB_PID=""
source scripts/services.sh
cleanup() {
    [ -n "$LB_PID" ] && kill "$LB_PID" 2>/dev/null || true
    for pid in "${INSTANCES[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
    stop_services
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
services_install wrk haproxy pgbouncer

echo "==> release build"
cargo build --release --locked --quiet
BIN=$ROOT/target/release/bulwark

start_postgres
create_database scale
PGB_POOL_SIZE=${BENCH_PGBOUNCER_POOL:-16} start_pgbouncer
start_redis
OWNER_URL="postgres://bulwark_owner:owner-ci-password@127.0.0.1:$PG_PORT/scale"
APP_URL="$BULWARK_TEST_PGBOUNCER_APP_URL/scale"

HIGH=$WORK/high-limits.toml
for category in read write sensitive auth refresh; do
    printf '[[rule]]\nname = "%s-high"\nmatch = { category = "%s" }\nlimit = 1000000000\nwindow = "1m"\nkey = "ip+user"\n\n' \
        "$category" "$category" >> "$HIGH"
done
bulwark() { # bulwark PORT ARGS...: the deployment's configuration, one instance
    local port=$1; shift
    env -i PATH="$PATH" HOME="$WORK" BULWARK_DATA_DIR="$WORK/data" BULWARK_LOG=warn \
        BULWARK_LISTEN="127.0.0.1:$port" BULWARK_METRICS_LISTEN="127.0.0.1:0" \
        BULWARK_DATABASE_URL="$APP_URL" BULWARK_DATABASE_POOLER=transaction \
        BULWARK_REDIS_URL="$BULWARK_TEST_REDIS_URL" BULWARK_RATE_LIMITS_FILE="$HIGH" \
        BULWARK_TRUSTED_PROXIES=127.0.0.1/32 BULWARK_STEP_UP_SECONDS=3600 \
        BULWARK_JWT_SECRET=scale-out-jwt-secret-0123456789abcdef0123456789 \
        BULWARK_MASTER_KEYS=bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= "$@"
}
mkdir -p "$WORK/data"
# Migrations go straight to PostgreSQL as the owner (sqlx's migrator holds a session lock),
# granting the application role what it needs; the instances then only check them.
DIRECT_APP_URL="postgres://bulwark_app:app-ci-password@127.0.0.1:$PG_PORT/scale"
bulwark 0 BULWARK_DATABASE_URL="$DIRECT_APP_URL" BULWARK_DATABASE_MIGRATE_URL="$OWNER_URL" \
    BULWARK_DATABASE_POOLER=none "$BIN" migrate

PORTS=()
for n in 1 2 3; do
    port=$(free_port)
    bulwark "$port" "$BIN" serve > "$WORK/instance-$n.log" 2>&1 &
    INSTANCES+=($!)
    PORTS+=("$port")
    ready=""
    for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && { ready=1; break; }; sleep 0.05; done
    [ -n "$ready" ] || { tail -5 "$WORK/instance-$n.log"; exit 1; }
done

LB_PORT=$(free_port)
balance() { # balance N: HAProxy round robin over the first N instances
    [ -n "$LB_PID" ] && { kill "$LB_PID"; wait "$LB_PID" 2>/dev/null || true; }
    {
        printf 'global\n    maxconn 4096\n    nbthread 1\n'
        printf 'defaults\n    mode http\n    option http-keep-alive\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n'
        printf 'frontend api\n    bind 127.0.0.1:%s\n    default_backend instances\n' "$LB_PORT"
        printf 'backend instances\n    balance roundrobin\n    http-reuse always\n'
        for n in $(seq "$1"); do printf '    server i%s 127.0.0.1:%s\n' "$n" "${PORTS[$((n - 1))]}"; done
    } > "$WORK/haproxy.cfg"
    haproxy -f "$WORK/haproxy.cfg" -db > "$WORK/haproxy.log" 2>&1 &
    LB_PID=$!
    for _ in $(seq 100); do curl -sf -m 1 "http://127.0.0.1:$LB_PORT/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
}
balance 3
LB=http://127.0.0.1:$LB_PORT

EMAIL="owner@scale.example" PASSWORD="correct horse battery staple 7"
curl -sf "$LB/api/v1/auth/signup" -H 'content-type: application/json' \
    -d "{\"tenant_name\":\"Scale\",\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\",\"display_name\":\"Owner\"}" >/dev/null
TOKEN=$(curl -sf "$LB/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

FIGURES=$WORK/figures
: > "$FIGURES"
figure() { printf '%-52s %s\n' "$1" "$2" | tee -a "$FIGURES"; }
wrk_line() { wrk -t1 -c32 -d"$DURATION" "$@" | grep RESULT | sed 's/RESULT //'; }
for n in 1 2 3; do
    balance "$n"
    wrk -t1 -c32 -d3s -H "Authorization: Bearer $TOKEN" "$LB/api/v1/me" >/dev/null
    figure "GET /api/v1/me, $n instance(s) behind HAProxy" \
        "$(wrk_line -s bench/lua/report.lua -H "Authorization: Bearer $TOKEN" "$LB/api/v1/me")"
    figure "POST /api/v1/contacts, $n instance(s) behind HAProxy" \
        "$(BENCH_TOKEN=$TOKEN wrk_line -s bench/lua/contact_create.lua "$LB/api/v1/contacts")"
done

echo "==> propagation across three instances"
ROOT_EMAIL="root@scale.example" ROOT_PASSWORD="another correct horse battery 9"
echo "$ROOT_PASSWORD" | bulwark 0 "$BIN" create-superadmin --email "$ROOT_EMAIL" >/dev/null
URLS=()
for port in "${PORTS[@]}"; do URLS+=("http://127.0.0.1:$port"); done
python3 bench/propagation.py "$ROOT_EMAIL" "$ROOT_PASSWORD" "$EMAIL" "$PASSWORD" "${URLS[@]}" \
    | while read -r line; do figure "${line%% *} ${line#* }" ""; done

{
    echo "# Scale-out $(date -u +%Y-%m-%d)"
    echo
    echo "\`bench/scale-out.sh\` on $(nproc) CPUs, Bulwark $(git rev-parse --short HEAD): release instances behind HAProxy (round robin, HTTP keep-alive), PostgreSQL 15 behind PgBouncer (transaction mode, pool ${BENCH_PGBOUNCER_POOL:-16}), one Redis; wrk -t1 -c32, $DURATION after 3 s of warm-up; nothing pinned (every process shares the cores)."
    echo
    echo '```'
    cat "$FIGURES"
    echo '```'
} >> "bench/results/$(date -u +%Y-%m-%d).md"
