#!/usr/bin/env bash
# `make test`: the whole suite on a fresh clone. Starts its own loopback AWS
# endpoint on a free port (never a dev stack's), runs every workspace test
# against it, and stops it. Arguments, if any, replace the default selection
# (e.g. `-p vcare-tests --test virtual_care`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/local-aws.sh"
source "$(dirname "${BASH_SOURCE[0]}")/browser.sh"
cd "$VCARE_ROOT"
ensure_venv
ensure_browser

start_private_endpoint
out=$(mktemp -t vcare-test.XXXXXX.log)
# Every test process logs here; the scan below searches it for personal data.
export VCARE_TEST_LOG_DIR="${CARGO_TARGET_DIR:-$VCARE_ROOT/target}/test-logs"
rm -rf "$VCARE_TEST_LOG_DIR"
trap 'kill "$MOTO_PID" 2>/dev/null || true; rm -f "$PRIVATE_LOG" "$out"' EXIT
set +e
# Every binary too, not only test harnesses: tests/tests/lambda.rs runs the
# functions' real `main` (same targets as below, so nothing builds twice).
cargo build --workspace --all-targets --locked 2>&1 | tee "$out" | grep -E '^(error|warning)' || true
if [[ $# -gt 0 ]]; then
  cargo test --locked "$@" 2>&1 | tee "$out"
else
  cargo test --workspace --all-targets --locked 2>&1 | tee "$out"
fi
status=${PIPESTATUS[0]}
# The whole suite's logs, scanned (only for a whole run: a selection may log too little).
if [[ $# -eq 0 || -n "${VCARE_SCAN_LOGS:-}" ]]; then
  python3 "$VCARE_ROOT/infra/scripts/scan-test-logs.py" "$VCARE_TEST_LOG_DIR" || status=1
fi
set -e
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$out"
exit "$status"
