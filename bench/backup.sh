#!/usr/bin/env bash
# Backup and restore of many contacts on each backend (RTO evidence): the time, the archive's
# size and the peak resident memory of `backup create`, `backup verify` and `restore`, with
# `serve` of the release build on loopback. Appends to bench/results/<date>.md.
#
#   bench/backup.sh                              # 100,000 contacts (~12 minutes)
#   BENCH_BACKUP_CONTACTS=10000 bench/backup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CONTACTS=${BENCH_BACKUP_CONTACTS:-100000}

WORK=$(mktemp -d /tmp/bulwark-backup-bench.XXXXXX)
PIDS=()
source scripts/services.sh
trap 'stop_services; rm -rf "$WORK"' EXIT INT TERM
services_install wrk age time
start_postgres

echo "==> release build"
cargo build --release --locked --quiet
BIN=$ROOT/target/release/bulwark
age-keygen -o "$WORK/identity.txt" 2>/dev/null
RECIPIENT=$(age-keygen -y "$WORK/identity.txt")
RESULTS=bench/results/$(date -u +%F).md
FIGURES=$WORK/figures
: > "$FIGURES"
figure() { printf '%-58s %s\n' "$1" "$2" | tee -a "$FIGURES"; }

# The settings of an instance on database $1 (a SQLite path, or a PostgreSQL database name).
settings() {
    local db=$1
    echo BULWARK_DATA_DIR="$WORK/data-$db" BULWARK_LOG=warn \
        BULWARK_JWT_SECRET=bench-jwt-secret-0123456789abcdef0123456789 \
        BULWARK_MASTER_KEYS=bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= \
        BULWARK_BACKUP_RECIPIENTS="$RECIPIENT"
    case $db in
        pg-*) echo BULWARK_DATABASE_URL="${BULWARK_TEST_PG_APP_URL}/$db" \
                   BULWARK_DATABASE_MIGRATE_URL="${BULWARK_TEST_PG_OWNER_URL%/*}/$db" ;;
    esac
}
# measured NAME DB ARGS...: runs the CLI, records its wall time and peak RSS.
measured() {
    local name=$1 db=$2; shift 2
    local start end
    start=$(date +%s.%N)
    env -i PATH="$PATH" HOME="$WORK" $(settings "$db") /usr/bin/time -f '%M' -o "$WORK/rss" "$BIN" "$@" > "$WORK/out" 2>&1 \
        || { cat "$WORK/out"; exit 1; }
    end=$(date +%s.%N)
    figure "$name" "$(python3 -c "print(f'{$end - $start:.1f} s')"), peak RSS $(( $(cat "$WORK/rss") / 1024 )) MiB"
}

for backend in sqlite pg; do
    src=$backend-source
    [ "$backend" = pg ] && create_database "$src"
    port=$(free_port)
    env -i PATH="$PATH" HOME="$WORK" $(settings "$src") BULWARK_LISTEN="127.0.0.1:$port" \
        BULWARK_RATE_LIMITS=off "$BIN" serve > "$WORK/serve.out" 2>&1 &
    PIDS+=("$!")
    url="http://127.0.0.1:$port"
    for _ in $(seq 200); do curl -sf "$url/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
    curl -sf "$url/api/v1/auth/signup" -H 'content-type: application/json' \
        -d '{"tenant_name":"Bench","email":"bench@example.com","password":"correct horse battery staple","display_name":"Bench"}' >/dev/null
    token=$(curl -sf "$url/api/v1/auth/login" -H 'content-type: application/json' \
        -d '{"email":"bench@example.com","password":"correct horse battery staple"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    echo "==> $backend: filling $CONTACTS contacts"
    # wrk runs for a time, not a count: fill in rounds until the count is reached.
    have=0
    while [ "$have" -lt "$CONTACTS" ]; do
        out=$(BENCH_TOKEN=$token wrk -t2 -c8 -d20s -s bench/lua/contact_create.lua "$url/api/v1/contacts")
        sent=$(sed -nE 's/^ *([0-9]+) requests in.*/\1/p' <<< "$out")
        failed=$(sed -nE 's/^ *Non-2xx or 3xx responses: ([0-9]+).*/\1/p' <<< "$out")
        have=$(( have + sent - ${failed:-0} ))
        echo "    $have contacts"
    done
    measured "$backend: backup create ($have contacts)" "$src" backup create --to "$WORK/$backend.age"
    figure "$backend: archive size" "$(du -m "$WORK/$backend.age" | cut -f1) MiB"
    measured "$backend: backup verify" "$src" backup verify --from "$WORK/$backend.age" --identity "$WORK/identity.txt"
    kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
    for target in sqlite pg; do
        dst=$target-from-$backend
        [ "$target" = pg ] && dst=pg-from-$backend && create_database "$dst"
        measured "$backend -> $target: restore (migrate, write, count, verify the audit log)" "$dst" \
            restore --from "$WORK/$backend.age" --identity "$WORK/identity.txt"
    done
done

{
    echo
    echo "## Backup and restore ($(date -u +%FT%TZ), bench/backup.sh, $CONTACTS contacts, $(nproc) cores)"
    echo
    echo '```'
    cat "$FIGURES"
    echo '```'
} >> "$RESULTS"
echo "==> appended to $RESULTS"
