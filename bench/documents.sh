#!/usr/bin/env bash
# Documents: upload and download of one 200 MiB file through the release build on loopback,
# on the local disk and in an S3-compatible server (moto, as in the tests: a Python server,
# so the S3 figures measure it as much as Bulwark), with the peak resident memory of `serve`
# during each, and the STREAM encryption's own rate (benches/document_stream.rs) for its
# share. Appends to bench/results/<date>.md.
#
#   bench/documents.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MIB=${BENCH_DOCUMENT_MIB:-200}

WORK=$(mktemp -d /tmp/bulwark-documents-bench.XXXXXX)
PIDS=()
source scripts/services.sh
trap 'stop_services; rm -rf "$WORK"' EXIT INT TERM
services_install
start_s3

echo "==> release build"
cargo build --release --locked --quiet
BIN=$ROOT/target/release/bulwark
RESULTS=bench/results/$(date -u +%F).md
FIGURES=$WORK/figures
: > "$FIGURES"
figure() { printf '%-58s %s\n' "$1" "$2" | tee -a "$FIGURES"; }

stream=$(cargo bench --locked --quiet --bench document_stream 2>/dev/null | sed -n 's/^RESULT //p')
seal=$(sed -nE 's/.*seal_mib_s=([0-9]+).*/\1/p' <<< "$stream")
open=$(sed -nE 's/.*open_mib_s=([0-9]+).*/\1/p' <<< "$stream")
figure "STREAM AES-256-GCM, one core: seal / open" "$seal / $open MiB/s"

# The file: text (an allowed type), written once.
python3 -c "
import sys
line = (b'abcdefghijklmnopqrstuvwxyz' * 40)[:1023] + b'\n'
with open('$WORK/big.txt', 'wb') as f:
    for _ in range($MIB * 1024): f.write(line)
"

hwm() { sed -nE 's/^VmHWM:\s+([0-9]+) kB/\1/p' "/proc/$1/status"; }
# Resets the peak RSS counter of a process (Linux: write 5 to clear_refs).
reset_hwm() { echo 5 > "/proc/$1/clear_refs"; }

for store in file s3; do
    data=$WORK/data-$store
    mkdir -p "$data"
    extra=()
    if [ "$store" = s3 ]; then
        extra=(BULWARK_STORAGE_URL=s3://bulwark-test/bench BULWARK_S3_ENDPOINT="$BULWARK_TEST_S3_ENDPOINT"
               BULWARK_S3_ACCESS_KEY_ID=test BULWARK_S3_SECRET_ACCESS_KEY=test-secret
               BULWARK_S3_FORCE_PATH_STYLE=on)
    fi
    port=$(free_port)
    env -i PATH="$PATH" HOME="$WORK" BULWARK_DATA_DIR="$data" BULWARK_LOG=warn \
        BULWARK_LISTEN="127.0.0.1:$port" BULWARK_METRICS_LISTEN="127.0.0.1:$(free_port)" \
        BULWARK_RATE_LIMITS=off BULWARK_REQUEST_TIMEOUT=600s \
        BULWARK_DOCUMENT_MAX_BYTES=$(( (MIB + 1) * 1024 * 1024 )) "${extra[@]}" \
        "$BIN" serve > "$WORK/serve-$store.out" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    url="http://127.0.0.1:$port"
    for _ in $(seq 200); do curl -sf "$url/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
    curl -sf "$url/api/v1/auth/signup" -H 'content-type: application/json' \
        -d '{"tenant_name":"Bench","email":"bench@example.com","password":"correct horse battery staple","display_name":"Bench"}' >/dev/null
    token=$(curl -sf "$url/api/v1/auth/login" -H 'content-type: application/json' \
        -d '{"email":"bench@example.com","password":"correct horse battery staple"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    contact=$(curl -sf "$url/api/v1/contacts" -H "authorization: Bearer $token" -H 'content-type: application/json' \
        -d '{"first_name":"Ada"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    idle=$(hwm "$pid")

    reset_hwm "$pid"
    start=$(date +%s.%N)
    id=$(curl -sf "$url/api/v1/documents" -H "authorization: Bearer $token" \
        -F "contact_id=$contact" -F "file=@$WORK/big.txt" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    end=$(date +%s.%N)
    figure "$store: upload $MIB MiB" "$(python3 -c "print(f'{$MIB / ($end - $start):.0f} MiB/s ({$end - $start:.1f} s)')"), peak RSS $(( $(hwm "$pid") / 1024 )) MiB (idle $(( idle / 1024 )) MiB)"

    reset_hwm "$pid"
    start=$(date +%s.%N)
    curl -sf "$url/api/v1/documents/$id/content" -H "authorization: Bearer $token" -o "$WORK/back.txt"
    end=$(date +%s.%N)
    cmp -s "$WORK/big.txt" "$WORK/back.txt" || { echo "the download differs"; exit 1; }
    figure "$store: download $MIB MiB" "$(python3 -c "print(f'{$MIB / ($end - $start):.0f} MiB/s ({$end - $start:.1f} s)')"), peak RSS $(( $(hwm "$pid") / 1024 )) MiB"
    rm -f "$WORK/back.txt"
    kill "$pid"; wait "$pid" 2>/dev/null || true
done

{
    echo
    echo "## Documents ($(date -u +%FT%TZ), bench/documents.sh, $MIB MiB, $(nproc) cores)"
    echo
    echo '```'
    cat "$FIGURES"
    echo '```'
} >> "$RESULTS"
echo "==> appended to $RESULTS"
