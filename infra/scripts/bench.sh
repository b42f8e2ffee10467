#!/usr/bin/env bash
# `make bench`: release-built benchmarks against a private loopback AWS
# endpoint. Not part of the test run. Arguments go to `cargo bench`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/local-aws.sh"
cd "$VCARE_ROOT"
start_private_endpoint
cargo bench --locked -p vcare-tests "$@"
