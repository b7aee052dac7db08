"""The linear-time patterns behind ``matches`` and ``glob``."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linnix.language import regex
from linnix.language.regex import PatternError, compile_glob, compile_regex

# The characters that mean something to a glob or to RE2, and a few that do not.
_GLOBBY = st.text(alphabet="ab-!][*?\\^.$()| \n\u00e9", max_size=8)


def test_the_fast_path_of_the_regex_package_is_in_use() -> None:
    # if google-re2 stops exposing its compiled core, this fails before performance does
    assert regex._FAST


@settings(max_examples=500, deadline=None)
@given(pattern=_GLOBBY, texts=st.lists(_GLOBBY, max_size=6))
def test_glob_means_what_fnmatch_means(pattern: str, texts: list[str]) -> None:
    glob = compile_glob(pattern)
    for text in [*texts, pattern]:
        assert glob.test(text) == fnmatch.fnmatchcase(text, pattern), (pattern, text)


def test_glob_sets_and_their_edges() -> None:
    cases = {
        "[!a]b": (["xb", "-b"], ["ab", "b"]),
        "[]a]": (["]", "a"], ["b"]),
        "[z-a]x": ([], ["x", "zx", "ax"]),
        "[": (["["], [""]),
        "a*b": (["ab", "a\nb", "a/x/b"], ["a", "ba"]),
        "[a-]": (["a", "-"], ["b"]),
    }
    for pattern, (yes, no) in cases.items():
        glob = compile_glob(pattern)
        assert all(glob.test(t) for t in yes), pattern
        assert not any(glob.test(t) for t in no), pattern


def test_regex_search_is_unanchored_and_case_sensitive() -> None:
    rx = compile_regex("wor[k]er")
    assert rx.test("kworker/0:1") and not rx.test("KWORKER")
    assert compile_regex("^a.c$").test("a\u00e9c")  # '.' is one character, not one byte


def test_refusals_carry_the_fragment_and_a_hint() -> None:
    with pytest.raises(PatternError) as caught:
        compile_regex("a(?=b)")
    assert (caught.value.message, caught.value.fragment) == ("look-ahead is not supported", "(?=")
    assert caught.value.hint is not None
