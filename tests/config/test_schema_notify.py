"""``[notify]`` of ``linnix.toml``: Alertmanager and webhook receivers, their URLs and secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from config_support import parse, problems
from hypothesis import given
from hypothesis import strategies as st
from support import run_cli as run

from linnix.config import (
    AlertmanagerTarget,
    Config,
    ConfigFileError,
    NotifyConfig,
    SecretFileError,
    WebhookTarget,
    parse_config,
    read_secret,
)
from linnix.config.secret import SECRET_MAX_BYTES

Capture = pytest.CaptureFixture[str]




@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "webhook.secret"
    path.write_bytes(b"s3cret-key\n")
    path.chmod(0o600)
    return path


def test_no_receiver_by_default() -> None:
    assert Config().notify == NotifyConfig()
    assert NotifyConfig() == NotifyConfig(alertmanager=(), webhook=(), resend_interval=60.0,
                                          timeout=10.0, queue_size=10000)


def test_every_notify_key(secret: Path) -> None:
    c = parse(f"""\
        [notify]
        resend_interval = "2s"
        timeout = "500ms"
        queue_size = 16

        [[notify.alertmanager]]
        url = "http://am1.example.org:9093"

        [[notify.alertmanager]]
        url = "https://am2.example.org/prefix"

        [[notify.webhook]]
        url = "https://hooks.example.org/linnix?team=ops"
        secret_file = "{secret}"
        """)
    assert c.notify == NotifyConfig(
        alertmanager=(AlertmanagerTarget("http://am1.example.org:9093"),
                      AlertmanagerTarget("https://am2.example.org/prefix")),
        webhook=(WebhookTarget("https://hooks.example.org/linnix?team=ops", str(secret)),),
        resend_interval=2.0, timeout=0.5, queue_size=16)


@pytest.mark.parametrize(("url", "why"), [
    ("ftp://am:9093", "the scheme must be http or https, not 'ftp'"),
    ("am.example.org:9093", "the scheme must be http or https, not 'am.example.org'"),
    ("//am:9093", "the scheme (http:// or https://) is missing"),
    ("http://", "the host is missing"),
    ("http://am:99999", "Port out of range 0-65535"),
    ("http://am:0", "the port must be a number from 1 to 65535"),
    ("http://am:port", "Port could not be cast to integer value as 'port'"),
    ("http://am:9093/#x", "a URL sent to a server has no #fragment"),
    ("http://am 1:9093", "it holds white space or control characters"),
    ("http://[::1:9093", "Invalid IPv6 URL"),
    ("http://a..b:9093", "'a..b' is not a host name"),
])
def test_a_bad_url_says_what_is_wrong(url: str, why: str) -> None:
    found = problems(f'[[notify.alertmanager]]\nurl = "{url}"\n')
    assert found == [f'linnix.toml:2: notify.alertmanager[0].url: expected an http:// or '
                     f'https:// URL, got "{url}": {why}']


def test_credentials_in_a_url_are_refused_without_being_shown() -> None:
    found = problems('[[notify.alertmanager]]\nurl = "http://bob:hunter2@am:9093"\n')
    assert len(found) == 1 and "hunter2" not in found[0]
    assert found[0].startswith("linnix.toml:2: notify.alertmanager[0].url: expected an "
                               "http:// or https:// URL: credentials (user:password@)")


@given(st.text(max_size=40))
def test_any_url_text_is_accepted_or_refused_with_a_problem(url: str) -> None:
    text = f"[[notify.alertmanager]]\nurl = {_toml_string(url)}\n"
    try:
        config = parse_config(text, "linnix.toml")
    except ConfigFileError as err:
        assert all(p.key.startswith("notify.alertmanager[0]") for p in err.problems)
        return
    assert config.notify.alertmanager[0].url == url
    assert url.startswith(("http://", "https://"))


def _toml_string(text: str) -> str:
    return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\U{ord(c):08x}"
                         for c in text) + '"'


def test_each_table_is_checked_key_by_key(secret: Path) -> None:
    assert problems(f"""\
        [[notify.alertmanager]]
        url = "http://am:9093"
        uri = "http://am:9093"

        [[notify.webhook]]
        secret_file = "{secret}"

        [[notify.webhook]]
        url = "http://hook"
        secret_file = "relative.secret"
        extra = 1
        """) == [
        "linnix.toml:3: notify.alertmanager[0].uri: unknown key (did you mean 'url'?)",
        "linnix.toml:5: notify.webhook[0]: 'url' is missing",
        'linnix.toml:10: notify.webhook[1].secret_file: expected an absolute path, got '
        '"relative.secret"',
        "linnix.toml:11: notify.webhook[1].extra: unknown key (the keys are url, secret_file)",
    ]


def test_an_alertmanager_listed_twice_is_refused() -> None:
    assert problems("""\
        [[notify.alertmanager]]
        url = "http://am:9093"
        [[notify.alertmanager]]
        url = "http://am:9093"
        """) == ['linnix.toml:4: notify.alertmanager[1].url: "http://am:9093" is listed twice']


def test_receivers_must_be_lists_of_tables() -> None:
    assert problems('[notify]\nalertmanager = "http://am:9093"\nresend_interval = 0\n') == [
        'linnix.toml:2: notify.alertmanager: expected a list of tables ([[notify.alertmanager]] '
        'with url = ...), got "http://am:9093"',
        "linnix.toml:3: notify.resend_interval: expected a duration longer than zero, got 0",
    ]


# ---- the webhook's secret file -----------------------------------------------------------

def _webhook(path: Path | str) -> str:
    return f'[[notify.webhook]]\nurl = "https://hook.example.org"\nsecret_file = "{path}"\n'


def test_a_missing_secret_file_is_a_config_error(tmp_path: Path) -> None:
    assert problems(_webhook(tmp_path / "nope")) == [
        f"linnix.toml:3: notify.webhook[0].secret_file: the secret file {tmp_path}/nope does "
        "not exist"]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644, 0o666, 0o700 | 0o070])
def test_a_secret_others_may_read_or_change_is_refused(secret: Path, mode: int) -> None:
    secret.chmod(mode)
    assert problems(_webhook(secret)) == [
        f"linnix.toml:3: notify.webhook[0].secret_file: the secret file {secret} has mode "
        f"{mode:04o}: others than its owner may read or change it; make it 0600 or stricter "
        f"(chmod 600 {secret})"]


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_secret_of_mode_0600_or_stricter_is_read(secret: Path, mode: int) -> None:
    secret.chmod(mode)
    assert parse(_webhook(secret)).notify.webhook[0].secret_file == str(secret)
    assert read_secret(str(secret)) == b"s3cret-key"


@pytest.mark.parametrize(("content", "why"), [
    (b"  \n", "is empty"),
    (b"x" * (SECRET_MAX_BYTES + 1), f"is larger than {SECRET_MAX_BYTES} bytes"),
])
def test_an_empty_or_huge_secret_is_refused(secret: Path, content: bytes, why: str) -> None:
    secret.write_bytes(content)
    with pytest.raises(SecretFileError, match=why):
        read_secret(str(secret))


def test_a_secret_must_be_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(SecretFileError, match="is not a regular file"):
        read_secret(str(fifo))  # and does not wait for a writer
    with pytest.raises(SecretFileError, match="is not a regular file"):
        read_secret(str(tmp_path))


# ---- from the command line ----------------------------------------------------------------

def test_run_with_a_bad_notify_section_exits_2(capsys: Capture, tmp_path: Path) -> None:
    config = tmp_path / "linnix.toml"
    config.write_text('[[notify.alertmanager]]\nurl = "am:9093"\n' + _webhook(tmp_path / "s"))
    status, out, err = run(capsys, "run", "--config", str(config), "--state-dir",
                           str(tmp_path / "state"))
    assert (status, out) == (2, "")
    assert err == (
        f'linnix: {config}:2: notify.alertmanager[0].url: expected an http:// or https:// URL, '
        f'got "am:9093": the scheme must be http or https, not \'am\'\n'
        f"{config}:5: notify.webhook[0].secret_file: the secret file {tmp_path}/s does not "
        "exist\n")
    assert not (tmp_path / "state").exists()
