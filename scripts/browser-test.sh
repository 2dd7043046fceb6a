#!/usr/bin/env bash
# The console in a real browser: Debian's headless Chromium driven through WebDriver
# (chromium-driver, Selenium pinned in tests/browser/requirements.txt) against a live
# Bulwark. Part of scripts/test.sh; runs on its own too:
#
#   scripts/browser-test.sh [path/to/bulwark] [sqlite|postgres]
#
# postgres needs the cluster of scripts/services.sh (BULWARK_TEST_PG_* in the environment):
# a fresh database is created for the run and dropped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${1:-$ROOT/target/debug/bulwark}
BACKEND=${2:-sqlite}

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

VENV=$ROOT/target/browser-venv
WANT=$ROOT/tests/browser/requirements.txt
if ! cmp -s "$WANT" "$VENV/requirements.txt" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$WANT"
    cp "$WANT" "$VENV/requirements.txt"
fi

# axe-core (pinned in tests/browser/package-lock.json), injected into every page the tests
# walk to check accessibility.
NODE=$ROOT/target/browser-node
if ! cmp -s tests/browser/package-lock.json "$NODE/package-lock.json" 2>/dev/null; then
    rm -rf "$NODE"
    mkdir -p "$NODE"
    cp tests/browser/package.json tests/browser/package-lock.json "$NODE/"
    (cd "$NODE" && npm ci --silent --no-audit --no-fund)
fi

WORK=$(mktemp -d /tmp/bulwark-browser.XXXXXX)
SERVER=""
DATABASE=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null
    wait 2>/dev/null || true
    if [ -n "$DATABASE" ]; then
        psql "$BULWARK_TEST_PG_OWNER_URL" -qc "DROP DATABASE IF EXISTS \"$DATABASE\" WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    [ -n "${BULWARK_BROWSER_KEEP:-}" ] && cp "$WORK/server.out" "$WORK/server.err" /tmp/
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(port)
METRICS_PORT=$(port)
DB_SETTINGS=()
if [ "$BACKEND" = postgres ]; then
    DATABASE=bw_browser_$(date +%s)_$$
    psql "$BULWARK_TEST_PG_OWNER_URL" -qc "CREATE DATABASE \"$DATABASE\"" >/dev/null
    DB_SETTINGS=(
        "BULWARK_DATABASE_URL=$BULWARK_TEST_PG_APP_URL/$DATABASE"
        "BULWARK_DATABASE_MIGRATE_URL=${BULWARK_TEST_PG_OWNER_URL%/*}/$DATABASE"
    )
fi
# Google through the test OAuth server of scripts/services.sh, when it runs.
if [ -n "${BULWARK_TEST_INTEGRATIONS_URL:-}" ]; then
    DB_SETTINGS+=(
        "BULWARK_GOOGLE_CLIENT_ID=google-test-client"
        "BULWARK_GOOGLE_CLIENT_SECRET=google-test-secret"
        "BULWARK_GOOGLE_AUTH_URL=$BULWARK_TEST_INTEGRATIONS_URL/google/authorize"
        "BULWARK_GOOGLE_TOKEN_URL=$BULWARK_TEST_INTEGRATIONS_URL/google/token"
        "BULWARK_GOOGLE_REVOKE_URL=$BULWARK_TEST_INTEGRATIONS_URL/google/revoke"
        "BULWARK_GOOGLE_API_URL=$BULWARK_TEST_INTEGRATIONS_URL/google-api"
    )
fi
# Development profile on loopback: fast Argon2, no rate limits (the console's pages pass
# the API's gate, whose limits have their own tests), and step-ups that last 5 s so the
# test can watch one expire. WebAuthn needs a domain name: the browser uses localhost.
env -i PATH="$PATH" HOME="$WORK" "${DB_SETTINGS[@]}" \
    BULWARK_LISTEN="127.0.0.1:$PORT" BULWARK_METRICS_LISTEN="127.0.0.1:$METRICS_PORT" \
    BULWARK_PUBLIC_URL="http://localhost:$PORT" \
    BULWARK_DATA_DIR="$WORK" BULWARK_LOG=${BULWARK_BROWSER_LOG:-warn} BULWARK_RATE_LIMITS=off \
    BULWARK_ARGON2_MEMORY_KIB=1024 BULWARK_ARGON2_ITERATIONS=1 BULWARK_STEP_UP_SECONDS=8 \
    BULWARK_JWT_SECRET="browser-test-jwt-secret-0123456789abcdef" \
    BULWARK_MASTER_KEYS="browser:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" \
    "$BIN" serve > "$WORK/server.out" 2> "$WORK/server.err" &
SERVER=$!

echo "--- the console in headless Chromium ($BACKEND)"
# BULWARK_SCREENSHOTS=docs/screenshots saves the README's screenshots of the main pages.
BULWARK_URL="http://localhost:$PORT" BULWARK_STEP_UP_SECONDS=8 AXE_JS="$NODE/node_modules/axe-core/axe.min.js" \
    BULWARK_SCREENSHOTS="${BULWARK_SCREENSHOTS:+$ROOT/$BULWARK_SCREENSHOTS}" \
    BULWARK_TEST_INTEGRATIONS_URL="${BULWARK_TEST_INTEGRATIONS_URL:-}" BULWARK_METRICS_URL="http://127.0.0.1:$METRICS_PORT/metrics" \
    "$VENV/bin/python" -m unittest -v tests/browser/console_test.py
