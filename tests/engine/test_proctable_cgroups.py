"""The process table's cgroup fields: cgroup, unit, container and user, from events."""

from __future__ import annotations

import msgspec
from engine_support import execve, fork, proc, sample, table_of

from linnix.engine import trace as t
from linnix.names import TEXT_MAX

ID = "3f4e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f"
NGINX = "/system.slice/nginx.service"
BASE = [proc(0.0, 1, 0, "init", uid=0, user="root", cgroup="/init.scope", start=0.0),
        proc(0.0, 300, 1, "nginx", uid=0, user="root", cgroup=NGINX, start=0.0)]


def fields(table: object, pid: int) -> tuple[object, ...]:
    p = table.procs[pid]  # type: ignore[attr-defined]
    return (p.cgroup, p.unit, p.container, p.user)


def test_the_start_up_scan_places_a_process_with_its_unit_and_user() -> None:
    table = table_of(BASE)
    assert fields(table, 300) == (NGINX, "nginx.service", None, "root")
    assert fields(table, 1) == ("/init.scope", "init.scope", None, "root")


def test_a_fork_is_in_its_parents_cgroup_and_has_its_user_for_the_same_uid() -> None:
    table = table_of([*BASE, fork(1.0, 301, 300, "nginx", uid=0)])
    assert fields(table, 301) == (NGINX, "nginx.service", None, "root")


def test_a_fork_with_another_uid_has_no_user_unless_the_event_names_it() -> None:
    table = table_of([*BASE, fork(1.0, 301, 300, "nginx", uid=33),
                      fork(1.0, 302, 300, "nginx", uid=33, user="www-data")])
    assert fields(table, 301) == (NGINX, "nginx.service", None, None)
    assert fields(table, 302)[3] == "www-data"


def test_a_fork_that_names_its_cgroup_is_there() -> None:
    scope = f"/system.slice/docker-{ID}.scope"
    table = table_of([*BASE, fork(1.0, 301, 300, "runc", cgroup=scope)])
    assert fields(table, 301) == (scope, f"docker-{ID}.scope", ID[:12], "root")


def test_an_exec_moves_the_process_only_when_it_says_where() -> None:
    moved = "/system.slice/system-backup\\x2djobs.slice/backup\\x2dnightly.service"
    table = table_of([*BASE, fork(1.0, 301, 300, "nginx"), execve(1.5, 301, "sh"),
                      fork(2.0, 302, 300, "nginx"), execve(2.5, 302, "backup", cgroup=moved)])
    assert fields(table, 301) == (NGINX, "nginx.service", None, "root")
    assert fields(table, 302) == (moved, "backup-nightly.service", None, "root")
    assert table.procs[302] in table.meta_changed


def test_an_old_trace_has_no_values_never_empty_ones() -> None:
    line = b'{"ts":0.0,"kind":"proc","pid":7,"ppid":0,"comm":"cron","uid":0}'
    ev = msgspec.json.decode(line, type=t.Proc)
    table = table_of([ev, fork(1.0, 8, 7, "cron"), execve(1.5, 8, "sh"),
                      sample(2.0, 9, cpu_pct=1.0)])  # 9: never announced
    for pid in (7, 8, 9):
        assert fields(table, pid) == (None, None, None, None)


def test_a_cgroup_path_is_cut_where_it_enters() -> None:
    long = "/system.slice/" + "a" * (TEXT_MAX * 2)
    table = table_of([*BASE, proc(0.0, 400, 1, "x", cgroup=long),
                      fork(1.0, 401, 1, "y", cgroup=long), execve(1.5, 300, "z", cgroup=long)])
    for pid in (400, 401, 300):
        assert fields(table, pid)[0] == long[:TEXT_MAX]
        assert fields(table, pid)[1] is None


def test_the_trace_round_trips_the_new_fields_and_leaves_them_out_when_unknown() -> None:
    events = [proc(0.0, 1, 0, "init", cgroup="/init.scope", user="root"),
              fork(1.0, 2, 1, "sh", cgroup="/a", user="bob"), execve(1.5, 2, "ls", cgroup="/b")]
    for ev in events:
        assert msgspec.json.decode(t.encode_event(ev), type=type(ev)) == ev
    assert b"cgroup" not in t.encode_event(fork(1.0, 2, 1, "sh"))
    assert b"user" not in t.encode_event(proc(0.0, 1, 0, "init"))
