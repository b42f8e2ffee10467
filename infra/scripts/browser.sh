#!/usr/bin/env bash
# The browser the page tests drive: Debian's chromium and chromium-driver
# (and Noto fonts, so Persian and Pashto render), and jq and curl, which
# the documented Jibri finalize script uses; installed with apt when
# missing. Sourced by test.sh; `ensure_browser` is a no-op once installed.
ensure_browser() {
  if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver && -d /usr/share/fonts/truetype/noto && -x /usr/bin/jq && -x /usr/bin/curl ]]; then
    return 0
  fi
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "vcare: the page tests need chromium and chromium-driver (apt), and there is no sudo" >&2; return 1; }
    sudo="sudo"
  fi
  echo "vcare: installing Debian's chromium, chromium-driver and Noto fonts for the page tests, jq and curl for the Jibri script (first run only)" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver fonts-noto-core jq curl >/dev/null
}
