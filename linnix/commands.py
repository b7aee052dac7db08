"""Registration of the commands implemented outside cli.py (grows with the product)."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the remaining sub-commands to the parser."""
