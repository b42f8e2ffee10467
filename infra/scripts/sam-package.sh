#!/usr/bin/env bash
# `make sam-package`: `sam build` (cargo-lambda, arm64) and `sam package`
# with nothing but this machine: the artifacts bucket is on the loopback
# AWS endpoint, so no account is needed. This is the path `sam deploy
# --config-env <env>` takes up to the point where CloudFormation is called.
# Output: .vcare/sam/packaged.yaml and each function's code object size.
# Arguments go to `sam build` (e.g. HealthFunction to build one).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/local-aws.sh"
cd "$VCARE_ROOT"
ensure_venv
PKG_VENV="$VCARE_ROOT/.venv-package"
if [[ ! -x "$PKG_VENV/bin/cargo-lambda" ]]; then
  ./infra/scripts/package.sh --bin health >/dev/null # installs cargo-lambda and zig
fi
rustup target add aarch64-unknown-linux-gnu >/dev/null
export PATH="$PKG_VENV/bin:$PATH" SAM_CLI_TELEMETRY=0
out="$STATE/sam"
mkdir -p "$out"
"$VENV/bin/sam" build --config-env default --build-dir "$out/build" "$@"

start_private_endpoint
"$VENV/bin/python" - <<'PY'
import boto3
boto3.client("s3").create_bucket(Bucket="vcare-artifacts", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
PY
if ! "$VENV/bin/sam" package --template-file "$out/build/template.yaml" --s3-bucket vcare-artifacts \
  --s3-prefix vcare-dev --output-template-file "$out/packaged.yaml" --region eu-central-1 >"$out/package.log" 2>&1; then
  cat "$out/package.log" >&2
  exit 1
fi
"$VENV/bin/python" - "$out/packaged.yaml" <<'PY'
import sys, boto3
from samcli.yamlhelper import yaml_parse
t = yaml_parse(open(sys.argv[1]).read())
s3 = boto3.client("s3")
api = t["Resources"]["HttpApi"]["Properties"]["DefinitionBody"]["Fn::Transform"]["Parameters"]["Location"]
print(f"{'HttpApi definition':28} {api}")
for name, r in sorted(t["Resources"].items()):
    if r["Type"] == "AWS::Serverless::Function":
        uri = r["Properties"]["CodeUri"]
        bucket, key = uri[5:].split("/", 1)
        size = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
        print(f"{name:28} {size:>9} bytes  {uri}")
PY
echo "packaged template: $out/packaged.yaml"
