"""Where the shipped rules are: in the installed package, or in the checkout.

A wheel carries them as package data, ``linnix/data/rules/``, with the traces their test
blocks name beside them in ``linnix/data/fixtures/`` (packaging/hatch_build.py puts them
there), so that ``"../fixtures/NAME"`` still holds.  A source checkout, and an editable
install of one, has no copy: the rules are ``rules/`` at the top of the checkout.  This
module is the one place that knows both; ``linnix rules path`` prints its answer.
"""

from __future__ import annotations

import os

from .errors import LinnixError

__all__ = ["PACKAGE", "rules_dir"]

PACKAGE = os.path.dirname(os.path.abspath(__file__))


def rules_dir(package: str | None = None) -> str:
    """The directory of the shipped ``.lnx`` files of the linnix package at ``package``
    (this one by default); LinnixError when it has none (a wheel built without its
    package data)."""
    package = package or PACKAGE
    installed = os.path.join(package, "data", "rules")
    if _holds_rules(installed):
        return installed
    top = os.path.dirname(package)
    checkout = os.path.join(top, "rules")
    # only a checkout's rules/: next to an installed package, "rules" may be anything
    if os.path.isfile(os.path.join(top, "pyproject.toml")) and _holds_rules(checkout):
        return checkout
    raise LinnixError(f"the shipped rules are missing from this installation of linnix "
                      f"(neither {installed} nor {checkout} holds .lnx files); reinstall it")


def _holds_rules(path: str) -> bool:
    try:
        return any(name.endswith(".lnx") for name in os.listdir(path))
    except OSError:  # not there, or not a directory
        return False
