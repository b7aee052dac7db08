"""Reading a request: its query arguments, headers and JSON body.

Every check fails with :class:`HttpError` (a 400, or a 404 for an id no record
can have), whose detail names the argument and says what was wrong with it.
Text that is recorded (a note, a reason) must be plain text: no control
character and no character that changes how the text around it is shown.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from typing import Any, NoReturn

import orjson
from quart import request

__all__ = [
    "ACTOR_MAX", "ID_MAX", "LIMIT_MAX", "NOTE_MAX", "REASON_MAX", "HttpError", "check_id",
    "duration_field", "fail", "flag_arg", "int_arg", "json_body", "last_event_id",
    "limit_arg", "next_before", "note_field", "only", "text_arg", "text_field", "unplain",
]

LIMIT_DEFAULT, LIMIT_MAX = 100, 1000
NOTE_MAX, REASON_MAX = 128, 1024
ID_MAX = 2**63 - 1  # SQLite's largest integer
ACTOR_MAX = 128  # who an audit record names: a token's name, linnix, SIGHUP


class HttpError(Exception):
    """An error answer: status, short error, longer detail, extra headers and fields."""

    def __init__(self, status: int, error: str, detail: str, *,
                 headers: Mapping[str, str] | None = None,
                 extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def fail(status: int, error: str, detail: str, *,
         headers: Mapping[str, str] | None = None,
         extra: Mapping[str, Any] | None = None) -> NoReturn:
    raise HttpError(status, error, detail, headers=headers, extra=extra)


def int_arg(name: str, *, default: int | None = None, low: int = 1,
            high: int = ID_MAX) -> int | None:
    text = request.args.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text, 10)
    except ValueError:
        fail(400, "bad request", f"'{name}' must be a whole number, not {text!r}")
    if not low <= value <= high:
        fail(400, "bad request", f"'{name}' must be from {low} to {high}, not {value}")
    return value


def text_arg(name: str, *, limit: int) -> str | None:
    """A parameter matched exactly, such as a name: None when absent or empty; plain text
    (see :func:`unplain`) of at most ``limit`` characters, or a 400."""
    text = request.args.get(name)
    if text is None or text == "":
        return None
    if len(text) > limit:
        fail(400, "bad request", f"'{name}' is longer than {limit} characters")
    found = unplain(text)
    if found is not None:
        fail(400, "bad request", f"'{name}' must be plain text: it has {found[1]} at "
                                 f"character {found[0] + 1}")
    return text


def limit_arg() -> int:
    value = int_arg("limit", default=LIMIT_DEFAULT, high=LIMIT_MAX)
    assert value is not None
    return value


def flag_arg(name: str) -> bool:
    text = request.args.get(name)
    if text is None:
        return False
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on", ""):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    fail(400, "bad request", f"'{name}' must be 1 or 0 (true or false), not {text!r}")


def next_before(rows: list[dict[str, Any]], limit: int) -> int | None:
    """The ``before`` value for the next page, or None when this was the last one."""
    return int(rows[-1]["id"]) if len(rows) == limit and rows else None


def check_id(value: int, what: str) -> int:
    if value > ID_MAX:
        fail(404, "not found", f"no {what} has id {value}")
    return value


async def json_body(*, required: bool) -> dict[str, Any]:
    data = await request.get_data(cache=False)  # over the size limit: 413
    if not data.strip():
        if required:
            fail(400, "bad request", "the request body must be a JSON object")
        return {}
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        fail(400, "bad request", f"the request body is not valid JSON: {err}")
    if not isinstance(body, dict):
        fail(400, "bad request",
             f"the request body must be a JSON object, not {type(body).__name__}")
    return body


def only(body: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in body:
        if key not in allowed:
            fail(400, "bad request",
                 f"unknown field {key!r}; the fields are {', '.join(allowed)}")


def text_field(body: Mapping[str, Any], name: str, *, required: bool, limit: int,
               single_line: bool) -> str | None:
    """A text field that is recorded and shown to people: plain text only (see
    :func:`unplain`); newlines and tabs only where not ``single_line``."""
    sent = body.get(name)
    if sent is None:
        if required:
            fail(400, "bad request", f"{name!r} is required")
        return None
    if not isinstance(sent, str):
        fail(400, "bad request", f"{name!r} must be a string")
    value = sent.strip()
    if required and not value:
        fail(400, "bad request", f"{name!r} must not be empty")
    if len(value) > limit:
        fail(400, "bad request", f"{name!r} is longer than {limit} characters")
    found = unplain(value, "" if single_line else "\n\t")
    if found is not None:
        at, what = found
        where = at + 1 + len(sent) - len(sent.lstrip())  # 1-based, in the text as sent
        fail(400, "bad request", f"{name!r} must be plain text: it has {what} at character "
                                 f"{where}")
    return value or None


# Unicode categories that are not plain text: controls, format characters (the
# bidirectional overrides, isolates and marks, zero-width characters), line and
# paragraph separators, surrogates and private-use characters.
_UNPLAIN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co"})


def unplain(text: str, allowed: str = "") -> tuple[int, str] | None:
    """The first character of ``text`` that is not plain text (but for ``allowed``):
    its index and a description; None when every one is plain.

    A name or a note is an identity in the audit log: a right-to-left override or
    an escape sequence in it would show one name and record another.
    """
    for at, char in enumerate(text):
        if char in allowed or unicodedata.category(char) not in _UNPLAIN:
            continue
        code = f"U+{ord(char):04X}"
        name = unicodedata.name(char, "")
        if unicodedata.category(char) == "Cc":
            return at, f"the control character {code}"
        return at, f"{code} {name}" if name else f"the invisible character {code}"
    return None


def duration_field(body: Mapping[str, Any], name: str, *, high: float) -> float | None:
    """A duration: seconds (a number) or text such as ``30m`` (the grammar of
    :func:`linnix.names.duration_seconds`), longer than zero and at most ``high``."""
    from ..names import duration_seconds

    sent = body.get(name)
    if sent is None:
        return None
    if isinstance(sent, str) and len(sent) <= 32:  # no duration is longer
        try:
            value = duration_seconds(sent)
        except ValueError as err:
            fail(400, "bad request", f"{name!r}: {err}")
    elif isinstance(sent, int | float) and not isinstance(sent, bool):
        value = float(sent)
    else:
        fail(400, "bad request", f"{name!r} must be a duration such as \"30m\" or a number "
                                 "of seconds")
    if not (math.isfinite(value) and 0 < value <= high):
        fail(400, "bad request", f"{name!r} must be longer than zero and at most "
                                 f"{high / 86400:g} days")
    return value


def note_field(body: Mapping[str, Any], old_name: str) -> str | None:
    """The request's note: ``note``, or the field it replaces (``approver``, ``actor``)."""
    if body.get("note") is not None and body.get(old_name) is not None:
        fail(400, "bad request", f"give 'note' or {old_name!r} (its old name), not both")
    name = "note" if body.get("note") is not None else old_name
    return text_field(body, name, required=False, limit=NOTE_MAX, single_line=True)


def last_event_id() -> int | None:
    text = request.headers.get("Last-Event-ID")
    where = "the Last-Event-ID header"
    if text is None or not text.strip():
        text = request.args.get("last_event_id")
        where = "'last_event_id'"
    if text is None or not text.strip():
        return None
    try:
        value = int(text.strip(), 10)
    except ValueError:
        fail(400, "bad request", f"{where} must be an event id (a whole number), not {text!r}")
    if value < 0:
        fail(400, "bad request", f"{where} must not be negative")
    return value
