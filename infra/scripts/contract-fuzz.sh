#!/usr/bin/env bash
# Contract fuzzing: schemathesis (installed into ./.venv-contract) generates
# requests from infra/openapi.yaml and sends them to the local gateway on a
# private loopback AWS endpoint, with a valid caller token (a doctor of clinic
# c-fuzz). Checks: no 5xx, status codes, media types, bodies and headers as
# the spec declares them (so every 4xx is the problem+json the spec gives).
# VCARE_FUZZ_EXAMPLES bounds the examples per operation (default 25; CI runs
# this through `make test`, tests/tests/contract_fuzz.rs). Arguments go to
# `schemathesis run`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/local-aws.sh"
cd "$VCARE_ROOT"
CVENV="$VCARE_ROOT/.venv-contract"
req="$VCARE_ROOT/infra/requirements-contract.txt"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ ! -x "$CVENV/bin/schemathesis" || "$(cat "$CVENV/.requirements.sha256" 2>/dev/null)" != "$want" ]]; then
  echo "vcare: installing schemathesis into .venv-contract (first run only)" >&2
  python3 -m venv "$CVENV"
  "$CVENV/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$CVENV/.requirements.sha256"
fi
# The gateway binary: given (the test run passes the one it built), else
# this checkout's debug build, built if missing.
gateway="${VCARE_GATEWAY_BIN:-${CARGO_TARGET_DIR:-$VCARE_ROOT/target}/debug/vcare-local}"
[[ -x "$gateway" ]] || cargo build --quiet --locked -p vcare-local

start_private_endpoint
state=$(mktemp -d -t vcare-fuzz.XXXXXX)
http_port=$(free_port)
export VCARE_STATE_DIR="$state" VCARE_HTTP_ADDR="127.0.0.1:$http_port" VCARE_STACK="vcare-fuzz" RUST_LOG=warn
"$gateway" serve > "$state/gateway.log" 2>&1 &
gateway_pid=$!
trap 'kill "$gateway_pid" "$MOTO_PID" 2>/dev/null || true; rm -rf "$state" "$PRIVATE_LOG"' EXIT
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$http_port/health" >/dev/null 2>&1 && break
  kill -0 "$gateway_pid" 2>/dev/null || { cat "$state/gateway.log" >&2; exit 1; }
  sleep 0.1
done
token=$("$gateway" token --sub u-fuzz --clinic c-fuzz --roles doctor)
"$CVENV/bin/schemathesis" run "$VCARE_ROOT/infra/openapi.yaml" \
  --url "http://127.0.0.1:$http_port" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --max-examples "${VCARE_FUZZ_EXAMPLES:-25}" \
  --seed "${VCARE_FUZZ_SEED:-1}" --generation-database none \
  --no-color "$@"
