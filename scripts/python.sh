# Sourced by setup.sh and install.sh: which interpreter the virtualenv is made from.

pick_python() {
    # The distribution's interpreter: the one python3-bpfcc is installed for.
    for py in /usr/bin/python3 python3; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$py"
            return 0
        fi
    done
    return 1
}
