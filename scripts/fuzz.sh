#!/usr/bin/env bash
# Fuzzes the parsers and decoders that take hostile input with cargo-fuzz (libFuzzer), each
# target for a bounded time; a crash or a broken property fails the run. Part of
# scripts/test.sh; runs on its own too:
#
#   scripts/fuzz.sh [seconds per target]     # default 30, or BULWARK_FUZZ_SECONDS
#
# Targets (fuzz/fuzz_targets/): access_token, field_ciphertext, client_ip, csv_export,
# problem_body. Each asserts properties, not just "no panic" (see each file's header).
#
# No sanitizer (`-s none`): Bulwark forbids unsafe code, so AddressSanitizer could only find
# bugs in dependencies, at twice the run time and a longer build; coverage-guided search for
# panics and broken properties is what these targets are for.
#
# `--dev`: the instrumented build without optimisation. It builds in 3 min 18 s instead of
# 9 min 24 s on the 2-core CI machine and runs fewer executions per second, which a smoke run
# of seconds per target does not miss; long campaigns can drop it (BULWARK_FUZZ_PROFILE=release).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_PER_TARGET=${1:-${BULWARK_FUZZ_SECONDS:-30}}
TARGETS="access_token field_ciphertext client_ip csv_export problem_body"

command -v cargo-fuzz >/dev/null || cargo install --locked --quiet cargo-fuzz@0.13.2
# The root's rust-toolchain.toml pins stable; libFuzzer's instrumentation needs nightly.
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
PROFILE_FLAG=--dev
[ "${BULWARK_FUZZ_PROFILE:-dev}" = release ] && PROFILE_FLAG=""
cargo +nightly fuzz build -s none $PROFILE_FLAG
# One target per core at a time: a target's libFuzzer process is single-threaded.
JOBS=${BULWARK_FUZZ_JOBS:-$(nproc)}
LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
fuzz_one() {
    local target=$1 log="$LOGS/$1.log"
    mkdir -p "corpus/$target"
    if ! cargo +nightly fuzz run -s none $PROFILE_FLAG "$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 > "$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/" >&2
        return 1
    fi
    runs=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1)
    echo "$target: $runs(s) ($(grep -Eo 'exec/s: *[0-9]+' "$log" | tail -1 | tr -d ' '))"
}
failed=0 running=0
for target in $TARGETS; do
    if [ "$running" -ge "$JOBS" ]; then
        wait -n || failed=1
        running=$((running - 1))
    fi
    fuzz_one "$target" &
    running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
done
exit "$failed"
