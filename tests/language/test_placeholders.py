"""Function calls in messages (linnix/language/placeholders.py).

A call placeholder is checked as a condition's call is, its diagnostic shown
at the placeholder; its value is generated under the placeholder's own text;
a window read only by the message is still kept; whatever text a placeholder
holds, the front end answers with diagnostics, never an exception.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from support import build_text, diagnostics, only, plan

from linnix.names import Need

RULE = 'rule r {{\n when crashes(exe, 5m) >= 3\n message "{text}"\n}}\n'


def test_calls_in_a_message_are_computed_under_their_own_text() -> None:
    p = plan(RULE.format(text="{crashes(exe, 5m)} crashes, {avg(cpu_pct, 1m):.0f}% cpu, "
                              '{count(comm == \\"sshd\\")} sshd'))
    (r,) = p.rules
    assert r.message.names == ("crashes(exe, 5m)", "avg(cpu_pct, 1m)", 'count(comm == "sshd")')
    assert ("cpu_pct", 60.0) in r.windows  # kept for the message alone
    assert Need.CPU in r.needs
    assert [c.text for c in p.counts] == ['count(comm == "sshd")']
    assert r.inputs == ("crashes(exe, 300s)",)  # the condition's, not the message's
    source = p.generated["t.lnx"]
    assert "'crashes(exe, 5m)': h.tally.events('crashes', 'exe', p.exe, 300.0, now)" in source
    assert "'count(comm == \"sshd\")': h.tally.count('count(comm == \"sshd\")')" in source


def test_a_call_placeholder_may_use_the_files_lets() -> None:
    text = 'let shells = ["sh", "bash"]\n' + RULE.format(text="{count(comm in shells)} shells")
    p = plan(text)
    assert [c.text for c in p.counts] == ['count(comm in ["sh", "bash"])']


def test_a_bad_call_in_a_message_is_reported_at_the_placeholder() -> None:
    d = only(RULE.format(text="now {crashes(exe, 5)}"), "E305")
    assert (d.span.line, d.span.col, d.span.text) == (3, 16, "crashes(exe, 5)")
    d = only(RULE.format(text="{median(cpu_pct, 1m)}"), "E206")
    assert d.message == "unknown function 'median' (did you mean 'min'?)"
    d = only(RULE.format(text="{top(cpu_pct)}"), "E604")
    assert d.span.text == "top(cpu_pct)"


def test_a_placeholder_that_is_not_one_call_is_refused() -> None:
    d = only(RULE.format(text="{count(comm == \\\"a\\\") + 1}"), "E308")
    assert d.message.startswith("a function call in a message ends with '}' or ':spec}'")
    d = only(RULE.format(text="{crashes(exe, 5m) or 1}"), "E308")
    d = only(RULE.format(text="{crashes(exe,, 5m)}"), "E308")
    assert d.message == ("'crashes(exe,, 5m)' in a message is not a function call such as "
                         "{crashes(exe, 5m)}")
    assert only(RULE.format(text="{rule(1)}"), "E206").message == "unknown function 'rule'"


def test_a_message_call_needs_the_scope_that_provides_it() -> None:
    d = only('rule r {\n when host_cpu_pct > 90\n message "{execs(comm, 1m)}"\n}\n', "E401")
    assert d.message == ("'execs(comm, 1m)' reads comm, a process value, but this rule's "
                         "scope is system")
    assert plan('rule r {\n when host_cpu_pct > 90\n message "{count(comm == \\"x\\")}"\n}\n')


@given(st.text(alphabet='abcex(),:!= "\\5ms{}[]', max_size=30))
def test_any_placeholder_text_gives_diagnostics_never_an_exception(inner: str) -> None:
    text = inner.replace("\\", "\\\\").replace('"', '\\"')
    build_text(RULE.format(text="{count(" + text + ")} {crashes(" + text + ")}"))
    assert isinstance(diagnostics(RULE.format(text="{execs(" + text + "}"), "u.lnx"), list)
