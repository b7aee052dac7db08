#!/usr/bin/env python3
"""Peak memory of `linnix check` on big and hostile rule files, against their size.

Usage::

    .venv/bin/python bench/check_memory.py             # measure, print, update bench/RESULTS.md
    .venv/bin/python bench/check_memory.py --runs 5    # the median of five runs of each
    .venv/bin/python bench/check_memory.py --no-write  # measure and print only

It writes these files in a temporary directory:

* an empty file (the baseline);
* (a) one string literal of 10 MB;
* (b) 100,000 small rules, about 5 MB;
* (c) 5 MB of nested parentheses around one number;
* (d) one 5 MB line of garbage (seeded random characters of the language).

and runs ``linnix check FILE`` on each as a fresh process, several times in
turn, taking the peak RSS of each run from the kernel (``os.wait4``: the
process's own ``ru_maxrss``).  For each input it reports the median peak, the
median increase over the empty file's, and that increase divided by the file's
size, with the target of at most 20 times the size; and the median wall time,
the exit status and the codes reported.

This process writes the inputs a piece at a time and stays smaller than any
`linnix check`: a child's peak counts the memory of the process it was
started from, so a large benchmark process would show in every figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
HEADING = "## `linnix check` memory (bench/check_memory.py)"
TARGET_RATIO = 20.0
MB = 1_000_000
CHUNK = 1 << 20  # characters written at a time

sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402

# ---- the inputs -------------------------------------------------------------------------------


def _string(size: int) -> Iterator[str]:
    yield 'rule r: comm == "'
    for start in range(0, size, CHUNK):
        yield "a" * min(CHUNK, size - start)
    yield '"\n'


def _rules(count: int) -> Iterator[str]:
    for i in range(count):
        yield f'rule rule_{i:06d}: cpu_pct > {i % 90 + 1} and comm != "w{i % 97}"\n'


def _parentheses(size: int) -> Iterator[str]:
    depth = (size - 40) // 2
    yield "rule r: cpu_pct > "
    for start in range(0, depth, CHUNK):
        yield "(" * min(CHUNK, depth - start)
    yield "1"
    for start in range(0, depth, CHUNK):
        yield ")" * min(CHUNK, depth - start)
    yield "\n"


def _garbage(size: int, seed: int = 1) -> Iterator[str]:
    rnd = random.Random(seed)
    alphabet = 'abcxyz_$@!(){}[]" 0123456789=<>.,:+-*/\\'
    for start in range(0, size, CHUNK):
        yield "".join(rnd.choices(alphabet, k=min(CHUNK, size - start)))


INPUTS: list[tuple[str, str, Callable[[], Iterator[str]]]] = [
    ("empty", "an empty file", lambda: iter(())),
    ("string", "(a) one string literal of 10 MB", lambda: _string(10 * MB)),
    ("rules", "(b) 100,000 small rules", lambda: _rules(100_000)),
    ("parens", "(c) 5 MB of nested parentheses", lambda: _parentheses(5 * MB)),
    ("garbage", "(d) one 5 MB line of garbage", lambda: _garbage(5 * MB)),
]


def write_inputs(directory: Path) -> dict[str, Path]:
    paths = {}
    for name, _, pieces in INPUTS:
        path = directory / f"{name}.lnx"
        with open(path, "w", encoding="utf-8") as f:
            for piece in pieces():
                f.write(piece)
        paths[name] = path
    return paths


# ---- measuring --------------------------------------------------------------------------------


def _command() -> list[str]:
    exe = Path(sys.executable).parent / "linnix"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "linnix"]


@dataclasses.dataclass
class Run:
    """One `linnix check`: its peak RSS, its time, its exit status, the codes it reported."""

    maxrss_kib: int
    seconds: float
    status: int
    codes: set[str]


def run_check(path: Path, out: Path) -> Run:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    with open(out, "wb") as stdout:
        t0 = time.perf_counter()
        proc = subprocess.Popen([*_command(), "check", str(path)], stdout=stdout,
                                stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, not all children's
        seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    with open(out, encoding="utf-8", errors="replace") as f:
        codes = set(re.findall(r"(?:error|warning)\[([EW]\d{3})\]", f.read(1 << 20)))
    return Run(usage.ru_maxrss, seconds, proc.returncode, codes)


@dataclasses.dataclass
class Result:
    """The runs of one input, summed up (medians)."""

    size: int
    peaks_kib: list[int]
    over_kib: float  # median increase over the empty file's median peak
    seconds: float
    statuses: set[int]
    codes: set[str]

    @property
    def ratio(self) -> float | None:
        return self.over_kib * 1024 / self.size if self.size else None


def measure(paths: dict[str, Path], runs: int, scratch: Path) -> dict[str, Result]:
    """``runs`` rounds of one check of each input in turn; the medians."""
    found: dict[str, list[Run]] = {name: [] for name in paths}
    for _ in range(runs):
        for name, path in paths.items():
            found[name].append(run_check(path, scratch / f"{name}.out"))
    base = statistics.median(r.maxrss_kib for r in found["empty"])
    return {name: Result(size=paths[name].stat().st_size,
                         peaks_kib=[r.maxrss_kib for r in rounds],
                         over_kib=statistics.median(r.maxrss_kib - base for r in rounds),
                         seconds=statistics.median(r.seconds for r in rounds),
                         statuses={r.status for r in rounds},
                         codes=set().union(*(r.codes for r in rounds)))
            for name, rounds in found.items()}


# ---- the report -------------------------------------------------------------------------------


def _size(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB else f"{n} B"


def render(res: dict[str, Result], runs: int, command: str, own_kib: int) -> str:
    lines = [
        HEADING,
        "",
        f"Date: {dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}  ",
        f"Command: `{command}`  ",
        f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the end",
        "",
        f"Peak RSS of `linnix check FILE` (median of {runs} runs), its increase over the run",
        "on the empty file, and that increase against the file's size (target <= "
        f"{TARGET_RATIO:.0f}x):",
        "",
        "| input | size | peak RSS | over empty | ratio | wall time | exit | reported |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, label, _ in INPUTS:
        r = res[name]
        ratio = r.ratio
        shown = "" if ratio is None else (
            f"**{ratio:.1f}x** ({'met' if ratio <= TARGET_RATIO else 'MISSED'})")
        over = "" if name == "empty" else f"{r.over_kib / 1024:.1f} MiB"
        peak = statistics.median(r.peaks_kib) / 1024
        lines.append(f"| {label} | {_size(r.size)} | {peak:.1f} MiB | {over} | {shown} | "
                     f"{r.seconds:.2f} s | "
                     f"{', '.join(str(s) for s in sorted(r.statuses))} | "
                     f"{', '.join(sorted(r.codes)) or 'ok'} |")
    lines += ["", "Peaks of each run (MiB):"]
    lines += [f"{name} {', '.join(f'{p / 1024:.1f}' for p in res[name].peaks_kib)};"
              for name, _, _ in INPUTS]
    lines += [f"this benchmark's own peak: {own_kib / 1024:.1f} MiB.", ""]
    return "\n".join(lines)


def write_results(section: str) -> None:
    """Replace this benchmark's section of RESULTS.md (other sections are kept)."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n\n"
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs of each input (3)")
    ap.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="linnix-check-memory-") as tmp:
        paths = write_inputs(Path(tmp))
        res = measure(paths, args.runs, Path(tmp))
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    given = argv if argv is not None else sys.argv[1:]
    section = render(res, args.runs, " ".join(["python bench/check_memory.py", *given]), own)
    print(section)
    if own > min(res["empty"].peaks_kib):
        print("warning: this process grew larger than `linnix check` of an empty file; "
              "every figure includes it", file=sys.stderr)
    if not args.no_write:
        write_results(section)
        print(f"updated {RESULTS.relative_to(ROOT)}")
    met = all(r.ratio is None or r.ratio <= TARGET_RATIO for r in res.values())
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
