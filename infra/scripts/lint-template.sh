#!/usr/bin/env bash
# cfn-lint over infra/template.yaml, from the project's own virtualenv.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/local-aws.sh"
ensure_venv
"$VENV/bin/cfn-lint" "$VCARE_ROOT/infra/template.yaml"
