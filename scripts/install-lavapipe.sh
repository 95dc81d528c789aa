#!/usr/bin/env bash
# Installs a CPU Vulkan driver (Mesa lavapipe) recent enough for Dawn's WebGPU, so the WebGPU
# backend and its tests run on a machine without a GPU (Debian bookworm; run as root).
# Debian bookworm's own Mesa (22.x) is too old for Dawn; bookworm-backports' Mesa (25.x) works.
# Idempotent. Afterwards: export XDG_RUNTIME_DIR=/tmp; requestAdapter() answers "llvmpipe".
# Other distributions: install Mesa ≥ 24 with its Vulkan drivers (e.g. mesa-vulkan-drivers).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then exec sudo -E bash "$0" "$@"; fi
  echo "install-lavapipe: run as root (apt-get needs it)" >&2; exit 2
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-lavapipe: no apt-get here; install Mesa >= 24 Vulkan drivers (lavapipe) with your package manager" >&2; exit 2
fi
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
export DEBIAN_FRONTEND=noninteractive
if [ "$codename" = "bookworm" ]; then
  if ! apt-cache policy mesa-vulkan-drivers 2>/dev/null | grep -q 'bpo'; then
    # Reuse the mirror this machine already uses for Debian; only the suite changes.
    mirror=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
    [ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
    [ -n "$mirror" ] || { echo "install-lavapipe: no Debian mirror configured" >&2; exit 2; }
    echo "deb $mirror bookworm-backports main" > /etc/apt/sources.list.d/bookworm-backports.list
    apt-get update -qq
  fi
  apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
else
  apt-get update -qq
  apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi
echo "install-lavapipe: $(dpkg-query -W -f='${Package} ${Version}' mesa-vulkan-drivers)"
