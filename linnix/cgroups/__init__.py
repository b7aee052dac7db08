"""Cgroups: the hierarchy, per-cgroup samples (the cg_* names) and the freeze and kill primitives.

A leaf package, used by the runtime and the actions: synchronous file reads and writes only
(no trio); callers on the event loop run them in a thread.  docs/cgroups.md says which name
comes from which file on v2-only and hybrid hosts.
"""
