"""The dashboard: HTML pages served by the API's app under ``/ui/``.

Server-rendered with Jinja (autoescaped: process data is text, never markup),
updated with htmx (configured without ``eval``) and charted with uPlot, both
vendored under ``static/vendor`` (``MANIFEST.json``; ``scripts/update-vendor.sh``).
Sign-in, sessions and CSRF are in :mod:`.sessions` and :mod:`.security`; the
routes in :mod:`.routes`; docs/dashboard.md explains the whole.
"""

from .routes import dashboard

__all__ = ["dashboard"]
