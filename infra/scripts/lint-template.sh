#!/usr/bin/env bash
# cfn-lint over infra/template.yaml and an OpenAPI check of infra/openapi.yaml,
# from the project's own virtualenv.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/local-aws.sh"
ensure_venv
"$VENV/bin/cfn-lint" "$VCARE_ROOT/infra/template.yaml"
"$VENV/bin/openapi-spec-validator" "$VCARE_ROOT/infra/openapi.yaml" >/dev/null
