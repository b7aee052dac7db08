"""The fast path's LALR driver reduces as Lark's own parser does, token for token."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lark
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lark.parsers.lalr_parser_state import ParseConf, ParserState

from bench.compile import generate
from linnix.language import _lalr, grammar
from linnix.language.builder import Builder
from linnix.language.source import SourceFile

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    *(p for p in sorted((ROOT / "rules").glob("*.lnx"))),
    *(p for p in sorted((ROOT / "fixtures" / "rules" / "good").glob("*.lnx"))),
]


def _recording(names: list[str], log: list[str]) -> list[Callable[[list[Any]], Any]]:
    """A callback per reduction that logs the rule and its values' count, and
    makes a value saying which rule it was."""
    def one(name: str) -> Callable[[list[Any]], Any]:
        def reduce(values: list[Any]) -> Any:
            log.append(f"{name}/{len(values)}")
            return (name, len(values))
        return reduce
    return [one(name) for name in names]


def _theirs(p: lark.Lark, table: _lalr.Table, text: str) -> tuple[list[str], object]:
    """Lark's parser fed Lark's tokens, reducing with the recording callbacks."""
    log: list[str] = []
    callbacks = dict(zip(table.reductions, _recording(table.origins, log), strict=True))
    conf = p.parse_interactive().parser_state.parse_conf
    state = ParserState(ParseConf(conf.parse_table, callbacks, "start"), None)  # type: ignore[arg-type]
    for token in p.parse_interactive(text).exhaust_lexer():
        state.feed_token(token)
    end = lark.Token("$END", "")
    return log, state.feed_token(end, True)


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: p.name)
def test_the_driver_reduces_as_larks_parser(path: Path) -> None:
    same_reductions(path.read_text(encoding="utf-8"))


@given(st.integers(0, 2**32), st.integers(1, 8))
def test_the_driver_reduces_as_larks_parser_on_generated_rules(seed: int, rules: int) -> None:
    same_reductions(generate(rules, seed))


def same_reductions(text: str) -> None:
    """The driver reduces ``text`` (valid) as Lark's parser does, to the same value."""
    p = grammar.parser()
    fast = grammar._fast(p)
    assert fast is not None
    table = fast.table
    log: list[str] = []
    ours = _lalr.drive(table, fast, text, 0, len(text), _recording(table.origins, log),  # type: ignore[arg-type]
                       [], len(text), lambda token: None, False)
    theirs_log, theirs = _theirs(p, table, text)
    assert log == theirs_log
    assert ours == theirs


def test_a_rule_without_a_callback_keeps_its_one_value() -> None:
    """None for a reduction of one value leaves that value where it is: the same
    result as a callback returning it, with fewer calls."""
    text = (ROOT / "rules" / "cpu_spike.lnx").read_text(encoding="utf-8")
    fast = grammar._fast(grammar.parser())
    assert fast is not None
    table = fast.table
    units = [i for i, rule in enumerate(table.reductions) if len(rule.expansion) == 1]
    assert units

    def run(passing: Callable[[list[Any]], Any] | None) -> tuple[object, list[str]]:
        log: list[str] = []
        callbacks: list[Any] = _recording(table.origins, log)
        for i in units:
            callbacks[i] = passing
        result = _lalr.drive(table, fast, text, 0, len(text), callbacks, [],  # type: ignore[arg-type]
                             len(text), lambda token: None, False)
        return result, log

    with_calls, log_calls = run(lambda values: values[0])
    without, log_without = run(None)
    assert without == with_calls
    assert log_without == log_calls


def test_a_shift_of_the_end_is_refused() -> None:
    """The driver feeds the end only to reductions (as Lark's parser asserts)."""
    from lark.parsers.lalr_analysis import Shift

    with pytest.raises(ValueError, match="shift into the end"):
        _lalr.Table({0: {"$END": (Shift, 1)}, 1: {}}, 0, 1, Shift, ValueError)


def test_errors_are_larks() -> None:
    text = "rule r: cpu_pct > > 1"
    fast = grammar._fast(grammar.parser())
    assert fast is not None
    values: list[Any] = []
    with pytest.raises(lark.exceptions.UnexpectedToken) as err:
        _lalr.drive(fast.table, fast, text, 0, len(text),
                    fast._callbacks(Builder(SourceFile("t.lnx", text))), values, len(text),
                    lambda token: None, False)
    assert err.value.token.start_pos == text.rindex(">")
    assert [v.value for v in values if isinstance(v, _lalr.Token)] == ["rule", "r", ":", ">"]
