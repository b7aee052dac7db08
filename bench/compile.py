"""Benchmark of the .lnx front end: compile throughput, peak memory, `linnix check` latency.

Usage::

    .venv/bin/python bench/compile.py            # measure, print, update bench/RESULTS.md
    .venv/bin/python bench/compile.py --no-write # measure and print only
    .venv/bin/python bench/compile.py --profile  # also print where compile time goes
    .venv/bin/python bench/compile.py --compare OLD  # before (checkout OLD) and after, side by side

What it measures:

* compile: a generated file of 10,000 varied rules (one-line and block rules,
  windows, macros, lets, messages, actions) through the whole front end
  (read, parse, build, check, optimise, generate and compile code), median of
  several runs, as rules per second; and the time of each stage of one run.
* memory: peak RSS (ru_maxrss) of a fresh interpreter that compiles the file
  once, next to the RSS of one that only imports the front end; and the peak
  of Python allocations (tracemalloc) during the compile.
* `linnix check rules/`: wall time of the installed command, interpreter start
  included, median of several runs (after one warm-up that fills the parser cache).
* whether `linnix check` imports trio, quart or bcc (it must not).
* with ``--compare OLD``, only: the compile of the same file by another checkout
  (``git worktree add`` or ``git archive`` of the old commit) and by this one, each
  in a fresh interpreter, alternating, wall and CPU time, medians.

Targets: >= 5,000 rules/s; `linnix check rules/` <= 0.5 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
RESULTS = ROOT / "bench" / "RESULTS.md"
HEADING = "## Compile (bench/compile.py)"
TARGET_RULES_PER_S = 5000.0
TARGET_CHECK_S = 0.5
HEAVY = ("trio", "quart", "quart_trio", "hypercorn", "bcc")

sys.path.insert(0, str(ROOT))

from bench.common import cpu_model  # noqa: E402 - also imported as bench.compile by the tests

# ---- the generated rule file ------------------------------------------------------------

PROC_NUM = [("cpu_pct", "%", (20, 400)), ("rss_mb", "MiB", (64, 8192)), ("fds", "", (100, 5000)),
            ("fd_pct", "%", (50, 99)), ("threads", "", (10, 500)), ("children", "", (5, 200)),
            ("age_s", "s", (10, 3600)), ("child_forks_per_sec", "", (2, 50))]
SYS_NUM = [("host_cpu_pct", "%", (50, 99)), ("psi_cpu_some", "%", (10, 80)),
           ("forks_per_sec", "", (5, 200)), ("mem_available_mb", "MiB", (128, 4096)),
           ("psi_io_some", "%", (10, 80)), ("host_mem_used_pct", "%", (70, 99))]
SUB_NUM = [("subtree_cpu_pct", "%", (50, 800)), ("subtree_rss_mb", "MiB", (256, 16384)),
           ("subtree_procs", "", (2, 100))]
STRINGS = ["bash", "python3", "java", "node", "postgres", "nginx", "cron", "make", "gcc", "rustc"]
UNITS = {"%": ["%", ""], "MiB": ["MiB", "MB", "GiB", ""], "s": ["s", "m", "ms"], "": [""]}
WINDOWS = ["500ms", "5s", "10s", "30s", "1m", "5m"]
FUNCS = ["avg", "min", "max", "delta", "rate"]


def _literal(rnd: random.Random, unit: str, lo: float, hi: float) -> str:
    value = rnd.randint(int(lo), int(hi))
    suffix = rnd.choice(UNITS[unit])
    if suffix == "GiB":
        return f"{max(1, value // 1024)}GiB"
    if suffix == "m":
        return f"{max(1, value // 60)}m"
    if suffix == "ms":
        return f"{value * 1000}ms"
    return f"{value}{suffix}"


def _compare(rnd: random.Random, table: list[tuple[str, str, tuple[int, int]]]) -> str:
    name, unit, (lo, hi) = rnd.choice(table)
    op = "<" if name == "mem_available_mb" else rnd.choice([">", ">="])
    if rnd.random() < 0.2 and unit in ("%", "MiB"):
        func = rnd.choice(FUNCS)
        return f"{func}({name}, {rnd.choice(WINDOWS)}) {op} {_literal(rnd, unit, lo, hi)}"
    return f"{name} {op} {_literal(rnd, unit, lo, hi)}"


def _string_test(rnd: random.Random, lets: int) -> str:
    word = rnd.choice(STRINGS)
    return rnd.choice([
        f'comm == "{word}"', f'comm != "{word}"', f'comm startswith "{word[:3]}"',
        f'exe endswith "/{word}"', f'cmdline contains "--{word}"', f'comm matches "^{word}[0-9]*$"',
        f'exe glob "/usr/*/{word}*"', f'comm in names_{rnd.randrange(lets)}',
        f'comm not in names_{rnd.randrange(lets)}', f'"{word}" in ancestors',
        f'parent.comm == "{word}"',
    ])


def _condition(rnd: random.Random, scope: str, lets: int, macros: int) -> str:
    table = {"system": SYS_NUM, "process": PROC_NUM, "subtree": SUB_NUM}[scope]
    parts = [_compare(rnd, table)]
    for _ in range(rnd.randint(0, 3)):
        roll = rnd.random()
        if scope != "system" and roll < 0.3:
            parts.append(_string_test(rnd, lets))
        elif scope != "system" and roll < 0.45:
            parts.append(f"busy_{rnd.randrange(macros)}")
        elif roll < 0.55:
            parts.append(_compare(rnd, SYS_NUM))
        elif scope != "system" and roll < 0.65:
            name, unit, (lo, hi) = rnd.choice(PROC_NUM)
            parts.append(f"({name} + {rnd.randint(1, 9)}) * 2 > {_literal(rnd, unit, lo, hi)}")
        else:
            parts.append(_compare(rnd, table))
    if len(parts) > 2 and rnd.random() < 0.3:
        return f"{parts[0]} and ({' or '.join(parts[1:])})"
    return " and ".join(parts)


def generate(n_rules: int, seed: int = 1) -> str:
    """A file of ``n_rules`` varied, valid rules (plus the lets and macros they use)."""
    rnd = random.Random(seed)
    lets = macros = max(1, n_rules // 100)
    out = ["# generated by bench/compile.py; do not edit", ""]
    for k in range(lets):
        names = ", ".join(f'"{w}"' for w in rnd.sample(STRINGS, 3))
        out.append(f"let names_{k} = [{names}]")
        out.append(f"let limit_{k} = {rnd.randint(50, 95)}%")
    for k in range(macros):
        out.append(f"macro busy_{k} = cpu_pct > limit_{k} "
                   f"and comm not in names_{rnd.randrange(lets)}")
    out.append("")
    for i in range(n_rules):
        scope = rnd.choices(["process", "system", "subtree"], weights=[6, 2, 2])[0]
        cond = _condition(rnd, scope, lets, macros)
        hold = rnd.choice(["", " for 5s", " for 30s", " for 2m", " for 500ms"])
        if rnd.random() < 0.5:
            out.append(f"rule r{i}: {cond}{hold}")
            continue
        out.append(f"rule r{i} {{")
        out.append(f'    description "generated rule {i} over {scope} names"')
        out.append(f"    when {cond}{hold}")
        if scope != "system" and rnd.random() < 0.5:
            out.append(f"    unless comm in names_{rnd.randrange(lets)}")
        if rnd.random() < 0.2:
            out.append("    keep_firing_for 30s")
        out.append(f"    severity {rnd.choice(['info', 'warning', 'critical'])}")
        if rnd.random() < 0.5:
            out.append(f"    cooldown {rnd.choice(['10s', '1m', '5m'])}")
        if rnd.random() < 0.4:
            out.append(f'    labels {{ team = "t{i % 7}", tier = "{i % 3}" }}')
        if rnd.random() < 0.3:
            out.append('    tags ["generated", "bench"]')
        if rnd.random() < 0.7:
            if scope == "system":
                out.append('    message "host at {host_cpu_pct:.0f}% CPU ({rule})"')
            else:
                out.append('    message "{comm}[{pid}] at {cpu_pct:.1f}% CPU, {rss_mb:.0f} MiB"')
        roll = rnd.random()
        if scope == "system" and roll < 0.5:
            out.append(f"    action kill(target = top({rnd.choice(['cpu_pct', 'rss_mb'])}))")
        elif scope != "system" and roll < 0.3:
            out.append(f"    action kill(grace = {rnd.choice(['5s', '10s'])})")
        elif scope != "system" and roll < 0.4:
            out.append("    action renice(10)")
        elif roll < 0.5:
            out.append("    action analyze")
        out.append("}")
    return "\n".join(out) + "\n"


# ---- measurements ---------------------------------------------------------------------------

def _build(path: Path) -> object:
    from linnix.language.pipeline import build

    result = build([str(path)])
    if result.plan is None:
        first = result.errors[0]
        raise SystemExit(f"generated rules do not compile: {first.span.where()}: {first.message}")
    return result


def measure_compile(path: Path, n_rules: int, runs: int) -> dict[str, object]:
    from linnix.language import grammar

    grammar.parser()  # built or loaded once per process, as in any real run
    _build(path)      # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = _build(path)
        times.append(time.perf_counter() - t0)
        del result  # freeing the plan is not part of compiling it
    median = statistics.median(times)
    return {"runs": runs, "times_s": [round(t, 4) for t in times], "median_s": round(median, 4),
            "rules_per_s": round(n_rules / median),
            "best_rules_per_s": round(n_rules / min(times))}


def measure_stages(path: Path) -> dict[str, float]:
    """Seconds spent in each stage of one compile."""
    import gc

    from linnix.language.builder import build as build_ast
    from linnix.language.checker import check
    from linnix.language.compiler import compile_rules
    from linnix.language.grammar import parse
    from linnix.language.loader import Program
    from linnix.language.optimizer import optimize
    from linnix.language.source import SourceFile

    stages: dict[str, float] = {}
    gc.disable()  # as linnix.language.pipeline does for the whole front end
    t = time.perf_counter()
    text = path.read_text(encoding="utf-8")
    source = SourceFile(str(path), text)
    tree = parse(source)
    stages["parse"] = time.perf_counter() - t
    t = time.perf_counter()
    module, _ = build_ast(source, tree)
    stages["build AST"] = time.perf_counter() - t
    program = Program(modules={str(path): module}, sources={str(path): source},
                      includes={str(path): []}, roots=[str(path)])
    t = time.perf_counter()
    checked = check(program)
    stages["check"] = time.perf_counter() - t
    t = time.perf_counter()
    rules, _ = optimize(checked.rules)
    stages["optimise"] = time.perf_counter() - t
    t = time.perf_counter()
    compile_rules(rules)
    stages["generate + compile code"] = time.perf_counter() - t
    gc.enable()
    return {k: round(v, 4) for k, v in stages.items()}


_CHILD = """
import resource, sys, time, tracemalloc
sys.path.insert(0, {root!r})
from linnix.language.pipeline import build
from linnix.language import grammar
grammar.parser()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
mode = {mode!r}
if mode == "tracemalloc":
    tracemalloc.start()
if mode != "import":
    result = build([{path!r}])
    assert result.plan is not None
peak_py = tracemalloc.get_traced_memory()[1] if mode == "tracemalloc" else 0
print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, peak_py)
"""


def measure_memory(path: Path) -> dict[str, float]:
    def child(mode: str) -> list[int]:
        code = _CHILD.format(root=str(ROOT), path=str(path), mode=mode)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True)
        return [int(x) for x in done.stdout.split()]

    _, imported, _ = child("import")
    _, compiled, _ = child("rss")
    _, _, py_peak = child("tracemalloc")
    mib = 1024.0  # ru_maxrss is in KiB on Linux
    return {"rss_after_import_mib": round(imported / mib, 1),
            "peak_rss_mib": round(compiled / mib, 1),
            "peak_rss_increase_mib": round((compiled - imported) / mib, 1),
            "tracemalloc_peak_mib": round(py_peak / 2**20, 1)}


def _linnix() -> str:
    exe = Path(sys.executable).parent / "linnix"
    return str(exe) if exe.exists() else "linnix"


def measure_check(runs: int) -> dict[str, object]:
    argv = [_linnix(), "check", "rules/"]
    subprocess.run(argv, cwd=ROOT, capture_output=True, check=False)  # warm the parser cache
    times, status = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - t0)
        status = done.returncode
    return {"command": " ".join(["linnix", "check", "rules/"]), "exit_status": status,
            "runs": runs, "times_s": [round(t, 4) for t in times],
            "median_s": round(statistics.median(times), 4)}


_TIMED = """
import json, sys, time
sys.path.insert(0, {root!r})
from bench.compile import measure_stages
from linnix.language import grammar
from linnix.language.pipeline import build
from pathlib import Path
grammar.parser()
build([{path!r}])  # warm-up
t0, c0 = time.perf_counter(), time.process_time()
build([{path!r}])
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({{"wall": wall, "cpu": cpu, "stages": measure_stages(Path({path!r}))}}))
"""


def measure_compare(path: Path, old: Path, runs: int) -> dict[str, dict[str, object]]:
    """The compile of ``path`` by checkout ``old`` ("before") and by this one ("after"),
    each in a fresh interpreter, taking turns so that both see the same load."""
    seen: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    for _ in range(runs):
        for label, root in (("before", old), ("after", ROOT)):
            code = _TIMED.format(root=str(root), path=str(path))
            env = {**os.environ, "PYTHONPATH": str(root)}
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  check=True, env=env, cwd=root)
            seen[label].append(json.loads(done.stdout.strip().splitlines()[-1]))
    out: dict[str, dict[str, object]] = {}
    for label, taken in seen.items():
        wall = statistics.median(r["wall"] for r in taken)
        cpu = statistics.median(r["cpu"] for r in taken)
        stages = {name: round(statistics.median(r["stages"][name] for r in taken), 3)
                  for name in taken[0]["stages"]}
        out[label] = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                      "rules_per_s_wall": None, "walls_s": [round(r["wall"], 3) for r in taken],
                      "cpus_s": [round(r["cpu"], 3) for r in taken], "stages_s": stages}
    return out


def heavy_imports() -> list[str]:
    code = ("import sys\n"
            "from linnix.cli import main\n"
            "main(['check', 'rules/'])\n"
            f"heavy = {HEAVY!r}\n"
            "print('IMPORTED', sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    line = next(x for x in done.stdout.splitlines() if x.startswith("IMPORTED "))
    return list(json.loads(line.removeprefix("IMPORTED ").replace("'", '"')))


def machine() -> dict[str, object]:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "implementation": platform.python_implementation(), "system": platform.platform()}

def profile(path: Path, top: int = 25) -> str:
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    _build(path)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


# ---- report ---------------------------------------------------------------------------------

def render(res: dict[str, object], command: str) -> str:
    comp = res["compile"]
    mem = res["memory"]
    chk = res["check"]
    mach = res["machine"]
    stages = res["stages"]
    assert isinstance(comp, dict) and isinstance(mem, dict) and isinstance(chk, dict)
    assert isinstance(mach, dict) and isinstance(stages, dict)
    ok_rate = comp["rules_per_s"] >= TARGET_RULES_PER_S
    ok_check = chk["median_s"] <= TARGET_CHECK_S
    heavy = res["heavy_imports"]
    lines = [
        HEADING,
        "",
        f"Date: {res['date']}  ",
        f"Command: `{command}`  ",
        f"Machine: {mach['cpu']}, {mach['cores']} logical cores, "
        f"{mach['implementation']} {mach['python']} ({mach['system']})",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| compile {res['rules']:,} generated rules ({res['file_kib']} KiB), median of "
        f"{comp['runs']} | {comp['median_s']:.3f} s = **{comp['rules_per_s']:,} rules/s** "
        f"(best run {comp['best_rules_per_s']:,}) | "
        f">= {TARGET_RULES_PER_S:,.0f} rules/s ({'met' if ok_rate else 'MISSED'}) |",
        f"| peak RSS of a process compiling them | {mem['peak_rss_mib']} MiB "
        f"(+{mem['peak_rss_increase_mib']} MiB over {mem['rss_after_import_mib']} MiB after "
        "import) | |",
        f"| peak Python allocations (tracemalloc) | {mem['tracemalloc_peak_mib']} MiB | |",
        f"| `{chk['command']}` wall time incl. interpreter start, median of {chk['runs']} | "
        f"**{chk['median_s']:.3f} s** (exit {chk['exit_status']}) | <= {TARGET_CHECK_S} s "
        f"({'met' if ok_check else 'MISSED'}) |",
        f"| modules of trio/quart/bcc imported by `linnix check` | "
        f"{', '.join(heavy) if heavy else 'none'} | none |",  # type: ignore[arg-type]
        "",
        "Time per stage of one compile of the generated file:",
        "",
        "| stage | seconds |",
        "|---|---|",
        *(f"| {name} | {secs:.3f} |" for name, secs in stages.items()),
        "",
        f"Compile runs (s): {', '.join(str(t) for t in comp['times_s'])}; "
        f"check runs (s): {', '.join(str(t) for t in chk['times_s'])}.",
        "",
    ]
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
    ap.add_argument("--rules", type=int, default=10_000, help="rules to generate (10000)")
    ap.add_argument("--runs", type=int, default=5, help="compile runs (5)")
    ap.add_argument("--check-runs", type=int, default=7, help="`linnix check` runs (7)")
    ap.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one compile")
    ap.add_argument("--compare", metavar="OLD", type=Path,
                    help="only compare the compile with the checkout OLD's, side by side")
    args = ap.parse_args(argv)

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"rules_{args.rules}.lnx"
    path.write_text(generate(args.rules), encoding="utf-8")
    if args.compare is not None:
        compared = measure_compare(path, args.compare.resolve(), args.runs)
        for label in compared.values():
            label["rules_per_s_wall"] = round(args.rules / float(label["wall_s"]))  # type: ignore[arg-type]
            label["rules_per_s_cpu"] = round(args.rules / float(label["cpu_s"]))  # type: ignore[arg-type]
        print(json.dumps({"machine": machine(), "rules": args.rules, **compared}, indent=2))
        return 0

    res: dict[str, object] = {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "rules": args.rules,
        "file_kib": round(path.stat().st_size / 1024),
        "machine": machine(),
        # memory first, while this process is small: a child starts from the
        # ru_maxrss of the process it was forked from
        "memory": measure_memory(path),
        "compile": measure_compile(path, args.rules, args.runs),
        "stages": measure_stages(path),
        "check": measure_check(args.check_runs),
        "heavy_imports": heavy_imports(),
    }
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python", "bench/compile.py", *given])
    section = render(res, command.strip())
    print(section)
    print(json.dumps(res, indent=2))
    if args.profile:
        print(profile(path))
    if not args.no_write:
        write_results(section)
        print(f"updated {RESULTS.relative_to(ROOT)}")
    comp, chk = res["compile"], res["check"]
    assert isinstance(comp, dict) and isinstance(chk, dict)
    met = comp["rules_per_s"] >= TARGET_RULES_PER_S and chk["median_s"] <= TARGET_CHECK_S
    return 0 if met and not res["heavy_imports"] else 1


if __name__ == "__main__":
    sys.exit(main())
