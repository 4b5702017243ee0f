#!/usr/bin/env bash
# System packages the test suite needs beyond the venv and node_modules.
# Headless Chromium renders the HTML report in tests (Debian's package).
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-setup: installing Debian's chromium for the report rendering test"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test-setup: chromium is missing and cannot be installed here (need root and apt-get)" >&2
    exit 1
  fi
fi
