"""The list pages' filter forms (templates/ui/_filters.html): a search landmark named by
a heading, a label for every field, and what was typed shown back in its field as text."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pytest
import trio
from api_support import TOKEN
from htmltext_support import Page, parse
from hypothesis import example, given
from hypothesis import strategies as st
from ui_support import Browser, fake_app

HOSTILE = "<img src=x onerror=alert(1)>"
# each list page, the text fields of its filter form (query name: field id)
PAGES = {
    "/ui/alerts": {"rule": "f-rule", "q": "f-text"},
    "/ui/incidents": {"rule": "f-rule"},
    "/ui/audit": {"actor": "filter-actor", "event": "filter-event"},
    "/ui/rules": {"name": "filter-name"},
}
# what the filter form writes (on its own: the page around it has more)
FORM_TAGS = {"section", "h2", "form", "div", "label", "input", "datalist", "option",
             "select", "button", "a", "p", "code"}
_FORM = re.compile(r'<section class="card" aria-labelledby="filter-title">.*?</section>',
                   re.DOTALL)


class _Store:
    """The store's reads the list pages make: nothing recorded."""

    async def incidents(self, **_: Any) -> list[dict[str, Any]]:
        return []

    async def audit_log(self, **_: Any) -> list[dict[str, Any]]:
        return []


VIEW, APP = fake_app(_Store())
BROWSER = Browser(APP, "127.0.0.1")


async def _form(path: str, query: dict[str, str]) -> tuple[int, Page | None]:
    """The status of the page and its filter form, read."""
    if BROWSER.csrf is None:
        assert (await BROWSER.sign_in(TOKEN))[0] == 303
    status, body, _ = await BROWSER.get(f"{path}?{urlencode(query)}" if query else path)
    found = _FORM.search(body)
    return status, parse(found.group(0)) if found else None


def _fields(form: Page) -> dict[str, dict[str, str | None]]:
    """The form's fields (inputs and selects) by id."""
    return {str(attrs.get("id")): attrs for tag, attrs in form.elements
            if tag in ("input", "select")}


@pytest.mark.parametrize("path", list(PAGES))
def test_the_form_is_a_named_search_with_a_label_for_every_field(path: str) -> None:
    status, form = trio.run(_form, path, {})
    assert status == 200 and form is not None
    (tag, attrs), (heading, named) = form.elements[2], form.elements[1]
    assert (tag, attrs["role"], attrs["method"], attrs["action"]) == ("form", "search", "get",
                                                                       path)
    assert heading == "h2" and attrs["aria-labelledby"] == named["id"] == "filter-title"
    words = [part.strip() for part in form.parts if part.strip()]
    assert words[0].startswith("Filter the ")  # the heading's, the section's first words
    fields = _fields(form)
    assert set(PAGES[path].values()) <= set(fields)
    for field in fields:
        assert form.labels.get(field, "").strip(), f"{path}: no label for {field}"


texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@given(path=st.sampled_from(list(PAGES)), value=texts)
@example(path="/ui/alerts", value=HOSTILE)
@example(path="/ui/audit", value='"><svg onload=alert(1)>')
@example(path="/ui/rules", value="' onmouseover='x")
def test_what_was_typed_comes_back_in_its_field_as_text(path: str, value: str) -> None:
    query = {name: value for name in PAGES[path]}
    status, form = trio.run(_form, path, query)
    if status == 400:  # refused in words (not plain text): no form to fill
        return
    assert status == 200 and form is not None
    assert form.tags <= FORM_TAGS, form.tags - FORM_TAGS
    assert not any(name.startswith("on") for name in form.attributes)
    fields = _fields(form)
    for field in PAGES[path].values():
        assert fields[field]["value"] == value.strip()
