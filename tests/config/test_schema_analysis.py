"""``[analysis]`` of ``linnix.toml``: the built-in analyst, and a model backend's keys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from config_support import parse, problems

from linnix.config import AnalysisConfig, Config

KEY = "sk-do-not-show-0123456789"


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "model.key"
    path.write_text(KEY + "\n")
    path.chmod(0o600)
    return path


def test_the_built_in_analyst_is_the_default() -> None:
    assert Config().analysis == AnalysisConfig()
    assert Config().analysis.backend == "builtin"
    assert parse('[analysis]\nbackend = "builtin"\n').analysis.backend == "builtin"
    assert problems('[analysis]\nbackend = "builtn"\n') == [
        'linnix.toml:2: analysis.backend: expected "builtin" or "openai", got "builtn" '
        '(did you mean "builtin"?)']


def test_an_openai_backend_with_every_key(key: Path) -> None:
    analysis = parse(f"""
        [analysis]
        backend = "openai"
        endpoint = "http://127.0.0.1:11434/v1"
        model = "llama3.1:8b"
        api_key_file = "{key}"
        timeout = "20s"
        max_tokens = 800
        send_cmdlines = true
        concurrency = 3
        queue_size = 10
        breaker_failures = 2
        breaker_cooldown = "5m"
        """).analysis
    assert analysis == AnalysisConfig(
        backend="openai", endpoint="http://127.0.0.1:11434/v1", model="llama3.1:8b",
        api_key_file=str(key), timeout=20.0, max_tokens=800, send_cmdlines=True,
        concurrency=3, queue_size=10, breaker_failures=2, breaker_cooldown=300.0)


def test_the_model_backend_defaults() -> None:
    analysis = parse('[analysis]\nbackend = "openai"\nendpoint = "https://ai.example.org/v1"\n'
                     'model = "m"\n').analysis
    assert (analysis.api_key_file, analysis.timeout, analysis.max_tokens,
            analysis.send_cmdlines, analysis.concurrency) == (None, 30.0, 1024, False, 2)


def test_an_openai_backend_needs_an_endpoint_and_a_model() -> None:
    assert problems('[analysis]\nbackend = "openai"\n') == [
        'linnix.toml:2: analysis.backend: backend "openai" needs analysis.endpoint too',
        'linnix.toml:2: analysis.backend: backend "openai" needs analysis.model too']


@pytest.mark.parametrize(("line", "message"), [
    ('endpoint = "ftp://x/v1"', "analysis.endpoint: expected an http:// or https:// URL, "
     "got \"ftp://x/v1\": the scheme must be http or https, not 'ftp'"),
    ('endpoint = "http://user:pw@x/v1"', "analysis.endpoint: expected an http:// or https:// "
     "URL: credentials (user:password@) do not belong in the configuration file; put an "
     "authenticating proxy in front of the receiver instead"),
    ('model = ""', 'analysis.model: expected a model name such as "llama3.1:8b", got ""'),
    ('model = "a\\nb"', "analysis.model: expected a model name of at most 256 printable "
     'characters, got "a\\nb"'),
    ("timeout = 0", "analysis.timeout: expected a duration longer than zero, got 0"),
    ("max_tokens = 2", "analysis.max_tokens: expected a whole number from 16 to 1000000, "
     "got 2"),
    ("send_cmdlines = 1", "analysis.send_cmdlines: expected true or false, got 1"),
    ("concurrency = 0", "analysis.concurrency: expected a whole number from 1 to 64, got 0"),
    ("api_key_file = \"key\"", 'analysis.api_key_file: expected an absolute path, got "key"'),
])
def test_bad_model_keys_are_named(line: str, message: str) -> None:
    assert problems(f"[analysis]\n{line}\n") == [f"linnix.toml:2: {message}"]


def test_a_key_file_others_may_read_is_refused_and_the_key_never_shown(key: Path) -> None:
    key.chmod(0o640)
    found = problems(f'[analysis]\napi_key_file = "{key}"\n')
    assert found == [f"linnix.toml:2: analysis.api_key_file: the secret file {key} has mode "
                     f"0640: others than its owner may read or change it; make it 0600 or "
                     f"stricter (chmod 600 {key})"]
    assert KEY not in found[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_a_key_file_owned_by_someone_else_is_refused(key: Path) -> None:
    os.chown(key, 65534, 65534)
    found = problems(f'[analysis]\napi_key_file = "{key}"\n')
    assert found == [f"linnix.toml:2: analysis.api_key_file: the secret file {key} is owned "
                     f"by uid 65534: only root or the agent's user (uid 0) may own it (chown)"]
    assert KEY not in found[0]


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nothing"
    assert problems(f'[analysis]\napi_key_file = "{path}"\n') == [
        f"linnix.toml:2: analysis.api_key_file: the secret file {path} does not exist"]
