"""Helpers for tests that need the kernel: eBPF availability and a daemon runner.

Tests that need root or eBPF call :func:`require_ebpf` / :func:`require_root`.
They skip with the reason printed when the host cannot run them; in CI
(``CI=true``) as root they must run, so there an unavailable eBPF fails the
test instead of skipping it.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from support import ROOT

RULES = ROOT / "rules"
T = TypeVar("T")


def _must_run() -> bool:
    return os.environ.get("CI") == "true" and os.geteuid() == 0


def _unavailable(reason: str) -> None:
    if _must_run():
        pytest.fail(f"CI runs as root, so this must work here: {reason}")
    print(f"skipped: {reason}", file=sys.stderr)
    pytest.skip(reason)


def require_root() -> None:
    if os.geteuid() != 0:
        _unavailable("needs root")


def require_program(name: str, package: str) -> str:
    """The path of ``name``, or skip (fail in CI) naming the package that has it."""
    path = shutil.which(name)
    if path is None:
        _unavailable(f"{name} is not installed (Debian's {package}; scripts/setup.sh "
                     "installs it)")
    assert path is not None
    return path


def require_module(name: str, package: str) -> None:
    """Skip (fail in CI) unless the Python module ``name`` imports; ``package`` has it."""
    try:
        __import__(name)
    except ImportError as err:
        _unavailable(f"the Python module {name} cannot be imported ({err}); "
                     f"pip install {package} (a test dependency in pyproject.toml)")


@functools.cache
def _ebpf_problem() -> str | None:
    if os.geteuid() != 0:
        return "eBPF capture needs root"
    from linnix.procfs import Clock
    from linnix.runtime.sources.bcc import BpfSource, BpfUnavailableError

    try:
        BpfSource(Clock(), ring_pages=64).close()
    except BpfUnavailableError as err:
        return str(err)
    return None


def require_ebpf() -> None:
    problem = _ebpf_problem()
    if problem is not None:
        _unavailable(problem)


def outline(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """alerts.jsonl in short: (ts, rule, state) of alerts, (ts, rule, action) of proposals."""
    return [(r.get("ts"), r.get("rule"), r.get("state", r.get("action"))) for r in records]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Daemon:
    """``linnix run`` as a subprocess with its own state directory."""

    def __init__(self, state: Path, *args: str, rules: list[str] | None = None,
                 env: dict[str, str] | None = None, user: int | None = None,
                 umask: int = -1, wrap: Sequence[str] = (),
                 stdout: Path | None = None) -> None:
        self.state = state
        cmd = [sys.executable, "-m", "linnix", "run", "--state-dir", str(state)]
        for path in rules or [str(RULES)]:
            cmd += ["--rules", path]
        if "--config" not in args:  # never the default port: a real daemon may hold it
            config = state.parent / f"{state.name}.toml"
            config.write_text(f'[api]\nbind = "127.0.0.1:{free_port()}"\n')
            cmd += ["--config", str(config)]
        cmd += list(args)
        if user is not None:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
        cmd = [*wrap, *cmd]  # a command to run it under (setpriv with capabilities)
        # a test that makes thousands of alerts gives their terminal lines to a file: nobody
        # reads the pipe until the end, and a full pipe stops the daemon's writes
        out = subprocess.PIPE if stdout is None else stdout.open("w")
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, **(env or {})},
                                     cwd=str(ROOT), umask=umask)
        if stdout is not None:
            out.close()  # type: ignore[union-attr]  # the daemon holds its own copy
        self.stdout = ""
        self.stderr = ""

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        status = self.state / "daemon.json"
        deadline = time.monotonic() + timeout
        while not status.exists():
            if self.proc.poll() is not None:
                self.collect()
                raise AssertionError(f"daemon exited early:\n{self.stderr}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"daemon not ready after {timeout}s:\n{self.stderr}")
            time.sleep(0.05)
        info: dict[str, Any] = json.loads(status.read_text())
        self.origin = float(info["clock_origin_boottime"])
        return info

    def now(self) -> float:
        """The daemon's clock: seconds since it started, on boot time."""
        return time.clock_gettime(time.CLOCK_BOOTTIME) - self.origin

    def alerts(self) -> list[dict[str, Any]]:
        path = self.state / "alerts.jsonl"
        if not path.exists():
            return []
        # the daemon may be writing a line as it is read: only whole lines count
        *whole, _partial = path.read_text().split("\n")
        return [json.loads(line) for line in whole if line.strip()]

    def wait_alert(self, rule: str, state: str, since: float, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for a in self.alerts():
                if a.get("type") == "alert" and a.get("rule") == rule \
                        and a.get("state") == state and a["ts"] >= since:
                    return a
            time.sleep(0.1)
        raise AssertionError(f"{rule} never became {state} within {timeout}s; alerts: "
                             f"{outline(self.alerts())}")

    def close_stderr(self) -> None:
        """Stop reading the daemon's stderr, like a log reader that went away: its next
        write meets a closed pipe."""
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        self.proc.stderr = None  # nothing left to collect from it

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 10.0) -> float:
        """SIGTERM; the seconds it took to exit."""
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.collect()
        return time.monotonic() - started

    def collect(self) -> None:
        out, err = self.proc.communicate()
        self.stdout += out or ""
        self.stderr += err or ""


def wait_for(fn: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``fn`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


class Api:
    """The daemon's HTTP API, with the token from its state directory."""

    def __init__(self, state: Path) -> None:
        info = json.loads((state / "daemon.json").read_text())
        assert info["api"], info
        self.base = f"http://{info['api']}"
        self.token = (state / "api.token").read_text().strip()

    def _call(self, method: str, path: str, body: object = None,
              host: str | None = None) -> tuple[int, Any]:
        status, data = self._raw(method, path, body, host)
        return status, json.loads(data or b"null")

    def _raw(self, method: str, path: str, body: object = None,
             host: str | None = None) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if host is not None:
            request.add_header("Host", host)
        request.add_header("Authorization", f"Bearer {self.token}")  # reads need it too
        if method == "POST":
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, bytes(response.read())
        except urllib.error.HTTPError as err:
            return err.code, bytes(err.read())

    def get(self, path: str) -> Any:
        status, data = self._call("GET", path)
        assert status == 200, (path, status, data)
        return data

    def post(self, path: str, body: object) -> tuple[int, Any]:
        return self._call("POST", path, body)

    def audit(self, **query: str) -> list[dict[str, Any]]:
        args = "&".join(f"{k}={v}" for k, v in {"limit": "1000", **query}.items())
        return list(self.get(f"/audit?{args}")["audit"])

    def metrics(self) -> dict[str, float]:
        """``/metrics``: each sample without labels, by name (the daemon's own gauges)."""
        status, data = self._raw("GET", "/metrics")
        assert status == 200, (status, data)
        found = {}
        for line in data.decode().splitlines():
            name, _, value = line.partition(" ")
            if line and not line.startswith("#") and "{" not in name:
                found[name] = float(value)
        return found


def drain_until(src: Any, pred: Callable[[list[Any]], bool],
                timeout: float = 15.0) -> list[Any]:
    """What a live source gives, drained every 20 ms until ``pred`` holds of all of it
    (or ``timeout`` seconds pass: then whatever came)."""
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.extend(src.drain())
        if pred(seen):
            return seen
        time.sleep(0.02)
    return seen


# A Python program that connects to 127.0.0.1:argv[1], paced at argv[2] connections a
# second, for argv[3] seconds, and prints how many it made.
CONNECT_LOOP = r"""
import socket, sys, time
port, rate, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
n, start = 0, time.monotonic()
while (now := time.monotonic()) - start < seconds:
    if n >= (now - start) * rate:
        time.sleep(0.0005); continue
    s = socket.socket(); s.connect(("127.0.0.1", port)); s.close(); n += 1
print(n)
"""
