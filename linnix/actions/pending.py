"""One pending action per rule, action and target process.

A rule that fires again for the same process (pid and start time) while an
action it proposed is still pending must not ask again: the manager counts the
firing on that action.  :class:`OpenProposals` says which action is pending for
a key; it lives on the trio thread, with the manager's own idea of each status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..plan import CompiledAction

__all__ = ["Key", "OpenProposals", "cgroup_key", "key_of", "params_of", "row_key",
           "undecidable"]

# rule, action kind, its parameters (canonical JSON), target pid, target start time (ticks)
Key = tuple[str, str, str, int, int]


def key_of(rule: str, kind: str, params: Mapping[str, Any], pid: int, start_ticks: int) -> Key:
    return (rule, kind, json.dumps(params, sort_keys=True, separators=(",", ":"), default=str),
            pid, start_ticks)


def cgroup_key(rule: str, kind: str, params: Mapping[str, Any], cgroup_id: int) -> Key:
    """The key of a cgroup action: pid 0 (never a process's) and the cgroup's id."""
    return key_of(rule, kind, params, 0, cgroup_id)


def params_of(action: CompiledAction) -> dict[str, Any]:
    """The parameters of an action, as stored (and compared)."""
    out: dict[str, Any] = {}
    if action.grace_s is not None:
        out["grace_s"] = action.grace_s
    if action.signal is not None:
        out["signal"] = action.signal
    if action.nice is not None:
        out["nice"] = action.nice
    if action.target is not None:
        out["target"] = f"top({action.target})"
    return out


def row_key(row: Mapping[str, Any]) -> Key:
    """The key of a stored action whose target is known."""
    if row.get("cgroup_id") is not None:
        return cgroup_key(row["rule"], row["kind"], row["params"] or {}, int(row["cgroup_id"]))
    return key_of(row["rule"], row["kind"], row["params"] or {}, int(row["pid"]),
                  int(row["start_ticks"]))


class OpenProposals:
    """The pending action of each key, and the key of each action tracked."""

    def __init__(self) -> None:
        self._open: dict[Key, int] = {}
        self._keys: dict[int, Key] = {}

    def __len__(self) -> int:
        return len(self._open)

    def get(self, key: Key) -> int | None:
        return self._open.get(key)

    def add(self, action_id: int, key: Key) -> None:
        """``action_id`` is pending for ``key`` (unless another one is already)."""
        self._keys[action_id] = key
        self._open.setdefault(key, action_id)

    def claimed(self, action_id: int) -> None:
        """A decision is being stored: a new firing asks anew (the key is kept, in case
        the store refuses the decision and the action is pending again)."""
        key = self._keys.get(action_id)
        if key is not None and self._open.get(key) == action_id:
            del self._open[key]

    def released(self, action_id: int) -> None:
        """The decision was not stored: the action is pending again."""
        key = self._keys.get(action_id)
        if key is not None:
            self._open.setdefault(key, action_id)

    def closed(self, action_id: int) -> None:
        """The action is not pending any more, for good."""
        self.claimed(action_id)
        self._keys.pop(action_id, None)


def undecidable(row: Mapping[str, Any]) -> str | None:
    """Why a pending row found in the store cannot wait for a decision, if it cannot."""
    if row.get("cgroup_id") is not None:
        return None if row["expires_at"] is not None else "it has no deadline"
    if row["pid"] is None or row["start_ticks"] is None:
        return "its target process is not known"
    if row["expires_at"] is None:
        return "it has no deadline"
    return None
