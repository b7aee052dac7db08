"""mountinfo: the cgroup mounts found in it, escapes undone, anything malformed skipped."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from linnix.cgroups.mounts import Mount, parse_mountinfo, read_mountinfo

# This machine's mountinfo, cut to the cgroup lines and a few others.
HYBRID = """\
23 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
"""


def test_a_hybrid_hosts_mounts() -> None:
    assert parse_mountinfo(HYBRID) == [
        Mount("/sys/fs/cgroup/cpu", "/", 1, frozenset({"cpu"})),
        Mount("/sys/fs/cgroup/cpuacct", "/", 1, frozenset({"cpuacct"})),
        Mount("/sys/fs/cgroup/memory", "/", 1, frozenset({"memory"})),
        Mount("/sys/fs/cgroup/systemd", "/", 1, frozenset(), "systemd"),
        Mount("/sys/fs/cgroup/unified", "/", 2),
    ]


def test_optional_fields_joined_controllers_and_escapes() -> None:
    text = ("50 1 0:40 /lxc/c1 /mnt/my\\040cgroups rw shared:3 master:1 - cgroup2 none "
            "rw\n"
            "51 1 0:41 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct,"
            "release_agent=/x\n")
    assert parse_mountinfo(text) == [
        Mount("/mnt/my cgroups", "/lxc/c1", 2),
        Mount("/sys/fs/cgroup/cpu,cpuacct", "/", 1, frozenset({"cpu", "cpuacct"})),
    ]


def test_malformed_lines_are_skipped() -> None:
    text = ("garbage\n"
            "1 2 3 4 5 6 7 8 9\n"  # no separator
            "60 1 0:1 / /x rw - cgroup2\n"  # separator, too few fields after it
            "61 1 0:1 / /ok rw - cgroup2 cgroup2 rw\n")
    assert parse_mountinfo(text) == [Mount("/ok", "/", 2)]


def test_an_unreadable_mountinfo_is_no_mounts(tmp_path: Path) -> None:
    assert read_mountinfo(str(tmp_path / "absent")) == []
    (tmp_path / "mountinfo").write_bytes(HYBRID.encode() + b"\xff\xfe\n")
    assert len(read_mountinfo(str(tmp_path / "mountinfo"))) == 5


@given(st.text(max_size=400))
def test_any_text_parses_without_error(text: str) -> None:
    for m in parse_mountinfo(text):
        assert m.version in (1, 2)
