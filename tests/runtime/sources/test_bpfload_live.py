"""The program loaded by a child process, against the real kernel: the daemon's process never
maps BCC or LLVM, and what it holds keeps the program running after the child is gone.

These need root and a working eBPF toolchain (``live_support.require_ebpf``); they
skip with the reason otherwise, except in CI as root where they must run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from live_support import require_ebpf

pytestmark = [pytest.mark.root, pytest.mark.ebpf, pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
PROBE = """
import json, subprocess, sys, time
from linnix.engine import trace as t
from linnix.procfs import Clock
from linnix.runtime.sources.bcc import BpfSource
src = BpfSource(Clock(), ring_pages=64)
child = subprocess.run(["true"], check=True)
seen, deadline = [], time.monotonic() + 10
while time.monotonic() < deadline and not any(isinstance(e, t.Exec) and e.comm == "true"
                                              for e in seen):
    seen.extend(src.drain())
    time.sleep(0.02)
with open("/proc/self/maps") as f:
    mapped = sorted({line.split()[-1].rsplit("/", 1)[-1] for line in f
                     if "libbcc" in line or "LLVM" in line or "clang" in line})
print(json.dumps({"bcc": "bcc" in sys.modules, "mapped": mapped, "lost": src.lost_total(),
                  "exec": any(isinstance(e, t.Exec) and e.comm == "true" for e in seen)}))
src.close()
"""


def test_the_daemon_never_maps_the_compiler_and_the_program_runs() -> None:
    require_ebpf()
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          check=False, timeout=300, env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got == {"bcc": False, "mapped": [], "lost": 0, "exec": True}
