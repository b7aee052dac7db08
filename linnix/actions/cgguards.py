"""Safety guards of the cgroup actions: may ``freeze`` or ``kill_cgroup`` touch this cgroup?

Checked when the action is proposed and again right before it runs, like the
guards of the process actions, and synchronous (they read cgroup and /proc
files: the manager runs them in a thread).  A cgroup is refused when it is:

* the root cgroup, the agent's own cgroup or one of its ancestors (freezing
  one of them freezes the agent, which could then never thaw it);
* ``init.scope`` (pid 1), ``user.slice``, or a login session's scope
  (``session-N.scope``) or anything below one: people's shells;
* on the protected list (``[actions] protected_cgroups``: a unit name such as
  ``nginx.service``, or a cgroup path);
* holding, in it or below it, a process on the protected process list (sshd,
  systemd, the container runtimes...) or the agent or one of its ancestors.

The processes are read from every ``cgroup.procs`` of the subtree, at most
:data:`PIDS_MAX` of them in :data:`CGROUPS_MAX` cgroups: a subtree larger than
that cannot be vouched for, and is refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import attrs

from ..cgroups import files
from ..cgroups.hierarchy import Hierarchy, check_path, directory, walk
from ..cgroups.paths import cgroup_of, unit_of
from ..procfs import PROC

__all__ = ["CGROUPS_MAX", "PIDS_MAX", "CgroupGuards", "own_cgroup"]

PIDS_MAX = 65536  # processes read in a subtree at most
CGROUPS_MAX = 1000  # cgroups of a subtree read at most
COMM_READ = 64  # bytes of /proc/PID/comm read (the kernel keeps 15)


def own_cgroup(root: str = PROC) -> str | None:
    """The v2 cgroup this process runs in, or None when it cannot be read."""
    try:
        with open(f"{root}/self/cgroup", "rb") as f:
            text = f.read(65536).decode("utf-8", "surrogateescape")
    except OSError:
        return None
    return cgroup_of(text)


def _comm(pid: int, root: str) -> str | None:
    try:
        with open(f"{root}/{pid}/comm", "rb") as f:
            return f.read(COMM_READ).decode("utf-8", "replace").rstrip("\n")
    except OSError:
        return None  # exited meanwhile: it holds nothing any more


def _session_scope(part: str) -> bool:
    return part.startswith("session-") and part.endswith(".scope")


@attrs.define
class CgroupGuards:
    """The cgroup guards of one daemon.

    ``names`` are the protected process names in effect (:attr:`Guards.names`),
    ``own`` the agent's pid and its ancestors, ``own_cgroup`` the agent's cgroup
    (None: unknown, and then every cgroup action is refused)."""

    hierarchy: Hierarchy
    names: frozenset[str]
    own: set[int]
    own_cgroup: str | None
    protected: frozenset[str] = frozenset()
    root: str = PROC

    def check(self, path: str) -> str | None:
        """Why no cgroup action may touch the cgroup at ``path``, or None."""
        try:
            check_path(path)
        except ValueError as err:
            return str(err)
        return self.by_name(path) or self.by_processes(path)

    def by_name(self, path: str) -> str | None:
        """The refusals that the path alone decides."""
        if path == "/":
            return "never the root cgroup"
        if self.own_cgroup is None:
            return "linnix cannot tell its own cgroup, so it cannot keep clear of it"
        if self.own_cgroup == path or self.own_cgroup.startswith(path + "/"):
            return f"{path} holds linnix itself (its cgroup is {self.own_cgroup})"
        parts = path.split("/")[1:]
        if "init.scope" in parts:
            return f"{path}: init.scope is pid 1's"
        if path == "/user.slice":
            return "user.slice holds every user's sessions"
        if any(_session_scope(p) for p in parts):
            return f"{path} is a login session (someone's shell)"
        unit = unit_of(path)
        for name in (path, parts[-1], unit):
            if name is not None and name in self.protected:
                return f"'{name}' is on the protected list (actions.protected_cgroups)"
        return None

    def by_processes(self, path: str) -> str | None:
        """Why a process in the subtree forbids it (read from cgroup.procs and /proc)."""
        if self.hierarchy.v2 is None:
            return "no cgroup v2 hierarchy on this host"
        found = walk(self.hierarchy, path, max_count=CGROUPS_MAX)
        if not found.cgroups:
            return f"no cgroup at {path}"
        if found.truncated:
            return f"{path} has more than {CGROUPS_MAX} cgroups below it: too many to vouch for"
        pids: list[int] = []
        for cg in found.cgroups:
            read = self._procs(directory(self.hierarchy.v2, cg.path))
            pids += read
            if len(pids) > PIDS_MAX:
                return f"{path} holds more than {PIDS_MAX} processes: too many to vouch for"
        return self._judge(path, pids)

    def _procs(self, where: str) -> list[int]:
        fd = files.open_dir(where)
        if fd is None:
            return []  # removed meanwhile
        try:
            return files.read_ints("cgroup.procs", fd, PIDS_MAX + 1) or []
        except files.GoneError:
            return []
        finally:
            os.close(fd)

    def _judge(self, path: str, pids: Iterable[int]) -> str | None:
        for pid in pids:
            if pid in self.own:
                return f"{path} holds linnix or one of its ancestors (pid {pid})"
            comm = _comm(pid, self.root)
            if comm is not None and comm in self.names:
                return f"{path} holds {comm}[{pid}], which is on the protected list"
        return None
