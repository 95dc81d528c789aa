#!/usr/bin/env bash
# Installs Debian's Chromium (package chromium: /usr/bin/chromium) for the browser tests
# (test/browser, examples/browser): the WebGPU backend in headless Chromium on a CPU adapter.
# Run as root on Debian/Ubuntu. Idempotent; quiet unless something fails. No browser is
# downloaded by npm: the tests drive this Chromium with playwright-core.
# Elsewhere: install Chromium (or Chrome) and set CHROMIUM_BIN to its executable.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "install-chromium: $(chromium --version 2>/dev/null | head -n 1)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then exec sudo -E bash "$0" "$@"; fi
  echo "install-chromium: run as root (apt-get needs it)" >&2; exit 2
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: no apt-get here; install Chromium and set CHROMIUM_BIN to its executable" >&2; exit 2
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
quiet() { "$@" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }; }
apt-cache show chromium >/dev/null 2>&1 || quiet apt-get update -qq
# No recommends (chromium-sandbox, upower, …): the tests run headless. Chromium brings its own
# SwiftShader, the CPU Vulkan that WebGPU uses there; fonts come with fontconfig's dependencies.
quiet apt-get install -y -qq --no-install-recommends chromium
echo "install-chromium: $(chromium --version 2>/dev/null | head -n 1)"
