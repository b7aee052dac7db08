"""``linnix.toml``: defaults, every section, every error with its line, and ``check --config``."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from config_support import parse, problems
from support import ROOT
from support import run_cli as run

from linnix.config import (
    ActionsConfig,
    ApiConfig,
    Config,
    ConfigFileError,
    ConfigProblem,
    RetentionConfig,
    RulesConfig,
    RuntimeConfig,
    TelemetryConfig,
    config_problems,
    default_state_dir,
    load_config,
    parse_bind,
    parse_config,
    parse_duration,
    resolve_state_dir,
    resolve_token_file,
)
from linnix.errors import ConfigError, LinnixError

EXAMPLE = ROOT / "linnix.example.toml"
Capture = pytest.CaptureFixture[str]




def problem(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


# ---- defaults ----------------------------------------------------------------------------


def test_defaults() -> None:
    c = Config()
    assert c.runtime == RuntimeConfig(mode="monitor", state_dir=None)
    assert c.api == ApiConfig(bind="127.0.0.1:9333", token_file=None, max_body_bytes=16384)
    assert c.telemetry == TelemetryConfig(sample_interval=1.0, idle_sample_max=8.0, tick=0.5,
                                          ring_buffer_pages=4096, sample_fds="auto")
    assert c.rules == RulesConfig(paths=("/etc/linnix/rules",), disabled_tags=(),
                                  enabled_tags=())
    assert c.actions == ActionsConfig(ttl=300.0, rate_limit=6, protected=(), protected_exe=(),
                                      unprotect=(), kill_grace=5.0, degraded_window=60.0)
    assert c.retention == RetentionConfig(max_age=30 * 86400.0, max_incidents=10000,
                                          max_audit=100000)
    assert c.path is None


def test_protected_names_only_add_to_the_built_in_ones() -> None:
    """The built-in names live with the guards; the configuration adds to them (and
    unprotect removes one, explicitly), so a file naming one process keeps the rest."""
    c = parse('[actions]\nprotected = ["postgres"]\nunprotect = ["screen"]\n')
    assert (c.actions.protected, c.actions.unprotect) == (("postgres",), ("screen",))
    assert Config().actions.protected == () and Config().actions.unprotect == ()


def test_no_file_and_an_empty_file_are_the_defaults(tmp_path: Path) -> None:
    assert load_config(None) == Config()
    assert parse("") == Config()
    assert parse("# nothing but a comment\n\n[runtime]\n[api]\n") == Config()
    empty = tmp_path / "linnix.toml"
    empty.write_text("")
    loaded = load_config(str(empty))
    assert loaded == Config() and loaded.path == str(empty)


def test_config_is_frozen_and_hashable() -> None:
    c = Config()
    with pytest.raises(AttributeError):
        c.runtime = RuntimeConfig()  # type: ignore[misc]
    assert hash(c) == hash(Config())


# ---- every section -----------------------------------------------------------------------


FULL = """\
[runtime]
mode = "enforce"
state_dir = "/srv/linnix"

[api]
bind = "[::1]:9444"
token_file = "/etc/linnix/token"
max_body_bytes = 4096
allowed_hosts = ["Linnix.internal", "proxy"]
max_connections = 8
public_reads = true

[telemetry]
sample_interval = "2s"
tick = 0.25
ring_buffer_pages = 1024
sample_fds = "never"

[rules]
paths = ["/opt/rules", "local.lnx"]
disabled_tags = ["experimental", "noisy"]
enabled_tags = ["network"]

[actions]
ttl = "10m"
rate_limit = 0
protected = ["postgres", "systemd"]
protected_exe = ["/usr/sbin/sshd"]
unprotect = ["screen"]
kill_grace = 0
degraded_window = "2m"

[retention]
max_age = "7d"
max_incidents = 50
max_audit = 500
alerts_file_mb = 16
"""


def test_every_section_and_key() -> None:
    c = parse(FULL)
    assert c == Config(
        runtime=RuntimeConfig(mode="enforce", state_dir="/srv/linnix"),
        api=ApiConfig(bind="[::1]:9444", token_file="/etc/linnix/token", max_body_bytes=4096,
                      allowed_hosts=("linnix.internal", "proxy"), max_connections=8,
                      public_reads=True),
        telemetry=TelemetryConfig(sample_interval=2.0, tick=0.25, ring_buffer_pages=1024,
                                  sample_fds="never"),
        rules=RulesConfig(paths=("/opt/rules", "local.lnx"),
                          disabled_tags=("experimental", "noisy"), enabled_tags=("network",)),
        actions=ActionsConfig(ttl=600.0, rate_limit=0, protected=("postgres", "systemd"),
                              protected_exe=("/usr/sbin/sshd",), unprotect=("screen",),
                              kill_grace=0.0,
                              degraded_window=120.0),
        retention=RetentionConfig(max_age=7 * 86400.0, max_incidents=50, max_audit=500,
                                  alerts_file_mb=16),
    )
    assert (c.api.host, c.api.port) == ("::1", 9444)
    assert c.path == "linnix.toml"


def test_a_section_sets_only_what_it_names() -> None:
    c = parse("[actions]\nrate_limit = 2\n")
    assert c == Config(actions=ActionsConfig(rate_limit=2))


def test_dotted_keys_and_inline_tables() -> None:
    c = parse('runtime.mode = "enforce"\napi = { bind = "localhost:80" }\n')
    assert c.runtime.mode == "enforce" and c.api.bind == "localhost:80"
    assert c.api.host == "localhost" and c.api.port == 80


def test_empty_protected_list_is_allowed() -> None:
    assert parse("[actions]\nprotected = []\n").actions.protected == ()


# ---- durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "seconds"), [
    ("500ms", 0.5), ("30s", 30.0), ("5m", 300.0), ("2h", 7200.0), ("30d", 2592000.0),
    ("1.5h", 5400.0), ("10", 10.0), (" 5 m ", 300.0), (1.5, 1.5), (2, 2.0), (0, 0.0),
])
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [
    "5 minutes", "1w", "-1s", "1h30m", "", "ms", True, -3, float("inf"), float("nan"), [1],
])
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize(("text", "seconds"), [
    ('"500ms"', 0.5), ('"30s"', 30.0), ('"5m"', 300.0), ('"2h"', 7200.0), ('"30d"', 2592000.0),
    ("45", 45.0), ("0.5", 0.5),
])
def test_durations_in_the_file(text: str, seconds: float) -> None:
    c = parse(f"[telemetry]\ntick = {text}\n[retention]\nmax_age = {text}\n")
    assert c.telemetry.tick == pytest.approx(seconds)
    assert c.retention.max_age == pytest.approx(seconds)


def test_invalid_durations() -> None:
    assert problem('[telemetry]\nsample_interval = "5 minutes"\n') == (
        'linnix.toml:2: telemetry.sample_interval: expected a duration longer than zero such as '
        '"500ms", "30s", "5m", "2h" or "30d" (a plain number means seconds), got "5 minutes"')
    assert problem('[telemetry]\ntick = "0s"\n') == (
        'linnix.toml:2: telemetry.tick: expected a duration longer than zero, got "0s"')
    assert problem("[actions]\nttl = -5\n").startswith(
        "linnix.toml:2: actions.ttl: expected a duration longer than zero such as")
    assert problem("[actions]\nkill_grace = true\n").endswith("got true")
    assert problem("[retention]\nmax_age = inf\n").endswith("got inf")


def test_zero_is_allowed_where_it_means_off() -> None:
    c = parse('[actions]\nkill_grace = "0s"\ndegraded_window = 0\n')
    assert (c.actions.kill_grace, c.actions.degraded_window) == (0.0, 0.0)


def test_the_longest_gap_between_samples_of_an_idle_process() -> None:
    assert parse('[telemetry]\nidle_sample_max = "0"\n').telemetry.idle_sample_max == 0.0
    assert parse('[telemetry]\nidle_sample_max = "1m"\n').telemetry.idle_sample_max == 60.0
    assert problem('[telemetry]\nidle_sample_max = "61s"\n') == (
        'linnix.toml:2: telemetry.idle_sample_max: expected a duration of zero or more and at '
        'most 60s, got "61s"')
    assert problem("[telemetry]\nidle_sample_max = -1\n").startswith(
        "linnix.toml:2: telemetry.idle_sample_max: expected a duration of zero or more and at "
        "most 60s such as")


def test_tick_may_exceed_or_undercut_the_sample_interval() -> None:
    c = parse('[telemetry]\ntick = "5s"\nsample_interval = "100ms"\n')
    assert (c.telemetry.tick, c.telemetry.sample_interval) == (5.0, 0.1)


# ---- bind -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "host", "port"), [
    ("127.0.0.1:9333", "127.0.0.1", 9333), ("[::1]:9333", "::1", 9333),
    ("localhost:1", "localhost", 1), ("0.0.0.0:65535", "0.0.0.0", 65535),
    ("[fe80::1]:80", "fe80::1", 80), ("host.example:8080", "host.example", 8080),
])
def test_parse_bind(text: str, host: str, port: int) -> None:
    assert parse_bind(text) == (host, port)


@pytest.mark.parametrize("text", [
    "9333", ":9333", "::1:9333", "[::1]9333", "[::1]", "[nope]:80", "host:0", "host:65536",
    "host:", "host:http", "256.1.1.1:80", "a b:80", "127.0.0.1:-1", "[::1:80",
])
def test_parse_bind_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_bind(text)


def test_invalid_bind_in_the_file() -> None:
    assert problem('[api]\nbind = "::1:9333"\n') == (
        'linnix.toml:2: api.bind: expected host:port, got "::1:9333": '
        "put an IPv6 address in brackets: [address]:port")
    assert problem('[api]\nbind = "127.0.0.1:99999"\n') == (
        'linnix.toml:2: api.bind: expected host:port, got "127.0.0.1:99999": '
        "the port must be a number from 1 to 65535, not '99999'")
    assert problem("[api]\nbind = 9333\n") == (
        'linnix.toml:2: api.bind: expected host:port (e.g. "127.0.0.1:9333" or "[::1]:9333"), '
        "got 9333")


# ---- errors, each with its line ----------------------------------------------------------


def test_the_message_format() -> None:
    text = "\n" * 10 + '[actions]\nrate_limit = "six"\n'
    assert problem(text) == (
        'linnix.toml:12: actions.rate_limit: expected a whole number >= 0, got "six"')


def test_unknown_section_with_suggestion() -> None:
    assert problem("[runtime]\n\n[actoins]\nttl = 1\n") == (
        "linnix.toml:3: actoins: unknown section (did you mean 'actions'?)")


def test_unknown_section_without_suggestion_lists_the_sections() -> None:
    assert problem("[zzz]\n") == (
        "linnix.toml:1: zzz: unknown section (the sections are runtime, api, telemetry, "
        "cgroups, rules, actions, retention, notify, analysis)")


def test_unknown_key_with_suggestion() -> None:
    assert problem('# api\n[api]\nbnd = "127.0.0.1:1"\n') == (
        "linnix.toml:3: api.bnd: unknown key (did you mean 'bind'?)")


def test_unknown_key_without_suggestion_lists_the_keys() -> None:
    assert problem("[retention]\nxyz = 1\n") == (
        "linnix.toml:2: retention.xyz: unknown key; [retention] has max_age, max_incidents, "
        "max_audit, alerts_file_mb")


def test_a_key_in_the_wrong_section_says_where_it_belongs() -> None:
    assert problem('[retention]\nttl = "5m"\n') == (
        "linnix.toml:2: retention.ttl: unknown key in [retention] ('ttl' belongs in [actions])")
    assert problem('\nmode = "enforce"\n') == (
        "linnix.toml:2: mode: unknown key ('mode' belongs in [runtime])")
    assert problem("colour = 1\n") == "linnix.toml:1: colour: unknown key"


def test_a_nested_table_is_an_unknown_key() -> None:
    assert problem("[actions]\nttl = 1\n\n[actions.zzz]\nx = 1\n") == (
        "linnix.toml:4: actions.zzz: unknown key; [actions] has ttl, rate_limit, protected, "
        "protected_exe, unprotect, kill_grace, degraded_window, auto, freeze_ttl, "
        "cgroup_kills_per_unit, protected_cgroups")


def test_a_section_must_be_a_table() -> None:
    assert problem('\nruntime = "monitor"\n') == (
        'linnix.toml:2: runtime: expected a table ([runtime]), got "monitor"')
    assert problem("[[actions]]\nttl = 1\n") == (
        "linnix.toml:1: actions: expected a table ([actions]), got [a table]")


def test_an_inline_token_is_refused() -> None:
    assert problem('[api]\nbind = "127.0.0.1:9333"\ntoken = "hunter2"\n') == (
        "linnix.toml:3: api.token: secrets do not belong in the configuration file; write the "
        "token to a file only the daemon can read (mode 0600) and set api.token_file to its path")


def test_wrong_types() -> None:
    assert problem("[runtime]\nmode = 1\n") == (
        'linnix.toml:2: runtime.mode: expected "monitor" or "enforce", got 1')
    assert problem("[actions]\nrate_limit = 6.0\n") == (
        "linnix.toml:2: actions.rate_limit: expected a whole number >= 0, got 6.0")
    assert problem("[actions]\nrate_limit = true\n") == (
        "linnix.toml:2: actions.rate_limit: expected a whole number >= 0, got true")
    assert problem('[rules]\npaths = "/etc/linnix/rules"\n') == (
        'linnix.toml:2: rules.paths: expected a list of paths, got "/etc/linnix/rules"')
    assert problem("[actions]\nprotected = { a = 1 }\n") == (
        "linnix.toml:2: actions.protected: expected a list of process names, got a table")
    assert problem("[retention]\nmax_age = 2024-01-01\n") == (
        "linnix.toml:2: retention.max_age: expected a duration longer than zero such as "
        '"500ms", "30s", "5m", "2h" or "30d" (a plain number means seconds), got 2024-01-01')


def test_invalid_values() -> None:
    assert problem('[runtime]\nmode = "enforcing"\n') == (
        'linnix.toml:2: runtime.mode: expected "monitor" or "enforce", got "enforcing" '
        '(did you mean "enforce"?)')
    assert problem('[telemetry]\nsample_fds = "sometimes"\n') == (
        'linnix.toml:2: telemetry.sample_fds: expected "auto", "always" or "never", '
        'got "sometimes"')
    assert problem("[actions]\nrate_limit = -1\n") == (
        "linnix.toml:2: actions.rate_limit: expected a whole number >= 0, got -1")
    assert problem("[telemetry]\nring_buffer_pages = 1000\n") == (
        "linnix.toml:2: telemetry.ring_buffer_pages: expected a power of two "
        "(1, 2, 4, ... 4096, ...), got 1000")
    assert problem("[telemetry]\nring_buffer_pages = 0\n").endswith("got 0")
    assert problem("[api]\nmax_body_bytes = 100\n") == (
        "linnix.toml:2: api.max_body_bytes: expected a whole number from 1024 to 16777216, "
        "got 100")
    assert problem('[api]\nallowed_hosts = ["linnix.internal:9333"]\n') == (
        'linnix.toml:2: api.allowed_hosts[0]: expected a host name without port '
        '(e.g. "linnix.example.org"), got "linnix.internal:9333"')
    assert problem('[api]\npublic_reads = "yes"\n') == (
        'linnix.toml:2: api.public_reads: expected true or false, got "yes"')
    assert problem("[api]\nmax_connections = 0\n") == (
        "linnix.toml:2: api.max_connections: expected a whole number from 1 to 4096, got 0")
    assert problem('[api]\nallowed_hosts = "proxy"\n') == (
        'linnix.toml:2: api.allowed_hosts: expected a list of host names, got "proxy"')
    assert problem("[retention]\nmax_incidents = 0\n") == (
        "linnix.toml:2: retention.max_incidents: expected a whole number >= 1, got 0")
    assert problem("[retention]\nmax_audit = 0\n").endswith("got 0")
    assert problem("[retention]\nalerts_file_mb = 0\n") == (
        "linnix.toml:2: retention.alerts_file_mb: expected a whole number from 1 to 1048576, "
        "got 0")
    assert problem('[runtime]\nstate_dir = "var/lib/linnix"\n') == (
        'linnix.toml:2: runtime.state_dir: expected an absolute path, got "var/lib/linnix"')
    assert problem('[api]\ntoken_file = ""\n') == (
        'linnix.toml:2: api.token_file: expected an absolute path, got ""')
    assert problem("[rules]\npaths = []\n") == (
        "linnix.toml:2: rules.paths: expected a list of at least one path, got []")


def test_list_elements_are_located_one_by_one() -> None:
    text = """\
    [actions]
    protected = [
        "systemd",
        "systemd-journald",   # too long for a process name
        "/usr/sbin/sshd",
        "",
    ]
    protected_exe = ["/usr/bin/ok", "relative/bin"]
    [rules]
    disabled_tags = ["a", 3]
    """
    assert problems(text) == [
        'linnix.toml:4: actions.protected[1]: "systemd-journald" can never match: the kernel '
        'keeps only the first 15 bytes of a process name (write "systemd-journal")',
        'linnix.toml:5: actions.protected[2]: expected a process name, got the path '
        '"/usr/sbin/sshd"; list executables in actions.protected_exe',
        'linnix.toml:6: actions.protected[3]: expected a process name, got ""',
        'linnix.toml:8: actions.protected_exe[1]: expected an absolute path, got "relative/bin"',
        "linnix.toml:10: rules.disabled_tags[1]: expected a non-empty string, got 3",
    ]


def test_lines_of_dotted_keys_and_inline_tables() -> None:
    text = """\
    # top
    actions.rate_limit = "six"
    api = { bind = "127.0.0.1:9333", bnd = 1 }
    [telemetry]
    ring_buffer_pages = 3
    retention.max_age = "forever"
    """
    # 'retention.max_age' under [telemetry] is the key telemetry.retention
    assert problems(text) == [
        'linnix.toml:2: actions.rate_limit: expected a whole number >= 0, got "six"',
        "linnix.toml:3: api.bnd: unknown key (did you mean 'bind'?)",
        "linnix.toml:5: telemetry.ring_buffer_pages: expected a power of two "
        "(1, 2, 4, ... 4096, ...), got 3",
        "linnix.toml:6: telemetry.retention: unknown key; [telemetry] has sample_interval, "
        "idle_sample_max, tick, ring_buffer_pages, sample_fds",
    ]


def test_lines_with_quoted_keys_and_multiline_strings() -> None:
    text = '''\
    [rules]
    paths = ["""
    rate_limit = "not a key"
    """]
    "disabled_tags" = [1]
    [ 'actions' ]
    'rate_limit' = 'x'   # literal strings
    "ttl" = "\\u0030"
    '''
    assert problems(text) == [
        "linnix.toml:5: rules.disabled_tags[0]: expected a non-empty string, got 1",
        'linnix.toml:7: actions.rate_limit: expected a whole number >= 0, got "x"',
        "linnix.toml:8: actions.ttl: expected a duration longer than zero, got \"0\"",
    ]


def test_a_key_with_odd_characters_is_quoted() -> None:
    assert problem('[api]\n"a b" = 1\n') == 'linnix.toml:2: api."a b": unknown key; ' \
        "[api] has bind, token_file, max_body_bytes, allowed_hosts, max_connections, " \
        "public_reads"


def test_windows_line_endings() -> None:
    text = '[runtime]\r\nmode = "x"\r\n\r\n[actions]\r\nrate_limit = "six"\r\n'
    with pytest.raises(ConfigFileError) as info:
        parse_config(text, "linnix.toml")
    assert [p.line for p in info.value.problems] == [2, 5]


def test_all_problems_are_reported_together_in_file_order() -> None:
    text = """\
    [retention]
    max_audit = 0

    [runtime]
    mode = "enforcing"

    [api]
    token = "x"
    bind = "nowhere"

    [actions]
    rate_limit = "six"
    """
    with pytest.raises(ConfigFileError) as info:
        parse(text)
    err = info.value
    assert [(p.line, p.key) for p in err.problems] == [
        (2, "retention.max_audit"), (5, "runtime.mode"), (8, "api.token"), (9, "api.bind"),
        (12, "actions.rate_limit")]
    assert str(err) == "\n".join(str(p) for p in err.problems)
    assert isinstance(err, ConfigError) and isinstance(err, LinnixError)


def test_problem_json() -> None:
    p = ConfigProblem("linnix.toml", 3, "api.bind", "bad")
    assert p.to_json() == {"path": "linnix.toml", "line": 3, "key": "api.bind",
                           "level": "error", "code": "C001", "message": "bad"}
    assert str(ConfigProblem("f.toml", 0, "", "no such file")) == "f.toml: no such file"


# ---- syntax and file errors ----------------------------------------------------------------


def test_toml_syntax_errors_carry_the_line() -> None:
    assert problem("[runtime]\nmode = \n") == (
        "linnix.toml:2: invalid TOML: Invalid value (column 8)")
    assert problem('[api]\nbind = "a:1"\nbind = "b:2"\n') == (
        "linnix.toml:3: invalid TOML: Cannot overwrite a value (column 13)")
    found = problem("[runtime]\n[runtime\n")
    assert found.startswith("linnix.toml:2: invalid TOML: ")


def test_toml_syntax_error_at_the_end_of_the_file() -> None:
    found = problem('[runtime]\nmode = "monitor')
    assert found.startswith("linnix.toml:2: invalid TOML: ")


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.toml")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: no such file"
    assert config_problems(path) == [ConfigProblem(path, 0, "", "no such file")]


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(str(tmp_path))


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "linnix.toml"
    path.write_bytes(b'[runtime]\nmode = "\xff"\n')
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(info.value) == f"{path}:2: the file is not UTF-8 text"


def test_load_config_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "linnix.toml"
    path.write_text('[runtime]\nmode = "enforce"\n[actions]\nrate_limit = "six"\n')
    with pytest.raises(ConfigFileError) as info:
        load_config(str(path))
    assert str(info.value) == (
        f'{path}:4: actions.rate_limit: expected a whole number >= 0, got "six"')
    path.write_text('[runtime]\nmode = "enforce"\n')
    assert load_config(str(path)).runtime.mode == "enforce"
    assert config_problems(str(path)) == []


# ---- state directory and token file --------------------------------------------------------


def test_default_state_dir() -> None:
    assert default_state_dir(euid=0, environ={"HOME": "/root"}) == "/var/lib/linnix"
    assert default_state_dir(euid=1000, environ={"HOME": "/home/u"}) == (
        "/home/u/.local/state/linnix")
    assert default_state_dir(euid=1000, environ={"HOME": "/home/u",
                                                 "XDG_STATE_HOME": "/x/state"}) == (
        "/x/state/linnix")
    # a relative XDG_STATE_HOME is ignored, as the XDG rules say
    assert default_state_dir(euid=1000, environ={"HOME": "/home/u",
                                                 "XDG_STATE_HOME": "rel"}) == (
        "/home/u/.local/state/linnix")


def test_resolve_state_dir_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("linnix.config.paths.os.geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_STATE_HOME", "/xdg")
    monkeypatch.delenv("LINNIX_STATE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # not a checkout where a daemon ran (tests/config/test_paths.py)
    configured = parse('[runtime]\nstate_dir = "/srv/linnix"\n')
    assert resolve_state_dir("/cli/dir", configured) == "/cli/dir"
    assert resolve_state_dir(None, configured) == "/srv/linnix"
    assert resolve_state_dir(None, Config()) == "/xdg/linnix"
    assert resolve_state_dir("rel", Config()) == str(tmp_path / "rel")
    monkeypatch.setattr("linnix.config.paths.os.geteuid", lambda: 0)
    assert resolve_state_dir(None, Config()) == "/var/lib/linnix"


def test_resolve_token_file() -> None:
    assert resolve_token_file(Config(), "/var/lib/linnix") == "/var/lib/linnix/api.token"
    c = parse('[api]\ntoken_file = "/etc/linnix/token"\n')
    assert resolve_token_file(c, "/var/lib/linnix") == "/etc/linnix/token"


# ---- the example file -------------------------------------------------------------------


def test_the_example_file_is_the_defaults() -> None:
    assert load_config(str(EXAMPLE)) == Config()


def test_the_example_file_shows_every_key_with_a_comment() -> None:
    from linnix.config.schema import _SCHEMA

    lines = EXAMPLE.read_text().splitlines()
    shown: dict[str, set[str]] = {}
    section = ""
    for i, line in enumerate(lines):
        header = re.fullmatch(r"\[(\w+)\]", line)
        tables = re.fullmatch(r"# \[\[(\w+)\.(\w+)\]\]", line)  # an example of a list
        if header or tables:
            if tables:
                shown.setdefault(tables.group(1), set()).add(tables.group(2))
                assert lines[i - 1].startswith("#"), f"no comment above {line}"
            section = header.group(1) if header else ""  # the list's keys are its own
            continue
        key = re.fullmatch(r"(?:# )?(\w+) = .*", line)
        if key and section:
            shown.setdefault(section, set()).add(key.group(1))
            assert lines[i - 1].startswith("#"), f"no comment above {section}.{key.group(1)}"
    assert shown == {name: set(checks) for name, (_, checks) in _SCHEMA.items()}


def test_the_example_states_the_defaults_it_leaves_commented() -> None:
    text = EXAMPLE.read_text()
    assert '# state_dir = "/var/lib/linnix"' in text
    assert '# token_file = "/var/lib/linnix/api.token"' in text
    assert "\ntoken =" not in text


# ---- linnix check --config -------------------------------------------------------------------


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.lnx").write_text("rule r: cpu_pct > 1\n")
    return tmp_path


BAD = '[runtime]\nmode = "enforcing"\n\n[actions]\nrate_limit = "six"\n'


def test_check_config_only(capsys: Capture, in_tmp: Path) -> None:
    (in_tmp / "linnix.toml").write_text('[runtime]\nmode = "enforce"\n')
    assert run(capsys, "check", "--config", "linnix.toml") == (
        0, "ok: config linnix.toml (0 errors, 0 warnings)\n", "")


def test_check_rules_and_a_good_config(capsys: Capture, in_tmp: Path) -> None:
    (in_tmp / "linnix.toml").write_text("")
    assert run(capsys, "check", "r.lnx", "--config", "linnix.toml") == (
        0, "ok: 1 file, 1 rule, 0 tests, config linnix.toml (0 errors, 0 warnings)\n", "")


def test_check_the_shipped_rules_with_the_example(capsys: Capture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    status, out, err = run(capsys, "check", "rules/", "--config", "linnix.example.toml")
    assert (status, err) == (0, "")
    assert out.startswith("ok: ") and out.endswith(
        ", config linnix.example.toml (0 errors, 0 warnings)\n")


def test_check_reports_config_errors_after_rule_diagnostics(capsys: Capture,
                                                            in_tmp: Path) -> None:
    (in_tmp / "linnix.toml").write_text(BAD)
    (in_tmp / "w.lnx").write_text("let unused = 1\nrule w: cpu_pct > 1\n")
    status, out, err = run(capsys, "check", "w.lnx", "--config", "linnix.toml")
    assert status == 1
    lines = err.splitlines()  # the diagnostics on stderr, the verdict on stdout
    assert lines[0].startswith("w.lnx:1:5: warning[W101]")
    assert lines[-2:] == [
        'linnix.toml:2: error[C001]: runtime.mode: expected "monitor" or "enforce", '
        'got "enforcing" (did you mean "enforce"?)',
        'linnix.toml:5: error[C001]: actions.rate_limit: expected a whole number >= 0, '
        'got "six"',
    ]
    assert out == "failed: 1 file, 1 rule, 0 tests, config linnix.toml (2 errors, 1 warning)\n"


def test_check_rule_and_config_errors_together(capsys: Capture, in_tmp: Path) -> None:
    (in_tmp / "linnix.toml").write_text(BAD)
    (in_tmp / "bad.lnx").write_text("rule b: nosuch > 1\n")
    status, out, err = run(capsys, "check", "bad.lnx", "--config", "linnix.toml")
    assert status == 1
    heads = [line.split(": ")[0:2] for line in err.splitlines() if "error[" in line]
    assert heads == [["bad.lnx:1:9", "error[E201]"], ["linnix.toml:2", "error[C001]"],
                     ["linnix.toml:5", "error[C001]"]]
    assert out == "failed: 1 file, config linnix.toml (3 errors, 0 warnings)\n"


def test_check_config_json(capsys: Capture, in_tmp: Path) -> None:
    (in_tmp / "linnix.toml").write_text(BAD)
    (in_tmp / "bad.lnx").write_text("rule b: nosuch > 1\n")
    status, out, _ = run(capsys, "check", "--format", "json", "bad.lnx",
                         "--config", "linnix.toml")
    assert status == 1
    data = json.loads(out)
    assert [d["code"] for d in data] == ["E201", "C001", "C001"]
    assert data[1:] == [
        {"path": "linnix.toml", "line": 2, "key": "runtime.mode", "level": "error",
         "code": "C001", "message": 'expected "monitor" or "enforce", got "enforcing" '
                                    '(did you mean "enforce"?)'},
        {"path": "linnix.toml", "line": 5, "key": "actions.rate_limit", "level": "error",
         "code": "C001", "message": 'expected a whole number >= 0, got "six"'},
    ]
    (in_tmp / "linnix.toml").write_text("")
    assert run(capsys, "check", "--format", "json", "r.lnx", "--config", "linnix.toml") == (
        0, "[]\n", "")


def test_check_missing_config_fails(capsys: Capture, in_tmp: Path) -> None:
    assert run(capsys, "check", "r.lnx", "--config", "nope.toml") == (
        1, "failed: 1 file, 1 rule, 0 tests, config nope.toml (1 error, 0 warnings)\n",
        "nope.toml: error[C001]: no such file\n")


def test_check_syntax_error_in_config(capsys: Capture, in_tmp: Path) -> None:
    (in_tmp / "linnix.toml").write_text("[runtime]\nmode = \n")
    status, out, err = run(capsys, "check", "--config", "linnix.toml")
    assert status == 1
    assert err == "linnix.toml:2: error[C001]: invalid TOML: Invalid value (column 8)\n"
    assert out == "failed: config linnix.toml (1 error, 0 warnings)\n"


def test_every_key_of_the_example_is_located_on_its_own_line() -> None:
    import tomllib

    from linnix.config._toml import Locator as _Locator

    text = EXAMPLE.read_text()
    lines = text.splitlines()
    locator = _Locator(text)
    for section, table in tomllib.loads(text).items():
        assert lines[locator.line_of((section,)) - 1] == f"[{section}]"
        for key, value in table.items():
            line = locator.line_of((section, key))
            assert lines[line - 1].startswith(f"{key} = "), (section, key, line)
            for index, item in enumerate(value if isinstance(value, list) else []):
                assert f'"{item}"' in lines[locator.line_of((section, key, index)) - 1]


def test_the_locator_follows_arrays_of_tables_and_nested_values() -> None:
    from linnix.config._toml import Locator as _Locator

    text = textwrap.dedent("""\
        a = [[1, 2],
             [3]]
        [[t]]
        x = { y = [
            { z = 1 },
        ] }
        [[t]]
        w = 'it''s'
        """)
    locator = _Locator(text)
    assert locator.line_of(("a", 1, 0)) == 2
    assert locator.line_of(("t", 0, "x", "y", 0, "z")) == 5
    assert locator.line_of(("t", 1)) == 7
    assert locator.line_of(("t", 1, "w")) == 8
    assert locator.line_of(("t", 1, "nothing")) == 7
    assert locator.line_of(("nowhere",)) == 0


# ---- the cgroup actions' keys -----------------------------------------------------------

def test_the_cgroup_action_keys_and_their_defaults() -> None:
    assert (Config().actions.auto, Config().actions.freeze_ttl,
            Config().actions.cgroup_kills_per_unit, Config().actions.protected_cgroups) == (
        (), None, 3, ())
    acts = parse('[actions]\nauto = ["freeze"]\nttl = "10m"\nfreeze_ttl = "2m"\n'
                 'cgroup_kills_per_unit = 0\nprotected_cgroups = ["nginx.service"]\n').actions
    assert (acts.auto, acts.freeze_ttl, acts.cgroup_kills_per_unit, acts.protected_cgroups) == (
        ("freeze",), 120.0, 0, ("nginx.service",))


@pytest.mark.parametrize("kind", ["renice", "kill", "kill_cgroup", "signal"])
def test_auto_refuses_a_kind_that_cannot_be_undone(kind: str) -> None:
    assert problem(f'[actions]\nauto = ["{kind}"]\n') == (
        f'linnix.toml:2: actions.auto[0]: "{kind}" cannot be undone, so it never runs without '
        "approval; only reversible kinds may be listed (freeze)")


def test_a_freeze_may_not_outlast_the_ttl() -> None:
    assert problem('[actions]\nttl = "5m"\nfreeze_ttl = "6m"\n') == (
        "linnix.toml:3: actions.freeze_ttl: 360s is longer than actions.ttl (300s): a freeze "
        "must be undone by the time its decision is due; at most the TTL")
    assert problem('[actions]\nfreeze_ttl = "301s"\n').startswith(  # the default TTL too
        "linnix.toml:2: actions.freeze_ttl: 301s is longer than actions.ttl (300s)")
    assert parse('[actions]\nfreeze_ttl = "5m"\n').actions.freeze_ttl == 300.0


def test_the_reversible_kinds_are_the_actions_own() -> None:
    from linnix.actions.cgroup import REVERSIBLE
    from linnix.config.checks import REVERSIBLE_KINDS

    assert frozenset(REVERSIBLE_KINDS) == REVERSIBLE


# ---- [cgroups] -------------------------------------------------------------------------------

def test_the_cgroups_root_is_a_cgroup_path() -> None:
    assert Config().cgroups.root is None
    assert parse('[cgroups]\nroot = "/system.slice"\n').cgroups.root == "/system.slice"
    assert parse('[cgroups]\nroot = "/"\n').cgroups.root == "/"
    assert problem("[cgroups]\nroot = 5\n") == (
        "linnix.toml:2: cgroups.root: expected a cgroup path, got 5")
    for bad in ('"system.slice"', '"/a//b"', '"/a/../b"', '"/a/"'):
        found = problem(f"[cgroups]\nroot = {bad}\n")
        assert found.startswith("linnix.toml:2: cgroups.root: expected a cgroup path such as "
                                '"/system.slice", got '), found
