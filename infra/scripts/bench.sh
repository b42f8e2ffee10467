#!/usr/bin/env bash
# `make bench`: release-built benchmarks against a private loopback AWS
# endpoint. Not part of the test run. Arguments go to `cargo bench` (e.g.
# `--bench functions`). Builds every function's release binary first: the
# `functions` bench runs them as Lambda would. Zip sizes come from `make
# package` (target/lambda), printed when it has been run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/local-aws.sh"
cd "$VCARE_ROOT"
start_private_endpoint
cargo build --release --workspace --bins --locked
cargo bench --locked -p vcare-tests "$@"
if compgen -G "target/lambda/*/bootstrap.zip" >/dev/null; then
  echo "arm64 zips (make package):"
  for zip in target/lambda/*/bootstrap.zip; do
    awk -v n="$(basename "$(dirname "$zip")")" -v b="$(stat -c %s "$zip")" 'BEGIN { printf "  %-22s %6.2f MB\n", n, b / 1e6 }'
  done
fi
