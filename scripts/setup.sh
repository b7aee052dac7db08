#!/usr/bin/env bash
# Idempotent set-up: `scripts/setup.sh run` for `make run`, `scripts/setup.sh test`
# (the default) for `make test`.  The README's Quickstart lists the same.
#
# run, as root on Debian/Ubuntu: installs the distribution's BCC bindings
# (python3-bpfcc), python3-venv and, when the running kernel has no headers, a
# headers package: the one for this kernel if there is one, else the generic one,
# linked into /lib/modules/$(uname -r)/{build,source}; mounts tracefs.  Then (any
# user) creates the virtualenv .venv, which sees the system site-packages so that
# the distribution's bcc is importable, and installs linnix into it (editable).
#
# test adds what only the tests use: stress-ng, prometheus (promtool and the server
# a test scrapes the daemon with), prometheus-alertmanager, gcc (test programs) and
# systemd (systemd-analyze checks the unit); and the development tools (pytest,
# hypothesis, ruff, mypy) in the virtualenv.
set -euo pipefail

MODE=${1:-test}
case $MODE in
    run|test) ;;
    *) printf 'usage: %s [run|test]\n' "$0" >&2; exit 2 ;;
esac
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
    local wanted=(python3-bpfcc python3-venv)
    # prometheus provides promtool, which the tests use to validate /metrics, and the
    # server that scrapes a running daemon in a test; prometheus-alertmanager is the
    # receiver the alert-delivery tests send to; chromium and chromium-driver, the browser
    # the dashboard's tests drive (tests/ui/test_browser.py)
    [ "$MODE" = test ] && wanted+=(stress-ng prometheus prometheus-alertmanager gcc systemd
                                   chromium chromium-driver)
    for p in "${wanted[@]}"; do
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

# The stamp of `test` covers `run` (the development tools come on top of linnix).
venv_setup() {
    local py spec=. what="linnix" stamp=$VENV/.linnix-installed-$MODE
    [ "$MODE" = test ] && { spec='.[dev]'; what="linnix and its development tools"; }
    if [ ! -x "$VENV/bin/python" ]; then
        py=$(pick_python) || { log "error: need Python >= 3.11 with venv"; exit 1; }
        log "creating $VENV with $py"
        "$py" -m venv --system-site-packages "$VENV"
    fi
    if [ "$MODE" = run ] && [ -f "$VENV/.linnix-installed-test" ] \
            && [ ! pyproject.toml -nt "$VENV/.linnix-installed-test" ]; then
        return 0
    fi
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        log "installing $what into $VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
        "$VENV/bin/python" -m pip install -q -e "$spec"
        touch "$stamp"
    fi
}

system_setup
venv_setup
