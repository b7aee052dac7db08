"""Control groups: what linnix knows of the cgroup v2 hierarchy.

:mod:`.paths` reads a process's cgroup path and what it says: the systemd
unit and the container the process belongs to.
"""
