"""Cgroup samples as trace events, over a fake cgroup tree; and the telemetry taking them
only when a rule reads a cg_* name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cgroups_support import FakeHost

from linnix.engine import trace as t
from linnix.language.pipeline import compile_text
from linnix.procfs import Clock
from linnix.runtime.sources import cgroupsamples
from linnix.runtime.sources.cgroupsamples import CgroupSamples
from linnix.runtime.sources.telemetry import Telemetry


class _Clock(Clock):
    def __init__(self) -> None:
        super().__init__()
        self.at = 5.0

    def now(self) -> float:
        return self.at


def test_a_round_samples_the_cgroups_named_and_says_which_went_away(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "v2")
    web = host.add("/system.slice/web.service", cgroup_procs="7\n8\n",
                   memory_current=str(300 << 20) + "\n", memory_max=str(1000 << 20) + "\n")
    host.add("/user.slice")
    samples = CgroupSamples(_Clock(), host.hierarchy)
    first = samples.sample(["/system.slice/web.service", "/user.slice", "/nowhere",
                            "/system.slice/web.service"])
    assert [(type(e).__name__, getattr(e, "cgroup", None)) for e in first] == [
        ("Cgroup", "/user.slice"), ("Cgroup", "/system.slice/web.service")]
    ev = first[1]
    assert isinstance(ev, t.Cgroup)
    assert (ev.ts, ev.id, ev.procs, ev.mem_mb, ev.mem_max_mb) == (5.0, web.id, 2, 300.0,
                                                                  1000.0)
    assert ev.cpu_pct is None  # no previous sample to compare with: no value, never 0
    again = samples.sample(["/user.slice"])  # web has no process left that we know of
    assert [type(e).__name__ for e in again] == ["Cgroup", "CgroupGone"]
    assert again[1] == t.CgroupGone(ts=5.0, id=web.id)
    assert samples.sample(["/user.slice"])[1:] == []  # said once


def test_a_round_is_bounded(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(cgroupsamples, "ROUND_MAX", 2)
    host = FakeHost(tmp_path, "v2")
    for name in ("/a", "/b", "/a/deep"):
        host.add(name)
    got = CgroupSamples(_Clock(), host.hierarchy).sample(["/a/deep", "/b", "/a"])
    assert [e.cgroup for e in got if isinstance(e, t.Cgroup)] == ["/a", "/b"]  # shallowest


class _Source:
    def lost_event(self) -> None:
        return None


def test_telemetry_samples_cgroups_only_when_a_rule_reads_them(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "v2")
    host.add("/user.slice")
    process_rules = compile_text("rule r: cpu_pct > 1\n")
    telemetry = Telemetry(_Clock(), process_rules, _Source())  # type: ignore[arg-type]
    assert telemetry.cgroups is None
    assert not any(isinstance(e, t.Cgroup) for e in telemetry.collect(["/user.slice"]))
    telemetry.configure(compile_text("rule r: cg_procs > 1\n"))
    assert telemetry.cgroups is not None
    telemetry.cgroups = CgroupSamples(_Clock(), host.hierarchy)  # the fake tree's
    got = telemetry.collect(["/user.slice"])
    assert [e.cgroup for e in got if isinstance(e, t.Cgroup)] == ["/user.slice"]
    telemetry.configure(process_rules)  # reloaded without cgroup rules: no cost again
    assert telemetry.cgroups is None


def test_with_a_root_every_cgroup_under_it_is_sampled_too(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "v2")
    for name in ("/system.slice", "/system.slice/a.service", "/system.slice/b.service",
                 "/user.slice"):
        host.add(name)
    got = CgroupSamples(_Clock(), host.hierarchy).sample(["/user.slice"], "/system.slice")
    assert [e.cgroup for e in got if isinstance(e, t.Cgroup)] == [
        "/user.slice", "/system.slice", "/system.slice/a.service", "/system.slice/b.service"]


_LIMITS = """
import resource, sys
from linnix.cgroups.hierarchy import Hierarchy
from linnix.procfs import Clock
from linnix.runtime.sources.cgroupsamples import CgroupSamples
resource.setrlimit(resource.RLIMIT_NOFILE, (1024, int(sys.argv[1])))
samples = CgroupSamples(Clock(), Hierarchy())
print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], samples.sampler.max_open)
"""


def test_cgroup_sampling_raises_a_shells_descriptor_limit_to_keep_files_open() -> None:
    """A shell's soft limit of 1,024 would keep the files of only some 46 cgroups open: the
    soft limit is raised towards the hard one first, and the sampler's budget follows it."""
    import resource
    import subprocess
    import sys

    from linnix.cgroups.sample import FD_WANTED

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    hard = FD_WANTED * 2 if hard == resource.RLIM_INFINITY else hard
    for cap, soft in ((hard, min(hard, FD_WANTED)), (2048, 2048)):
        out = subprocess.run([sys.executable, "-c", _LIMITS, str(cap)], capture_output=True,
                             text=True, check=True).stdout.split()
        assert (int(out[0]), int(out[1])) == (soft, soft // 2)
