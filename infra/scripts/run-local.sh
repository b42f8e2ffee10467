#!/usr/bin/env bash
# `make run`: vcare on this machine. Starts the loopback AWS endpoint, then the
# local gateway on VCARE_HTTP_ADDR (default 127.0.0.1:3031). Ctrl-C (or
# `make stop` from another shell) ends both.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/local-aws.sh"
cd "$VCARE_ROOT"
mkdir -p "$STATE/run"

stop_all() {
  for f in "$STATE"/run/*.pid; do
    [[ -f "$f" ]] || continue
    kill "$(cat "$f" 2>/dev/null)" 2>/dev/null || true
    rm -f "$f"
  done
}

if [[ "${1:-}" == "stop" ]]; then
  stop_all
  echo "vcare: stopped"
  exit 0
fi

ensure_venv
# The first build compiles the AWS SDK crates: several minutes on two
# cores. Say so, and let cargo show its progress, so nobody thinks it hung.
if [[ ! -x target/debug/vcare-local ]]; then
  echo "vcare: first build of the local gateway (the AWS SDK crates take about 5 minutes on 2 cores; later runs take seconds)"
fi
cargo build -p vcare-local
echo "vcare: built; starting the loopback AWS endpoint"
port="${VCARE_AWS_PORT:-4566}"
start_moto "$port" "$STATE/moto.log"
echo "$MOTO_PID" > "$STATE/run/moto.pid"
trap 'stop_all' EXIT
trap 'exit 130' INT TERM
export_aws_env "$port"
echo "vcare: local AWS endpoint on $AWS_ENDPOINT_URL" >&2
./target/debug/vcare-local serve &
echo $! > "$STATE/run/gateway.pid"
wait "$(cat "$STATE/run/gateway.pid")"
