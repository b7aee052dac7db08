"""What the benchmark scripts share: the machine's description, a free port, the fork loop."""

from __future__ import annotations

import os
import platform
import socket
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def machine() -> str:
    """One line naming the CPU, its cores, Python and the kernel."""
    return (f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_forkloop() -> str:
    """bench/forkloop.c compiled into bench/out (again when the source is newer)."""
    source = os.path.join(HERE, "forkloop.c")
    exe = os.path.join(OUT, "forkloop")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(source):
        os.makedirs(OUT, exist_ok=True)
        subprocess.run(["gcc", "-O2", "-o", exe, source], check=True)
    return exe
