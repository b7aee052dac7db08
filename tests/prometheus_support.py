"""Prometheus's programs on loopback, for the tests that talk to the real ones.

:class:`Service` runs one (Debian's ``prometheus`` or ``prometheus-alertmanager``)
on a free loopback port with its data and log in the test's directory, waits
for ``/-/ready``, reads its JSON API and stops it.  :func:`named_process`
starts a process under a name of the test's choosing, for a rule to fire on.
Every wait is bounded; ``stop`` always ends the process.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from live_support import free_port, require_program, wait_for

__all__ = ["Service", "named_process"]


class Service:
    """``binary`` on a loopback port; subclasses say with which ``arguments``."""

    binary = ""
    package = ""
    name = ""

    def __init__(self, tmp: Path) -> None:
        self.path = require_program(self.binary, self.package)
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def arguments(self, storage: Path) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.runs += 1
        storage = self.tmp / f"{self.name}-data-{self.runs}"  # each start a fresh one
        with (self.tmp / f"{self.name}-{self.runs}.log").open("wb") as log:
            self.proc = subprocess.Popen([self.path, *self.arguments(storage)],
                                         stdout=subprocess.DEVNULL, stderr=log)
        wait_for(self.ready, 60, f"{self.name} to be ready")

    def ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited: {self.log()}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=5) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def log(self) -> str:
        return (self.tmp / f"{self.name}-{self.runs}.log").read_text(errors="replace")[-2000:]

    def get(self, path: str) -> Any:
        """A JSON answer of its API."""
        with urllib.request.urlopen(f"{self.url}{path}", timeout=5) as answer:
            return json.loads(answer.read())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def named_process(tmp: Path, comm: str) -> subprocess.Popen[bytes]:
    """A process whose name (comm) is ``comm``: a copy of sleep under that name."""
    program = tmp / comm
    shutil.copy("/bin/sleep", program)
    return subprocess.Popen([str(program), "120"])
