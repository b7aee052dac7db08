#!/usr/bin/env python3
"""The cost of sampling cgroups: 500 of them, each second.

    sudo .venv/bin/python bench/cgroups.py              # needs root and cgroup v2
    sudo .venv/bin/python bench/cgroups.py --count 2000 --seconds 10

Creates ``--count`` cgroups under a test-only parent in the v2 hierarchy (and,
on a hybrid host whose memory controller is v1, the same paths in it, as systemd
mirrors its units there, so that every file a sample reads exists), puts a few
sleeping processes in some of them, and samples them all once a second for
``--seconds`` seconds with :class:`linnix.cgroups.sample.Sampler`, exactly as the
runtime will (one listing of the parent with :func:`walk`, then one sample round).
Reported: the CPU time (of this process, user + system) per round and the share
of one core at one round per second, as the median and the worst round, for the
sample round (files kept open between rounds, as the sampler does within its
descriptor budget), the listing, and for comparison a sample round that opens and
closes every file (``max_open=0``: the sampler past its budget).  The
target is <= 2 % of one core for 500 cgroups.  Every cgroup it made is removed
at the end, even after an error.  Results are printed as Markdown for
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from common import machine  # bench/common.py

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from linnix.cgroups.hierarchy import Hierarchy, discover, walk  # noqa: E402 - path set above
from linnix.cgroups.sample import Sampler  # noqa: E402

PARENT = "linnix-bench-cgroups"
PROCESSES = 8  # sleeping processes, one in each of the first cgroups


def make(h: Hierarchy, count: int) -> list[str]:
    """The parent and ``count`` children in every hierarchy the sampler reads."""
    assert h.v2 is not None
    mounts = [h.v2] + ([m] if h.memory == "v1" and (m := h.v1_mount("memory")) else [])
    made = []
    for mount in mounts:
        for path in [PARENT] + [f"{PARENT}/cg{i:04d}" for i in range(count)]:
            os.mkdir(os.path.join(mount, path))
            made.append(os.path.join(mount, path))
    return made


def populate(h: Hierarchy) -> list[subprocess.Popen[bytes]]:
    assert h.v2 is not None
    procs = []
    for i in range(PROCESSES):
        p = subprocess.Popen(["sleep", "3600"])
        procs.append(p)
        for mount in (h.v2, h.v1_mount("memory") if h.memory == "v1" else None):
            if mount is not None:
                with open(os.path.join(mount, PARENT, f"cg{i:04d}", "cgroup.procs"), "w") as f:
                    f.write(str(p.pid))
    return procs


def cleanup(made: list[str], procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.kill()
        p.wait()
    for path in reversed(made):  # children before their parent
        try:
            os.rmdir(path)
        except OSError as err:
            print(f"could not remove {path}: {err}", file=sys.stderr)


def measure(h: Hierarchy, seconds: int,
            max_open: int | None = None) -> tuple[list[float], list[float], int, int]:
    """CPU seconds of each sample round and of each listing, the number of cgroups sampled
    in the last round and the descriptors open while sampling."""
    sampler = Sampler(h, max_open)
    rounds, listings, sampled = [], [], 0
    try:
        for _ in range(seconds + 1):
            started = time.monotonic()
            cpu = time.process_time()
            cgroups = walk(h, "/" + PARENT).cgroups
            listed = time.process_time()
            sampled = len(sampler.sample(cgroups, time.monotonic()))
            rounds.append(time.process_time() - listed)
            listings.append(listed - cpu)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
        held = len(os.listdir("/proc/self/fd"))
    finally:
        sampler.close()
    # the first round opens every file and has no CPU deltas yet: left out
    return rounds[1:], listings[1:], sampled, held


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    h = discover()
    if os.geteuid() != 0 or h.v2 is None:
        print("needs root and a cgroup v2 hierarchy", file=sys.stderr)
        return 2
    made: list[str] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        made = make(h, args.count)
        procs = populate(h)
        rounds, listings, sampled, held = measure(h, args.seconds)
        reopened = measure(h, min(args.seconds, 10), max_open=0)[0]
    finally:
        cleanup(made, procs)
    print(f"## Sampling cgroups (bench/cgroups.py) — {time.strftime('%Y-%m-%d')}\n")
    print(f"{machine()}; v2 at {h.v2}, memory from {h.memory}; load average "
          f"{os.getloadavg()[0]:.2f} at the end; {held} descriptors open while sampling.\n")
    print("| work, once a second | cgroups | rounds | CPU per round (median / worst) | "
          "share of one core (median) |")
    print("|---|---|---|---|---|")
    for what, times in (("sample round", rounds), ("listing (walk)", listings),
                        ("sample round, files opened each round (for comparison)", reopened)):
        median, worst = statistics.median(times), max(times)
        print(f"| {what} | {sampled} | {len(times)} | {median * 1e3:.1f} ms / "
              f"{worst * 1e3:.1f} ms | {median * 100:.2f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
