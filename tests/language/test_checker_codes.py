"""One minimal example per diagnostic code, and a check that no code lacks one.

The list of codes is read from the front-end sources, so a new code without an
example here fails ``test_every_code_has_an_example``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import check_spans, emitted_codes, write

from linnix.language import loader
from linnix.language.pipeline import build

TRACE = "t.jsonl"

# code -> the files of a program whose only diagnostic has that code ("m.lnx" is checked)
EXAMPLES: dict[str, dict[str, str | bytes]] = {
    "E100": {"m.lnx": "rule r cpu_pct > 1"},
    "E101": {"m.lnx": "rule r: cpu_pct > 1 @"},
    "E102": {"m.lnx": 'rule r: comm == "bash'},
    "E103": {"m.lnx": 'rule r: comm == "\\q"'},
    "E104": {"m.lnx": "rule r: cpu_pct > " + "9" * 400},
    "E105": {"m.lnx": "rule r: " + "not " * 200 + "cpu_pct > 1"},
    "E106": {"m.lnx": 'rule r: comm == "' + "x" * 65_537 + '"'},
    "E107": {"m.lnx": "rule r {\n when cpu_pct > 1\n"},
    "E108": {"m.lnx": 'rule r: comm = "x"'},
    "E109": {"m.lnx": "rule r: comm == 'x'"},
    "E110": {"m.lnx": 'include "nope.lnx"'},
    "E111": {"m.lnx": 'include "m.lnx"'},
    "E112": {"m.lnx": b"rule r: \xff"},
    "E114": {"m.lnx": "rule r { when cpu_pct > 1\n severity Critical }"},
    "E201": {"m.lnx": "rule r: subtre_cpu_pct > 1"},
    "E202": {"m.lnx": "rule r: cpu_pct > 1\nrule r: cpu_pct > 2"},
    "E203": {"m.lnx": "let a = 1\nmacro a = cpu_pct > 1\nrule r: cpu_pct > a"},
    "E204": {"m.lnx": "let cpu_pct = 1"},
    "E205": {"m.lnx": "macro m = m and cpu_pct > 1\nrule r: m"},
    "E206": {"m.lnx": "rule r: avg > 1"},
    "E207": {"m.lnx": "rule r: parent.nosuch > 1"},
    "E208": {"m.lnx": 'rule r { when cpu_pct > 1\n message "{nosuch}" }'},
    "E301": {"m.lnx": "rule r: cpu_pct > 2s"},
    "E302": {"m.lnx": "rule r: comm == 1"},
    "E303": {"m.lnx": "rule r: age_s > 5min"},
    "E304": {"m.lnx": "rule r: cpu_pct > 1 for 0s"},
    "E305": {"m.lnx": "rule r: cpu_pct > 1 for 5"},
    "E306": {"m.lnx": 'rule r: comm matches "a("'},
    "E307": {"m.lnx": 'rule r on connect: remote_addr in_cidr "10.0.0.1/8"'},
    "E308": {"m.lnx": 'rule r { when cpu_pct > 1\n message "{comm!r}" }'},
    "E309": {"m.lnx": 'rule r { when cpu_pct > 1\n labels { load = "{cpu_pct}" } }'},
    "E401": {"m.lnx": "rule r { when subtree_cpu_pct > 1\n scope process }"},
    "E402": {"m.lnx": "rule r { when cpu_pct > 1\n scope tree }"},
    "E403": {"m.lnx": "rule r: cg_cpu_pct > 1 and cpu_pct > 1"},
    "E501": {"m.lnx": 'rule r { description "x" }'},
    "E502": {"m.lnx": "rule r { when cpu_pct > 1\n severity info\n severity info }"},
    "E503": {"m.lnx": "rule r { when cpu_pct > 1\n severity urgent }"},
    "E506": {"m.lnx": 'rule r { when cpu_pct > 1\n labels { a = "x", a = "y" } }'},
    "E601": {"m.lnx": "rule r { when cpu_pct > 1\n action kil }"},
    "E602": {"m.lnx": "rule r { when cpu_pct > 1\n action kill(speed = 1s) }"},
    "E603": {"m.lnx": "rule r { when host_cpu_pct > 1\n action kill }"},
    "E604": {"m.lnx": "rule r: top(cpu_pct) > 1"},
    "E605": {"m.lnx": "rule r: avg(cpu_pct) > 1"},
    "E606": {"m.lnx": "rule r { when host_cpu_pct > 1\n"
                      " action kill(target = top(cpu_pct, unless subtree_procs > 1)) }"},
    "E607": {"m.lnx": 'rule r { when cpu_pct > 1\n boundary comm == "sh" }'},
    "E608": {"m.lnx": "rule r { when subtree_procs > 1\n boundary cpu_pct > 1 }"},
    "E609": {"m.lnx": "rule r { when cpu_pct > 1\n action freeze }"},
    "E620": {"m.lnx": "rule r: count(host_cpu_pct > 1) > 1"},
    "E621": {"m.lnx": "rule r: execs(pid, 1m) > 1"},
    "E510": {"m.lnx": "rule r on exex: comm == \"sh\""},
    "E511": {"m.lnx": "rule r on exec: comm == \"sh\" for 5s"},
    "E512": {"m.lnx": "rule r { on exec\n when comm == \"sh\"\n scope system }"},
    "E513": {"m.lnx": "rule r: crashed"},
    "E514": {"m.lnx": "rule r { on exit\n when crashed\n action kill }"},
    "E515": {"m.lnx": "rule r { when cpu_pct > 1\n max_rate 5/s }"},
    "E516": {"m.lnx": "rule r on listen: remote_port == 22"},
    "E701": {"m.lnx": f'test "t" {{ trace "{TRACE}"\n expect nosuch never }}', TRACE: ""},
    "E702": {"m.lnx": 'rule r: cpu_pct > 1\ntest "t" { expect r never }'},
    "E703": {"m.lnx": 'rule r: cpu_pct > 1\ntest "t" { trace "nope.jsonl"\n expect r never }'},
    "E704": {"m.lnx": f'rule r: cpu_pct > 1\ntest "t" {{ trace "{TRACE}"\n'
                      " expect r firing between 2s and 1s }", TRACE: ""},
    "W101": {"m.lnx": "let unused = 1"},
    "W102": {"m.lnx": "macro unused = cpu_pct > 1"},
    "W103": {"m.lnx": "rule r: cpu_pct > 5 and cpu_pct < 3"},
    "W104": {"m.lnx": "rule r { when cpu_pct > 90\n clear when cpu_pct > 80 }"},
    "W105": {"m.lnx": "rule r: 2 > 1"},
    "W110": {"m.lnx": "rule r on exec: cpu_pct > 50"},
    "W106": {"m.lnx": f'test "t" {{ trace "{TRACE}" }}', TRACE: ""},
    "W111": {"m.lnx": 'rule r { when cpu_pct > 1\n labels { process = "{pid}" } }'},
    "W112": {"m.lnx": 'rule r: comm == "a-name-longer-than-15"'},
    "W113": {"m.lnx": "rule r: fd_pct > 0.8"},
}


def test_every_code_has_an_example() -> None:
    assert emitted_codes() == {*EXAMPLES, "E113"}


@pytest.mark.parametrize("code", sorted(EXAMPLES))
def test_example_yields_exactly_its_code(code: str, tmp_path: Path) -> None:
    write(tmp_path, EXAMPLES[code])
    result = build([str(tmp_path / "m.lnx")])
    assert [d.code for d in result.diagnostics] == [code], [
        (d.code, d.message) for d in result.diagnostics]
    (d,) = result.diagnostics
    assert d.level.value == ("error" if code.startswith("E") else "warning")
    assert d.message
    check_spans(result.diagnostics)
    assert (result.plan is None) == code.startswith("E")


def test_e113_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 8)
    write(tmp_path, {"m.lnx": "rule r: cpu_pct > 1"})
    result = build([str(tmp_path / "m.lnx")])
    assert [d.code for d in result.diagnostics] == ["E113"]
