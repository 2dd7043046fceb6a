#!/usr/bin/env bash
# Webhook figures of issue 16, on SQLite, with the release binary:
#  1. deliveries per second through the outbox to a receiver on loopback: BENCH_DELIVERIES
#     contacts (default 5,000) are created while the receiver is down (each first attempt
#     fails, its retry is an hour away), the server stops, every delivery is made due, and the
#     server restarts with the receiver up: the drain's rate is the figure (signing, the
#     guarded resolver, the POST, the write-back; BENCH_WEBHOOK_WORKERS at once, default 8,
#     the shipped default);
#  2. POST /hooks/stripe, 8 connections: latency percentiles of the route around its
#     signature check (one signed event replayed: the signature is verified on every request,
#     then the receipt says `duplicate`), and the signature check alone from the bench
#     binary `provider_signatures` (p50/p99 of single calls).
# The receiver (bench/webhook_receiver.py, asyncio) shares the two cores: it is measured too.
#
#   bench/webhooks.sh            # appends to bench/results/<date>.md
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DELIVERIES=${BENCH_DELIVERIES:-5000}
WORKERS=${BENCH_WEBHOOK_WORKERS:-8}
WORK=$(mktemp -d /tmp/bulwark-webhook-bench.XXXXXX)
PIDS=()
source scripts/services.sh
cleanup() { stop_services; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
services_install wrk
cargo build --release --locked --quiet
BIN=$ROOT/target/release/bulwark

HIGH=$WORK/high-limits.toml
for category in read write sensitive auth refresh; do
    printf '[[rule]]\nname = "%s-high"\nmatch = { category = "%s" }\nlimit = 1000000000\nwindow = "1m"\nkey = "ip+user"\n\n' \
        "$category" "$category" >> "$HIGH"
done
printf '[[rule]]\nname = "payments-high"\nmatch = { family = "payment_webhooks" }\nlimit = 1000000000\nwindow = "1m"\nkey = "ip"\n\n' >> "$HIGH"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
RECEIVER_PORT=$(free_port)
STRIPE_SECRET=whsec_bench_0123456789abcdef
mkdir -p "$WORK/data"
serve() {
    env -i PATH="$PATH" HOME="$WORK" BULWARK_DATA_DIR="$WORK/data" BULWARK_LOG=warn \
        BULWARK_LISTEN="127.0.0.1:$PORT" BULWARK_METRICS_LISTEN="127.0.0.1:0" \
        BULWARK_RATE_LIMITS_FILE="$HIGH" BULWARK_WEBHOOK_ALLOW_PRIVATE=127.0.0.0/8 \
        BULWARK_WEBHOOK_WORKERS="$WORKERS" BULWARK_WEBHOOK_RETRY_SCHEDULE=1h \
        BULWARK_STRIPE_WEBHOOK_SECRETS="$STRIPE_SECRET" \
        "$BIN" serve >> "$WORK/server.log" 2>&1 &
    SERVER=$!
    PIDS+=("$SERVER")
    for _ in $(seq 200); do curl -sf "$URL/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
}
serve

EMAIL=owner@webhook-bench.example PASSWORD="correct horse battery staple 7"
curl -sf "$URL/api/v1/auth/signup" -H 'content-type: application/json' \
    -d "{\"tenant_name\":\"Hooks\",\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\",\"display_name\":\"Owner\"}" >/dev/null
TOKEN=$(curl -sf "$URL/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -sf "$URL/api/v1/webhooks" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d "{\"url\":\"http://127.0.0.1:$RECEIVER_PORT/hook\",\"events\":[\"contact.created\"]}" >/dev/null

# 1. Queue: contacts while nobody listens (first attempts fail at once, retries an hour away).
python3 - "$URL" "$TOKEN" "$DELIVERIES" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
url, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def create(i):
    body = json.dumps({"first_name": "Hook", "email": f"h{i}@bench.example"}).encode()
    req = urllib.request.Request(f"{url}/api/v1/contacts", body, {
        "authorization": f"Bearer {token}", "content-type": "application/json"})
    urllib.request.urlopen(req).read()
with ThreadPoolExecutor(8) as pool:
    list(pool.map(create, range(n)))
PY
sleep 3
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
queued=$(python3 - "$WORK/data/bulwark.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE webhook_outbox SET due_at = 0, lease_until = NULL")
db.commit()
print(db.execute("SELECT count(*) FROM webhook_outbox").fetchone()[0])
PY
)
python3 bench/webhook_receiver.py "$RECEIVER_PORT" "$WORK/receiver.stats" &
PIDS+=($!)
sleep 0.5
serve
for _ in $(seq 600); do
    read -r got first last < "$WORK/receiver.stats" || true
    [ "${got:-0}" -ge "$queued" ] && break
    sleep 0.5
done
read -r got first last < "$WORK/receiver.stats"
DRAIN=$(python3 -c "import sys; n, a, b = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]); print(f'delivered={n} of {int(sys.argv[4])} seconds={b - a:.1f} deliveries_per_s={n / max(b - a, 1e-9):.0f}')" "$got" "$first" "$last" "$queued")

# 2. The Stripe hook: one signed event, replayed (verified every time, then `duplicate`).
TENANT=$(curl -sf "$URL/api/v1/me" -H "Authorization: Bearer $TOKEN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenant_id"])')
COMPANY=$(curl -sf "$URL/api/v1/companies" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d '{"name":"Payer"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
python3 - "$STRIPE_SECRET" "$TENANT" "$COMPANY" "$WORK/stripe.lua" <<'PY'
import hashlib, hmac, json, sys, time
secret, tenant, company, out = sys.argv[1:]
body = json.dumps({"id": "evt_bench", "object": "event", "type": "payment_intent.succeeded",
    "created": int(time.time()), "data": {"object": {"id": "pi_bench", "object": "payment_intent",
    "amount_received": 4200, "currency": "eur", "metadata": {"tenant_id": tenant, "company_id": company}}}})
t = int(time.time())
sig = hmac.new(secret.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
with open(out, "w") as f:
    f.write('dofile("bench/lua/report.lua")\n')
    f.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n')
    f.write('wrk.headers["Content-Type"] = "application/json"\n')
    f.write(f'wrk.headers["Stripe-Signature"] = "t={t},v1={sig}"\n')
PY
STRIPE=$(wrk -t1 -c8 -d10s --latency -s "$WORK/stripe.lua" "$URL/hooks/stripe" | grep RESULT | sed 's/RESULT //')
VERIFY=$(cargo bench --locked --quiet --bench provider_signatures 2>/dev/null | grep '^verify')
{
    echo "# Webhooks $(date -u +%Y-%m-%d)"
    echo
    echo "\`bench/webhooks.sh\` on $(nproc) CPUs, Bulwark $(git rev-parse --short HEAD), SQLite, $WORKERS delivery workers; the receiver is bench/webhook_receiver.py (asyncio, 204) on the same machine."
    echo
    echo '```'
    echo "outbox drain to a loopback receiver: $DRAIN"
    echo "POST /hooks/stripe, one signed event replayed, 8 connections: $STRIPE"
    echo "$VERIFY"
    echo '```'
} | tee -a "bench/results/$(date -u +%Y-%m-%d).md"
