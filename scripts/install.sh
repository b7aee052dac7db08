#!/usr/bin/env bash
# Installs linnix as a systemd service (`make install`, as root).  docs/service.md explains it.
#
#   /opt/linnix                     a virtualenv that sees the system's site-packages (the
#                                   distribution's BCC bindings, python3-bpfcc), with linnix
#   /etc/linnix/linnix.toml         the example configuration, unless one is there already
#   /etc/linnix/rules/              the shipped rules, unless the directory is there already,
#   /etc/linnix/fixtures/           with the traces their test blocks name (a rule file that
#                                   names a missing trace does not load)
#   /etc/systemd/system/linnix.service
#
# then `systemctl daemon-reload` when systemd runs this machine.  Nothing there already is
# overwritten but the virtualenv's linnix and the unit, which belong to this version.
#
# Options: --prefix DIR (/opt/linnix), --config-dir DIR (/etc/linnix), --unit-dir DIR
# (/etc/systemd/system), --no-venv (only the files: configuration, rules and unit).
# Enabling and starting is left to you: systemctl enable --now linnix
set -euo pipefail

PREFIX=/opt/linnix
CONFIG_DIR=/etc/linnix
UNIT_DIR=/etc/systemd/system
VENV=1
SRC=$(cd "$(dirname "$0")/.." && pwd)
. "$SRC/scripts/python.sh"

log() { printf 'install: %s\n' "$*"; }
fail() { printf 'install: %s\n' "$*" >&2; exit 1; }
usage() { printf 'usage: %s [--prefix DIR] [--config-dir DIR] [--unit-dir DIR] [--no-venv]\n' "$0" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
        --prefix) [ $# -ge 2 ] || usage; PREFIX=$2; shift 2 ;;
        --config-dir) [ $# -ge 2 ] || usage; CONFIG_DIR=$2; shift 2 ;;
        --unit-dir) [ $# -ge 2 ] || usage; UNIT_DIR=$2; shift 2 ;;
        --no-venv) VENV=0; shift ;;
        -h|--help) usage ;;
        *) printf 'install: unknown option %s\n' "$1" >&2; usage ;;
    esac
done

# A file with the default places replaced by the ones chosen.
here() {
    sed -e "s#/opt/linnix#$PREFIX#g" -e "s#/etc/linnix#$CONFIG_DIR#g" "$1"
}

install_venv() {
    local py
    if [ ! -x "$PREFIX/bin/python" ]; then
        py=$(pick_python) || fail "need Python >= 3.11 with venv (apt-get install python3-venv)"
        log "creating the virtualenv $PREFIX with $py"
        "$py" -m venv --system-site-packages "$PREFIX"
    fi
    log "installing linnix from $SRC into $PREFIX"
    "$PREFIX/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$PREFIX/bin/python" -m pip install -q "$SRC"
}

install_config() {
    install -d -m 0755 "$CONFIG_DIR"
    if [ -e "$CONFIG_DIR/linnix.toml" ]; then
        log "keeping $CONFIG_DIR/linnix.toml (the example is $SRC/linnix.example.toml)"
    else
        here "$SRC/linnix.example.toml" > "$CONFIG_DIR/linnix.toml"
        chmod 0644 "$CONFIG_DIR/linnix.toml"
        log "installed $CONFIG_DIR/linnix.toml"
    fi
}

# The rules as a whole: a directory already there is the operator's (a rule removed from it
# on purpose must not come back with the next install).
install_rules() {
    local trace
    if [ -e "$CONFIG_DIR/rules" ]; then
        log "keeping $CONFIG_DIR/rules (the shipped rules are in $SRC/rules)"
        return 0
    fi
    install -d -m 0755 "$CONFIG_DIR/rules" "$CONFIG_DIR/fixtures"
    install -m 0644 "$SRC"/rules/*.lnx "$CONFIG_DIR/rules/"
    for trace in $(sed -n 's/^[[:space:]]*trace "\.\.\/fixtures\/\([^"/]*\)".*/\1/p' "$SRC"/rules/*.lnx | sort -u); do
        [ -e "$CONFIG_DIR/fixtures/$trace" ] || install -m 0644 "$SRC/fixtures/$trace" "$CONFIG_DIR/fixtures/"
    done
    log "installed the shipped rules in $CONFIG_DIR/rules"
}

install_unit() {
    install -d -m 0755 "$UNIT_DIR"
    here "$SRC/packaging/linnix.service" > "$UNIT_DIR/linnix.service"
    chmod 0644 "$UNIT_DIR/linnix.service"
    log "installed $UNIT_DIR/linnix.service"
    # /run/systemd/system exists only when systemd is pid 1 (what sd_booted() checks)
    if [ -d /run/systemd/system ] && [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
        systemctl daemon-reload
        log "systemd reloaded; start it with: systemctl enable --now linnix"
    else
        log "systemd is not pid 1 here: skipped 'systemctl daemon-reload'"
    fi
}

[ "$(id -u)" = 0 ] || fail "run as root (it writes $PREFIX, $CONFIG_DIR and $UNIT_DIR)"
[ -f "$SRC/packaging/linnix.service" ] || fail "run from a linnix checkout ($SRC has no packaging/)"
if [ "$VENV" = 1 ]; then
    install_venv
fi
install_config
install_rules
install_unit
