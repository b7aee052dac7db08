"""The dashboard's files: the vendored libraries match their manifest, and no template or
script of ours needs what the Content-Security-Policy forbids."""

from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from support import ROOT

UI = ROOT / "linnix" / "ui"
VENDOR = UI / "static" / "vendor"
TEMPLATES = sorted((UI / "templates").rglob("*.html"))
MANIFEST = json.loads((VENDOR / "MANIFEST.json").read_text())


def test_every_vendored_file_has_the_hash_of_the_manifest() -> None:
    listed = set()
    for package in MANIFEST["packages"]:
        assert re.fullmatch(r"\d+\.\d+\.\d+", package["version"]), package
        assert package["integrity"].startswith("sha512-")
        assert any(name.endswith("LICENSE") for name in package["files"]), package["name"]
        for name, entry in package["files"].items():
            data = (VENDOR / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
            listed.add(name)
    assert {p.name for p in VENDOR.iterdir()} == listed | {"MANIFEST.json"}


def test_the_update_script_checks_what_the_manifest_says() -> None:
    script = (ROOT / "scripts" / "update-vendor.sh").read_text()
    assert "MANIFEST.json" in script and "sha256" in script and "integrity" in script


class _Lint(HTMLParser):
    """What a template does that the policy would block (Jinja tags are plain text here)."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script":
            self._script = True
            if not (names.get("src") or "").startswith("/ui/static/"):
                self.problems.append(f"a script not from /ui/static/: {attrs}")
        if tag == "style":
            self.problems.append("a <style> element")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"an inline {name} attribute")
            if name.startswith("hx-on") or (value or "").startswith("js:"):
                self.problems.append(f"script in an htmx attribute: {name}")
            if name in ("src", "href", "action") and re.match(r"\w+://", value or ""):
                self.problems.append(f"a resource from elsewhere: {value}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = False

    def handle_data(self, data: str) -> None:
        if self._script and data.strip():
            self.problems.append("an inline script")


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_templates_need_nothing_the_policy_forbids(path: Path) -> None:
    text = path.read_text()
    lint = _Lint()
    lint.feed(text)
    assert lint.problems == []
    assert "|safe" not in text.replace(" ", "") and "autoescape" not in text


def test_htmx_is_configured_without_eval_and_injected_styles() -> None:
    base = (UI / "templates" / "ui" / "base.html").read_text()
    meta = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", base)
    assert meta is not None
    config = json.loads(meta.group(1))
    assert config["allowEval"] is False and config["includeIndicatorStyles"] is False
    assert config["allowScriptTags"] is False


@pytest.mark.parametrize("name", ["charts.js", "live.js"])
def test_our_script_does_not_evaluate_text(name: str) -> None:
    script = (UI / "static" / name).read_text()
    for word in ("eval(", "Function(", "innerHTML", "setTimeout(\"", "document.write"):
        assert word not in script
