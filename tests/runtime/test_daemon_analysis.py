"""The daemon with a model backend that stalls: the engine's ticks and the alerts go on, the
built-in analysis is stored at once, and the model's request is still hanging meanwhile.

``linnix run`` (the /proc polling source: no root needed) with a rule that has ``action
analyze`` and ``[analysis] backend = "openai"`` pointed at a fake server, run in a thread of
the test, that never answers within the timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from live_support import Api, Daemon, free_port, wait_for
from model_support import FakeModel

pytestmark = pytest.mark.slow

RULE = """
rule host_has_processes {
    when procs > 0
    action analyze
}
"""


@pytest.fixture
def stalled() -> Iterator[FakeModel]:
    """A fake model on loopback, in a thread, that answers nothing for 30 seconds."""
    fake = FakeModel(answer="stall")
    started = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        async with trio.open_nursery() as nursery:
            box["token"], box["scope"] = trio.lowlevel.current_trio_token(), nursery.cancel_scope
            await fake.serve(nursery)
            started.set()

    thread = threading.Thread(target=trio.run, args=(serve,), daemon=True)
    thread.start()
    assert started.wait(30)
    yield fake
    trio.from_thread.run_sync(box["scope"].cancel, trio_token=box["token"])
    thread.join(30)


def test_ticks_and_alerts_go_on_while_the_model_stalls(tmp_path: Path,
                                                        stalled: FakeModel) -> None:
    rules = tmp_path / "rules.lnx"
    rules.write_text(RULE)
    config = tmp_path / "linnix.toml"
    config.write_text(f'[api]\nbind = "127.0.0.1:{free_port()}"\n\n[analysis]\n'
                      f'backend = "openai"\nendpoint = "http://127.0.0.1:{stalled.port}/v1"\n'
                      'model = "fake-7b"\ntimeout = "25s"\n')
    daemon = Daemon(tmp_path / "state", "--source", "poll", "--config", str(config),
                    rules=[str(rules)])
    try:
        daemon.wait_ready()
        daemon.wait_alert("host_has_processes", "firing", 0.0, timeout=30)
        wait_for(lambda: stalled.requests, 30, "the model to be asked")  # now it stalls
        api = Api(daemon.state)
        incident = api.get("/incidents")["incidents"][0]
        stored = api.get(f"/incidents/{incident['id']}/analysis")
        before = api.metrics()
        wait_for(lambda: api.metrics()["linnix_ticks_total"] >= before["linnix_ticks_total"] + 4,
                 20, "four more ticks")
        after = api.metrics()
        still = api.get(f"/incidents/{incident['id']}/analysis")
    finally:
        daemon.stop()
    assert stored["analysis"]["facts"]  # the built-in analysis, there at once
    assert stored["analysis"]["model"] == {"backend": "openai", "model": "fake-7b",
                                           "pending": True}
    assert still["analysis"]["model"]["pending"]  # the request still hangs ...
    assert after["linnix_tick_lag_seconds"] < 10.0  # ... and no tick waited 25s for it
    assert len(stalled.requests) == 1
    assert "Traceback" not in daemon.stderr
