#!/usr/bin/env bash
# Property-based API fuzzing with schemathesis against a live Bulwark on SQLite: every
# operation of /api/openapi.json, once with a user's token and once with a scoped API key.
# Zero failures required. Part of scripts/test.sh; runs on its own too:
#
#   scripts/api-fuzz.sh [path/to/bulwark]      # default target/debug/bulwark
#
# The seed is fixed so a failure reproduces; change it each release (SEED below).
#
# Every check runs, `positive_data_acceptance` included (schema-valid requests are not
# refused); tests/api/schemathesis.toml names the operations whose rules no schema can state
# (issued cursors, existing references, password strength, signatures) and so may answer 422.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${1:-$ROOT/target/debug/bulwark}
SEED=${BULWARK_FUZZ_SEED:-20261123}
EXAMPLES=${BULWARK_FUZZ_EXAMPLES:-25}
SCHEMATHESIS_VERSION=4.32.5

VENV=$ROOT/target/api-fuzz-venv
if [ ! -x "$VENV/bin/schemathesis" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

WORK=$(mktemp -d /tmp/bulwark-api-fuzz.XXXXXX)
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null || true; [ -n "${BULWARK_FUZZ_KEEP:-}" ] && cp "$WORK/server.out" "$WORK/server.err" /tmp/ ; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(port)
URL=http://127.0.0.1:$PORT
# Development profile: fast Argon2 parameters and no rate limits, so the fuzzer measures the
# API and not the limiter (which has its own tests). Step-ups last the whole run.
env -i PATH="$PATH" HOME="$WORK" \
    BULWARK_LISTEN="127.0.0.1:$PORT" BULWARK_METRICS_LISTEN="127.0.0.1:$(port)" \
    BULWARK_DATA_DIR="$WORK" BULWARK_LOG=${BULWARK_FUZZ_LOG:-warn} BULWARK_RATE_LIMITS=off \
    BULWARK_ARGON2_MEMORY_KIB=1024 BULWARK_ARGON2_ITERATIONS=1 BULWARK_STEP_UP_SECONDS=3600 \
    BULWARK_JWT_SECRET="api-fuzz-jwt-secret-0123456789abcdef0123" \
    BULWARK_MASTER_KEYS="fuzz:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" \
    "$BIN" serve > "$WORK/server.out" 2> "$WORK/server.err" &
SERVER=$!

CREDENTIALS=$(python3 tests/api/setup.py "$URL")
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$CREDENTIALS" "$1"; }
TOKEN=$(field token)
API_KEY=$(field api_key)

export SCHEMATHESIS_HOOKS=tests.api.hooks
export PYTHONPATH=$ROOT
fuzz() {
    local who=$1 credential=$2; shift 2
    echo "--- as $who"
    "$VENV/bin/schemathesis" --config-file tests/api/schemathesis.toml run "$URL/api/openapi.json" \
        --checks all \
        --seed "$SEED" --max-examples "$EXAMPLES" \
        --header "Authorization: Bearer $credential" \
        --request-timeout 30 --no-color --output-sanitize true \
        "$@"
}
# The two runs fuzz two tenants (tests/api/setup.py) and run at once: schemathesis generates
# on one core, so one run at a time left the other core mostly idle (189 s for both, one
# after the other, on the 2-core CI machine). Each keeps one worker, so its order of
# operations, and so its result, follows from the seed alone.
#
# Three operations would cut the rest of the user's run off: logging out and revoking a
# session (schemathesis reuses the ids it has seen, so it finds its own) end the session the
# run uses, and removing the only second factor (once a fuzzed tenant policy demands MFA)
# leaves nothing but enrolment. The integration tests cover all three.
fuzz "a user (owner, stepped up)" "$TOKEN" \
    --exclude-name "POST /api/v1/auth/logout" --exclude-name "DELETE /api/v1/auth/mfa/totp" \
    --exclude-name "DELETE /api/v1/auth/sessions/{id}" > "$WORK/user.out" 2>&1 &
USER_RUN=$!
fuzz "a scoped API key" "$API_KEY" > "$WORK/key.out" 2>&1 &
KEY_RUN=$!
status=0
wait "$USER_RUN" || status=$?
wait "$KEY_RUN" || status=$?
cat "$WORK/user.out" "$WORK/key.out"
if [ "$status" -ne 0 ]; then
    echo "server log (stderr):"; tail -n 50 "$WORK/server.err"
fi
exit "$status"
