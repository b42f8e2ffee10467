#!/usr/bin/env bash
# `make package`: every function as an arm64 Lambda zip (provided.al2023),
# built by cargo-lambda with zig as the cross linker — both installed by
# this script into ./.venv-package, nothing global but the rustup target.
# Arguments go to `cargo lambda build` (e.g. `--bin health` for one).
# Output: target/lambda/<binary>/bootstrap.zip, sizes printed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/local-aws.sh"
cd "$VCARE_ROOT"
PKG_VENV="$VCARE_ROOT/.venv-package"
if [[ ! -x "$PKG_VENV/bin/cargo-lambda" ]]; then
  echo "vcare: installing cargo-lambda and zig into .venv-package (first run only)" >&2
  python3 -m venv "$PKG_VENV"
  "$PKG_VENV/bin/pip" install --quiet --disable-pip-version-check cargo-lambda==1.9.2 ziglang==0.13.0.post1
fi
rustup target add aarch64-unknown-linux-gnu >/dev/null
export PATH="$PKG_VENV/bin:$PATH"
cargo lambda build --release --arm64 --output-format zip --lambda-dir target/lambda "$@"
for zip in target/lambda/*/bootstrap.zip; do
  printf '%-24s %8d bytes\n' "$(basename "$(dirname "$zip")")" "$(stat -c %s "$zip")"
done
