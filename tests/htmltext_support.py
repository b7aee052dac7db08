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
    of one page; its elements in order with their attributes, and the text of each
    ``<label>`` by the id it names (``for``)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.pairs: list[tuple[str, str | None]] = []
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.labels: dict[str, str] = {}
        self.parts: list[str] = []
        self._label: str | None = None  # the ``for`` of the label being read

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)
        self.pairs.extend(attrs)
        self.elements.append((tag, dict(attrs)))
        if tag == "label":
            self._label = dict(attrs).get("for") or ""
            self.labels[self._label] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label = None

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        if self._label is not None:
            self.labels[self._label] += data

    @property
    def text(self) -> str:
        return "".join(self.parts)


def parse(body: str) -> Page:
    """``body`` read whole, entities decoded."""
    page = Page()
    page.feed(body)
    page.close()
    return page
