"""An exec's path made absolute: the order of the sources, and never a relative answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from linnix.runtime.sources.exe import Parents, absolute_exe, needs_resolving


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    """A /proc with a child 20 in ``own`` and its parent 10 in ``parent``."""
    root = tmp_path / "proc"
    for pid, cwd in ((10, "parent"), (20, "own")):
        (tmp_path / cwd).mkdir()
        (tmp_path / cwd / "x").write_text("")
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / "cwd").symlink_to(tmp_path / cwd)
    (root / "20" / "exe").symlink_to("/usr/bin/dash")  # a script's interpreter
    return root


def test_an_absolute_path_is_kept_as_given(proc: Path) -> None:
    assert absolute_exe("/bin/true", 20, 10, str(proc)) == "/bin/true"
    assert not needs_resolving("/usr/bin/x")
    assert needs_resolving("./x") and needs_resolving("x") and needs_resolving("/dev/fd/3")


def test_the_process_directory_first_then_the_parent(proc: Path, tmp_path: Path) -> None:
    assert absolute_exe("./x", 20, 10, str(proc)) == str(tmp_path / "own" / "x")
    assert absolute_exe("sub/../x", 20, 10, str(proc)) == str(tmp_path / "own" / "x")
    (tmp_path / "own" / "x").unlink()  # not there: the parent's directory is tried
    assert absolute_exe("./x", 20, 10, str(proc)) == str(tmp_path / "parent" / "x")
    assert absolute_exe("./x", 30, 10, str(proc)) == str(tmp_path / "parent" / "x")  # gone


def test_unknown_rather_than_relative(proc: Path) -> None:
    assert absolute_exe("./nothing", 20, 10, str(proc)) is None
    assert absolute_exe("./x", 30, None, str(proc)) is None
    assert absolute_exe("./x", 30, 31, str(proc)) is None


def test_an_open_file_is_known_only_from_the_live_process(proc: Path) -> None:
    assert absolute_exe("/dev/fd/3", 20, 10, str(proc)) == "/usr/bin/dash"
    assert absolute_exe("/dev/fd/3", 30, 10, str(proc)) is None


def test_the_parent_table_is_bounded_oldest_first() -> None:
    parents = Parents(limit=3)
    for pid in range(1, 6):
        parents.fork(pid, 100 + pid)
    assert list(parents.parents) == [3, 4, 5]
    parents.parents.update({6: 106, 7: 107})  # as the reader adds, unchecked
    parents.trim()
    assert list(parents.parents) == [5, 6, 7] and parents.get(7) == 107
    parents.exit(7)
    assert parents.get(7) is None
    parents.fork(5, 200)  # a reused pid is the newest
    assert list(parents.parents) == [6, 5] and parents.get(5) == 200
