"""Fixtures of the runtime's tests: a store on a file, called on the trio thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from actions_support import InlineStore

from linnix.actions.store import Store


@pytest.fixture
def astore(tmp_path: Path) -> Iterator[InlineStore]:
    """A store in ``tmp_path`` (``linnix.db``) that the responder calls on the trio
    thread (``astore.store`` is the store itself), closed after the test."""
    store = Store(str(tmp_path / "linnix.db"))
    yield InlineStore(store)
    store.close()
