"""The commands that work on the live host: ``run``, ``record`` and ``doctor``.

For each command, the function that adds its arguments to its parser and the
function that runs it (``cmd_*``); the daemon, the recorder and the checks
live in :mod:`linnix.runtime` and :mod:`linnix.tools`, imported only when the
command runs.
"""

from __future__ import annotations

import argparse

from ..errors import UsageError
from .argtypes import positive_duration, positive_int

__all__ = [
    "cmd_doctor", "cmd_record", "cmd_run", "default_rules", "doctor_arguments",
    "record_arguments", "run_arguments",
]

_SOURCES = ("auto", "ebpf", "netlink", "poll")


def default_rules(paths: list[str]) -> list[str]:
    """The configured rule paths that exist, else the shipped rules (:mod:`linnix.shipped`)."""
    import os

    from .. import shipped
    from ..errors import LinnixError

    existing = [p for p in paths if os.path.exists(p)]
    if existing:
        return existing
    try:
        return [shipped.rules_dir()]
    except LinnixError as err:
        raise UsageError(f"no rules found: {err}, or pass --rules PATH or set [rules] paths "
                         "in the config") from None


def run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="linnix.toml (default: built-in settings)")
    p.add_argument("--rules", action="append", metavar="PATH",
                   help="rule file or directory (repeatable; default: those of the config's "
                        "[rules] paths, /etc/linnix/rules unless set, that exist, else the "
                        "shipped rules: 'linnix rules path')")
    p.add_argument("--state-dir", metavar="DIR",
                   help="where alerts, incidents and the API token live")
    p.add_argument("--source", choices=_SOURCES, default="auto",
                   help="event source (default: the best this host allows)")
    p.add_argument("--disable-tag", action="append", metavar="TAG",
                   help="do not evaluate rules with this tag (repeatable)")
    p.add_argument("--enable-tag", action="append", metavar="TAG",
                   help="evaluate rules with this tag even if they say 'enabled false', "
                        "e.g. the shipped 'network' rules (repeatable; --disable-tag wins)")
    p.add_argument("--record", metavar="FILE",
                   help="also write the stream the engine consumes, as a trace")
    _filter_arguments(p, "with --record: ")
    p.add_argument("--duration", type=positive_duration, metavar="DURATION",
                   help="stop after this long (default: until SIGINT/SIGTERM)")
    p.add_argument("--no-api", action="store_true", help="do not serve the HTTP API")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="also show alerts that become pending (not yet firing)")


def cmd_run(args: argparse.Namespace) -> int:
    from ..config import load_config, resolve_state_dir
    from ..runtime.daemon import Daemon, DaemonOptions
    from .rules import require_rule_files

    config = load_config(args.config)
    rules = args.rules or default_rules(list(config.rules.paths))
    require_rule_files(rules)
    opts = DaemonOptions(
        rules=rules,
        state_dir=resolve_state_dir(args.state_dir, config),
        tick_s=config.telemetry.tick,
        sample_interval=config.telemetry.sample_interval,
        idle_sample_max=config.telemetry.idle_sample_max,
        ring_pages=config.telemetry.ring_buffer_pages,
        source=args.source,
        sample_fds=config.telemetry.sample_fds,
        disabled_tags=frozenset(config.rules.disabled_tags) | frozenset(args.disable_tag or ()),
        enabled_tags=frozenset(config.rules.enabled_tags) | frozenset(args.enable_tag or ()),
        record=args.record,
        record_only_tree=_only_tree(args),
        record_redact=args.redact,
        duration=args.duration,
        config=config,
        api=not args.no_api,
        verbose=args.verbose,
    )
    return Daemon(opts).run()


def record_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", metavar="OUT.jsonl",
                   help="the trace file to write (JSON lines: docs/trace-format.md)")
    p.add_argument("--duration", type=positive_duration, default=60.0, metavar="DURATION",
                   help="how long to record (default 60s)")
    p.add_argument("--sample-interval", type=positive_duration, default=1.0, metavar="DURATION",
                   help="how often processes and the host are sampled (default 1s)")
    p.add_argument("--source", choices=_SOURCES, default="auto",
                   help="event source (default: the best this host allows)")
    _filter_arguments(p)


def cmd_record(args: argparse.Namespace) -> int:
    from ..runtime.recording import record

    return record(args.out, args.duration, args.sample_interval, args.source,
                  only_tree=_only_tree(args), redact=args.redact)


def _filter_arguments(p: argparse.ArgumentParser, prefix: str = "") -> None:
    p.add_argument("--only-tree", action="append", type=positive_int, metavar="PID",
                   help=f"{prefix}record only this process and its descendants, "
                        "those started later included (repeatable)")
    p.add_argument("--redact", action="store_true",
                   help=f"{prefix}record no command line, no NAME=value text and no "
                        "network address")


def _only_tree(args: argparse.Namespace) -> tuple[int, ...]:
    """The ``--only-tree`` pids, each a running process; with ``run``, only with --record."""
    import os

    pids = tuple(dict.fromkeys(args.only_tree or ()))
    if getattr(args, "record", True) is None and (pids or args.redact):
        raise UsageError("--only-tree and --redact apply to a recording: add --record FILE")
    for pid in pids:
        if not os.path.isdir(f"/proc/{pid}"):
            raise UsageError(f"--only-tree {pid}: no process has this pid")
    return pids


def doctor_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--load", action="store_true",
                   help="also compile and attach the eBPF program (a few seconds)")
    p.add_argument("--config", metavar="FILE",
                   help="linnix.toml: also say whether its [analysis] model answers")


def cmd_doctor(args: argparse.Namespace) -> int:
    import sys

    from ..config import load_config
    from ..tools.doctor import run_checks

    config = load_config(args.config) if args.config else None
    return run_checks(sys.stdout, load=args.load, config=config)
