#!/usr/bin/env bash
# Reproducible benchmarks: a release build on loopback, measured with wrk. Prints one line per
# figure and writes bench/results/<date>.md. Not part of the test command (speed targets live
# here, never in timed tests).
#
#   bench/run.sh              # every scenario (~8 minutes after the release build)
#   BENCH_DURATION=5s bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${BENCH_DURATION:-10s}
FLOOD_SECONDS=${BENCH_FLOOD_SECONDS:-60}
SOAK_SECONDS=${BENCH_SOAK_SECONDS:-180}

WORK=$(mktemp -d /tmp/bulwark-bench.XXXXXX)
PIDS=()
source scripts/services.sh
source bench/rules.sh
cleanup() {
    stop_services
    ip link del bw-flood0 2>/dev/null || true
    ip netns del bulwark-flood 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
services_install wrk

echo "==> release build"
build_start=$(date +%s)
cargo build --release --locked --quiet
# A copy: `cargo bench` below relinks target/release/bulwark under the bench profile, whose
# symbols are not the ones link/symbol-order.txt names (its layout is lost).
BIN=$WORK/bulwark
cp "$ROOT/target/release/bulwark" "$BIN"
FIGURES=$WORK/figures
: > "$FIGURES"
figure() { printf '%-58s %s\n' "$1" "$2" | tee -a "$FIGURES"; }
figure "release binary size" "$(du -h "$BIN" | cut -f1)"
# How much of link/symbol-order.txt still names a function of this binary: the linker skips
# the rest, and the idle RSS below grows with it (re-run scripts/symbol-order.sh when it drops).
figure "link/symbol-order.txt functions found in the binary" \
    "$(nm --defined-only "$BIN" | awk 'NR == FNR {want[$1]; next} ($3 in want) && !seen[$3]++ {n++} END {print n + 0}' link/symbol-order.txt -) of $(wc -l < link/symbol-order.txt)"
CRYPTO=$(cargo bench --locked --quiet --bench field_crypto 2>/dev/null | grep RESULT | sed 's/RESULT //')
figure "field encryption of one contact (11 fields + 2 blind indexes)" "$CRYPTO"
crypto() { sed -E "s/.*$1=([0-9.]+).*/\1/" <<< "$CRYPTO"; }

rss_kib() { ps -o rss= -p "$1" | tr -d ' '; }

PORT=""; PID=""; URL=""
# start_server NAME [VAR=value ...]
start_server() {
    local name=$1; shift
    PORT=$(free_port)
    mkdir -p "$WORK/$name"
    env -i PATH="$PATH" HOME="$WORK" \
        BULWARK_LISTEN="${BIND:-127.0.0.1}:$PORT" BULWARK_METRICS_LISTEN="127.0.0.1:$(free_port)" \
        BULWARK_DATA_DIR="$WORK/$name" BULWARK_LOG=warn \
        BULWARK_JWT_SECRET="bench-jwt-secret-0123456789abcdef0123456789" \
        BULWARK_MASTER_KEYS="bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" \
        BULWARK_LOCKOUT_IP_THRESHOLD=1000000 BULWARK_LOCKOUT_THRESHOLD=1000 \
        "$@" "$BIN" serve > "$WORK/$name.out" 2> "$WORK/$name.err" &
    PID=$!
    PIDS+=("$PID")
    URL="http://127.0.0.1:$PORT"
    for _ in $(seq 200); do curl -sf "$URL/healthz" >/dev/null 2>&1 && return; sleep 0.05; done
    cat "$WORK/$name.err"; exit 1
}
stop_server() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }

export BENCH_EMAIL="bench@example.com" BENCH_PASSWORD="correct horse battery staple"
TOKEN=""
account() {
    curl -sf "$URL/api/v1/auth/signup" -H 'content-type: application/json' \
        -d "{\"tenant_name\":\"Bench\",\"email\":\"$BENCH_EMAIL\",\"password\":\"$BENCH_PASSWORD\",\"display_name\":\"Bench\"}" >/dev/null
    TOKEN=$(curl -sf "$URL/api/v1/auth/login" -H 'content-type: application/json' \
        -d "{\"email\":\"$BENCH_EMAIL\",\"password\":\"$BENCH_PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
}
# wrk_line CONNECTIONS PATH [extra wrk args] -> "rps=… p50_ms=… p99_ms=…"
wrk_line() {
    local c=$1 path=$2; shift 2
    local threads=$(( c < 2 ? 1 : 2 ))
    wrk -t"$threads" -c"$c" -d"$DURATION" -s bench/lua/report.lua "$@" "$URL$path" | grep RESULT | sed 's/RESULT //'
}

# login_timing BACKEND: the p50 of a wrong password for the bench account and for an
# address without an account, one connection each; the two must not tell the cases apart.
login_timing() {
    local wrong="not the password at all" known unknown
    known=$(BENCH_PASSWORD=$wrong wrk -t1 -c1 -d"$DURATION" -s bench/lua/login_report.lua "$URL/api/v1/auth/login" | grep RESULT)
    unknown=$(BENCH_EMAIL="nobody-$RANDOM@example.com" BENCH_PASSWORD=$wrong wrk -t1 -c1 -d"$DURATION" -s bench/lua/login_report.lua "$URL/api/v1/auth/login" | grep RESULT)
    p50() { sed -E 's/.*p50_ms=([0-9.]+).*/\1/' <<< "$1"; }
    figure "login p50 ms, wrong password: existing account / no account ($1)" "$(p50 "$known") / $(p50 "$unknown")"
}

GENEROUS=$WORK/generous.toml
generous "$GENEROUS" read
# The soak's: every category generous (its logins are the bench account's, and succeed).
GENEROUS_ALL=$WORK/generous-all.toml
generous "$GENEROUS_ALL" read write sensitive auth refresh
# The flood's server (see bench/rules.sh).
FLOOD_RULES=$WORK/flood.toml
flood_rules "$GENEROUS" "$FLOOD_RULES"

echo "==> limiter off: health, /me, login"
start_server base BULWARK_RATE_LIMITS=off
# Idle: settled after start (the allocator returns what start-up freed 2 s in, main.rs).
sleep 4
figure "idle RSS of serve (KiB)" "$(rss_kib "$PID")"
figure "  of which anonymous / file-backed (KiB)" \
    "$(awk '/^RssAnon/ {a=$2} /^RssFile/ {f=$2} END {print a " / " f}' "/proc/$PID/status")"
account
figure "GET /healthz, 32 connections" "$(wrk_line 32 /healthz)"
figure "GET /api/v1/me, 1 connection, limiter off" "$(wrk_line 1 /api/v1/me -H "Authorization: Bearer $TOKEN")"
figure "GET /api/v1/me, 32 connections, limiter off" "$(wrk_line 32 /api/v1/me -H "Authorization: Bearer $TOKEN")"
figure "POST /api/v1/auth/login (Argon2id OWASP), 1 connection" \
    "$(wrk -t1 -c1 -d"$DURATION" -s bench/lua/login_report.lua "$URL/api/v1/auth/login" | grep RESULT | sed 's/RESULT //')"
login_timing sqlite
stop_server

# The flood comes from another address, as an attack would: a network namespace whose veth
# peer is 10.200.0.2 (root only), with the default rate limits on. The flood's wrong
# passwords name an address without an account, so nobody is locked out.
echo "==> /me while 200 connections flood the login from another address"
if [ "$(id -u)" -eq 0 ] && ip netns add bulwark-flood 2>/dev/null; then
    FLOOD_NS=bulwark-flood
    ip link add bw-flood0 type veth peer name bw-flood1
    ip link set bw-flood1 netns "$FLOOD_NS"
    ip addr add 10.200.0.1/24 dev bw-flood0 && ip link set bw-flood0 up
    ip netns exec "$FLOOD_NS" ip addr add 10.200.0.2/24 dev bw-flood1
    ip netns exec "$FLOOD_NS" ip link set bw-flood1 up
    BIND=0.0.0.0 start_server flood BULWARK_RATE_LIMITS_FILE="$FLOOD_RULES"
    account
    idle=$(wrk_line 1 /api/v1/me -H "Authorization: Bearer $TOKEN")
    figure "GET /api/v1/me, 1 connection, idle (default login limits)" "$idle"
    BENCH_EMAIL="nobody@flood.example" BENCH_PASSWORD="not the password at all" \
        ip netns exec "$FLOOD_NS" wrk -t1 -c200 -d"$(( ${DURATION%s} + 4 ))s" -s bench/lua/login.lua \
        "http://10.200.0.1:$PORT/api/v1/auth/login" > "$WORK/flood.txt" 2>&1 &
    FLOOD=$!
    sleep 2
    busy=$(wrk_line 1 /api/v1/me -H "Authorization: Bearer $TOKEN")
    figure "GET /api/v1/me, 1 connection, during the flood" "$busy"
    wait $FLOOD || true
    figure "login flood: requests answered / non-2xx (its 20 allowed attempts 401, then 429)" \
        "$(awk '/requests in/ {r=$1} /Non-2xx/ {n=$NF} END {print r " / " n}' "$WORK/flood.txt")"
    p99() { sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<< "$1"; }
    figure "/me p99 during the flood / idle (target <= 2)" \
        "$(python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}')" "$(p99 "$busy")" "$(p99 "$idle")")"
    stop_server
    ip link del bw-flood0 2>/dev/null || true
    ip netns del "$FLOOD_NS"
else
    echo "(skipped: the flood needs root for a network namespace)"
fi

echo "==> full middleware stack (limiter in memory); contacts (bench/ratios.sh compares /me with reference servers)"
start_server memory BULWARK_RATE_LIMITS_FILE="$GENEROUS"
account
full=$(wrk_line 32 /api/v1/me -H "Authorization: Bearer $TOKEN")
figure "GET /api/v1/me, 32 connections, full middleware (limiter in memory)" "$full"
rps() { sed -E 's/.*rps=([0-9]+).*/\1/' <<< "$1"; }
create=$(BENCH_TOKEN=$TOKEN wrk_line 8 /api/v1/contacts -s bench/lua/contact_create.lua)
figure "POST /api/v1/contacts (encrypted fields), 8 connections" "$create"
list=$(wrk_line 8 '/api/v1/contacts?limit=50' -H "Authorization: Bearer $TOKEN")
figure "GET /api/v1/contacts?limit=50 (decrypting 50), 8 connections" "$list"
# Encryption's share of a request: its measured cost against the CPU time a request takes at
# the measured rate on this machine's cores (wrk shares them, so the share is an upper bound).
# Throughput with encryption off is the measured rate divided by (1 - share).
share() { python3 -c "import sys; c, n, rps, cores = map(float, sys.argv[1:]); print(f'{100 * c * n * rps / (cores * 1e6):.2f} %')" "$@"; }
figure "encryption's share of a contact create (upper bound)" "$(share "$(crypto seal_us_per_contact)" 1 "$(rps "$create")" "$(nproc)")"
figure "encryption's share of a 50-contact page (upper bound)" "$(share "$(crypto open_us_per_contact)" 50 "$(rps "$list")" "$(nproc)")"
# Issue 14's measure: the same page under a profiler, the share of the server's CPU inside
# contact decryption (`sealed::open` and all it calls). Needs perf (Debian's linux-perf).
if command -v perf > /dev/null && perf record -o /dev/null -- true > /dev/null 2>&1; then
    perf record -F 499 --call-graph dwarf,16384 -p "$PID" -o "$WORK/list.perf" -- sleep 6 > /dev/null 2>&1 &
    profiler=$!
    wrk -t2 -c8 -d8s "$URL/api/v1/contacts?limit=50" -H "Authorization: Bearer $TOKEN" > /dev/null
    wait "$profiler"
    figure "decryption's share of a 50-contact page (perf, target <= 10 %)" \
        "$(perf report -i "$WORK/list.perf" --children --sort sym --stdio -g none 2> /dev/null | awk '/contacts::sealed::open$/ {print $1; exit}')"
fi
stop_server

echo "==> online rotation of a tenant's data key"
ROTATION_CONTACTS=${BENCH_ROTATION_CONTACTS:-100000}
start_server rotation BULWARK_RATE_LIMITS=off
account
TENANT=$(curl -sf "$URL/api/v1/me" -H "Authorization: Bearer $TOKEN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenant_id"])')
# Fill at the rate measured above, with 10 % to spare; the rotation reports the real count.
fill=$(python3 -c "import sys; print(int(int(sys.argv[1]) * 1.1 / max(int(sys.argv[2]), 1)) + 1)" "$ROTATION_CONTACTS" "$(rps "$create")")
BENCH_TOKEN=$TOKEN wrk -t2 -c8 -d"${fill}s" -s bench/lua/contact_create.lua "$URL/api/v1/contacts" > /dev/null
started=$(date +%s.%N)
rotated=$(env -i PATH="$PATH" HOME="$WORK" BULWARK_DATA_DIR="$WORK/rotation" BULWARK_LOG=warn \
    BULWARK_JWT_SECRET="bench-jwt-secret-0123456789abcdef0123456789" \
    BULWARK_MASTER_KEYS="bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" \
    "$BIN" keys rotate-tenant --tenant "$TENANT")
elapsed=$(python3 -c "import sys, time; print(time.time() - float(sys.argv[1]))" "$started")
count=$(sed -E 's/.*re-encrypted ([0-9]+) contact.*/\1/' <<< "$rotated")
figure "rotate-tenant, online (contacts re-encrypted / seconds / rows per s)" \
    "$count / $(printf '%.1f' "$elapsed") / $(python3 -c "import sys; print(int(int(sys.argv[1]) / float(sys.argv[2])))" "$count" "$elapsed")"
stop_server

echo "==> PostgreSQL: login timing"
start_postgres
create_database bench
start_server postgres BULWARK_RATE_LIMITS=off \
    BULWARK_DATABASE_URL="postgres://bulwark_app:app-ci-password@127.0.0.1:$PG_PORT/bench" \
    BULWARK_DATABASE_MIGRATE_URL="postgres://bulwark_owner:owner-ci-password@127.0.0.1:$PG_PORT/bench"
account
login_timing postgres
# Every create appends to the tenant's audit chain, whose head PostgreSQL's statement trigger
# (migration 0022) checks and moves: the write path's cost on this backend.
create_pg() { BENCH_TOKEN=$TOKEN wrk_line 8 /api/v1/contacts -s bench/lua/contact_create.lua; }
figure "POST /api/v1/contacts (encrypted fields), 8 connections, PostgreSQL" "$(create_pg)"
# The same server and database with migration 0008's row trigger put back, then 0022's
# statement trigger again (A/B/A): what the statement trigger costs a create.
pg_bench() { as_service "$PG_BIN/psql" -v ON_ERROR_STOP=1 -q -h "$WORK" -p "$PG_PORT" -U postgres -d bench "$@"; }
pg_bench -c "DROP TRIGGER audit_events_advance_heads ON audit_events" \
    -f migrations/postgres/0008_audit_head_trigger.sql
figure "  the same with 0008's row trigger instead" "$(create_pg)"
pg_bench -c "DROP TRIGGER audit_events_advance_head ON audit_events" \
    -c "DROP FUNCTION bulwark_advance_audit_head()" \
    -c "CREATE TRIGGER audit_events_advance_heads AFTER INSERT ON audit_events
        REFERENCING NEW TABLE AS new_events
        FOR EACH STATEMENT EXECUTE FUNCTION bulwark_advance_audit_heads()"
figure "  and with 0022's statement trigger again" "$(create_pg)"
stop_server

echo "==> limiter on Redis"
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" > /dev/null &
PIDS+=($!)
sleep 0.5
start_server redis BULWARK_RATE_LIMITS_FILE="$GENEROUS" BULWARK_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
account
figure "GET /api/v1/me, 32 connections, limiter on Redis" "$(wrk_line 32 /api/v1/me -H "Authorization: Bearer $TOKEN")"
stop_server

echo "==> a flood of distinct clients (in-memory limiter, defaults)"
start_server keys BULWARK_TRUSTED_PROXIES=127.0.0.1/32
sleep 1
before=$(rss_kib "$PID")
wrk -t2 -c32 -d"${FLOOD_SECONDS}s" -s bench/lua/distinct_clients.lua "$URL/api/v1/me" > "$WORK/keys.txt"
sleep 1
figure "distinct-client flood: requests (each a new client)" "$(awk '/requests in/ {print $1}' "$WORK/keys.txt")"
figure "RSS before / after the distinct-client flood (KiB)" "$before / $(rss_kib "$PID")"
stop_server

echo "==> a ${SOAK_SECONDS}s mixed soak: anonymous memory every 30 s"
start_server soak BULWARK_RATE_LIMITS_FILE="$GENEROUS_ALL"
account
anon_kib() { awk '/^RssAnon/ {print $2}' "/proc/$1/status"; }
samples="$(anon_kib "$PID")"
wrk -t1 -c8 -d"${SOAK_SECONDS}s" "$URL/api/v1/me" -H "Authorization: Bearer $TOKEN" > /dev/null &
soak=($!)
BENCH_TOKEN=$TOKEN wrk -t1 -c4 -d"${SOAK_SECONDS}s" -s bench/lua/contact_create.lua "$URL/api/v1/contacts" > /dev/null &
soak+=($!)
wrk -t1 -c4 -d"${SOAK_SECONDS}s" "$URL/api/v1/contacts?limit=50" -H "Authorization: Bearer $TOKEN" > /dev/null &
soak+=($!)
wrk -t1 -c2 -d"${SOAK_SECONDS}s" -s bench/lua/login.lua "$URL/api/v1/auth/login" > /dev/null &
soak+=($!)
for _ in $(seq $(( SOAK_SECONDS / 30 ))); do sleep 30; samples="$samples $(anon_kib "$PID")"; done
wait "${soak[@]}" || true
figure "RssAnon (KiB) at start and every 30 s of the soak (/me, creates, pages, logins)" "$samples"
figure "idle RSS after the soak (KiB)" "$(rss_kib "$PID")"
stop_server

DATE=$(date -u +%Y-%m-%d)
OUT=bench/results/$DATE.md
{
    echo
    echo "# Benchmarks $DATE"
    echo
    echo "\`bench/run.sh\` (release build, loopback, wrk; $(nproc) CPUs, $(uname -m); each run ${DURATION}; Bulwark $(git rev-parse --short HEAD 2>/dev/null || echo '?'))."
    echo
    echo '```'
    cat "$FIGURES"
    echo '```'
} >> "$OUT"
echo "==> appended to $OUT"
