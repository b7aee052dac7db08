"""Properties of the whole front end on arbitrary and mutated input.

Whatever the input, ``load_text`` + ``build_program`` (and ``grammar.parse``)
raise nothing but :class:`linnix.errors.LinnixError`; every diagnostic's span
lies inside its source with consistent line/column; and every rule that does
compile can be evaluated on records with no values at all without raising.

Hypothesis runs deterministically (the ``linnix`` profile of conftest.py:
derandomized, bounded examples).
"""

from __future__ import annotations

import contextlib
import random
import re
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import ROOT, RULES, check_spans, host, process

from linnix.errors import LinnixError, RuleSyntaxError
from linnix.language import builder, grammar, pipeline
from linnix.language import nodes as n
from linnix.language.loader import load, load_text
from linnix.language.pipeline import Build, build, build_program, check_files, check_program
from linnix.language.source import SourceFile

sys.path.insert(0, str(ROOT))

from bench.compile import generate

GOOD = ROOT / "fixtures" / "rules" / "good"
SEEDS = sorted(RULES.glob("*.lnx")) + sorted(GOOD.glob("*.lnx"))
SEED_TEXT = {p: p.read_text(encoding="utf-8") for p in SEEDS}

# Pieces of the language, and pieces that have broken front ends before.
TOKENS = [
    "rule", "let", "macro", "include", "test", "when", "unless", "clear", "for",
    "keep_firing_for", "scope", "severity", "cooldown", "description", "labels", "tags",
    "message", "action", "mode", "enabled", "trace", "tick", "expect", "firing", "resolved",
    "pending", "between", "fires", "times", "never", "pid", "and", "or", "not", "in",
    "matches", "glob", "startswith", "endswith", "contains", "true", "false", "top", "avg",
    "min", "max", "delta", "rate", "parent", "boundary", "mem_total_mb",
    ".", "(", ")", "[", "]", "{", "}", ",", ":", "=", "==", "!=", "<", "<=", ">", ">=", "+",
    "-", "*", "/", "#", "\n", "\t",
    "cpu_pct", "rss_mb", "comm", "pid", "fds", "fd_pct", "ancestors", "subtree_cpu_pct",
    "host_cpu_pct", "forks_per_sec", "age_s", "protected", "shells", "kill", "kill_tree",
    "signal", "renice", "analyze", "alert", "SIGKILL", "SIGFOO", "target", "grace", "nice",
    "system", "process", "subtree", "warning", "critical", "monitor", "x", "r", "cpu_spike",
    "0", "1", "2.5", "-1", "5s", "0s", "500ms", "1GiB", "50MB", "90%", "5min", "1e5",
    "9" * 400, "9" * 306 + "h", "1/0", "/ 0", "0/0", "-(1/0)", "[1/0]", "10s/0",
    '"x"', '""', '"{comm}"', '"{comm!r}"', '"{cpu_pct:.1q}"', '"{"', '"}"', '"\\q"', '"\\"',
    '"a{99999999999}"', '"(' + "(" * 300 + '"', '"[z-a]"', '"*"', '"unterminated',
    "not " * 120, "-(" * 60, ")" * 60, "[" * 60, "]" * 60,
    "\x00", "\ufeff", "é", "\u202e", "\r\n",
]
TOKEN = st.sampled_from(TOKENS)
# the codes of syntax errors, common mistakes among them
SYNTAX_CODES = {"E100", "E101", "E102", "E107", "E108", "E109", "E114"}
WORD = re.compile(r"\S+")


def front_end(text: str, path: str = "<input>") -> Build | None:
    """Run load + check + optimise + compile; None when a LinnixError was raised."""
    try:
        result = build_program(load_text(text, path))
    except LinnixError:
        return None
    check_spans(result.diagnostics)
    if result.plan is not None:
        p, h = process(), host()
        for r in result.plan.rules:
            assert isinstance(r.cond(p if r.scope.value != "system" else None, h, 0.0), bool)
            if r.clear is not None:
                assert isinstance(r.clear(p, h, 0.0), bool)
            r.values(p, h, 0.0)
    return result


@st.composite
def mutated(draw: st.DrawFn) -> tuple[Path, str]:
    """A seed file with a few characters or tokens inserted, deleted or replaced."""
    path = draw(st.sampled_from(SEEDS))
    text = SEED_TEXT[path]
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["insert_char", "insert_token", "delete", "replace_char",
                                     "replace_token", "delete_token", "duplicate"]))
        pos = draw(st.integers(0, len(text)))
        if kind == "insert_char":
            text = text[:pos] + draw(st.characters()) + text[pos:]
        elif kind == "insert_token":
            text = text[:pos] + f" {draw(TOKEN)} " + text[pos:]
        elif kind == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 40)):]
        elif kind == "replace_char":
            text = text[:pos] + draw(st.characters()) + text[pos + 1:]
        elif kind == "duplicate":
            end = min(len(text), pos + draw(st.integers(1, 80)))
            text = text[:end] + text[pos:end] + text[end:]
        else:
            words = list(WORD.finditer(text))
            if not words:
                continue
            m = words[draw(st.integers(0, len(words) - 1))]
            new = draw(TOKEN) if kind == "replace_token" else ""
            text = text[:m.start()] + new + text[m.end():]
    return path, text


# ---- well-formed programs --------------------------------------------------------------------
# Random programs that mostly parse, so that the checker, optimiser and compiler
# see odd but grammatical input: constants without a value, huge numbers, names
# of the wrong kind, units in the wrong place, lets used as windows, and so on.

NAMES = ["cpu_pct", "rss_mb", "fds", "fd_pct", "age_s", "comm", "exe", "ancestors", "pid",
         "host_cpu_pct", "forks_per_sec", "subtree_cpu_pct", "subtree_procs", "l0", "l1",
         "m0", "m1", "nosuch", "avg", "top"]
NUMBERS = ["0", "1", "2", "90", "2.5", "0.0001", "9" * 400, "9" * 306]
UNIT_SUFFIXES = ["s", "ms", "m", "h", "%", "MB", "GiB", "KiB", "min", ""]
STRING_LITERALS = ['"x"', '""', '"bash"', '"a{99999999999}"', '"(("', '"[z-a]"', '"*"',
                   '"{comm}"', '"{comm!r}"', '"{nosuch}"', '"{cpu_pct:.1q}"', '"{"', '"\\q"',
                   '"\\d+"', '"{subtree_forks_per_sec}"']

atoms = st.one_of(
    st.sampled_from(NUMBERS),
    st.builds(lambda v, u: v + u, st.sampled_from(NUMBERS[:6]), st.sampled_from(UNIT_SUFFIXES)),
    st.sampled_from(STRING_LITERALS),
    st.sampled_from(NAMES),
    st.sampled_from(["true", "false", "SIGKILL", "parent.comm", "parent.cpu_pct",
                     "parent.nosuch", "child.x", "[]"]),
)


def _combine(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.sampled_from(["+", "-", "*", "/", "==", "!=", "<", "<=", ">", ">=", "and",
                              "or", "in", "not in", "startswith", "endswith", "contains"])
    return st.one_of(
        st.builds(lambda a, op, b: f"{a} {op} {b}", inner, binary, inner),
        st.builds(lambda a, pat: f"{a} matches {pat}", inner, st.sampled_from(STRING_LITERALS)),
        st.builds(lambda a, pat: f"{a} glob {pat}", inner, st.sampled_from(STRING_LITERALS)),
        st.builds(lambda a: f"not {a}", inner),
        st.builds(lambda a: f"-{a}", inner),
        st.builds(lambda a: f"({a})", inner),
        st.builds(lambda xs: "[" + ", ".join(xs) + "]", st.lists(inner, max_size=3)),
        st.builds(lambda f, xs: f"{f}(" + ", ".join(xs) + ")",
                  st.sampled_from(["avg", "min", "max", "delta", "rate", "top", "nosuch"]),
                  st.lists(inner, max_size=3)),
        st.builds(lambda f, a, b: f"{f}({a}, unless {b})",
                  st.sampled_from(["avg", "top", "nosuch"]), inner, inner),
    )


expressions = st.recursive(atoms, _combine, max_leaves=8)
durations = st.one_of(st.sampled_from(["5s", "0s", "500ms", "1m", "5", "l0", "l1", "5%"]),
                      st.builds(lambda v: v + "s", st.sampled_from(NUMBERS)))
actions = st.builds(
    lambda name, args: f"action {name}" + (f"({', '.join(args)})" if args is not None else ""),
    st.sampled_from(["alert", "kill", "kill_tree", "signal", "renice", "analyze", "kil"]),
    st.none() | st.lists(st.one_of(
        expressions, st.builds(lambda k, v: f"{k} = {v}",
                               st.sampled_from(["grace", "signal", "target", "nice", "x"]),
                               st.one_of(expressions, st.just("top(cpu_pct)"),
                                         st.builds(lambda e: f"top(cpu_pct, unless {e})",
                                                   expressions)))), max_size=3))
clauses = st.one_of(
    st.builds(lambda e, d: f"when {e}" + (f" for {d}" if d else ""), expressions,
              st.none() | durations),
    st.builds(lambda e: f"unless {e}", expressions),
    st.builds(lambda e: f"boundary {e}", expressions),
    st.builds(lambda e, d: f"clear when {e}" + (f" for {d}" if d else ""), expressions,
              st.none() | durations),
    st.builds(lambda d: f"keep_firing_for {d}", durations),
    st.builds(lambda d: f"cooldown {d}", durations),
    st.builds(lambda w: f"scope {w}", st.sampled_from(["system", "process", "subtree", "x"])),
    st.builds(lambda w: f"severity {w}", st.sampled_from(["info", "critical", "urgent"])),
    st.builds(lambda w: f"mode {w}", st.sampled_from(["monitor", "enforce"])),
    st.builds(lambda e: f"enabled {e}", expressions),
    st.builds(lambda s: f"message {s}", st.sampled_from(STRING_LITERALS)),
    st.builds(lambda s: f"description {s}", st.sampled_from(STRING_LITERALS)),
    st.just('labels { a = "1", b = "2", a = "3" }'), st.just('tags ["a", "b"]'),
    actions,
)
expects = st.one_of(
    st.builds(lambda r, lo, hi: f"expect {r} firing between {lo} and {hi}",
              st.sampled_from(["r0", "r1", "nosuch"]), durations, durations),
    st.builds(lambda r, n: f"expect {r} firing for pid {n}",
              st.sampled_from(["r0", "r1"]), st.sampled_from(NUMBERS)),
    st.builds(lambda n: f"expect r0 fires {n} times", st.sampled_from(NUMBERS)),
    st.builds(lambda a, n: f"expect action {a} for pid {n}",
              st.sampled_from(["kill", "kil"]), st.sampled_from(NUMBERS)),
    st.just("expect r1 never"), st.builds(lambda d: f"tick {d}", durations),
    st.just('trace "t.jsonl"'),
)
declarations = st.one_of(
    st.builds(lambda n, e: f"let {n} = {e}", st.sampled_from(["l0", "l1", "cpu_pct"]),
              expressions),
    st.builds(lambda n, e: f"macro {n} = {e}", st.sampled_from(["m0", "m1", "l0"]),
              expressions),
    st.builds(lambda n, e, d: f"rule {n}: {e}" + (f" for {d}" if d else ""),
              st.sampled_from(["r0", "r1"]), expressions, st.none() | durations),
    st.builds(lambda n, cs: f"rule {n} {{\n  " + "\n  ".join(cs) + "\n}",
              st.sampled_from(["r0", "r1"]), st.lists(clauses, max_size=6)),
    st.builds(lambda ss: 'test "t" {\n  ' + "\n  ".join(ss) + "\n}",
              st.lists(expects, max_size=5)),
)
programs = st.lists(declarations, min_size=1, max_size=6).map("\n".join)


# ---- properties ---------------------------------------------------------------------------


@settings(max_examples=3 * settings.default.max_examples)
@given(programs)
def test_generated_programs(text: str) -> None:
    front_end(text, str(GOOD / "generated.lnx"))


@given(st.text(max_size=400))
def test_arbitrary_text(text: str) -> None:
    front_end(text)


@given(st.lists(TOKEN, max_size=60).map(" ".join))
def test_token_soup(text: str) -> None:
    front_end(text)


@given(st.lists(TOKEN, max_size=40).map(" ".join))
def test_token_soup_inside_a_rule(body: str) -> None:
    front_end(f'let l = 1\nmacro m = cpu_pct > 1\nrule r {{\n when cpu_pct > 1 and {body}\n}}\n'
              f"rule s: {body}\n")


@given(mutated())
def test_mutations_of_valid_files(case: tuple[Path, str]) -> None:
    path, text = case
    front_end(text, str(path))  # includes and traces resolve next to the original


@given(st.one_of(st.text(max_size=400), st.lists(TOKEN, max_size=60).map(" ".join)))
def test_parse_raises_only_syntax_errors(text: str) -> None:
    source = SourceFile("t.lnx", text)
    try:
        grammar.parse(source)
    except RuleSyntaxError as err:
        assert err.diagnostics
        check_spans(err.diagnostics)
        if err.partial is not None:  # what was kept builds, inside the text
            module, _ = builder.build(source, err.partial)
            assert all(0 <= d.span.start <= d.span.end <= len(text) for d in module.decls)
            assert all(isinstance(name, str) for name in err.lost)


@given(st.one_of(mutated().map(lambda case: case[1]), st.lists(TOKEN, max_size=60).map(" ".join)))
def test_syntax_errors_are_the_ones_lark_finds(text: str) -> None:
    # the fast path finds syntax errors itself, and recovers from them; Lark's own
    # parse is the reference
    def outcome(parse: Callable[[SourceFile], object]) -> object:
        source = SourceFile("t.lnx", text)
        try:
            parse(source)
        except RuleSyntaxError as err:
            kept = None if err.partial is None else [
                (type(d).__name__, d.span.start, d.span.end)
                for d in builder.build(source, err.partial)[0].decls]
            return ([(d.code, d.message, d.span.start, d.span.end) for d in err.diagnostics],
                    kept, err.lost)
        return None

    assert outcome(grammar.parse) == outcome(grammar._parse_with_lark)


# Declarations with a syntax error, each of which defines a name nothing else uses.
BROKEN = [
    "rule broken_decl: cpu_pct > 1 &&", "rule broken_decl {\n  when cpu_pct > 1\n",
    "macro broken_decl = comm == 'x'", "let broken_decl = Critical",
    'rule broken_decl: comm = "x"', "rule broken_decl: @", "rule broken_decl: cpu_pct >",
    "rule broken_decl {\n  when cpu_pct > 1\n  severity\n}",
]


@settings(max_examples=2 * settings.default.max_examples)
@given(st.lists(declarations, min_size=1, max_size=6), st.sampled_from(BROKEN),
       st.integers(0, 6))
def test_a_broken_declaration_hides_nothing_else(parts: list[str], broken: str,
                                                 at: int) -> None:
    """A file with one more declaration, which has a syntax error, reports what the
    file without it reports, and that syntax error: recovery loses nothing else."""
    at = min(at, len(parts))
    before = "\n".join([*parts[:at], ""])
    text = before + broken + "\n" + "\n".join(parts[at:])
    blank = before + re.sub(r"[^\n]", " ", broken) + "\n" + "\n".join(parts[at:])
    path = str(GOOD / "generated.lnx")
    # the broken declaration, and the first character of the next one: where the
    # error is when the parser took the next line's keyword for a name
    region = range(len(before), len(before) + len(broken) + 2)

    def report(source: str) -> list[tuple[object, ...]]:
        return [(d.code, d.span.start, d.span.end, d.message)
                for d in build_program(load_text(source, path)).diagnostics
                if d.span.start not in region and d.code not in ("W101", "W102")]

    assert report(text) == report(blank)
    syntax = [d for d in build_program(load_text(text, path)).diagnostics
              if d.span.start in region]
    assert syntax and all(d.is_error and d.code < "E2" for d in syntax)


# ---- check_files: the same report with a rule at a time in memory -------------------------


def checked(text: str, path: str) -> tuple[object, ...]:
    """What ``linnix check`` reports of a text, with the rules in outline and without."""
    def report(result: Build) -> tuple[object, ...]:
        return ([(d.span.path, d.span.start, d.span.end, d.code, d.level, d.message, d.hint)
                 for d in result.diagnostics], result.compiled, len(result.tests))

    full = build_program(load_text(text, path))
    assert full.compiled == (None if full.plan is None else len(full.plan.rules))
    outlined = check_program(load_text(text, path, outline=True))
    assert outlined.plan is None and outlined.rules == []
    check_spans(outlined.diagnostics)
    return report(full), report(outlined)


@pytest.mark.parametrize("path", sorted([*RULES.glob("*.lnx"),
                                         *(ROOT / "fixtures" / "rules").rglob("*.lnx")]),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_check_reports_what_build_reports(path: Path) -> None:
    full, outlined = checked(path.read_text(encoding="utf-8"), str(path))
    assert outlined == full


@given(st.one_of(programs.map(lambda text: (GOOD / "generated.lnx", text)), mutated()))
def test_check_reports_what_build_reports_on_any_input(case: tuple[Path, str]) -> None:
    full, outlined = checked(case[1], str(case[0]))
    assert outlined == full


def test_check_files_is_check_program_of_the_files_loaded_in_outline() -> None:
    files = check_files([str(RULES), str(GOOD)])
    full = build([str(RULES), str(GOOD)])
    assert files.compiled == len(full.plan.rules) if full.plan else files.compiled is None
    assert [(d.code, d.span.start) for d in files.diagnostics] == [
        (d.code, d.span.start) for d in full.diagnostics]
    assert all(isinstance(d, n.RuleOutline) for m in files.program.modules.values()
               for d in m.decls if isinstance(d, (n.Rule, n.RuleOutline)))


def test_check_memory_grows_with_a_batch_of_rules_not_with_the_file(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the plan and the syntax trees of every rule took 60 times the file; now
    # a file holds its rules in outline, and a batch of them is compiled at once
    monkeypatch.setattr(pipeline, "_CHECK_BATCH", 100)
    grammar.parser()  # built or loaded before measuring

    def peak(rules: int) -> int:
        program = load_text(generate(rules), str(GOOD / "generated.lnx"), outline=True)
        tracemalloc.start()
        try:
            result = check_program(program)
            found = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert result.compiled == rules
        return found

    # about 1 kB a rule (its outline, its name, a warning at times), against more
    # than 10 kB for build_program; before, check was build_program
    assert peak(1_600) - peak(400) < 1_200 * 3_000


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bytes")


@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_in_a_file(scratch: Path, data: bytes) -> None:
    path = scratch / "input.lnx"
    path.write_bytes(data)
    build_and_check_file(path)


@given(case=mutated(), flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                      max_size=4))
def test_mutated_bytes_in_a_file(scratch: Path, case: tuple[Path, str],
                                 flips: list[tuple[int, int]]) -> None:
    data = bytearray(case[1].encode("utf-8"))
    for at, value in flips:
        if data:
            data[at % len(data)] = value
    path = scratch / "flipped.lnx"
    path.write_bytes(bytes(data))
    build_and_check_file(path)


def build_and_check_file(path: Path) -> None:
    try:
        result = build_program(load([str(path)]))
    except LinnixError:
        return
    check_spans(result.diagnostics)


# ---- big and deep inputs ------------------------------------------------------------------


FIVE_MB = 5 * 1024 * 1024


def codes_of(text: str) -> set[str]:
    result = front_end(text)
    assert result is not None
    return {d.code for d in result.diagnostics}


def test_binary_input(tmp_path: Path) -> None:
    data = random.Random(7).randbytes(64 * 1024)
    (tmp_path / "bin.lnx").write_bytes(data)
    result = build_program(load([str(tmp_path / "bin.lnx")]))
    assert [d.code for d in result.diagnostics] == ["E112"]
    # the same bytes decoded leniently are text full of junk: syntax errors
    codes = codes_of(data.decode("latin-1"))
    assert codes and codes <= SYNTAX_CODES


def test_five_megabytes_of_declarations() -> None:
    chunk = "rule ok: cpu_pct > 90 for 5s\nrule bad: cpu_pct >> 1\nlet x = [\n"
    text = (chunk * (FIVE_MB // len(chunk) + 1))[:FIVE_MB]
    result = front_end(text)
    assert result is not None
    assert {d.code for d in result.diagnostics} == {"E100"}
    assert len(result.diagnostics) == grammar.MAX_SYNTAX_ERRORS


def test_five_megabytes_of_comments_then_an_error() -> None:
    line = "# " + "x" * 77 + "\n"
    text = line * (FIVE_MB // len(line)) + "rule r: nosuch > 1\n"
    result = front_end(text)
    assert result is not None
    (d,) = result.diagnostics
    assert (d.code, d.span.line) == ("E201", FIVE_MB // len(line) + 1)


def test_five_megabytes_of_junk_on_one_line(tmp_path: Path) -> None:
    rnd = random.Random(3)
    text = "".join(rnd.choice('abz_09 ()[]{}<>=!+-*/".,:%') for _ in range(FIVE_MB))
    assert codes_of(text) <= SYNTAX_CODES
    path = tmp_path / "junk.lnx"
    path.write_text(text)
    result = build_program(load([str(path)]))
    assert result.diagnostics and result.plan is None


@pytest.mark.parametrize(("text", "codes"), [
    ("rule r: " + "(" * 10_000 + "cpu_pct > 1" + ")" * 10_000, set()),
    ("rule r: " + "(" * 10_000 + "cpu_pct > 1", {"E100"}),
    ("rule r: " + "(" * 10_000 + "not " * 10_000 + "true" + ")" * 10_000, {"E105"}),
    ("rule r: " + "not " * 10_000 + "cpu_pct > 1", {"E105"}),
    ("rule r: " + "not (" * 10_000 + "cpu_pct > 1" + ")" * 10_000, {"E105"}),
    ("rule r: cpu_pct > " + "(1 + " * 10_000 + "1" + ")" * 10_000, {"E105"}),
    ("rule r: cpu_pct > " + "- " * 10_000 + "1", {"E105"}),
    ("let l = " + "[" * 10_000 + "]" * 10_000, {"E105"}),
    ("rule r: " + "(" * FIVE_MB + "cpu_pct > 1" + ")" * FIVE_MB, {"E105"}),
    ("rule r: " + "not " * (FIVE_MB // 4) + "true", {"E105"}),
    ("rule r: " + " and ".join(["cpu_pct > 1"] * 5_000), set()),  # flat, not deep
    ("rule r: " + " or ".join(f"comm == \"c{i}\"" for i in range(2_000)), set()),
])
def test_deep_and_long_expressions(text: str, codes: set[str]) -> None:
    assert codes_of(text) == codes


# A declaration begun, a piece repeated hundreds of thousands of times, an end:
# deep nesting of every kind, long tokens of every kind, long chains, many
# declarations, unclosed strings and blocks.
HUGE_PREFIXES = ["", "rule r: ", "rule r: cpu_pct > ", "let l = ", "rule r {\n when ",
                 'rule r: comm == "', "rule r: cpu_pct > 1 and ", 'test "t" { expect r fires ',
                 'include "', "rule r { when cpu_pct > 1\n action kill(grace = "]
HUGE_PIECES = ["(", "[", "not ", "-", "-(", "(1 + ", "f(", "a", "9", "x1", "\\q", "\\\\", "0.",
               "SIG", "# c\n", "\n", "@", "rule ", '"', "{", "}", "cpu_pct > 1 and ",
               'comm == "x" or ', "rule r: x > 1\n", "é"]
HUGE_SUFFIXES = ["", "1", "cpu_pct > 1", ")", '"', "\nrule s: @", "\nrule s: cpu_pct > 1\n"]


@settings(max_examples=40)
@given(st.sampled_from(HUGE_PREFIXES), st.sampled_from(HUGE_PIECES),
       st.sampled_from([20_000, 250_000]), st.sampled_from(HUGE_SUFFIXES))
def test_huge_and_deep_input_gives_diagnostics_not_exceptions(prefix: str, piece: str,
                                                               size: int, suffix: str) -> None:
    from linnix.tools.fmt import format_text

    text = prefix + piece * (size // len(piece)) + suffix
    full, outlined = checked(text, "t.lnx")  # no exception, in full or in outline
    assert outlined == full
    with contextlib.suppress(LinnixError):  # diagnostics, or a refusal to reformat
        format_text(text, "t.lnx")
