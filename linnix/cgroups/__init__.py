"""Cgroups: the hierarchy, per-cgroup samples (cg_*) and the freeze and kill primitives.

:mod:`.paths` reads a process's cgroup path and what it says (the systemd unit and the
container the process belongs to); :mod:`.hierarchy` and :mod:`.mounts` find the v2 hierarchy
and the v1 controllers; :mod:`.sample` reads the cg_* values; :mod:`.control` freezes, thaws
and kills.  A leaf package, used by the runtime and the actions: synchronous file reads and
writes only (no trio); callers on the event loop run them in a thread.  docs/cgroups.md says
which name comes from which file on v2-only and hybrid hosts.
"""
