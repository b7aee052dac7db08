"""Reading a rendered page as a browser would: the elements and attributes it has, and
its text, so that a test can tell markup written by a template from text shown."""

from __future__ import annotations

from html.parser import HTMLParser

# every element the dashboard's templates write; anything else came from the data
TEMPLATE_TAGS = frozenset({
    "section", "strong", "span", "dl", "div", "dt", "dd", "h1", "h2", "ul", "li", "p", "time",
    "a", "form", "input", "label", "textarea", "button", "code", "main", "header", "nav",
    "body", "html", "head", "meta", "title", "link", "script", "pre", "select", "option",
    "table", "caption", "thead", "tbody", "tr", "th", "td", "datalist"})


class Page(HTMLParser):
    """The tags, attribute names (and each attribute with its value, in order) and text
    of one page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.pairs: list[tuple[str, str | None]] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)
        self.pairs.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.parts)


def parse(body: str) -> Page:
    """``body`` read whole, entities decoded."""
    page = Page()
    page.feed(body)
    page.close()
    return page
