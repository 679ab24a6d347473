#!/usr/bin/env bash
# Makes sure the Prometheus and Alertmanager binaries the deploy tests run are installed:
# prometheus, promtool (Debian package prometheus), prometheus-alertmanager, amtool
# (package prometheus-alertmanager); and Debian's chromium and chromedriver (packages chromium,
# chromium-driver) that the report-page browser test drives with selenium. Installs them with
# apt-get when missing and root on Debian; otherwise fails and says what to install. Without systemd the packages' services
# do not start; with systemd they run on :9090/:9093, which the tests do not use.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
missing() {
  have prometheus && have promtool && have amtool && { have prometheus-alertmanager || have alertmanager; } && return 1
  return 0
}

browser_missing() {
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && return 1
  return 0
}

missing || browser_missing || exit 0
if browser_missing && [ "$(id -u)" = 0 ] && have apt-get; then
  echo "installing Debian packages chromium and chromium-driver (for the report-page browser test)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi
if missing && [ "$(id -u)" = 0 ] && have apt-get; then
  echo "installing Debian packages prometheus and prometheus-alertmanager (for the deploy tests)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager >/dev/null
fi
if missing; then
  echo "make test needs prometheus, promtool, prometheus-alertmanager and amtool on PATH;" >&2
  echo "on Debian: sudo apt-get install prometheus prometheus-alertmanager" >&2
  exit 1
fi
if browser_missing; then
  echo "make test needs /usr/bin/chromium and /usr/bin/chromedriver (the report-page browser test);" >&2
  echo "on Debian: sudo apt-get install chromium chromium-driver" >&2
  exit 1
fi
