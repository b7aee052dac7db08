"""The cgroup of an exec and the user of a fork, filled in by the live sources."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
from engine_support import execve, exit_, fork, sample
from proc_support import FakeProc

from linnix.engine import trace as t
from linnix.runtime.sources.identity import Identity, Users

NGINX = "/system.slice/nginx.service"


class Lookups:
    """A password database that counts its lookups."""

    def __init__(self, names: dict[int, str]) -> None:
        self.names = names
        self.calls: list[int] = []

    def __call__(self, uid: int) -> str | None:
        self.calls.append(uid)
        return self.names.get(uid)


def passwd(tmp_path: Path, text: str = "root:x:0:0::/root:/bin/sh\n") -> Path:
    path = tmp_path / "passwd"
    path.write_text(text)
    return path


def test_a_name_is_looked_up_once_and_an_unknown_uid_has_none(tmp_path: Path) -> None:
    lookups = Lookups({0: "root"})
    users = Users(str(passwd(tmp_path)), lookups)
    users.check()
    assert [users.name(0), users.name(0), users.name(4242), users.name(4242)] == [
        "root", "root", None, None]
    assert users.name(None) is None
    assert lookups.calls == [0, 4242]


def test_names_are_looked_up_again_when_the_database_changes(tmp_path: Path) -> None:
    path = passwd(tmp_path)
    lookups = Lookups({1000: "alice"})
    users = Users(str(path), lookups)
    users.check()
    assert users.name(1000) == "alice"
    users.check()  # unchanged: still cached
    assert users.name(1000) == "alice" and lookups.calls == [1000]
    lookups.names[1000] = "alicia"
    path.write_text("root:x:0:0::/root:/bin/sh\nalicia:x:1000:1000::/home/a:/bin/sh\n")
    users.check()  # another size (and mtime): read again
    assert users.name(1000) == "alicia" and lookups.calls == [1000, 1000]
    os.utime(path, ns=(1, 1))  # the same size, another mtime
    users.check()
    users.name(1000)
    assert lookups.calls == [1000, 1000, 1000]


def test_the_cache_is_bounded(tmp_path: Path) -> None:
    users = Users(str(passwd(tmp_path)), Lookups({}), limit=3)
    for uid in range(10):
        users.name(uid)
    assert len(users.names) <= 3


def test_execs_get_their_cgroup_and_forks_their_user(tmp_path: Path) -> None:
    fake = FakeProc(tmp_path / "proc").add(100, "x", cgroup=NGINX)
    lookups = Lookups({33: "www-data"})
    identity = Identity(Users(str(passwd(tmp_path)), lookups), root=fake.path)
    batch: list[t.Event] = [fork(1.0, 100, 1, uid=33), execve(1.1, 100, "x"),
                            execve(1.2, 101, "gone"), fork(1.3, 102, 1), sample(1.4, 100),
                            exit_(1.5, 101), fork(1.6, 103, 1, uid=33)]
    identity.fill(batch)
    assert [getattr(ev, "cgroup", "-") for ev in batch] == [
        None, NGINX, None, None, "-", "-", None]  # 101 is gone: no cgroup, never a guess
    assert [getattr(ev, "user", "-") for ev in batch] == [
        "www-data", "-", "-", None, "-", "-", "www-data"]
    assert lookups.calls == [33]  # once for the batch, however many forks
    second = [fork(2.0, 104, 1, uid=33)]
    execs, forks = identity.missing(second)  # a name in the cache needs no reading
    assert (execs, forks, second[0].user) == ([], [], "www-data")


def test_cgroup_reads_are_bounded_per_batch(tmp_path: Path) -> None:
    fake = FakeProc(tmp_path / "proc")
    for pid in range(100, 110):
        fake.add(pid, "x", cgroup=NGINX)
    identity = Identity(Users(str(passwd(tmp_path)), Lookups({})), root=fake.path, reads=4)
    batch = [execve(1.0, pid, "x") for pid in range(100, 110)]
    identity.fill(batch)
    assert [ev.cgroup for ev in batch] == [NGINX] * 4 + [None] * 6


async def test_enrich_reads_on_a_worker_thread_only_when_there_is_something_to_read(
        tmp_path: Path, autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeProc(tmp_path / "proc").add(100, "x", cgroup=NGINX)
    identity = Identity(Users(str(passwd(tmp_path)), Lookups({0: "root"})), root=fake.path)
    threads: list[object] = []
    real = trio.to_thread.run_sync

    async def counted(fn: Callable[..., object], *args: object) -> object:
        threads.append(fn)
        return await real(fn, *args)

    monkeypatch.setattr(trio.to_thread, "run_sync", counted)
    ex, fk = execve(1.0, 100, "x"), fork(1.0, 101, 100, uid=0)
    await identity.enrich([ex, fk])
    assert (ex.cgroup, fk.user, len(threads)) == (NGINX, "root", 1)
    quiet = fork(2.0, 102, 100, uid=0)
    await identity.enrich([sample(2.0, 100), quiet])  # cached; /etc/passwd seen just now
    assert (quiet.user, len(threads)) == ("root", 1)
    await trio.sleep(1.5)
    await identity.enrich([sample(3.5, 100)])  # time to look at /etc/passwd again
    assert len(threads) == 2
