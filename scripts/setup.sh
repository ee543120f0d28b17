#!/usr/bin/env bash
# Set up a Debian 12 machine for cargohold development and CI.
#
#   sudo scripts/setup.sh        (CI and the dev machines run it as root)
#
# 1. System packages: the registry clients the interop tests drive (skopeo, podman,
#    buildah, umoci, containerd), the reference registry (docker-registry), and the
#    services and load tools other tiers use (postgresql, redis-server, nginx, wrk),
#    and Chromium with its driver for the browser tests (tests/browser).
#    apt-get runs only when something is missing, with `apt-get update` once first.
#    Services are installed, not started: each test run starts what it needs.
# 2. The project virtualenv: .venv in the repository root, with `pip install -e
#    '.[test]'`, repeated only when pyproject.toml changed (CARGOHOLD_SETUP_FORCE=1
#    repeats it anyway).
#
# It does not write any container configuration (/etc/containers, containerd's
# config): the interop tests bring their own, in temporary directories.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv"
python="${PYTHON:-python3}"
policy_rc=/usr/sbin/policy-rc.d

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

packages=(
  skopeo podman buildah umoci containerd docker-registry
  wrk postgresql redis-server nginx
  gnupg openssl
  chromium chromium-driver
)

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

install_system_packages() {
  local missing=() pkg
  for pkg in "${packages[@]}"; do
    installed "$pkg" || missing+=("$pkg")
  done
  # venv needs ensurepip, which Debian ships separately from python3.
  if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    installed python3-venv || missing+=(python3-venv)
  fi
  if [ "${#missing[@]}" -eq 0 ]; then
    log "system packages: all present (${packages[*]})"
    return
  fi
  [ "$(id -u)" -eq 0 ] || die "run as root to install: ${missing[*]}"
  command -v apt-get >/dev/null || die "apt-get not found: this script targets Debian 12"

  # Debian starts a service's daemon on install unless policy-rc.d says no; keep
  # postgresql, redis and nginx stopped, as CI starts its own instances.
  if [ ! -e "$policy_rc" ]; then
    log "holding service starts during install (temporary $policy_rc)"
    printf '#!/bin/sh\nexit 101\n' >"$policy_rc"
    chmod 755 "$policy_rc"
    trap 'rm -f "$policy_rc"' EXIT
  fi

  export DEBIAN_FRONTEND=noninteractive
  log "apt-get update"
  apt-get update -q
  log "installing: ${missing[*]}"
  apt-get install -y -q -o Dpkg::Options::=--force-confold "${missing[@]}"
  for pkg in "${missing[@]}"; do
    installed "$pkg" || die "$pkg did not install"
  done
  log "system packages installed"
}

setup_venv() {
  if [ ! -x "$venv/bin/python" ]; then
    log "creating $venv ($("$python" --version 2>&1))"
    "$python" -m venv "$venv"
  else
    log "virtualenv exists: $venv ($("$venv/bin/python" --version 2>&1))"
  fi
  local stamp="$venv/.cargohold-setup" want
  want="$(sha256sum "$repo_root/pyproject.toml" | cut -d' ' -f1)"
  if [ "${CARGOHOLD_SETUP_FORCE:-0}" != 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log "python packages: up to date with pyproject.toml"
    return
  fi
  log "pip install -e '.[test]'"
  (cd "$repo_root" && "$venv/bin/python" -m pip install --disable-pip-version-check -q -e '.[test]')
  printf '%s\n' "$want" >"$stamp"
  log "python packages installed"
}

report() {
  local tool
  for tool in skopeo podman buildah umoci ctr containerd docker-registry wrk; do
    if command -v "$tool" >/dev/null; then
      log "  $tool: $(command -v "$tool")"
    else
      log "  $tool: MISSING"
    fi
  done
}

log "repository: $repo_root"
install_system_packages
setup_venv
report
log "done"
