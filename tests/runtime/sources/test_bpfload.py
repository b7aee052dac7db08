"""The loader's side of the hand-over: descriptors received from a child, and every way the
child can fail reported as a reason, never a hang or a traceback.

The child here is a stand-in (pipes instead of BPF objects): what is tested is the protocol;
tests/runtime/sources/test_bpfload_live.py loads the real program.
"""

from __future__ import annotations

import json
import os

import pytest

from linnix.runtime.sources import bpfload

SEND = ("import json, os, socket, sys\n"
        "sock = socket.socket(fileno=int(sys.argv[3]))\n"
        "assert sys.argv[1] == {code!r} and json.loads(sys.argv[2]) == ['-DX=1']\n"
        "r, w = os.pipe()\n"
        "socket.send_fds(sock, [json.dumps({message}).encode()], [r, w])\n")


def _child(monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    monkeypatch.setattr(bpfload, "_CHILD", source)


def test_the_descriptors_sent_are_the_loaded_maps_and_programs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    message = {"maps": {"events": 0, "lost": 1}, "programs": {"p": 0}, "attached": [1],
               "fds": 2}
    _child(monkeypatch, SEND.format(code=bpfload._CODE, message=message))
    loaded = bpfload.load_program(["-DX=1"])
    r, w = loaded.maps["events"], loaded.maps["lost"]
    assert loaded.programs == {"p": r} and loaded.attached == [w]
    os.write(w, b"x")  # the child's pipe, alive here after the child exited
    assert os.read(r, 1) == b"x"
    loaded.close()
    for fd in (r, w):
        with pytest.raises(OSError):
            os.fstat(fd)
    assert loaded.maps == {} and loaded.attached == []


def test_the_childs_reason_is_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    message = {"error": "no kernel headers at /lib/modules/x/build"}
    _child(monkeypatch, SEND.format(code=bpfload._CODE, message=message))
    with pytest.raises(bpfload.LoadError, match=r"^no kernel headers at /lib/modules/x/build$"):
        bpfload.load_program(["-DX=1"])


def test_descriptors_not_announced_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    message = {"maps": {}, "programs": {}, "attached": [], "fds": 1}
    _child(monkeypatch, SEND.format(code=bpfload._CODE, message=message))
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(bpfload.LoadError, match="wrong descriptors"):
        bpfload.load_program(["-DX=1"])
    assert len(os.listdir("/proc/self/fd")) == before  # the two received are closed


def test_a_child_that_dies_says_how(monkeypatch: pytest.MonkeyPatch) -> None:
    _child(monkeypatch, "import sys\nsys.stderr.write('warning\\nboom\\n')\nsys.exit(3)\n")
    with pytest.raises(bpfload.LoadError, match=r"^the loader exited with status 3: boom$"):
        bpfload.load_program([])


def test_a_child_that_never_answers_is_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    _child(monkeypatch, "import time\ntime.sleep(600)\n")
    with pytest.raises(bpfload.LoadError, match=r"^the loader did not answer: timed out$"):
        bpfload.load_program([], timeout=0.2)


def test_the_child_reports_what_failed_as_the_source_words_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from linnix.runtime.sources.bcc import BpfUnavailableError

    assert bpfload._reason(BpfUnavailableError("tracefs is not mounted")) == (
        "tracefs is not mounted")
    assert bpfload._reason(Exception("Failed to compile BPF module")) == (
        "the eBPF program did not load: Failed to compile BPF module")
    assert json.loads(json.dumps({"error": bpfload._reason(KeyError("x"))}))
