#!/usr/bin/env bash
# The /api/v1/me ratios of issue 14, measured in one run: Bulwark with its whole stack (request
# id, security headers, CORS, token verification, session liveness, rate limiting with limits
# too high to trip, a JSON log line, metrics) against a bare axum server returning the same
# kind of body and against the seeds' Fastify stack, on SQLite and on PostgreSQL. Every server
# is measured the same way by bench/anchors/bench.sh (server pinned to CPU 1, wrk to CPU 0,
# wrk -t1 -c32, 3 s warm-up, 10 s measured), in BENCH_ROUNDS (3) interleaved rounds; the
# ratios are of the medians. Builds what it measures itself.
#
#   bench/ratios.sh            # prints RESULT lines and the ratios; appends them to
#                              # bench/results/<date>.md
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(mktemp -d /tmp/bulwark-ratios.XXXXXX)
PIDS=()
source scripts/services.sh
source bench/rules.sh
cleanup() { stop_services; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
services_install wrk nodejs npm

echo "==> building Bulwark (release), the bare axum server and the Fastify server"
# BULWARK_BENCH_BIN measures another build (an older commit) against the same anchors.
BIN=${BULWARK_BENCH_BIN:-$ROOT/target/release/bulwark}
[ -n "${BULWARK_BENCH_BIN:-}" ] || cargo build --release --locked --quiet
(cd bench/anchors/axum-bare && cargo build --release --quiet)
(cd bench/anchors/fastify-ref && npm ci --silent --no-audit --no-fund)

PORT=8088
HIGH=$WORK/high-limits.toml
# shellcheck disable=SC2086 # the categories are words
generous "$HIGH" ${BENCH_CATEGORIES:-read write sensitive auth refresh}
bulwark_env() { # bulwark_env NAME [VAR=value ...]: the command line that serves NAME's data
    local name=$1; shift
    echo env -i PATH="$PATH" HOME="$WORK" BULWARK_LISTEN=127.0.0.1:$PORT \
        BULWARK_METRICS_LISTEN=127.0.0.1:0 BULWARK_DATA_DIR="$WORK/$name" BULWARK_LOG=info \
        BULWARK_CORS_ORIGINS=https://app.bulwark.test BULWARK_RATE_LIMITS_FILE="$HIGH" \
        BULWARK_JWT_SECRET=ratios-jwt-secret-0123456789abcdef0123456789 \
        BULWARK_MASTER_KEYS=bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= "$@" "$BIN" serve
}
# token NAME [VAR=value ...]: starts Bulwark once on NAME's data, signs an owner up and prints
# an access token (its session lives in the database, so the measured run accepts it).
token() {
    local name=$1; shift
    mkdir -p "$WORK/$name"
    $(bulwark_env "$name" "$@") > "$WORK/$name.setup.log" 2>&1 &
    local pid=$!
    for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    local email="owner@ratios.example" password="correct horse battery staple 7"
    curl -sf "http://127.0.0.1:$PORT/api/v1/auth/signup" -H 'content-type: application/json' \
        -d "{\"tenant_name\":\"Ratios\",\"email\":\"$email\",\"password\":\"$password\",\"display_name\":\"Owner\"}" >/dev/null
    curl -sf "http://127.0.0.1:$PORT/api/v1/auth/login" -H 'content-type: application/json' \
        -d "{\"email\":\"$email\",\"password\":\"$password\"}" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

RESULTS=$WORK/results.txt
measure() { bench/anchors/bench.sh --results-dir "$WORK/raw" "$@" | tee -a "$WORK/out.txt" | grep '^RESULT' >> "$RESULTS"; }

# Each server is measured in every round, the rounds interleaved, and the ratios are taken
# from the medians: on this machine the bare axum anchor alone moved between 77k and 122k
# requests/s in runs minutes apart, which one measurement each cannot tell from a change.
ROUNDS=${BENCH_ROUNDS:-3}
start_postgres
create_database ratios
PG=(BULWARK_DATABASE_URL="postgres://bulwark_app:app-ci-password@127.0.0.1:$PG_PORT/ratios"
    BULWARK_DATABASE_MIGRATE_URL="postgres://bulwark_owner:owner-ci-password@127.0.0.1:$PG_PORT/ratios")
SQLITE_TOKEN=$(token sqlite)
PG_TOKEN=$(token postgres "${PG[@]}")
for round in $(seq "$ROUNDS"); do
    echo "==> round $round of $ROUNDS: bare axum, Fastify, Bulwark on SQLite, on PostgreSQL"
    measure axum-bare
    measure fastify
    measure --name bulwark-sqlite --url "http://127.0.0.1:$PORT/api/v1/me" --token "$SQLITE_TOKEN" \
        -- $(bulwark_env sqlite)
    measure --name bulwark-postgres --url "http://127.0.0.1:$PORT/api/v1/me" --token "$PG_TOKEN" \
        -- $(bulwark_env postgres "${PG[@]}")
done

# The median of a server's rounds.
rps() {
    sed -nE "s/^RESULT name=$1 rps=([0-9.]+).*/\1/p" "$RESULTS" | sort -n \
        | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}')" "$1" "$2"; }
{
    echo "# /api/v1/me ratios $(date -u +%Y-%m-%d)"
    echo
    echo "\`bench/ratios.sh\` on $(nproc) CPUs ($(uname -m)), Bulwark ${BULWARK_BENCH_LABEL:-$(git rev-parse --short HEAD 2>/dev/null || echo '?')}: server on CPU 1, wrk -t1 -c32 on CPU 0, 10 s after 3 s of warm-up; $ROUNDS interleaved rounds, ratios of the medians."
    echo
    echo '```'
    cat "$RESULTS"
    for backend in sqlite postgres; do
        echo "bulwark-$backend / axum-bare = $(ratio "$(rps "bulwark-$backend")" "$(rps axum-bare)")   (target >= 0.40)"
        echo "bulwark-$backend / fastify   = $(ratio "$(rps "bulwark-$backend")" "$(rps fastify)")   (target >= 4)"
    done
    echo '```'
} | tee -a "bench/results/$(date -u +%Y-%m-%d).md"
