"""The dashboard's navigation: one link per page, in the order shown on every page."""

from __future__ import annotations

__all__ = ["NAV", "current"]

# (label, path): a page module adds its line here
NAV: tuple[tuple[str, str], ...] = (
    ("Overview", "/ui/"),
    ("Processes", "/ui/processes"),
    ("Alerts", "/ui/alerts"),
    ("Incidents", "/ui/incidents"),
    ("Rules", "/ui/rules"),
    ("Audit", "/ui/audit"),
)


def current(path: str) -> str | None:
    """The NAV path the request's ``path`` belongs to (the longest prefix), if any."""
    best: str | None = None
    for _, link in NAV:
        if (path == link or path.startswith(link.rstrip("/") + "/")) and \
                (best is None or len(link) > len(best)):
            best = link
    return best
