#!/usr/bin/env bash
# Two of issue 14's figures as medians of BENCH_ROUNDS (5) rounds, where bench/run.sh takes one
# sample each: on this two-core VM the same binary measures contact create anywhere between
# 2,000 and 3,150/s depending on the hour, and the flood's p99 ratio moves by about ±1 between
# runs. Each round starts the release build on fresh data with every control on.
#
# - Contact create: `wrk -t2 -c8`, 3 s warm-up, 10 s measured (bench/lua/contact_create.lua:
#   encrypted fields, blind indexes, the audit append, webhook fan-out), limiter on (reads
#   generous, writes unlimited, as bench/run.sh). Also the mean size of a SQLite commit
#   group (`sqlite_group_commit_members`). Target >= 3,000/s.
# - Login flood: `/me` p99 on one connection, idle and then while 200 connections send
#   wrong-password logins from another address (a network namespace, so root only), with
#   the shipped login rules. Target: during / idle <= 2.
#
#   bench/rounds.sh                    # builds and measures target/release/bulwark
#   BULWARK_BENCH_COMPARE=/path/to/old bench/rounds.sh
#                                      # interleaves an older build, same rounds
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(mktemp -d /tmp/bulwark-rounds.XXXXXX)
PIDS=()
source scripts/services.sh
source bench/rules.sh
FLOOD_NS=bulwark-rounds
# A round runs in a subshell: its server's PID reaches the clean-up through a file.
cleanup() {
    [ -f "$WORK/server.pid" ] && kill "$(cat "$WORK/server.pid")" 2>/dev/null
    ip link del bw-rounds0 2>/dev/null || true
    ip netns del "$FLOOD_NS" 2>/dev/null || true
    stop_services; rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
services_install wrk

BIN=${BULWARK_BENCH_BIN:-$ROOT/target/release/bulwark}
[ -n "${BULWARK_BENCH_BIN:-}" ] || cargo build --release --locked --quiet
ROUNDS=${BENCH_ROUNDS:-5}
generous "$WORK/generous.toml" read
flood_rules "$WORK/generous.toml" "$WORK/flood.toml"
FLOOD=no
if [ "$(id -u)" -eq 0 ] && ip netns add "$FLOOD_NS" 2>/dev/null; then
    ip link add bw-rounds0 type veth peer name bw-rounds1
    ip link set bw-rounds1 netns "$FLOOD_NS"
    ip addr add 10.201.0.1/24 dev bw-rounds0 && ip link set bw-rounds0 up
    ip netns exec "$FLOOD_NS" ip addr add 10.201.0.2/24 dev bw-rounds1
    ip netns exec "$FLOOD_NS" ip link set bw-rounds1 up
    FLOOD=yes
fi

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("0.0.0.0",0)); print(s.getsockname()[1])'; }
p99() { sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<< "$1"; }

# serve BINARY RULES: starts it on fresh data (listening on every address, for the flood's
# namespace) and signs an owner up; sets PID, URL, METRICS and TOKEN.
serve() {
    local bin=$1 rules=$2 data port
    data=$(mktemp -d "$WORK/data.XXXXXX") port=$(port) METRICS=$(port)
    URL=http://127.0.0.1:$port
    env -i PATH="$PATH" HOME="$WORK" BULWARK_LISTEN="0.0.0.0:$port" \
        BULWARK_METRICS_LISTEN="127.0.0.1:$METRICS" BULWARK_DATA_DIR="$data" \
        BULWARK_LOG="${BENCH_LOG:-warn}" BULWARK_RATE_LIMITS_FILE="$rules" \
        BULWARK_JWT_SECRET=rounds-jwt-secret-0123456789abcdef0123456789 \
        BULWARK_MASTER_KEYS=bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= \
        "$bin" serve > "$data/out" 2> "$WORK/server.err" &
    PID=$!
    echo "$PID" > "$WORK/server.pid"
    for _ in $(seq 300); do curl -sf "$URL/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
    local email=owner@rounds.example password="correct horse battery staple 7"
    curl -sf "$URL/api/v1/auth/signup" -H 'content-type: application/json' \
        -d "{\"tenant_name\":\"Rounds\",\"email\":\"$email\",\"password\":\"$password\",\"display_name\":\"Owner\"}" >/dev/null
    TOKEN=$(curl -sf "$URL/api/v1/auth/login" -H 'content-type: application/json' \
        -d "{\"email\":\"$email\",\"password\":\"$password\"}" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; rm -f "$WORK/server.pid"; }
# clean LINE: fails the run on any refused or failed request.
clean() {
    [[ $1 == *non2xx_or_errors=0* ]] && return
    echo "refused or failed requests: $1" >&2; tail -n 20 "$WORK/server.err" >&2; stop; exit 1
}

# create_round BINARY: prints "creates/s mean_group_members".
create_round() {
    serve "$1" "$WORK/generous.toml"
    BENCH_TOKEN=$TOKEN wrk -t2 -c8 -d3s -s bench/lua/contact_create.lua "$URL/api/v1/contacts" > /dev/null
    local line members
    line=$(BENCH_TOKEN=$TOKEN wrk -t2 -c8 -d10s -s bench/lua/contact_create.lua "$URL/api/v1/contacts" \
        | grep RESULT)
    clean "$line"
    members=$(curl -sf "http://127.0.0.1:$METRICS/metrics" | awk '
        /^sqlite_group_commit_members_sum/ {s=$2} /^sqlite_group_commit_members_count/ {c=$2}
        END {printf "%.1f", (c > 0 ? s / c : 0)}')
    stop
    echo "$(sed -E 's/.*rps=([0-9]+).*/\1/' <<< "$line") $members"
}

# flood_round BINARY: prints "ratio idle_p99_ms flood_p99_ms".
flood_round() {
    serve "$1" "$WORK/flood.toml"
    local me=(wrk -t1 -c1 -d10s -s bench/lua/report.lua "$URL/api/v1/me" -H "Authorization: Bearer $TOKEN")
    local idle busy flood
    idle=$("${me[@]}" | grep RESULT)
    BENCH_EMAIL="nobody@flood.example" BENCH_PASSWORD="not the password at all" \
        ip netns exec "$FLOOD_NS" wrk -t1 -c200 -d14s -s bench/lua/login.lua \
        "http://10.201.0.1:${URL##*:}/api/v1/auth/login" > /dev/null 2>&1 &
    flood=$!
    sleep 2
    busy=$("${me[@]}" | grep RESULT)
    wait "$flood" || true
    clean "$idle"; clean "$busy"
    stop
    python3 -c "import sys; print(f'{float(sys.argv[2]) / float(sys.argv[1]):.2f}', *sys.argv[1:])" \
        "$(p99 "$idle")" "$(p99 "$busy")"
}

median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2)}'; }

# measure KIND: every round of KIND for this build and, interleaved, the compared one.
measure() {
    local kind=$1 result
    : > "$WORK/$kind.this"; : > "$WORK/$kind.compare"
    for r in $(seq "$ROUNDS"); do
        result=$("${kind}_round" "$BIN"); echo "$kind round $r, this build: $result"
        echo "$result" >> "$WORK/$kind.this"
        if [ -n "${BULWARK_BENCH_COMPARE:-}" ]; then
            result=$("${kind}_round" "$BULWARK_BENCH_COMPARE"); echo "$kind round $r, compared:   $result"
            echo "$result" >> "$WORK/$kind.compare"
        fi
    done
}

measure create
echo "contact create, 8 connections, median of $ROUNDS: $(median < "$WORK/create.this")/s (target >= 3000)"
[ -s "$WORK/create.compare" ] && echo "  compared build: $(median < "$WORK/create.compare")/s"
if [ "$FLOOD" = yes ]; then
    measure flood
    echo "/me p99 during the login flood / idle, median of $ROUNDS: $(median < "$WORK/flood.this") (target <= 2)"
    [ -s "$WORK/flood.compare" ] && echo "  compared build: $(median < "$WORK/flood.compare")"
else
    echo "(login flood skipped: it needs root for a network namespace)"
fi
exit 0
