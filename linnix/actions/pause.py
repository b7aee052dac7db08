"""The switch that pauses every action, for an incident or a maintenance window.

While actions are paused nothing executes: enforce mode approves nothing by
itself, a person's approval is refused (:class:`~.policy.ActionsPausedError`),
and an action approved just before the pause is refused right before its
executor would run.  Proposals are still made, guarded, stored and audited,
marked as made while paused, so the operator sees what would have run; their
TTLs keep running, and resuming approves none of them: one runs only when a
person approves it once actions are resumed, before it expires.

A pause has who (the token's name), since when, why and, optionally, until
when (``--for``): it then ends by itself, like a silence, on trio's monotonic
clock.  Each pause, change of pause and resume is one audit record.  It is
kept in a small file of the state directory (:class:`PauseFile`), so that a
daemon restarted during a maintenance window stays paused; a pause whose end
passed while the daemon was stopped ends at the next start (audited).  The
switch fails safe: a pause takes effect before it is stored (and is undone if
it cannot be); a resume takes effect only once it is stored and audited, and
a saved pause that cannot be read keeps actions paused until someone resumes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import stat
import time
from collections.abc import Callable
from typing import Any, TypeGuard

import attrs
import trio

from .policy import NotPausedError
from .store import AsyncStore

__all__ = ["PAUSE_FILE", "PAUSE_MAX_S", "Pause", "PauseFile", "PauseSwitch"]

PAUSE_FILE = "actions-paused.json"  # in the state directory
PAUSE_MAX_S = 30 * 86400.0  # the longest --for; longer: pause until resumed
RETRY_S = 10.0  # how soon an automatic resume the store refused is tried again
_FILE_MAX = 64 * 1024  # far more than a pause takes
ENDED = "the time the pause was set for has passed"
StoreFailure = (sqlite3.Error, OSError)


@attrs.frozen
class Pause:
    """A pause in force: since and until (wall clock, None: until resumed), by whom, why."""

    since: float
    by: str
    reason: str | None = None
    until: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since, "until": self.until, "reason": self.reason, "by": self.by}


def status_json(pause: Pause | None) -> dict[str, Any]:
    """How /health and the API show the switch: ``actions`` is paused or active."""
    if pause is None:
        return {"actions": "active"}
    return {"actions": "paused", "paused": pause.to_json()}


class PauseFile:
    """The pause, kept across restarts in one JSON file (written whole, then renamed)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def load(self) -> Pause | None:
        """The saved pause, None when there is none; ValueError or OSError when the file
        cannot be read or does not hold one."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ValueError("it is not a regular file")
            raw = f.read(_FILE_MAX + 1)
        if len(raw) > _FILE_MAX:
            raise ValueError(f"it is larger than {_FILE_MAX} bytes")
        return _parse(raw)

    def save(self, pause: Pause) -> None:
        tmp = f"{self.path}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # left by a crash
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(fd, 0o640)  # whatever the umask, like every file of the state dir
            json.dump(pause.to_json(), f)
            f.flush()
            os.fsync(fd)
        os.replace(tmp, self.path)

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def _parse(raw: bytes) -> Pause:
    try:
        data = json.loads(raw)
    except ValueError:
        raise ValueError("it is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("it is not a JSON object")
    since, until, by, reason = (data.get(k) for k in ("since", "until", "by", "reason"))
    if not _time(since) or not (until is None or _time(until)):
        raise ValueError("'since' and 'until' must be times")
    if not isinstance(by, str) or not by or not (reason is None or isinstance(reason, str)):
        raise ValueError("'by' and 'reason' must be text")
    return Pause(float(since), by, reason, None if until is None else float(until))


def _time(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value) and value >= 0


Publish = Callable[[str, dict[str, Any]], None]


class PauseSwitch:
    """The pause of one daemon: ``paused`` is the pause in force, or None."""

    def __init__(self, store: AsyncStore, file: PauseFile | None, *, publish: Publish,
                 wall: Callable[[], float] = time.time,
                 say: Callable[[str], None] = lambda message: None) -> None:
        self.store = store
        self.file = file
        self.publish = publish
        self.wall = wall
        self.say = say
        self.paused: Pause | None = None
        self.nursery: trio.Nursery | None = None  # the manager's, for the timer of --for
        self._lock = trio.Lock()  # one pause or resume at a time, in order
        self._timer: trio.CancelScope | None = None

    async def restore(self) -> None:
        """At start: the pause saved by a previous run, if any, is in force again."""
        if self.file is None:
            return
        try:
            saved = await self.store.call(self.file.load)
        except (OSError, ValueError) as err:  # unknown: keep actions paused, say why
            why = f"the saved pause ({self.file.path}) cannot be read: {err}"
            self.say(f"{why}; every action stays paused until 'linnix actions resume'")
            saved = Pause(self.wall(), "linnix", f"{why}; paused until resumed")
            await self.store.audit("linnix", "actions.paused", reason=saved.reason, until=None)
            with contextlib.suppress(*StoreFailure):  # the next start reads this pause
                await self._save(saved)
        if saved is None:
            return
        self.paused = saved
        if saved.until is not None and saved.until <= self.wall():
            await self._resume("linnix", ENDED, None)  # it ended while no daemon ran
            return
        self._arm(saved)
        self.publish("pause", status_json(saved))

    async def pause(self, by: str, reason: str | None, for_s: float | None,
                    note: str | None = None) -> Pause:
        """Pause every action from now on (again: a new end and reason, the same start)."""
        async with self._lock:
            was = self.paused
            now = self.wall()
            new = Pause(was.since if was else now, by, reason,
                        None if for_s is None else now + for_s)
            self.paused = new  # at once: nothing may run while this is being stored
            try:
                await self._save(new)
                await self.store.audit(by, "actions.paused", reason=reason, until=new.until,
                                       for_s=for_s, **_extra(note, was))
            except BaseException:
                self.paused = was
                with contextlib.suppress(*StoreFailure):  # the first error says more
                    await self._save(was)
                raise
            self._arm(new)
            self.publish("pause", status_json(new))
            return new

    async def resume(self, by: str, reason: str | None, note: str | None = None) -> Pause:
        """Resume actions (NotPausedError when they are not paused); the pause that ended."""
        async with self._lock:
            return await self._resume(by, reason, note)

    async def _resume(self, by: str, reason: str | None, note: str | None) -> Pause:
        was = self.paused
        if was is None:
            raise NotPausedError()
        try:
            await self._save(None)
            await self.store.audit(by, "actions.resumed", reason=reason, since=was.since,
                                   paused_by=was.by, **({"note": note} if note else {}))
        except BaseException:
            with contextlib.suppress(*StoreFailure):
                await self._save(was)  # still paused: saved as such
            raise
        self.paused = None  # only now: a resume that was not stored did not happen
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.publish("pause", {**status_json(None), "resumed": {
            "by": by, "reason": reason, "since": was.since, "until": was.until}})
        return was

    async def _save(self, pause: Pause | None) -> None:
        if self.file is None:
            return
        if pause is None:
            await self.store.call(self.file.clear)
        else:
            await self.store.call(self.file.save, pause)

    def _arm(self, pause: Pause) -> None:
        """End ``pause`` at its ``until`` (on trio's clock, whatever the wall clock does)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if pause.until is None or self.nursery is None:
            return
        self._timer = scope = trio.CancelScope()
        deadline = trio.current_time() + max(0.0, pause.until - self.wall())
        self.nursery.start_soon(self._end_at, pause, deadline, scope)

    async def _end_at(self, pause: Pause, deadline: float, scope: trio.CancelScope) -> None:
        with scope:
            await trio.sleep_until(deadline)
            while True:
                async with self._lock:
                    if self.paused is not pause:
                        return  # paused again or resumed meanwhile
                    try:
                        await self._resume("linnix", ENDED, None)
                        return
                    except StoreFailure as err:  # still paused: tried again
                        self.say(f"cannot resume actions at the end of the pause: {err}; "
                                 f"trying again in {RETRY_S:g}s")
                await trio.sleep(RETRY_S)


def _extra(note: str | None, was: Pause | None) -> dict[str, Any]:
    """What the audit record of a pause adds: the note, and the pause it replaced."""
    extra: dict[str, Any] = {}
    if note:
        extra["note"] = note
    if was is not None:
        extra["replaces"] = {"by": was.by, "reason": was.reason, "until": was.until}
    return extra
