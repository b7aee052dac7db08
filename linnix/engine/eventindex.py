"""Which event rules an event can fire: their pre-filters, looked up in tables.

Each event rule may carry a pre-filter (:func:`linnix.language.prefilter.prefilter`):
keys on text fields (``comm`` is ``"nc"``, ``exe`` starts with ``"/tmp/"``)
one of which an event must match for its condition to hold.  :class:`Index`
puts the keys of the rules waiting for one kind of event in tables, per
field: the values themselves, the prefixes by their length, the suffixes by
theirs (a text a field must contain is one test of its own).  A set of
rules is a bit mask (bit i for the i-th rule), and the tables give the mask
of the rules a value, a prefix or a suffix names.

At an event one expression (:attr:`Index.code`, which the engine puts inline
in the function that applies an event; :attr:`Index.mask` evaluates it alone)
reads each field once and looks it up in each of its tables: straight-line
code, put together from the keys when the rules are loaded (the fields are
read as the rules' conditions read them, by the keys' ``code``), because a
loop over the tables costs more than the conditions it spares.  What it costs
grows with the fields and lengths the rules name, not with the rules.  The
rules it names, and those with no pre-filter, are then judged in full, in the
plan's order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from ..plan import FilterKey

__all__ = ["CACHE_MAX", "KEPT_MAX", "Index"]

T = TypeVar("T")
CACHE_MAX = 4096  # sets of candidates kept as tuples, by mask (the rules' keys make them)
KEPT_MAX = 1024  # texts per field whose prefixes and suffixes were looked up (4 MiB at most)


class Index(Generic[T]):
    """The rules (``items``) waiting for one kind of event, by their pre-filters."""

    def __init__(self, items: Sequence[T],
                 filters: Sequence[tuple[FilterKey, ...] | None]) -> None:
        self.items = tuple(items)
        self.every = (1 << len(self.items)) - 1
        self.always = 0  # the rules judged at every event: they have no pre-filter
        fields: dict[str, dict[str, dict[Any, int]]] = {}  # code -> how -> value -> mask
        for i, keys in enumerate(filters):
            if keys is None:
                self.always |= 1 << i
                continue
            for key in keys:
                table = fields.setdefault(key.code, {}).setdefault(key.how, {})
                value = key.value  # uid == 0: kept as the int a process's uid is, which
                if isinstance(value, float) and value.is_integer():  # is found faster
                    value = int(value)
                table[value] = table.get(value, 0) | 1 << i
        # the mask's code (an expression of p, h and now) and the names it reads: the
        # engine puts it inline in the function that applies an event (events.py)
        self.scope: dict[str, object] = {"__builtins__": {}, "_str": str}
        self.code = _mask_code(self.always, fields, self.scope)
        self.mask: Callable[[Any, Any, float], int] = eval(  # the keys' code only
            "lambda p, h, now: " + self.code, dict(self.scope))
        self.cache: dict[int, tuple[T, ...]] = {}

    def candidates(self, seen: Any, host: Any, now: float) -> tuple[T, ...]:
        """The rules that may hold for ``seen`` (a process, or one at its exit), in order."""
        try:
            mask = self.mask(seen, host, now)
        except Exception:  # a field that cannot be read: the conditions will say
            mask = self.every
        found = self.cache.get(mask)
        return self.of(mask) if found is None else found

    def of(self, mask: int) -> tuple[T, ...]:
        """The rules of ``mask``, in order (kept for the next event with the same)."""
        found = tuple(item for i, item in enumerate(self.items) if mask >> i & 1)
        if len(self.cache) >= CACHE_MAX:
            self.cache.clear()
        self.cache[mask] = found
        return found


def _mask_code(always: int, fields: dict[str, dict[str, dict[Any, int]]],
               scope: dict[str, object]) -> str:
    """The expression of the mask (of ``p``, ``h`` and ``now``): ``always``, and the masks
    the fields' values find (the tables go in ``scope``).

    A missing value matches nothing (a comparison with it is false).  A value
    that is not a text (or a number) where keys expect one makes every rule
    naming the field a candidate, or is found by none, exactly as the conditions
    would decide: a prefix's, suffix's or text's test fails on it and raises
    (every rule is a candidate), a lookup finds nothing that equals it (or
    raises when it cannot be hashed).  Only ``in`` works on a list as on a
    text, so a field with texts it must contain is tested for being a text
    first: its conditions decide on anything else.  The test costs as much as
    a lookup, so it is made only there.
    """
    parts = [str(always)] if always else []
    for j, (code, tables) in enumerate(fields.items()):
        value = f"_v{j}"
        lookups: list[str] = []
        every = 0
        for how, table in tables.items():
            every |= _union(table)
            lookups.append(_lookup(f"_{how}{j}", value, how, table, scope))
        found = " | ".join(lookups)
        if "contains" in tables:
            found = f"({found}) if {value}.__class__ is _str else {every}"
        elif "prefix" in tables or "suffix" in tables:
            found = _kept(j, value, found, scope)
        parts.append(f"(0 if ({value} := {code}) is None else ({found}))")
    return " | ".join(parts) or "0"


def _kept(j: int, value: str, found: str, scope: dict[str, object]) -> str:
    """``found``, kept by value: a host runs the same programs again and again, and one
    lookup of a path costs less than testing its prefixes and suffixes.  A process
    names its own path, so at most :data:`KEPT_MAX` are kept (then forgotten at once);
    a value that is not a text is never kept (``found`` raises on it, or it cannot be
    hashed)."""
    kept: dict[object, int] = {}

    def keep(text: object, bits: int) -> int:
        if len(kept) >= KEPT_MAX:
            kept.clear()
        kept[text] = bits
        return bits

    scope[f"_kept{j}"], scope[f"_keep{j}"] = kept, keep
    return f"_b{j} if (_b{j} := _kept{j}.get({value})) is not None else _keep{j}({value}, {found})"


def _lookup(name: str, value: str, how: str, table: dict[Any, int],
            scope: dict[str, object]) -> str:
    """The code of the mask ``table`` finds for the text ``value`` (tables go in ``scope``
    under names starting with ``name``)."""
    if how == "is":
        scope[name] = table
        return f"{name}.get({value}, 0)"
    if how == "contains":  # no table finds a part of a text: one test each
        return " | ".join(f"({bits} if {text!r} in {value} else 0)"
                          for text, bits in table.items())
    # one test of every prefix (suffix) at once, in C, before any lookup: most
    # texts have none of them
    scope[name] = tuple(table)
    test = "startswith" if how == "prefix" else "endswith"
    found = []
    for length, group in _by_length(table):
        if length == 0:  # "" starts and ends every text
            found.append(str(_union(group)))
            continue
        scope[f"{name}_{length}"] = group
        part = f"{value}[:{length}]" if how == "prefix" else f"{value}[-{length}:]"
        found.append(f"{name}_{length}.get({part}, 0)")
    return f"(({' | '.join(found)}) if {value}.{test}({name}) else 0)"


def _by_length(table: dict[str, int]) -> list[tuple[int, dict[str, int]]]:
    """Prefixes (or suffixes) grouped by their length: one slice and one lookup each."""
    out: dict[int, dict[str, int]] = {}
    for text, bits in table.items():
        out.setdefault(len(text), {})[text] = bits
    return sorted(out.items())


def _union(table: dict[str, int]) -> int:
    bits = 0
    for mask in table.values():
        bits |= mask
    return bits
