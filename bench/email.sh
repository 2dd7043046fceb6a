#!/usr/bin/env bash
# Email figures of issue 15, on SQLite, with the release binary:
#  1. POST /api/v1/emails accepted per second (one recipient, 8 connections), no relay
#     configured, so sending is measured alone;
#  2. the sends go on until BENCH_QUEUE messages (default 100,000) are queued;
#  3. the server restarts with the tests' real SMTP server (aiosmtpd, STARTTLS, loopback) as
#     its relay: delivered per second with DKIM signing and the server's CPU per message over
#     BENCH_DELIVERY seconds, and its resident memory with the full queue behind it (the
#     queue lives in the database; workers hold only the messages they have claimed).
# The SMTP server is a Python process on the same two cores: it is part of what is measured.
#
#   bench/email.sh            # appends to bench/results/<date>.md
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${BENCH_DURATION:-10s}
QUEUE=${BENCH_QUEUE:-100000}
DELIVERY=${BENCH_DELIVERY:-30}
WORK=$(mktemp -d /tmp/bulwark-email-bench.XXXXXX)
PIDS=()
source scripts/services.sh
source bench/rules.sh
cleanup() { stop_services; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
services_install wrk openssl
cargo build --release --locked --quiet
BIN=$ROOT/target/release/bulwark
start_mail

HIGH=$WORK/high-limits.toml
generous "$HIGH" read write sensitive auth refresh
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
mkdir -p "$WORK/data"
# serve [relay settings...]: starts the server on the bench's data directory.
serve() {
    env -i PATH="$PATH" HOME="$WORK" BULWARK_DATA_DIR="$WORK/data" BULWARK_LOG=warn \
        BULWARK_LISTEN="127.0.0.1:$PORT" BULWARK_METRICS_LISTEN="127.0.0.1:0" \
        BULWARK_RATE_LIMITS_FILE="$HIGH" BULWARK_EMAIL_HOURLY_LIMIT=100000000 \
        BULWARK_EMAIL_DAILY_LIMIT=1000000000 BULWARK_DNS_RESOLVER="$BULWARK_TEST_DNS" \
        BULWARK_EMAIL_WORKERS=${BENCH_EMAIL_WORKERS:-32} "$@" \
        "$BIN" serve >> "$WORK/server.log" 2>&1 &
    SERVER=$!
    PIDS+=("$SERVER")
    for _ in $(seq 200); do curl -sf "$URL/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
}
serve

EMAIL=owner@email-bench.example PASSWORD="correct horse battery staple 7"
curl -sf "$URL/api/v1/auth/signup" -H 'content-type: application/json' \
    -d "{\"tenant_name\":\"Mail\",\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\",\"display_name\":\"Owner\"}" >/dev/null
TOKEN=$(curl -sf "$URL/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
DOMAIN=mail.email-bench.example
DOMAIN_JSON=$(curl -sf "$URL/api/v1/email/domains" -H "authorization: Bearer $TOKEN" \
    -H 'content-type: application/json' -d "{\"domain\":\"$DOMAIN\"}")
python3 - "$DOMAIN_JSON" "$BULWARK_TEST_DNS_DIR" <<'PY'
import json, os, sys
for record in json.loads(sys.argv[1])["dns_records"]:
    with open(os.path.join(sys.argv[2], f"{record['name']}.{record['type']}"), "w") as f:
        f.write(record["value"] + "\n")
PY
DOMAIN_ID=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$DOMAIN_JSON")
curl -sf -X POST "$URL/api/v1/email/domains/$DOMAIN_ID/verify" -H "authorization: Bearer $TOKEN" | grep -q verified

cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER/status"; }
delivered() { find "$BULWARK_TEST_SMTP_DIR" -name '*.json' | wc -l; }
send_for() {
    BENCH_TOKEN=$TOKEN BENCH_DOMAIN=$DOMAIN wrk -t1 -c8 -d"$1" -s bench/lua/email_send.lua \
        "$URL/api/v1/emails" | grep RESULT | sed 's/RESULT //'
}

# 1. Sending alone.
RSS_EMPTY=$(rss_mib)
ACCEPT=$(send_for "$DURATION")
accepted=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<< "$ACCEPT")
rate=$(sed -E 's/.*rps=([0-9]+).*/\1/' <<< "$ACCEPT")
# 2. Fill the queue.
while [ "$accepted" -lt "$QUEUE" ]; do
    more=$(( (QUEUE - accepted) / (rate > 0 ? rate : 100) + 1 ))
    [ "$more" -gt 120 ] && more=120
    got=$(send_for "${more}s")
    accepted=$(( accepted + $(sed -E 's/.*requests=([0-9]+).*/\1/' <<< "$got") ))
done
RSS_QUEUED=$(rss_mib)
# 3. Delivery with the queue behind it.
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
serve BULWARK_SMTP_URL="smtp://localhost:$BULWARK_TEST_SMTP_PORT" BULWARK_SMTP_CA_FILE="$BULWARK_TEST_SMTP_CA"
before=$(delivered); start=$(date +%s.%N); ticks0=$(cpu_ticks)
sleep "$DELIVERY"
after=$(delivered); end=$(date +%s.%N); ticks1=$(cpu_ticks)
RSS_DELIVERING=$(rss_mib)
hz=$(getconf CLK_TCK)
FIGURES=$(python3 - "$start" "$end" "$((after - before))" "$ticks0" "$ticks1" "$hz" <<'PY'
import sys
start, end, n, t0, t1, hz = map(float, sys.argv[1:])
print(f"delivered_per_s={n / (end - start):.0f} messages={int(n)} seconds={end - start:.1f} "
      f"server_cpu_ms_per_message={(t1 - t0) / hz * 1000 / max(n, 1):.2f}")
PY
)
{
    echo "# Email $(date -u +%Y-%m-%d)"
    echo
    echo "\`bench/email.sh\` on $(nproc) CPUs, Bulwark $(git rev-parse --short HEAD), SQLite, ${BENCH_EMAIL_WORKERS:-32} delivery workers; the SMTP server is the tests' aiosmtpd (STARTTLS) on the same machine; every message DKIM-signed (RSA-2048)."
    echo
    echo '```'
    echo "POST /api/v1/emails, 1 recipient, 8 connections, no relay: $ACCEPT"
    echo "delivery with $accepted queued, over ${DELIVERY}s: $FIGURES"
    echo "resident memory: ${RSS_EMPTY} MiB empty, ${RSS_QUEUED} MiB after queueing $accepted, ${RSS_DELIVERING} MiB delivering with them queued"
    echo '```'
} | tee -a "bench/results/$(date -u +%Y-%m-%d).md"
