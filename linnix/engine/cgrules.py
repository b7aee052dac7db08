"""Cgroup rules in the evaluator: which cgroups to judge, and which ones to report.

A cgroup rule has one instance per cgroup of the table
(:class:`~linnix.engine.cgtable.CgTable`).  A cgroup's values change only when
a sample comes, so only the cgroups sampled since the last tick are judged
again, unless the rule reads host values or windows (which move with time):
then every cgroup is.  Like a subtree rule, it reports the deepest cgroups: a
cgroup is suppressed while the condition also holds for a cgroup below it
(by path, whether or not the cgroups between them are sampled).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..plan import LABEL_MAX, CompiledRule
from .cgtable import Cg, CgTable, ancestors_of
from .rulestate import Proposal, RuleState

__all__ = ["candidates", "deepest", "labels_of", "proposals"]


def candidates(state: RuleState, cgroups: CgTable) -> Iterable[Cg]:
    """The cgroups whose truth may have changed since the last tick."""
    if state.every_tick or state.windows or state.host_reads:
        return list(cgroups.live())
    return cgroups.changed


def deepest(true: set[Cg]) -> set[Cg]:
    """The cgroups of ``true`` with no other cgroup of ``true`` below them."""
    if len(true) < 2:
        return set(true)
    covered: set[str] = set()
    for cg in true:
        for above in ancestors_of(cg.cgroup):
            if above in covered:
                break  # and every path above it, from an earlier walk
            covered.add(above)
    return {cg for cg in true if cg.cgroup not in covered}


def labels_of(cg: Cg, labels: dict[str, str]) -> dict[str, str]:
    """An alert's labels with the cgroup's ``cgroup``, ``unit`` and ``container`` (those
    it has), for a fleet to group by; the rule's own labels of those names win."""
    own = {"cgroup": cg.cgroup, "unit": cg.unit, "container": cg.container}
    return {**{k: v[:LABEL_MAX] for k, v in own.items() if v is not None}, **labels}


def proposals(rule: CompiledRule, cg: Cg, now: float) -> list[Proposal]:
    """The rule's cgroup actions on ``cg``: by path and by id (the directory's inode)."""
    return [Proposal(now, rule.name, action, None, None, None, None, "proposed", None,
                     rule.mode_monitor, cgroup=cg.cgroup, cgroup_id=cg.id,
                     instance_cgroup=cg.cgroup)
            for action in rule.cgroup_targets]
