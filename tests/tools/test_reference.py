"""The generated reference, and the documentation that must agree with the code."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest
from support import ROOT

from linnix import names
from linnix.language.loader import load_text
from linnix.language.pipeline import build, build_program
from linnix.tools import reference

HOW_TO_FIX = "out of date: run 'make docs' (python -m linnix.tools.reference --write)"


def rows(text: str) -> dict[str, str]:
    """Table rows of rendered Markdown, by the code span in their first cell."""
    found = {}
    for line in text.splitlines():
        m = re.match(r"\| `([^`]+)` \|", line)
        if m:
            found.setdefault(m.group(1), line)
    return found


# ---- the generated files are current --------------------------------------------------

def test_docs_reference_md_is_current() -> None:
    assert (ROOT / "docs" / "reference.md").read_text(encoding="utf-8") == \
        reference.document(), HOW_TO_FIX


def test_readme_reference_section_is_current() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.count(reference.README_START) == 1
    assert readme.count(reference.README_END) == 1
    assert reference.readme_with_reference(readme) == readme, HOW_TO_FIX


def test_readme_keeps_its_quickstart() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"```\nmake run\nmake test\n```", quickstart)


# ---- what the reference contains ----------------------------------------------------------

def test_every_registry_entry_has_a_row() -> None:
    table = rows(reference.render())
    for name in names.METRICS:
        assert name in table
    for func in names.WINDOW_FUNCTIONS:
        assert f"{func}(M, W)" in table
    assert "count(EXPR)" in table
    for func in set(names.COUNTING_FUNCTIONS) - {"count"}:
        assert f"{func}(FIELD, W)" in table
    for func in set(names.FUNCTIONS) - set(names.WINDOW_FUNCTIONS) - set(names.COUNTING_FUNCTIONS):
        assert f"{func}(M)" in table
    for key in (*names.UNITS, *names.ACTIONS, *names.SIGNALS, *names.TEMPLATE_EXTRAS):
        assert key in table


def test_metric_rows_show_the_registry_fields() -> None:
    table = rows(reference.render())
    for m in names.METRICS.values():
        cells = [c.strip() for c in table[m.name].strip("|").split(" | ")]
        assert cells[1:] == [m.scope.value, m.type.value, cells[3], m.help, m.computed,
                             "yes" if m.optional else "no"]
    units = {name: table[name].split(" | ")[3] for name in ("rss_mb", "cpu_pct", "age_s", "pid",
                                                            "comm")}
    assert units == {"rss_mb": "MiB", "cpu_pct": "%", "age_s": "s", "pid": "-", "comm": "-"}


def test_units_actions_and_signals() -> None:
    table = rows(reference.render())
    assert table["KB"] == "| `KB` | size | 1000 bytes |"
    assert table["KiB"] == "| `KiB` | size | 1024 bytes |"
    assert table["GiB"] == "| `GiB` | size | 1073741824 bytes |"
    assert table["m"] == "| `m` | duration | 60 s |"
    assert table["ms"] == "| `ms` | duration | 0.001 s |"
    assert table["SIGKILL"] == "| `SIGKILL` | 9 |"
    signal = table["signal"]
    assert "`SIGNAL` (required, first)" in signal
    assert "`target = top(METRIC[, unless EXPR])` (optional)" in signal
    assert "`grace = DURATION` (optional)" in table["kill"]
    assert "| `alert` | no | none |" in table["alert"]


def test_the_reference_follows_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = attrs.evolve(names.METRICS["rss_mb"], name="swap_mb", help="swapped-out memory",
                         computed="'swap_kb' / 1024 of the latest sample")
    monkeypatch.setattr(reference, "METRICS", {**names.METRICS, "swap_mb": extra})
    row = rows(reference.render())["swap_mb"]
    assert "swapped-out memory" in row and "'swap_kb' / 1024" in row


def test_table_cells_escape_pipes() -> None:
    assert reference._table(("a",), [("x | y",)])[-1] == "| x \\| y |"


def test_heading_level() -> None:
    assert "\n### Units\n" in reference.render(3)
    assert "\n## Units\n" in reference.render(2)


# ---- regeneration ---------------------------------------------------------------------------

def test_write_updates_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nintro\n\n{reference.README_START}\nstale\n{reference.README_END}\n"
                      "\n## After\n", encoding="utf-8")
    assert reference.main(["--write", "--root", str(tmp_path)]) == 0
    assert (tmp_path / "docs" / "reference.md").read_text() == reference.document()
    text = readme.read_text()
    assert text.startswith("# x\n\nintro\n\n")
    assert text.endswith(f"{reference.README_END}\n\n## After\n")
    assert "stale" not in text and reference.render(3) in text
    assert capsys.readouterr().out.count("wrote") == 2
    assert reference.main(["--write", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out == ""  # nothing left to change


def test_write_needs_the_readme_and_its_markers(tmp_path: Path) -> None:
    assert reference.main(["--write", "--root", str(tmp_path)]) == 2
    (tmp_path / "README.md").write_text("# no markers\n")
    assert reference.main(["--write", "--root", str(tmp_path)]) == 1


def test_without_write_it_prints_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert reference.main([]) == 0
    assert capsys.readouterr().out == reference.document()


# ---- the language guide agrees with the code -----------------------------------------------

LANGUAGE = ROOT / "docs" / "language.md"
_ROW = re.compile(r"^\| ([EW]\d{3}) \| [^|]+ \| (.+?) \| .+ \|$", re.MULTILINE)


def _documented() -> dict[str, str]:
    return {m.group(1): m.group(2) for m in _ROW.finditer(LANGUAGE.read_text(encoding="utf-8"))}


def _runnable() -> list[tuple[str, str]]:
    """(code, source) of the examples written as code; the others are described in words."""
    found = [(code, re.fullmatch(r"`([^`]+)`", example)) for code, example in
             sorted(_documented().items())]
    return [(code, m.group(1)) for code, m in found if m is not None]


def test_every_diagnostic_code_is_documented() -> None:
    emitted = set()
    for path in (ROOT / "linnix").rglob("*.py"):
        emitted |= set(re.findall(r"\"([EW]\d{3})\"", path.read_text(encoding="utf-8")))
    assert emitted, "no diagnostic codes found in linnix/"
    assert set(_documented()) == emitted


def test_most_examples_are_runnable() -> None:
    # E104, E105, E106, E112 and E113 need a long or a binary file
    assert len(_runnable()) >= len(_documented()) - 5


@pytest.mark.parametrize(("code", "example"), _runnable())
def test_documented_examples_report_their_code(code: str, example: str, tmp_path: Path) -> None:
    """Each example, saved as x.lnx beside a trace t.jsonl, draws its code."""
    (tmp_path / "t.jsonl").write_text('{"ts": 0, "kind": "system", "cpu_pct": 1}\n')
    source = tmp_path / "x.lnx"
    source.write_text(example + "\n", encoding="utf-8")
    result = build([str(source)])
    assert code in {d.code for d in result.diagnostics}


def _readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```lnx\n(.*?)```", text, re.S)


@pytest.mark.parametrize("block", _readme_blocks())
def test_readme_examples_are_valid_rules(block: str) -> None:
    result = build_program(load_text(block, "README.lnx"))
    assert result.errors == [] and result.plan is not None
