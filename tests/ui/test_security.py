"""The dashboard's headers and the check that a form came from the dashboard."""

from __future__ import annotations

from linnix.ui.security import CSP, cross_site, page_headers


def test_the_policy_is_exactly_the_strict_one() -> None:
    assert CSP == ("default-src 'self'; script-src 'self'; style-src 'self'; "
                   "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                   "base-uri 'none'; form-action 'self'")
    assert "unsafe" not in CSP


def test_pages_are_not_stored_and_static_files_are_revalidated() -> None:
    page = page_headers("/ui/")
    assert page["Cache-Control"] == "no-store"
    assert page["Content-Security-Policy"] == CSP
    assert page["X-Content-Type-Options"] == "nosniff"
    assert page["Referrer-Policy"] == "no-referrer"
    assert page_headers("/ui/static/dash.css")["Cache-Control"] == "no-cache"


def test_a_form_from_this_origin_passes() -> None:
    assert cross_site({"Origin": "http://127.0.0.1:9333", "Sec-Fetch-Site": "same-origin"},
                      "http", "127.0.0.1:9333") is None
    assert cross_site({}, "http", "h:1") is None  # not a browser: the CSRF token decides
    assert cross_site({"Origin": "HTTP://H:1".lower()}, "http", "H:1") is None
    # what Chromium sends for its own form under Referrer-Policy: no-referrer
    assert cross_site({"Origin": "null", "Sec-Fetch-Site": "same-origin"}, "http", "h:1") is None


def test_a_form_from_elsewhere_is_named() -> None:
    assert "another site" in str(cross_site({"Sec-Fetch-Site": "cross-site"}, "http", "h:1"))
    assert "same-site" in str(cross_site({"Sec-Fetch-Site": "same-site"}, "http", "h:1"))
    assert "evil" in str(cross_site({"Origin": "http://evil:1"}, "http", "h:1"))
    assert cross_site({"Origin": "https://h:1"}, "http", "h:1") is not None  # other scheme
    assert cross_site({"Origin": "null"}, "http", "h:1") is not None
