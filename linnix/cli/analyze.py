"""The command that analyses one stored incident offline: ``analyze INCIDENT``.

It reads ``linnix.db`` in the state directory (``--state-dir``, else the
configuration's, else the default, as ``linnix run`` finds it) through a
read-only connection, so it can run beside the daemon or on a copy of its
state directory, and runs the built-in analyst (:func:`linnix.analysis.analyze_file`)
on it.  Nothing is stored: the daemon owns the store, and ``linnix incidents
analyze ID`` asks it to analyse and keep the result.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..errors import LinnixError
from .argtypes import positive_int
from .exits import EXIT_OK

__all__ = ["BUSY_S", "analyze_arguments", "cmd_analyze"]

BUSY_S = 5.0  # how long to wait for a write lock the daemon holds (it holds it briefly)


def analyze_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("incident", type=positive_int, metavar="INCIDENT",
                   help="the incident's id (as 'linnix incidents list' shows it)")
    p.add_argument("--state-dir", metavar="DIR",
                   help="the daemon's state directory, where linnix.db is")
    p.add_argument("--config", metavar="FILE",
                   help="linnix.toml of the daemon (default: built-in settings)")
    p.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                   help="numbered facts for a terminal (default), a Markdown document, or "
                        "the analysis as one JSON object")


def cmd_analyze(args: argparse.Namespace) -> int:
    from ..analysis import analyze_file, markdown, text
    from ..config import load_config, resolve_state_dir

    path = os.path.join(resolve_state_dir(args.state_dir, load_config(args.config)),
                        "linnix.db")
    analysis = analyze_file(path, args.incident, BUSY_S)
    if analysis is None:
        raise LinnixError(f"no incident has id {args.incident} in {path}")
    if args.format == "json":
        out = json.dumps(analysis, indent=2, sort_keys=True) + "\n"
    else:
        out = markdown(analysis) if args.format == "markdown" else text(analysis)
    sys.stdout.write(out)
    return EXIT_OK
