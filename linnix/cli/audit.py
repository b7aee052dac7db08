"""The command that checks the audit log: ``audit verify``.

It reads ``linnix.db`` in the state directory (``--state-dir``, else the
configuration's, else the default, as ``linnix run`` finds it) through a
read-only connection, so it can run next to the daemon; the walk itself is
:func:`linnix.actions.chain.verify`.  Exit 0 when the chain holds, 1 when it
breaks (or the head given with ``--head`` is not in it).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

from ..errors import UsageError
from ..terminal import printable_lines
from .exits import EXIT_FAIL, EXIT_OK

__all__ = ["audit_arguments", "cmd_audit"]

_HASH = re.compile(r"[0-9a-f]{64}")  # our own, fixed pattern: never process text


def _hash(text: str) -> str:
    if not _HASH.fullmatch(text.lower()):
        raise argparse.ArgumentTypeError("expected a SHA-256 hash: 64 hexadecimal digits")
    return text.lower()


def audit_arguments(p: argparse.ArgumentParser) -> None:
    verbs = p.add_subparsers(dest="verb", metavar="verify", required=True)
    verify = verbs.add_parser(
        "verify", help="check the hash chain of the audit log",
        description="Check that every record of the audit log follows the one before it "
                    "and still gives its hash; say where the chain breaks.")
    verify.add_argument("--state-dir", metavar="DIR",
                        help="the daemon's state directory, where linnix.db is")
    verify.add_argument("--config", metavar="FILE",
                        help="linnix.toml of the daemon (default: built-in settings)")
    verify.add_argument("--head", type=_hash, metavar="HASH",
                        help="a head kept off the host (the 'head' label of "
                             "linnix_audit_records on /metrics): it must be in the chain")


def cmd_audit(args: argparse.Namespace) -> int:
    from ..actions import chain
    from ..actions.database import open_readonly
    from ..config import load_config, resolve_state_dir

    if args.verb != "verify":  # argparse requires the verb: this is only a safeguard
        raise UsageError("say what to do: linnix audit verify")
    path = os.path.join(resolve_state_dir(args.state_dir, load_config(args.config)),
                        "linnix.db")
    db = open_readonly(path)
    try:
        db.execute("BEGIN")  # one snapshot, whatever the daemon writes meanwhile
        verdict = chain.verify(db)
        kept = _find(db, args.head, verdict) if args.head and verdict.holds else None
        db.execute("COMMIT")
    finally:
        db.close()
    sys.stdout.write("".join(f"{line}\n" for line in
                             printable_lines(_report(path, verdict, args.head, kept))))
    return EXIT_OK if verdict.holds and (args.head is None or kept is not None) else EXIT_FAIL


def _find(db: Any, digest: str, verdict: Any) -> str | None:
    """Where the kept head is in the chain, said for people; None if it is not."""
    if digest == verdict.anchor.hash and verdict.anchor.id > 0:
        return (f"the head you kept is the anchor retention left (#{verdict.anchor.id}): the "
                "records up to it were trimmed")
    found = db.execute("SELECT id FROM audit WHERE hash = ?", (digest,)).fetchone()
    if found is None:
        return None
    newer = verdict.head.id > found[0]
    return f"the head you kept is record #{found[0]:,}" + (
        ", and the chain goes on from there" if newer else ", the newest")


def _report(path: str, verdict: Any, digest: str | None, kept: str | None) -> str:
    if not verdict.holds:
        return (f"audit log of {path}: the chain breaks at record #{verdict.broken_at:,}: "
                f"{verdict.problem} ({verdict.rows:,} record(s) before it hold)")
    head, anchor = verdict.head, verdict.anchor
    checked = f"{verdict.rows:,} record(s) checked"
    if verdict.first_id is not None:
        checked += f", #{verdict.first_id:,} to #{head.id:,}"
    if anchor.id:
        checked += f", after the oldest ones, up to #{anchor.id:,}, were trimmed by retention"
    lines = [f"audit log of {path}: the chain holds ({checked})",
             f"head: {head.hash} (#{head.id:,})" if verdict.rows else f"head: {head.hash}"]
    if digest is not None:
        lines.append(kept or (
            f"the head you kept ({digest}) is not in the chain: records were removed from its "
            "end or the chain was rewritten, unless retention has trimmed it since (then "
            "check against a newer head)"))
    return "\n".join(lines)

