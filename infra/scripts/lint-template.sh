#!/usr/bin/env bash
# cfn-lint and `sam validate --lint` over infra/template.yaml, and an OpenAPI
# check of infra/openapi.yaml,
# from the project's own virtualenv.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/local-aws.sh"
ensure_venv
"$VENV/bin/cfn-lint" "$VCARE_ROOT/infra/template.yaml"
"$VENV/bin/openapi-spec-validator" "$VCARE_ROOT/infra/openapi.yaml" >/dev/null
# SAM's own transform and lint; offline: no account is contacted.
SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-eu-central-1}" \
  AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-offline}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-offline}" \
  "$VENV/bin/sam" validate --lint -t "$VCARE_ROOT/infra/template.yaml" >/dev/null
