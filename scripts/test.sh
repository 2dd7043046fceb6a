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
source scripts/services.sh
cleanup() {
    local status=$?
    stop_services
    rm -rf "$WORK"
    exit $status
}
trap cleanup EXIT INT TERM

# --- packages -------------------------------------------------------------------------
step "packages (PostgreSQL 15, Redis, python3-venv, promtool when missing)"
services_install promtool:prometheus age pgbouncer openssl

# --- static checks --------------------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all --check

step "alert rules: promtool check rules, then a unit test per alert"
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml

step "deployment artefacts: checkov on the Dockerfile; the Helm chart linted, rendered, schema-validated and checked"
scripts/deploy-check.sh

step "cargo clippy"
cargo clippy --locked --all-targets -- -D warnings

step "cargo deny (advisories offline, licenses, sources, bans)"
command -v cargo-deny >/dev/null || cargo install --locked --quiet cargo-deny@0.20.2
# cargo-deny reads the dependency graph offline: the registry must hold every locked crate.
cargo fetch --locked --quiet
# The offline RustSec snapshot lives beside the repository (../shared), or where
# BULWARK_SHARED_DIR says.
SHARED=${BULWARK_SHARED_DIR:-$ROOT/../shared}
[ -x "$SHARED/tools/prepare-advisory-db" ] || { echo "the RustSec snapshot ($SHARED/advisory-db) is missing" >&2; exit 1; }
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

step "compose stack: its rules, and Bulwark's production checks on the configuration it gets"
target/deploy-venv/bin/python scripts/compose-check.py target/debug/bulwark

# --- services -------------------------------------------------------------------------
step "starting PostgreSQL, PgBouncer (transaction pooling), Redis and an S3-compatible server (moto) on loopback"
start_postgres
start_pgbouncer
start_redis
start_s3
start_mail
start_integrations

# --- tests ----------------------------------------------------------------------------
step "unit tests and integration tests on SQLite"
BULWARK_TEST_DB=sqlite cargo nextest run --locked --workspace --no-fail-fast

step "integration tests on PostgreSQL (documents in S3)"
BULWARK_TEST_DB=postgres cargo nextest run --locked --test it --no-fail-fast

step "integration tests on PostgreSQL through PgBouncer in transaction pooling mode (Debian's 1.18)"
# The same suite through the pooler, for its statements; scale was proven by the pass above.
# The 200 MiB document moves the same rows as the small ones (its size is storage's), and the
# backup round trip takes 1,000 contacts instead of 10,000 (still several insert batches a
# table): together they were 4 of this pass's 5 minutes on a slow runner.
BULWARK_TEST_VIA_PGBOUNCER=1 BULWARK_TEST_DB=postgres BULWARK_TEST_BACKUP_CONTACTS=1000 \
    cargo nextest run --locked --test it --no-fail-fast \
    -E 'not test(=documents::a_200_mib_document_streams_both_ways_in_bounded_memory)'

step "the console in headless Chromium through WebDriver, on SQLite and on PostgreSQL"
scripts/browser-test.sh target/debug/bulwark sqlite
scripts/browser-test.sh target/debug/bulwark postgres

step "API fuzzing with schemathesis (a user's token and a scoped API key, each in its own tenant, at once)"
scripts/api-fuzz.sh target/debug/bulwark

step "fuzzing the parsers and decoders (cargo-fuzz, 20 s per target)"
scripts/fuzz.sh "${BULWARK_FUZZ_SECONDS:-20}"

step "all checks passed"
