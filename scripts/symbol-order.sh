#!/usr/bin/env bash
# Regenerates link/symbol-order.txt: the functions the release binary runs while it starts and
# idles, then those a signed-in user's first requests run, in that order. The release build
# hands the file to the linker (build.rs), which places those functions first and together in
# `.text`, so an idle server's text pages are a few contiguous megabytes instead of 64 KiB
# fault-around windows scattered over 23 MB (issue 14: idle RSS; docs/ARCHITECTURE.md,
# "Idle memory").
#
#   scripts/symbol-order.sh     # ~4 minutes after the release build; commit the file it writes
#
# Re-run it when bench/run.sh's "link/symbol-order.txt functions found in the binary" line
# says that much of the file no longer names a function of the binary (a renamed or re-hashed
# symbol is simply skipped by the linker, so a stale file costs memory, never correctness).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(mktemp -d /tmp/bulwark-order.XXXXXX)
PIDS=()
source scripts/services.sh
cleanup() { stop_services; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
services_install valgrind callgrind_control:valgrind

cargo build --release --locked --quiet
BIN=$ROOT/target/release/bulwark
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
OUT=$WORK/callgrind.out
# The same environment as bench/run.sh's servers, under callgrind (about 50 times slower).
env -i PATH="$PATH" HOME="$WORK" \
    BULWARK_LISTEN="127.0.0.1:$PORT" BULWARK_METRICS_LISTEN="127.0.0.1:$(free_port)" \
    BULWARK_DATA_DIR="$WORK/data" BULWARK_LOG=warn \
    BULWARK_JWT_SECRET="order-jwt-secret-0123456789abcdef0123456789" \
    BULWARK_MASTER_KEYS="order:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" \
    valgrind --tool=callgrind --demangle=no --compress-strings=no --compress-pos=no \
    --callgrind-out-file="$OUT" "$BIN" serve > "$WORK/server.out" 2> "$WORK/server.err" &
PID=$!
PIDS+=("$PID")
echo "==> start-up and idle under callgrind"
for _ in $(seq 600); do grep -qs 'listening on' "$WORK/server.err" && break; sleep 0.5; done
grep -qs 'listening on' "$WORK/server.err" || { tail -20 "$WORK/server.err"; exit 1; }
# Past the start-up settle (2 s) and one maintenance tick (10 s), in the slowed-down clock.
sleep 40
callgrind_control --dump=idle "$PID" > /dev/null
for _ in $(seq 100); do ls "$OUT".* > /dev/null 2>&1 && break; sleep 0.5; done

echo "==> a user's first requests"
json=(-H 'content-type: application/json')
curl -sf -m 60 "$URL/healthz" > /dev/null
curl -sf -m 120 "$URL/api/v1/auth/signup" "${json[@]}" \
    -d '{"tenant_name":"Order","email":"owner@order.example","password":"correct horse battery staple 7","display_name":"Owner"}' > /dev/null
TOKEN=$(curl -sf -m 120 "$URL/api/v1/auth/login" "${json[@]}" \
    -d '{"email":"owner@order.example","password":"correct horse battery staple 7"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
auth=(-H "Authorization: Bearer $TOKEN")
for i in 1 2 3; do
    curl -sf -m 60 "$URL/api/v1/me" "${auth[@]}" > /dev/null
    curl -sf -m 60 "$URL/api/v1/contacts" "${auth[@]}" "${json[@]}" \
        -d "{\"first_name\":\"Order\",\"last_name\":\"Contact\",\"email\":\"c$i@order.example\",\"phone\":\"+15550000$i\"}" > /dev/null
done
curl -sf -m 60 "$URL/api/v1/contacts?limit=50" "${auth[@]}" > /dev/null
kill -INT "$PID"
wait "$PID" || true

# Functions of the binary itself with any cost in a part; the idle part's first.
python3 - "$OUT" "$BIN" > link/symbol-order.txt <<'EOF'
import glob, sys
out, binary = sys.argv[1], sys.argv[2]
def functions(path):
    names, ob, cob = set(), None, None
    for line in open(path):
        if line.startswith("ob="):
            ob = line[3:].strip()
        elif line.startswith("cob="):
            cob = line[4:].strip()
        elif line.startswith(("fn=", "cfn=")):
            obj = ob if line.startswith("fn=") else (cob or ob)
            if line.startswith("cfn="):
                cob = None
            name = line.split("=", 1)[1].strip().split("'")[0]  # callgrind's recursion mark
            if obj == binary and not name.startswith("0x") and " " not in name:
                names.add(name)
    return names
idle = functions(glob.glob(out + ".*")[0])
requests = functions(out) - idle
for name in sorted(idle) + sorted(requests):
    print(name)
print(f"{len(idle)} start-up and idle functions, {len(requests)} more for requests", file=sys.stderr)
EOF
echo "wrote link/symbol-order.txt"
