"""Thawing from the dashboard: the overview lists the cgroups a freeze holds, and a
freeze's action page shows it and thaws it, with a reason, for approvers only, through
the same decision as ``POST /actions/{id}/thaw``."""

from __future__ import annotations

from pathlib import Path

import trio
from cgactions_support import HOG, FakePrimitives, FakeTree, frozen, install
from ui_support import Browser, UiEnv, start_ui


async def freeze_held(ui: UiEnv, tmp_path: Path) -> tuple[int, FakePrimitives]:
    tree, fake = FakeTree(tmp_path / "cg", ui.env.proc), FakePrimitives()
    install(ui.env.manager, tree, fake)
    return await frozen(ui.env.manager, tree.add(HOG, [(700, "hog")])), fake


async def signed_in(ui: UiEnv, token: str) -> Browser:
    browser = ui.browser()
    assert (await browser.sign_in(token))[0] == 303
    return browser


async def test_a_held_freeze_is_on_the_overview_and_thawed_from_its_page(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui, ui.env.tokens["alice"])
    status, body, _ = await browser.get("/ui/fragments/live")
    assert status == 200 and 'id="frozen"' not in body  # nothing frozen: no section
    action, fake = await freeze_held(ui, tmp_path)
    status, body, _ = await browser.get("/ui/fragments/live")
    assert "Frozen cgroups (1)" in body and HOG in body
    assert f'href="/ui/actions/{action}#freeze"' in body
    status, body, _ = await browser.get(f"/ui/actions/{action}")
    assert status == 200 and f"{HOG} is frozen" in body and 'id="thaw"' in body
    status, body, _ = await browser.with_csrf(f"/ui/actions/{action}",
                                              {"verb": "thaw", "reason": ""})
    assert status == 400 and "Say why" in body and fake.of("thaw") == []
    status, _, headers = await browser.with_csrf(f"/ui/actions/{action}",
                                                 {"verb": "thaw", "reason": "false alarm"})
    assert (status, headers["Location"]) == (303, f"/ui/actions/{action}")
    assert fake.of("thaw") == [HOG]
    thawed = [r for r in ui.env.store.audit_log(action_id=action)
              if r["event"] == "action.thawed"]
    assert [(r["actor"], r["detail"]["reason"]) for r in thawed] == [("alice", "false alarm")]
    status, body, _ = await browser.get(f"/ui/actions/{action}")
    assert "and thawed at" in body and "false alarm" in body and 'id="thaw"' not in body
    status, body, _ = await browser.get("/ui/fragments/live")
    assert 'id="frozen"' not in body
    # thawed already: the page says so rather than failing
    status, body, _ = await browser.with_csrf(f"/ui/actions/{action}",
                                              {"verb": "thaw", "reason": "again"})
    assert status == 409 and "thawed already" in body and fake.of("thaw") == [HOG]


async def test_a_reader_sees_the_freeze_but_cannot_thaw_it(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    action, fake = await freeze_held(ui, tmp_path)
    browser = await signed_in(ui, ui.env.tokens["rita"])
    status, body, _ = await browser.get(f"/ui/actions/{action}")
    assert status == 200 and f"{HOG} is frozen" in body and 'id="thaw"' not in body
    assert "may not thaw it" in body
    status, body, _ = await browser.with_csrf(f"/ui/actions/{action}",
                                              {"verb": "thaw", "reason": "mine"})
    assert status == 403 and fake.of("thaw") == []
