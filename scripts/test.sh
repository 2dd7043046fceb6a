#!/usr/bin/env bash
# The one test command (README, .ci/run). From a fresh clone on a Debian machine:
# installs what is missing, runs the static checks, builds the tests once, starts a
# throwaway PostgreSQL cluster and Redis on loopback as an unprivileged user, runs the unit
# tests and the integration suite on SQLite and on PostgreSQL, and stops everything it
# started — on failure too.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
START=$(date +%s)
step() { printf '\n==> [%4ss] %s\n' "$(( $(date +%s) - START ))" "$*"; }

WORK=$(mktemp -d /tmp/bulwark-test.XXXXXX)
PIDS=()
cleanup() {
    local status=$?
    for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
    if [ -n "${PG_DATA:-}" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
        as_service "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    exit $status
}
trap cleanup EXIT INT TERM

# --- packages -------------------------------------------------------------------------
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ] || missing+=(postgresql-15 postgresql-client-15)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
PG_BIN=$(pg_config --bindir)

# Services never run as root: PostgreSQL refuses to, and neither needs it.
if [ "$(id -u)" -eq 0 ]; then
    SERVICE_USER=postgres
    id -u "$SERVICE_USER" >/dev/null 2>&1 || useradd --system --no-create-home "$SERVICE_USER"
    chown "$SERVICE_USER" "$WORK"
    as_service() { runuser -u "$SERVICE_USER" -- "$@"; }
else
    as_service() { "$@"; }
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- static checks --------------------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --locked --all-targets -- -D warnings

step "cargo deny (advisories offline, licenses, sources, bans)"
command -v cargo-deny >/dev/null || cargo install --locked --quiet cargo-deny@0.20.2
# The offline RustSec snapshot lives beside the repository (../shared), or where
# BULWARK_SHARED_DIR says.
SHARED=${BULWARK_SHARED_DIR:-}
for candidate in "$ROOT/../shared" /work/shared; do
    [ -z "$SHARED" ] && [ -x "$candidate/tools/prepare-advisory-db" ] && SHARED=$candidate
done
[ -n "$SHARED" ] || { echo "the RustSec snapshot (../shared/advisory-db) is missing" >&2; exit 1; }
"$SHARED/tools/prepare-advisory-db" target/advisory-dbs >/dev/null
cargo deny --offline --log-level error check advisories licenses sources bans

step "SBOM (CycloneDX 1.5, every crate the build uses)"
command -v cargo-cyclonedx >/dev/null || cargo install --locked --quiet cargo-cyclonedx@0.5.9
cargo cyclonedx --format json --spec-version 1.5 --quiet
mkdir -p target/sbom && mv bulwark.cdx.json target/sbom/bulwark.cdx.json
python3 - target/sbom/bulwark.cdx.json <<'PY'
import json, sys
bom = json.load(open(sys.argv[1]))
components = bom.get("components", [])
assert bom["bomFormat"] == "CycloneDX" and len(components) > 100, "the SBOM is incomplete"
assert all(c.get("purl", "").startswith("pkg:cargo/") for c in components), "a component has no purl"
print(f"target/sbom/bulwark.cdx.json: {len(components)} components")
PY

step "building the tests"
cargo nextest run --locked --workspace --no-run

# --- services -------------------------------------------------------------------------
step "starting PostgreSQL and Redis on loopback"
PG_PORT=$(free_port)
PG_DATA=$WORK/pg
echo "postgres-ci-superuser" > "$WORK/pgpass"; chmod 0644 "$WORK/pgpass"
as_service "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --pwfile="$WORK/pgpass" \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
as_service "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$WORK/pg.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$WORK -c fsync=off -c max_connections=300" \
    start >/dev/null
psql_admin() { as_service "$PG_BIN/psql" -v ON_ERROR_STOP=1 -q -h "$WORK" -p "$PG_PORT" -U postgres -d postgres "$@"; }
psql_admin -c "CREATE ROLE bulwark_owner LOGIN CREATEDB PASSWORD 'owner-ci-password'" \
           -c "CREATE ROLE bulwark_app LOGIN PASSWORD 'app-ci-password'"

REDIS_PORT=$(free_port)
as_service redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK" --logfile "$WORK/redis.log" &
PIDS+=($!)
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

export BULWARK_TEST_PG_OWNER_URL="postgres://bulwark_owner:owner-ci-password@127.0.0.1:$PG_PORT/postgres"
export BULWARK_TEST_PG_APP_URL="postgres://bulwark_app:app-ci-password@127.0.0.1:$PG_PORT"
export BULWARK_TEST_PG_SUPERUSER_URL="postgres://postgres:postgres-ci-superuser@127.0.0.1:$PG_PORT/postgres"
export BULWARK_TEST_PG_BIN="$PG_BIN"
export BULWARK_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
export BULWARK_TEST_REDIS_SERVER="$(command -v redis-server)"

# --- tests ----------------------------------------------------------------------------
step "unit tests and integration tests on SQLite"
BULWARK_TEST_DB=sqlite cargo nextest run --locked --workspace --no-fail-fast

step "integration tests on PostgreSQL"
BULWARK_TEST_DB=postgres cargo nextest run --locked --test it --no-fail-fast

step "API fuzzing with schemathesis (user token, then a scoped API key)"
scripts/api-fuzz.sh target/debug/bulwark

step "fuzzing the parsers and decoders (cargo-fuzz, 20 s per target)"
scripts/fuzz.sh "${BULWARK_FUZZ_SECONDS:-20}"

step "all checks passed"
