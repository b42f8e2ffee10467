#!/usr/bin/env bash
# The loopback AWS endpoint: moto in server mode (with DynamoDB requests
# serialised, see local_aws_server.py), from a virtualenv inside the
# checkout. Sourced by run-local.sh and test.sh; nothing is installed globally.
set -euo pipefail

VCARE_ROOT="${VCARE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
VENV="$VCARE_ROOT/.venv"
STATE="${VCARE_STATE_DIR:-$VCARE_ROOT/.vcare}"

# Installs infra/requirements-local.txt into .venv once, and again whenever
# that file changes.
ensure_venv() {
  local req="$VCARE_ROOT/infra/requirements-local.txt" stamp="$VENV/.requirements.sha256"
  local want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [[ -x "$VENV/bin/moto_server" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  echo "vcare: installing the local AWS endpoint and linters into .venv (first run only)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_moto PORT LOGFILE: starts moto on 127.0.0.1:PORT in the background,
# waits until it answers, and sets MOTO_PID.
start_moto() {
  local port="$1" log="$2"
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "vcare: port $port is taken; set VCARE_AWS_PORT to another" >&2
    return 1
  fi
  mkdir -p "$(dirname "$log")"
  # The same credentials export_aws_env gives clients: presigned URLs are checked with them.
  AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}" \
    "$VENV/bin/python" "$VCARE_ROOT/infra/scripts/local_aws_server.py" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  MOTO_PID=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
      echo "vcare: the local AWS endpoint did not start; see $log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "vcare: the local AWS endpoint did not answer within 10 s; see $log" >&2
  return 1
}

# The SDK settings that point every client at the endpoint on PORT.
export_aws_env() {
  local port="$1"
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}"
  export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
  export AWS_REGION="${AWS_REGION:-eu-central-1}"
  export AWS_EC2_METADATA_DISABLED=true
}

# A private endpoint for this script's run: moto on a free port, stopped
# when the script exits; the SDK variables exported for what runs next.
start_private_endpoint() {
  ensure_venv
  local port
  port=$(free_port)
  PRIVATE_LOG=$(mktemp -t vcare-moto.XXXXXX.log)
  start_moto "$port" "$PRIVATE_LOG"
  trap 'kill "$MOTO_PID" 2>/dev/null || true; rm -f "$PRIVATE_LOG"' EXIT
  export_aws_env "$port"
  echo "vcare: private local AWS endpoint $AWS_ENDPOINT_URL" >&2
}
