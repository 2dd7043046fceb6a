#!/usr/bin/env bash
# Contact create on SQLite with 8 connections (issue 14's target: >= 3,000/s with every control
# on), as a median of BENCH_ROUNDS (5) rounds instead of bench/run.sh's single sample, whose
# spread on two shared cores is wider than the changes it is meant to show. Each round: a
# fresh data directory, an owner signed up, 3 s of warm-up, 10 s measured with
# `wrk -t2 -c8` (bench/lua/contact_create.lua: encrypted fields, blind indexes, the audit
# append, webhook fan-out) against the release build, limiter on (reads generous, the rest as
# unlimited as bench/run.sh's server). Prints each round, the median and the mean size of a
# SQLite commit group (the `sqlite_group_commit_members` histogram).
#
#   bench/create.sh                          # builds and measures target/release/bulwark
#   BULWARK_BENCH_COMPARE=/path/to/old bench/create.sh
#                                            # interleaves an older build, same rounds
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(mktemp -d /tmp/bulwark-create.XXXXXX)
PIDS=()
source scripts/services.sh
# A round runs in a subshell: its server's PID reaches the clean-up through a file.
cleanup() {
    [ -f "$WORK/server.pid" ] && kill "$(cat "$WORK/server.pid")" 2>/dev/null
    stop_services; rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
services_install wrk

BIN=${BULWARK_BENCH_BIN:-$ROOT/target/release/bulwark}
[ -n "${BULWARK_BENCH_BIN:-}" ] || cargo build --release --locked --quiet
ROUNDS=${BENCH_ROUNDS:-5}
printf '[[rule]]\nname = "read-high"\nmatch = { category = "read" }\nlimit = 1000000000\nwindow = "1m"\nkey = "ip+user"\n' \
    > "$WORK/rules.toml"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# round BINARY: one measured round on fresh data; prints "rps mean_group_members".
round() {
    local bin=$1 data port metrics url token pid line
    data=$(mktemp -d "$WORK/data.XXXXXX") port=$(port) metrics=$(port)
    url=http://127.0.0.1:$port
    env -i PATH="$PATH" HOME="$WORK" BULWARK_LISTEN="127.0.0.1:$port" \
        BULWARK_METRICS_LISTEN="127.0.0.1:$metrics" BULWARK_DATA_DIR="$data" BULWARK_LOG=${BENCH_LOG:-warn} \
        BULWARK_RATE_LIMITS_FILE="$WORK/rules.toml" \
        BULWARK_JWT_SECRET=create-jwt-secret-0123456789abcdef0123456789 \
        BULWARK_MASTER_KEYS=bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= \
        "$bin" serve > "$data/out" 2> "$data/err" &
    pid=$!
    echo "$pid" > "$WORK/server.pid"
    for _ in $(seq 300); do curl -sf "$url/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
    local email=owner@create.example password="correct horse battery staple 7"
    curl -sf "$url/api/v1/auth/signup" -H 'content-type: application/json' \
        -d "{\"tenant_name\":\"Create\",\"email\":\"$email\",\"password\":\"$password\",\"display_name\":\"Owner\"}" >/dev/null
    token=$(curl -sf "$url/api/v1/auth/login" -H 'content-type: application/json' \
        -d "{\"email\":\"$email\",\"password\":\"$password\"}" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    BENCH_TOKEN=$token wrk -t2 -c8 -d3s -s bench/lua/contact_create.lua "$url/api/v1/contacts" > /dev/null
    line=$(BENCH_TOKEN=$token wrk -t2 -c8 -d10s -s bench/lua/contact_create.lua "$url/api/v1/contacts" \
        | grep RESULT)
    if [[ $line != *non2xx_or_errors=0* ]]; then
        echo "refused or failed creates: $line" >&2; tail -n 20 "$data/err" >&2
        kill "$pid"; wait "$pid" 2>/dev/null || true; exit 1
    fi
    local members
    members=$(curl -sf "http://127.0.0.1:$metrics/metrics" | awk '
        /^sqlite_group_commit_members_sum/ {s=$2} /^sqlite_group_commit_members_count/ {c=$2}
        END {printf "%.1f", (c > 0 ? s / c : 0)}')
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$(sed -E 's/.*rps=([0-9]+).*/\1/' <<< "$line") $members"
}
median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2)}'; }

: > "$WORK/this" && : > "$WORK/compare"
for r in $(seq "$ROUNDS"); do
    result=$(round "$BIN"); echo "round $r: this build  creates/s, mean group: $result"
    echo "$result" >> "$WORK/this"
    if [ -n "${BULWARK_BENCH_COMPARE:-}" ]; then
        result=$(round "$BULWARK_BENCH_COMPARE"); echo "round $r: compared    creates/s, mean group: $result"
        echo "$result" >> "$WORK/compare"
    fi
done
echo "contact create, 8 connections, median of $ROUNDS: $(median < "$WORK/this")/s (target >= 3000)"
[ -s "$WORK/compare" ] && echo "compared build, median of $ROUNDS: $(median < "$WORK/compare")/s"
exit 0
