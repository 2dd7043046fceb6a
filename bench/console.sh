#!/usr/bin/env bash
# The console's heaviest pages, as issue 17 asks: the contacts page with 50 rows (every
# sensitive field sealed, masked on the page) and the pipeline board with 200 deals, through
# the release build on SQLite and on PostgreSQL, signed in with a console cookie. wrk with one
# connection (-t1 -c1, 8 s after 2 s of warm-up) gives each page's time alone: p50 and p99.
# Also the compressed size of the console's script and stylesheet. Appends to
# bench/results/<date>.md.
#
#   bench/console.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(mktemp -d /tmp/bulwark-console-bench.XXXXXX)
PIDS=()
source scripts/services.sh
trap 'stop_services; rm -rf "$WORK"' EXIT INT TERM
services_install wrk
start_postgres

echo "==> release build"
BIN=${BULWARK_BENCH_BIN:-$ROOT/target/release/bulwark}
[ -n "${BULWARK_BENCH_BIN:-}" ] || cargo build --release --locked --quiet
RESULTS=bench/results/$(date -u +%F).md
FIGURES=$WORK/figures
: > "$FIGURES"
figure() { printf '%-52s %s\n' "$1" "$2" | tee -a "$FIGURES"; }

size() { gzip -9c "$1" | wc -c; }
css=$(size src/console/assets/console.css)
js=$(size src/console/assets/console.js)
figure "console JS + CSS, gzip -9" "$((js + css)) bytes (JS $js, CSS $css)"

# wrk's latency distribution line for a percentile, in ms.
percentile() { awk -v p="$1" '$1 == p { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 } printf "%.2f", v }' "$2"; }

for backend in sqlite postgres; do
    port=$(free_port)
    url="http://127.0.0.1:$port"
    db=()
    if [ "$backend" = postgres ]; then
        create_database console_bench
        db=(BULWARK_DATABASE_URL="postgres://bulwark_app:app-ci-password@127.0.0.1:$PG_PORT/console_bench"
            BULWARK_DATABASE_MIGRATE_URL="postgres://bulwark_owner:owner-ci-password@127.0.0.1:$PG_PORT/console_bench")
    fi
    mkdir -p "$WORK/$backend"
    env -i PATH="$PATH" HOME="$WORK" BULWARK_DATA_DIR="$WORK/$backend" BULWARK_LOG=warn \
        BULWARK_LISTEN="127.0.0.1:$port" BULWARK_METRICS_LISTEN="127.0.0.1:$(free_port)" \
        BULWARK_PUBLIC_URL="$url" BULWARK_RATE_LIMITS=off \
        BULWARK_JWT_SECRET=console-bench-jwt-secret-0123456789abcdef \
        BULWARK_MASTER_KEYS=bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= "${db[@]}" \
        "$BIN" serve > "$WORK/serve-$backend.out" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 300); do curl -sf "$url/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    curl -sf "$url/healthz" >/dev/null || { tail -20 "$WORK/serve-$backend.out"; exit 1; }
    # 50 contacts with every field (the sealed ones too), 200 deals on one pipeline; then a
    # console sign-in: the cookie.
    cookie=$(python3 - "$url" <<'PY'
import json, sys, urllib.parse, urllib.request
base = sys.argv[1]
def call(path, body, token=None):
    request = urllib.request.Request(base + path, json.dumps(body).encode(), method="POST")
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(request) as response:
        return json.load(response)
email, password = "bench@example.com", "correct horse battery staple 7"
call("/api/v1/auth/signup", {"tenant_name": "Bench", "email": email, "password": password, "display_name": "Bench"})
token = call("/api/v1/auth/login", {"email": email, "password": password})["access_token"]
for n in range(50):
    call("/api/v1/contacts", {"first_name": f"First{n}", "last_name": f"Last{n}", "email": f"c{n}@example.com",
                              "phone": f"+1555000{n:04d}", "ssn": f"123-45-{n:04d}", "date_of_birth": "1980-01-02"}, token)
pipeline = call("/api/v1/pipelines", {"name": "Sales", "stages": [{"name": s} for s in ("Lead", "Proposal", "Negotiation", "Closing")]}, token)
for n in range(200):
    call("/api/v1/deals", {"title": f"Deal {n}", "pipeline_id": pipeline["id"], "currency": "EUR", "amount_minor": n * 1000}, token)
class Keep(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None
form = urllib.parse.urlencode({"email": email, "password": password}).encode()
request = urllib.request.Request(base + "/login", form, method="POST")
request.add_header("content-type", "application/x-www-form-urlencoded")
request.add_header("origin", base)
request.add_header("sec-fetch-site", "same-origin")
try:
    urllib.request.build_opener(Keep).open(request)
except urllib.error.HTTPError as answer:
    print(answer.headers["set-cookie"].split(";")[0])
PY
)
    for page in /contacts /deals; do
        check=$(curl -s -o "$WORK/page.html" -w '%{http_code}' -H "cookie: $cookie" "$url$page")
        [ "$check" = 200 ] || { echo "$page answered $check"; exit 1; }
        # Table rows less the heading's, or the board's cards.
        rows=$(( $(grep -c '<tr>' "$WORK/page.html" || true) - 1 ))
        [ "$page" = /deals ] && rows=$(grep -c '<article class="deal">' "$WORK/page.html" || true)
        wrk -t1 -c1 -d2s -H "cookie: $cookie" "$url$page" > /dev/null
        wrk -t1 -c1 -d8s --latency -H "cookie: $cookie" "$url$page" > "$WORK/wrk.txt"
        rps=$(awk '/Requests\/sec/ { print $2 }' "$WORK/wrk.txt")
        figure "$backend $page ($rows records)" "p50 $(percentile 50% "$WORK/wrk.txt") ms, p99 $(percentile 99% "$WORK/wrk.txt") ms, $rps pages/s on one connection"
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
done

{
    echo
    echo "# Console pages ($(date -u +%F), $(git rev-parse --short HEAD), release, $(nproc) CPUs, loopback)"
    echo
    echo '`bench/console.sh`: wrk -t1 -c1, 8 s after 2 s of warm-up, server unpinned, limiter off.'
    echo
    echo '```'
    cat "$FIGURES"
    echo '```'
} >> "$RESULTS"
echo "==> appended to $RESULTS"
