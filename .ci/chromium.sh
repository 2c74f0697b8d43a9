# shellcheck shell=bash
# Chromium for the report's browser test: Debian's `chromium` package, installed when no
# Chromium or Chrome is on the machine, and exported as LEADTRACKR_TEST_CHROMIUM, which
# tests/e2e/test_html_report.py reads. Sourced by .ci/run:
#   source .ci/chromium.sh && install_chromium
# Needs root (CI runs as root) when it has to install.

install_chromium() {
    local browser
    browser=$(command -v chromium chromium-browser google-chrome 2>/dev/null | head -n 1 || true)
    if [[ -z "$browser" ]]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        browser=$(command -v chromium) || { echo "chromium did not install" >&2; return 1; }
    fi
    export LEADTRACKR_TEST_CHROMIUM="$browser"
    echo "$("$browser" --version 2>/dev/null) at $browser"
}
