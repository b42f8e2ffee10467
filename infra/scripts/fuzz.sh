#!/usr/bin/env bash
# `make fuzz`: every cargo-fuzz target in fuzz/ for VCARE_FUZZ_SECONDS each
# (default 60), from its committed seeds (fuzz/seeds/<target>) and its growing
# corpus (fuzz/corpus/<target>, not committed). cargo-fuzz is installed into
# ./.tools by this script. No sanitizer (`-s none`): the code is safe Rust and
# the machine's one toolchain is stable; what is hunted is a panic, a hang or
# runaway memory on outside input. A crash stops the run, leaves its input in
# fuzz/artifacts/<target>/, and becomes a regression test next to the code.
# Arguments: target names (default: all).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [[ ! -x .tools/bin/cargo-fuzz ]]; then
  echo "vcare: installing cargo-fuzz into .tools (first run only)" >&2
  cargo install --quiet cargo-fuzz --version 0.13.1 --locked --root .tools
fi
export PATH="$ROOT/.tools/bin:$PATH"
# Always fuzz/'s own target directory: never the workspace's (whose lock a
# running `cargo test` holds), whatever CARGO_TARGET_DIR says.
export CARGO_TARGET_DIR="$ROOT/fuzz/target"
cd fuzz
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || mapfile -t targets < <(cargo fuzz list)
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== fuzz $t (${VCARE_FUZZ_SECONDS:-60} s)"
  log="corpus/$t.log"
  if ! cargo fuzz run --release --sanitizer none "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="${VCARE_FUZZ_SECONDS:-60}" -rss_limit_mb=1024 -timeout=5 -print_final_stats=1 >"$log" 2>&1; then
    grep -E -A20 'panicked|ERROR' "$log" | head -40 >&2
    echo "fuzz $t found a crash: its input is in fuzz/artifacts/$t/ (log: fuzz/$log)" >&2
    exit 1
  fi
  grep -E '^Done' "$log"
done
