"""What a recording keeps: one process tree only (``--only-tree``), and no secrets (``--redact``).

A recording of a whole machine holds that machine's own processes, and a
command line may carry its environment (tokens, paths, names).  A
:class:`TraceFilter` keeps the events of the chosen processes and of every
descendant, including those started after the recording began; the header,
host samples and lost-event counts stay.  With ``redact``, command lines and
argument lists are dropped, every word shaped like ``NAME=value``
(environment text) in the other text fields is replaced by ``[redacted]``, and
network events lose their addresses (``remote_addr``, ``local_addr``: whom the
machine talks to; a unix socket's path), keeping family and ports.

The events handed to the filter are the ones the engine goes on to consume:
it never changes them, it writes changed copies.  Membership is kept per pid
and forgotten at exit, so its memory is bounded by the live processes.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable, Sequence

import msgspec

from ..engine import trace as t
from .live import Recorder

__all__ = ["REDACTED", "FilteredRecorder", "TraceFilter", "looks_like_env", "open_recorder",
           "redact_text"]

REDACTED = "[redacted]"
_NAME = frozenset(string.ascii_letters + string.digits + "_")


def looks_like_env(word: str) -> bool:
    """Whether ``word`` holds ``NAME=`` (a name of letters, digits and ``_`` that does not
    start with a digit), as environment text does: ``PATH=/bin``, ``--env=HOME=/root``.

    Linear in the word: each ``=`` looks back only as far as the name before it.
    """
    at = word.find("=")
    while at > 0:
        begin = at
        while begin > 0 and word[begin - 1] in _NAME:
            begin -= 1
        if begin < at and not word[begin].isdigit():
            return True
        at = word.find("=", at + 1)
    return False


def redact_text(text: str) -> str:
    """``text`` with every word that :func:`looks_like_env` replaced by ``[redacted]``."""
    if "=" not in text:
        return text
    words = text.split()
    if not any(looks_like_env(w) for w in words):
        return text
    return " ".join(REDACTED if looks_like_env(w) else w for w in words)


def _redact_opt(text: str | None) -> str | None:
    return None if text is None else redact_text(text)


class TraceFilter:
    """Keeps the events of some process trees, and redacts them; see the module's text.

    ``roots`` empty: every process is kept.
    """

    def __init__(self, roots: Iterable[int] = (), redact: bool = False) -> None:
        self.roots = frozenset(roots)
        self.redact = redact
        self.members: set[int] = set(self.roots)  # live pids in the trees

    @property
    def active(self) -> bool:
        """Whether the filter changes anything at all."""
        return bool(self.roots) or self.redact

    def header(self, header: t.Header) -> t.Header:
        if not self.redact or header.host is None:
            return header
        return msgspec.structs.replace(header, host=redact_text(header.host))

    def apply(self, batch: Sequence[t.Event]) -> list[t.Event]:
        """The events of ``batch`` to write, in order (copies where redacted)."""
        keep = self._in_tree(batch) if self.roots else list(batch)
        return [self._redacted(ev) for ev in keep] if self.redact else keep

    def _in_tree(self, batch: Sequence[t.Event]) -> list[t.Event]:
        members = self.members
        running = self._running_members([ev for ev in batch if isinstance(ev, t.Proc)])
        keep: list[t.Event] = []
        for ev in batch:
            if isinstance(ev, (t.System, t.Lost, t.Cgroup, t.CgroupGone)):  # no pid: kept
                keep.append(ev)
            elif isinstance(ev, t.Proc):
                if ev.pid in running:
                    members.add(ev.pid)
                    keep.append(ev)
            elif isinstance(ev, t.Fork):
                if ev.ppid in members:
                    members.add(ev.pid)
                    keep.append(ev)
                else:  # a pid reused by a process outside the trees
                    members.discard(ev.pid)
            elif ev.pid in members:
                keep.append(ev)
                if isinstance(ev, t.Exit):
                    members.discard(ev.pid)
        return keep

    def _running_members(self, procs: list[t.Proc]) -> set[int]:
        """The pids of ``procs`` (processes already running) that are in the trees.

        A parent may be listed after its child, so each one climbs its ancestors
        among ``procs``; what a climb learns is kept, so each pid is climbed once.
        """
        parent = {ev.pid: ev.ppid for ev in procs}
        inside: dict[int, bool] = {}
        for pid in parent:
            path: list[int] = []
            on_path: set[int] = set()
            here: int | None = pid
            verdict = False
            while here is not None:
                if here in self.members:
                    verdict = True
                    break
                if here in inside:
                    verdict = inside[here]
                    break
                if here in on_path:  # a loop, in a hostile trace: not in the trees
                    break
                path.append(here)
                on_path.add(here)
                here = parent.get(here)
            for step in path:
                inside[step] = verdict
        return {pid for pid in parent if pid in self.members or inside.get(pid, False)}

    def _redacted(self, ev: t.Event) -> t.Event:
        if isinstance(ev, t.Proc):
            return msgspec.structs.replace(ev, comm=redact_text(ev.comm),
                                           exe=_redact_opt(ev.exe), cmdline=None,
                                           cgroup=_redact_opt(ev.cgroup),
                                           user=_redact_opt(ev.user))
        if isinstance(ev, t.Exec):
            return msgspec.structs.replace(ev, comm=redact_text(ev.comm),
                                           exe=_redact_opt(ev.exe), argv=None,
                                           argv_truncated=False, cgroup=_redact_opt(ev.cgroup))
        if isinstance(ev, t.Fork):
            return msgspec.structs.replace(ev, comm=redact_text(ev.comm),
                                           cgroup=_redact_opt(ev.cgroup),
                                           user=_redact_opt(ev.user))
        if isinstance(ev, t.Cgroup):  # a path, still one once redacted (it starts with /)
            return msgspec.structs.replace(ev, cgroup="/" + redact_text(ev.cgroup[1:]))
        if isinstance(ev, t.Sample) and ev.comm is not None:
            return msgspec.structs.replace(ev, comm=redact_text(ev.comm))
        if isinstance(ev, (t.Connect, t.Accept)) and ev.remote_addr is not None:
            return msgspec.structs.replace(ev, remote_addr=None)
        if isinstance(ev, t.Listen) and ev.local_addr is not None:
            return msgspec.structs.replace(ev, local_addr=None)
        return ev


class FilteredRecorder(Recorder):
    """A :class:`~linnix.runtime.live.Recorder` that writes what its filter keeps."""

    def __init__(self, path: str, header: t.Header, keep: TraceFilter,
                 on_failure: Callable[[str], None] | None = None) -> None:
        self.keep = keep
        super().__init__(path, keep.header(header), on_failure=on_failure)

    def write(self, batch: Sequence[t.Event]) -> None:
        kept = self.keep.apply(batch)
        if kept:
            super().write(kept)


def open_recorder(path: str, header: t.Header, *, only_tree: Iterable[int] = (),
                  redact: bool = False,
                  on_failure: Callable[[str], None] | None = None) -> Recorder:
    """A recorder to ``path``: filtered when ``only_tree`` or ``redact`` asks for it."""
    keep = TraceFilter(only_tree, redact)
    if not keep.active:
        return Recorder(path, header, on_failure=on_failure)
    return FilteredRecorder(path, header, keep, on_failure=on_failure)
