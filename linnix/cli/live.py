"""Argument parsing for the live commands: ``run`` and ``record``."""

from __future__ import annotations

import argparse

from ..errors import UsageError
from .argtypes import positive_duration

__all__ = ["register"]


def default_rules(paths: list[str]) -> list[str]:
    """The configured rule paths that exist, else the rules next to the package."""
    import os

    existing = [p for p in paths if os.path.exists(p)]
    if existing:
        return existing
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the package
    for candidate in (os.path.join(here, "rules"), os.path.join(os.path.dirname(here), "rules")):
        if os.path.isdir(candidate):
            return [candidate]
    raise UsageError("no rules found: pass --rules PATH or set [rules] paths in the config")


def cmd_run(args: argparse.Namespace) -> int:
    from ..config import load_config, resolve_state_dir
    from ..runtime.daemon import Daemon, DaemonOptions

    config = load_config(args.config)
    opts = DaemonOptions(
        rules=args.rules or default_rules(list(config.rules.paths)),
        state_dir=resolve_state_dir(args.state_dir, config),
        tick_s=config.telemetry.tick,
        sample_interval=config.telemetry.sample_interval,
        ring_pages=config.telemetry.ring_buffer_pages,
        source=args.source,
        sample_fds=config.telemetry.sample_fds,
        disabled_tags=frozenset(config.rules.disabled_tags) | frozenset(args.disable_tag or ()),
        record=args.record,
        duration=args.duration,
        config=config,
        api=not args.no_api,
    )
    return Daemon(opts).run()


def cmd_record(args: argparse.Namespace) -> int:
    from ..runtime.daemon import record

    return record(args.out, args.duration, args.sample_interval, args.source)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    r = sub.add_parser("run", help="run the daemon: capture, evaluate, alert")
    r.add_argument("--config", metavar="FILE", help="linnix.toml (default: built-in settings)")
    r.add_argument("--rules", action="append", metavar="PATH",
                   help="rule file or directory (repeatable; default: [rules] paths)")
    r.add_argument("--state-dir", metavar="DIR",
                   help="where alerts, incidents and the API token live")
    r.add_argument("--source", choices=("auto", "ebpf", "netlink", "poll"), default="auto",
                   help="event source (default: the best this host allows)")
    r.add_argument("--disable-tag", action="append", metavar="TAG",
                   help="do not evaluate rules with this tag (repeatable)")
    r.add_argument("--record", metavar="FILE",
                   help="also write the stream the engine consumes, as a trace")
    r.add_argument("--duration", type=positive_duration, metavar="DURATION",
                   help="stop after this long (default: until SIGINT/SIGTERM)")
    r.add_argument("--no-api", action="store_true", help="do not serve the HTTP API")
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("record", help="record the live event stream as a trace")
    c.add_argument("out", metavar="OUT.jsonl")
    c.add_argument("--duration", type=positive_duration, default=60.0, metavar="DURATION",
                   help="how long to record (default 60s)")
    c.add_argument("--sample-interval", type=positive_duration, default=1.0, metavar="DURATION")
    c.add_argument("--source", choices=("auto", "ebpf", "netlink", "poll"), default="auto")
    c.set_defaults(func=cmd_record)
    register_doctor(sub)


def cmd_doctor(args: argparse.Namespace) -> int:
    import sys

    from ..tools.doctor import run_checks

    return run_checks(sys.stdout, load=args.load)


def register_doctor(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    d = sub.add_parser("doctor", help="check what eBPF capture needs on this host")
    d.add_argument("--load", action="store_true",
                   help="also compile and attach the eBPF program (a few seconds)")
    d.set_defaults(func=cmd_doctor)
