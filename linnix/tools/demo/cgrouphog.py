"""``linnix demo cgroup-hog``: a cgroup rule, its freeze, and the approval of its kill.

The other scenarios trip the shipped rules of a daemon the user runs; no shipped
rule reads ``cg_*`` names, and this one needs the actions of a daemon in monitor
mode with ``[actions] auto = ["freeze"]``.  So it brings both: a rule of its own
and a daemon of its own, on a state directory in a temporary directory, which it
talks to over the API as an operator would.  It puts a CPU hog (bounded: it
stops by itself after ``HOG_S``) in a fresh cgroup named like a unit, waits for
the rule to freeze it, shows that it uses no CPU time any more, approves the
kill, and shows the cgroup empty and thawed.  The daemon, the hog, the cgroup and
the directory are removed at the end, on failure, on Ctrl-C and on SIGTERM.

It needs root (it makes a cgroup) and a cgroup v2 hierarchy.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO, TypeVar

from ...cgroups.hierarchy import discover
from . import CGROUP_HOG

__all__ = ["HOG_S", "RULE", "run"]

T = TypeVar("T")
RULE = CGROUP_HOG.rule
HOG_S = 60.0  # the hog stops by itself after this, whatever happens to the demo
WAIT_S = 45.0  # for the rule to fire, the daemon to start, an action to finish
HOG = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\n" \
      "while time.monotonic() < end:\n    pass\n"


class DemoError(Exception):
    """The demo cannot go on: the reason, for the user."""


class Interrupted(Exception):  # noqa: N818  (a signal, not a failure)
    """SIGTERM or SIGHUP: stop and clean up, like Ctrl-C."""


def run(out: TextIO | None = None) -> int:
    """Run the demo; the exit status of ``linnix demo cgroup-hog``."""
    out = out or sys.stdout

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    def interrupt(signum: int, _frame: object) -> None:
        raise Interrupted(signum)

    if os.geteuid() != 0:
        sys.stderr.write("linnix: demo cgroup-hog needs root: it makes a cgroup and freezes it\n")
        return 1
    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        with tempfile.TemporaryDirectory(prefix="linnix-demo-") as tmp:
            _demo(Path(tmp), say)
        return 0
    except DemoError as err:
        sys.stderr.write(f"linnix: demo cgroup-hog: {err}\n")
        return 1
    except KeyboardInterrupt:
        say("interrupted: stopped and cleaned up")
        return 128 + signal.SIGINT
    except Interrupted as got:
        say("interrupted: stopped and cleaned up")
        return 128 + int(got.args[0])
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _demo(tmp: Path, say: Callable[[str], None]) -> None:
    v2 = discover().v2
    if v2 is None:
        raise DemoError("this host has no cgroup v2 hierarchy")
    name = f"linnix-demo-{os.getpid()}-hog.service"  # named like a unit, to be labelled one
    with _cgroup(Path(v2) / name) as group, _hog(group) as hog:
        say(f"== cgroup-hog: a CPU hog (pid {hog.pid}) in the cgroup /{name} ==")
        say(f"rule {RULE}: cg_cpu_pct > 50% for 2s, action freeze, action kill_cgroup; "
            'the daemon runs in monitor mode with [actions] auto = ["freeze"]')
        with _daemon(tmp, f"/{name}") as client:
            freeze, kill = _proposals(client)
            say(f"{RULE} fired for /{name}: freeze (action {freeze}) runs without approval, "
                f"kill_cgroup (action {kill}) waits for one")
            _settled(client, freeze, "succeeded")
            used = _frozen(group, hog.pid)
            say(f"frozen: cgroup.freeze reads 1 and the hog's CPU time stays at {used:.2f}s")
            say(f"approving action {kill} (what 'linnix actions approve {kill}' does)")
            client.call("POST", f"/actions/{kill}/approve")
            _settled(client, kill, "succeeded")
            try:
                code = hog.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                raise DemoError("the kill succeeded, but the hog is still alive") from None
            left = (group / "cgroup.procs").read_text().split()
            say(f"killed: the hog died of signal {-code}; {len(left)} process(es) left "
                f"in /{name}")
            _wait(lambda: (group / "cgroup.freeze").read_text().strip() == "0", "the thaw")
            say("thawed: cgroup.freeze reads 0 (the freeze never outlives its decision)")


class _Api:
    """The few calls the demo makes to its daemon's API, with the daemon's token (a client
    of its own: tools/ does not import the api package)."""

    def __init__(self, address: str, token: str) -> None:
        self.base, self.token = f"http://{address}", token
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method: str, path: str) -> Any:
        request = urllib.request.Request(self.base + path, method=method,
                                         data=b"{}" if method == "POST" else None)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            raise DemoError(f"{method} {path}: HTTP {err.code}: {err.read()[:500]!r}") from None
        except (OSError, ValueError) as err:
            raise DemoError(f"{method} {path}: {err}") from None

    def actions(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/actions?limit=100")["actions"])

    def status(self, action_id: int) -> str:
        return str(self.call("GET", f"/actions/{action_id}")["status"])


@contextmanager
def _cgroup(group: Path) -> Iterator[Path]:
    try:
        group.mkdir()
    except OSError as err:
        raise DemoError(f"cannot make the cgroup {group}: {err.strerror}") from None
    try:
        yield group
    finally:
        _remove(group)


def _remove(group: Path) -> None:
    """Thaw, kill what is left, then remove the cgroup (its killed must be reaped first)."""
    deadline = time.monotonic() + 10.0
    while True:
        try:
            (group / "cgroup.freeze").write_text("0")
            for pid in (group / "cgroup.procs").read_text().split():
                os.kill(int(pid), signal.SIGKILL)
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def _hog(group: Path) -> Iterator[subprocess.Popen[bytes]]:
    hog = subprocess.Popen([sys.executable, "-c", HOG, str(HOG_S)])
    try:
        (group / "cgroup.procs").write_text(str(hog.pid))
        yield hog
    finally:
        hog.kill()
        hog.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _daemon(tmp: Path, cgroup: str) -> Iterator[_Api]:
    """``linnix run`` on a state directory of its own, with the demo's rule and config."""
    rules, config, state, log = (tmp / "hog.lnx", tmp / "linnix.toml", tmp / "state",
                                 tmp / "daemon.log")
    rules.write_text(f"rule {RULE} {{\n    when cg_cpu_pct > 50% and cgroup == "
                     f"{json.dumps(cgroup)} for 2s\n    severity critical\n"
                     "    action freeze\n    action kill_cgroup\n}\n")
    config.write_text(f'[runtime]\nmode = "monitor"\n[api]\nbind = "127.0.0.1:{_free_port()}"\n'
                      '[telemetry]\nsample_interval = "0.5s"\ntick = "0.25s"\n'
                      '[actions]\nauto = ["freeze"]\n')
    cmd = [sys.executable, "-m", "linnix", "run", "--state-dir", str(state), "--rules",
           str(rules), "--config", str(config), "--source", "poll"]
    with log.open("w") as sink:
        daemon = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink)
    try:
        try:
            info = _wait(lambda: _ready(state, daemon), "the daemon to start")
            yield _Api(str(info["api"]), (state / "api.token").read_text().strip())
        except DemoError as err:
            raise DemoError(f"{err}; the daemon's log:\n{log.read_text()[-2000:]}") from None
    finally:
        daemon.terminate()
        try:
            daemon.wait(15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def _ready(state: Path, daemon: subprocess.Popen[bytes]) -> dict[str, Any] | None:
    if daemon.poll() is not None:
        raise DemoError(f"the daemon exited with status {daemon.returncode}")
    try:
        info: dict[str, Any] = json.loads((state / "daemon.json").read_text())
    except (OSError, ValueError):  # not there yet, or half written
        return None
    return info if info.get("api") else None


def _proposals(client: _Api) -> tuple[int, int]:
    """The ids of the rule's freeze and kill_cgroup, once both are proposed."""
    def both() -> tuple[int, int] | None:
        kinds = {row["kind"]: int(row["id"]) for row in client.actions()
                 if row["rule"] == RULE}
        return (kinds["freeze"], kinds["kill_cgroup"]) if len(kinds) == 2 else None
    return _wait(both, f"{RULE} to fire")


def _settled(client: _Api, action_id: int, want: str) -> None:
    def done() -> bool:
        status = client.status(action_id)
        if status not in (want, "pending", "approved", "executing"):
            raise DemoError(f"action {action_id} is {status}, not {want}")
        return bool(status == want)
    _wait(done, f"action {action_id} to be {want}")


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _frozen(group: Path, pid: int) -> float:
    """The hog's CPU time, once the cgroup is frozen and it uses none for a second."""
    _wait(lambda: "frozen 1" in (group / "cgroup.events").read_text().split("\n"),
          "the cgroup to freeze")
    used = _cpu_s(pid)
    time.sleep(1.0)
    if _cpu_s(pid) != used:
        raise DemoError("the cgroup reads frozen, but the hog still uses CPU time")
    return used


def _wait(probe: Callable[[], T | None], what: str) -> T:
    deadline = time.monotonic() + WAIT_S
    while not (value := probe()):
        if time.monotonic() > deadline:
            raise DemoError(f"gave up waiting {WAIT_S:g}s for {what}")
        time.sleep(0.1)
    return value
