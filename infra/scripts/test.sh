#!/usr/bin/env bash
# `make test`: the whole suite on a fresh clone. Starts its own loopback AWS
# endpoint on a free port (never a dev stack's), runs every workspace test
# against it, and stops it. Arguments go to `cargo test`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/local-aws.sh"
cd "$VCARE_ROOT"

ensure_venv
port=$(free_port)
log=$(mktemp -t vcare-moto.XXXXXX.log)
start_moto "$port" "$log"
trap 'kill "$MOTO_PID" 2>/dev/null || true; rm -f "$log"' EXIT
export_aws_env "$port"
echo "vcare: tests use the local AWS endpoint $AWS_ENDPOINT_URL" >&2
cargo test --workspace --locked "$@"
