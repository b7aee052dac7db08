"""``linnix doctor --config``: whether a model backend is configured, and whether it answers,
the key never shown."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import trio
from model_support import FakeModel
from support import run_cli

from linnix.config import AnalysisConfig
from linnix.tools import doctor

KEY = "sk-doctor-never-shows-it"


def test_no_model_configured_is_said_and_nothing_is_asked() -> None:
    assert doctor.model_check(AnalysisConfig()) == doctor.Check(
        "model", "ok", "none configured: the built-in analyst only, and no connection to a "
        "model")


async def test_a_model_that_answers_and_one_that_does_not(tmp_path: Path) -> None:
    key = tmp_path / "model.key"
    key.write_text(KEY)
    key.chmod(0o600)
    fake = FakeModel(answer=lambda request: "{}" if request["path"] == "/v1/models" else 404)
    async with trio.open_nursery() as nursery:
        await fake.serve(nursery)
        config = fake.config(api_key_file=str(key))
        ok = await trio.to_thread.run_sync(doctor.model_check, config)
        fake.answer = 503
        down = await trio.to_thread.run_sync(doctor.model_check, config)
        nursery.cancel_scope.cancel()
    where = f"fake-7b at http://127.0.0.1:{fake.port}/v1"
    assert ok == doctor.Check("model", "ok", f"{where} answers")
    assert (down.status, down.detail) == ("warn", f"{where} does not answer: GET /models "
                                          "answered HTTP 503")
    assert [r["headers"]["authorization"] for r in fake.requests] == [f"Bearer {KEY}"] * 2
    assert KEY not in f"{ok}{down}"


def test_doctor_with_a_config_prints_the_model_line(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "linnix.toml"
    config.write_text('[analysis]\nbackend = "builtin"\n')
    _, out, _ = run_cli(capsys, "doctor", "--config", str(config))
    assert "[ok  ] model           none configured: the built-in analyst only" in out
    _, plain, _ = run_cli(capsys, "doctor")
    assert not re.search(r"^\[.{4}\] model ", plain, re.MULTILINE)  # not asked: not said


def test_doctor_with_a_bad_config_says_so(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "linnix.toml"
    config.write_text('[analysis]\nbackend = "openai"\n')
    status, out, err = run_cli(capsys, "doctor", "--config", str(config))
    assert status != 0 and out == ""
    assert 'analysis.backend: backend "openai" needs analysis.endpoint too' in err
    assert "Traceback" not in err
