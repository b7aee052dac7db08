#!/usr/bin/env bash
# Idempotent set-up for `make run` and `make test`.
#
# As root on Debian/Ubuntu: installs the distribution's BCC bindings
# (python3-bpfcc), kernel headers, stress-ng, promtool (package prometheus),
# gcc, python3-venv and systemd (systemd-analyze checks the unit); where no headers
# package matches the running kernel, links the distribution's generic headers
# into /lib/modules/$(uname -r)/{build,source}; mounts tracefs.  Then (any user)
# creates the virtualenv, which sees the system site-packages so that the
# distribution's bcc is importable, and installs linnix into it.
set -euo pipefail

VENV=${VENV:-.venv}
cd "$(dirname "$0")/.."
. scripts/python.sh

log() { printf 'setup: %s\n' "$*"; }

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }

system_setup() {
    if [ "$(id -u)" != 0 ]; then
        log "not root: skipping system packages (eBPF capture needs root; 'linnix doctor' explains)"
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        log "no apt-get: skipping system packages"
        return 0
    fi
    local kernel arch headers pkgs=()
    kernel=$(uname -r)
    arch=$(dpkg --print-architecture)
    # prometheus provides promtool, which the tests use to validate /metrics, and the
    # server that scrapes a running daemon in a test; prometheus-alertmanager is the
    # receiver the alert-delivery tests send to
    for p in python3-bpfcc python3-venv stress-ng prometheus prometheus-alertmanager gcc systemd; do
        have_pkg "$p" || pkgs+=("$p")
    done
    if [ ! -e "/lib/modules/$kernel/build/include" ]; then
        if apt-cache show "linux-headers-$kernel" >/dev/null 2>&1; then
            have_pkg "linux-headers-$kernel" || pkgs+=("linux-headers-$kernel")
        else
            have_pkg "linux-headers-$arch" || pkgs+=("linux-headers-$arch")
        fi
    fi
    if [ ${#pkgs[@]} -gt 0 ]; then
        log "installing ${pkgs[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
    fi
    link_headers "$kernel" "$arch"
    mount_tracefs
}

# No headers package for this kernel: BCC compiles tracepoint programs fine
# against the distribution's generic headers, as long as no program reads
# task_struct fields (linnix's do not).
link_headers() {
    local kernel=$1 arch=$2 dir generic common
    dir=/lib/modules/$kernel
    [ -e "$dir/build/include" ] && return 0
    generic=$(ls -d /usr/src/linux-headers-*-"$arch" 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$generic" ]; then
        log "no kernel headers found under /usr/src; eBPF capture will be unavailable"
        return 0
    fi
    common=${generic%-"$arch"}-common
    [ -d "$common" ] || common=$generic
    mkdir -p "$dir"
    ln -sfn "$generic" "$dir/build"
    ln -sfn "$common" "$dir/source"
    log "linked $dir/build -> $generic (generic headers for kernel $kernel)"
}

mount_tracefs() {
    if [ ! -e /sys/kernel/tracing/events ] && [ -d /sys/kernel/tracing ]; then
        mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
    fi
    if [ -d /sys/kernel/debug ] && [ ! -e /sys/kernel/debug/tracing ]; then
        mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || true
    fi
}

venv_setup() {
    local py stamp=$VENV/.linnix-installed
    if [ ! -x "$VENV/bin/python" ]; then
        py=$(pick_python) || { log "error: need Python >= 3.11 with venv"; exit 1; }
        log "creating $VENV with $py"
        "$py" -m venv --system-site-packages "$VENV"
    fi
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        log "installing linnix and its development tools into $VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
        "$VENV/bin/python" -m pip install -q -e '.[dev]'
        touch "$stamp"
    fi
}

system_setup
venv_setup
