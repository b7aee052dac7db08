"""What the benchmark scripts share: the machine's description, a free port, the fork loop,
and the agent running in the background."""

from __future__ import annotations

import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
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


def build(name: str) -> str:
    """bench/NAME.c compiled into bench/out (again when the source is newer)."""
    source = os.path.join(HERE, f"{name}.c")
    exe = os.path.join(OUT, name)
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(source):
        os.makedirs(OUT, exist_ok=True)
        subprocess.run(["gcc", "-O2", "-o", exe, source], check=True)
    return exe


def build_forkloop() -> str:
    return build("forkloop")


class ProcTree:
    """The reference load's live processes: a tree of sleepers (bench/proctree.c)."""

    def __init__(self, fanout: tuple[int, ...] = (10, 10, 9)) -> None:
        self.proc = subprocess.Popen([build("proctree"), *map(str, fanout)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit("bench/proctree did not start")
        self.size = 1 + sum(math.prod(fanout[:i + 1]) for i in range(len(fanout)))

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


_HZ = os.sysconf("SC_CLK_TCK")


def run_child(argv: list[str]) -> tuple[float, Any]:
    """Wall seconds and the resource usage of one child process run to its end."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{argv[:3]} failed with status {status}")
    return wall, usage


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """CPU time (user + system) a process (or one of its threads) has used so far."""
    with open(f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat",
              "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _HZ


class Agent:
    """``linnix run`` in the background with its own state directory."""

    def __init__(self, state: str, *extra: str, rules: str = os.path.join(ROOT, "rules"),
                 code: str = ROOT) -> None:
        self.state = state
        os.makedirs(state, exist_ok=True)
        config = os.path.join(state, "linnix.toml")
        with open(config, "w") as f:  # its own port: a daemon may hold the default one
            f.write(f'[api]\nbind = "127.0.0.1:{free_port()}"\n')
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "linnix", "run", "--rules", rules,
             "--state-dir", state, "--source", "ebpf", "--config", config, *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            cwd=code, env={**os.environ, "PYTHONPATH": code})  # the checkout whose linnix runs
        status = os.path.join(state, "daemon.json")
        deadline = time.time() + 60
        while not os.path.exists(status):
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"agent did not start: {self.proc.stderr.read()}")  # type: ignore[union-attr]
            time.sleep(0.1)
        with open(status) as f:
            self.origin = json.load(f)["clock_origin_boottime"]
        time.sleep(2.0)  # let the start-up scan and first samples settle

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def rss_kb(self) -> int:
        """Resident memory now (VmRSS), in KiB."""
        with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise SystemExit("the agent has exited")

    def now(self) -> float:
        return time.clock_gettime(time.CLOCK_BOOTTIME) - self.origin

    def alerts(self) -> list[dict[str, object]]:
        with open(os.path.join(self.state, "alerts.jsonl")) as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        return err
