#!/usr/bin/env bash
# Installs Prometheus from the distribution's packages (Debian/Ubuntu; run as root) for the test
# that scrapes examples/metrics-service with a real Prometheus. The test starts its own
# Prometheus on a free loopback port, so the package's system service is stopped and disabled:
# nothing is left listening on :9090. Idempotent; quiet unless something fails.
# Elsewhere: put a prometheus binary (https://prometheus.io/download/) on PATH or in PROMETHEUS_BIN.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1; then
  echo "install-prometheus: $(prometheus --version 2>&1 | head -n 1)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then exec sudo -E bash "$0" "$@"; fi
  echo "install-prometheus: run as root (apt-get needs it)" >&2; exit 2
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-prometheus: no apt-get here; put a prometheus binary on PATH or set PROMETHEUS_BIN" >&2; exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-cache show prometheus >/dev/null 2>&1 || apt-get update -qq
# No recommends: they would add (and start) prometheus-node-exporter.
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# The package enables and (where services may start) starts prometheus.service; the test needs
# neither. Stopping fails harmlessly where no init system runs (containers).
if command -v systemctl >/dev/null 2>&1; then
  systemctl stop prometheus.service >/dev/null 2>&1 || true
  systemctl disable prometheus.service >/dev/null 2>&1 || true
fi
if [ -x /etc/init.d/prometheus ]; then /etc/init.d/prometheus stop >/dev/null 2>&1 || true; fi
echo "install-prometheus: $(prometheus --version 2>&1 | head -n 1) (system service stopped and disabled)"
