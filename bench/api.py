#!/usr/bin/env python3
"""API latency under load, while the daemon processes a fork storm.

    sudo .venv/bin/python bench/api.py

Starts ``linnix run`` (shipped rules plus one harmless rule that proposes
``signal(SIGCONT)`` for each of ``--targets`` sleeping processes), keeps a
fork loop running at ``--forks`` per second, then measures:

* ``GET /alerts`` latency, ``--clients`` concurrent clients (p50 / p99);
* ``POST /actions/ID/approve`` latency, the same clients approving distinct
  pending actions at once (p50 / p99);
* SSE delivery latency to ``--sse`` clients, one of which never reads: the
  time from sending an approval to each reading client receiving the event
  for that action (p50 / p99), and whether the silent client was dropped;
* the engine's tick lag: the largest ``linnix_tick_lag_seconds`` seen while
  the load ran (target: never more than one tick late).

Results are printed as Markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import trio
from common import build_forkloop, free_port  # bench/common.py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TICK_S = 0.5
TARGET = """
import ctypes, os, signal, sys, time
ctypes.CDLL(None).prctl(15, b"lnx-bench", 0, 0, 0)
time.sleep(float(sys.argv[1]))
"""


async def request(host: str, port: int, method: str, path: str,
                  body: bytes = b"", token: str | None = None) -> tuple[int, bytes, float]:
    """One HTTP/1.1 request on its own connection: (status, body, seconds)."""
    started = time.perf_counter()
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        headers = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close",
                   f"Content-Length: {len(body)}"]
        if body:
            headers.append("Content-Type: application/json")
        if token:
            headers.append(f"Authorization: Bearer {token}")
        await stream.send_all(("\r\n".join(headers) + "\r\n\r\n").encode() + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection early")
            data += chunk
        head, _, payload = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(payload) < length:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            payload += chunk
    status = int(head.split(b" ", 2)[1])
    return status, payload, time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


FINAL = frozenset({"succeeded", "failed", "refused"})


def _order(item: tuple[str, list[float]]) -> float:
    return statistics.median(item[1])


async def sse_client(host: str, port: int, seen: dict[int, list[tuple[float, str]]], read: bool,
                     ready: trio.Event, counter: list[int], token: str) -> None:
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        await stream.send_all(f"GET /stream HTTP/1.1\r\nHost: {host}\r\n"
                              f"Authorization: Bearer {token}\r\n\r\n".encode())
        counter[0] += 1
        if counter[0] == counter[1]:
            ready.set()
        if not read:
            await trio.sleep_forever()
        buf = b""
        while True:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            buf += chunk
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                data = [line[5:].strip() for line in event.split(b"\n")
                        if line.startswith(b"data:")]
                if b"event: action" in event and data:
                    try:
                        record = json.loads(b"".join(data))
                    except ValueError:
                        continue
                    seen.setdefault(int(record["id"]), []).append(
                        (time.perf_counter(), str(record.get("status"))))


async def watch_lag(host: str, port: int, lags: list[float], stop: trio.Event) -> None:
    while not stop.is_set():
        _, body, _ = await request(host, port, "GET", "/metrics")
        for line in body.decode().splitlines():
            if line.startswith("linnix_tick_lag_seconds "):
                lags.append(float(line.split()[1]))
        await trio.sleep(0.2)


async def pending_ids(host: str, port: int, token: str) -> list[int]:
    _, body, _ = await request(host, port, "GET", "/actions?status=pending&limit=1000",
                               token=token)
    return [int(a["id"]) for a in json.loads(body)["actions"]]


async def measure(host: str, port: int, token: str, clients: int, rounds: int,
                  sse: int) -> dict[str, Any]:
    lags: list[float] = []
    stop = trio.Event()
    out: dict[str, Any] = {}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_lag, host, port, lags, stop)
        reads: list[float] = []
        burst: list[float] = []

        async def reader(seed: int, pause: bool, into: list[float]) -> None:
            rnd = random.Random(seed)
            for _ in range(rounds):
                if pause:  # each client polls about once a second, at random moments
                    await trio.sleep(rnd.expovariate(1.0))
                status, _, took = await request(host, port, "GET", "/alerts", token=token)
                assert status == 200
                into.append(took)

        async with trio.open_nursery() as inner:
            for i in range(clients):
                inner.start_soon(reader, i, True, reads)
        out["reads"] = reads
        started = time.perf_counter()
        async with trio.open_nursery() as inner:  # and all at once, back to back
            for i in range(clients):
                inner.start_soon(reader, i, False, burst)
        out["burst"] = burst
        out["burst_rate"] = len(burst) / (time.perf_counter() - started)
        ids = await pending_ids(host, port, token)
        approvals: list[float] = []

        async def approve(action_id: int, into: list[float]) -> None:
            body = json.dumps({"approver": "bench", "reason": "latency"}).encode()
            status, _, took = await request(host, port, "POST",
                                             f"/actions/{action_id}/approve", body, token)
            assert status == 200, status
            into.append(took)

        async with trio.open_nursery() as inner:
            for action_id in ids[:clients]:
                inner.start_soon(approve, action_id, approvals)
        out["approvals"] = approvals
        # Let those executions finish (each is three synchronous commits) so that
        # the stream is measured on its own, not behind the burst's writes.
        started = time.perf_counter()
        burst_ids = set(ids[:clients])
        while True:
            _, body, _ = await request(host, port, "GET", "/actions?limit=1000", token=token)
            final = {int(a["id"]) for a in json.loads(body)["actions"] if a["status"] in FINAL}
            if burst_ids <= final:
                break
            await trio.sleep(0.05)
        out["settle"] = time.perf_counter() - started
        seen: dict[int, list[tuple[float, str]]] = {}
        ready = trio.Event()
        counter = [0, sse]
        async with trio.open_nursery() as listeners:
            for i in range(sse):
                listeners.start_soon(sse_client, host, port, seen, i != 0, ready, counter,
                                     token)
            await ready.wait()
            await trio.sleep(0.5)
            delivery: dict[str, list[float]] = {}
            for action_id in ids[clients:]:
                sent = time.perf_counter()
                await approve(action_id, [])
                with trio.move_on_after(2.0):  # every reader has the final event
                    while sum(1 for _, st in seen.get(action_id, ())
                              if st in FINAL) < sse - 1:
                        await trio.sleep(0.005)
                for at, status in seen.get(action_id, ()):
                    delivery.setdefault(status, []).append(at - sent)
            listeners.cancel_scope.cancel()
        out["delivery"] = delivery
        out["sse_events"] = len(ids[clients:])
        stop.set()
    out["lag_max"] = max(lags) if lags else float("nan")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=20, help="GET /alerts per client")
    ap.add_argument("--sse", type=int, default=50)
    ap.add_argument("--targets", type=int, default=130)
    ap.add_argument("--forks", type=float, default=1000.0, help="fork loop rate (per s)")
    args = ap.parse_args()
    state = tempfile.mkdtemp(prefix="linnix-bench-api-")
    rules = os.path.join(state, "rules")
    os.makedirs(rules)
    with open(os.path.join(rules, "bench.lnx"), "w") as f:
        f.write('rule bench_target {\n    when comm == "lnx-bench"\n'
                "    action signal(SIGCONT)\n}\n")
    config = os.path.join(state, "linnix.toml")
    with open(config, "w") as f:
        f.write(f'[api]\nbind = "127.0.0.1:{free_port()}"\n'
                f"max_connections = {args.clients + args.sse + 16}\n"
                '[actions]\nrate_limit = 100000\nttl = "1h"\n')
    targets = [subprocess.Popen([sys.executable, "-c", TARGET, "600"])
               for _ in range(args.targets)]
    forks = None
    daemon = subprocess.Popen([sys.executable, "-m", "linnix", "run", "--config", config,
                               "--rules", os.path.join(ROOT, "rules"), "--rules", rules,
                               "--state-dir", os.path.join(state, "s")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        status_file = os.path.join(state, "s", "daemon.json")
        while not os.path.exists(status_file):
            if daemon.poll() is not None:
                raise SystemExit(daemon.stderr.read())  # type: ignore[union-attr]
            time.sleep(0.1)
        with open(status_file) as f:
            host, port = json.load(f)["api"].rsplit(":", 1)
        with open(os.path.join(state, "s", "api.token")) as f:
            token = f.read().strip()
        time.sleep(3.0)  # the targets' actions get proposed
        exe = build_forkloop()
        forks = subprocess.Popen([exe, "600", str(args.forks)], stdout=subprocess.DEVNULL)
        time.sleep(2.0)
        res = trio.run(measure, host, int(port), token, args.clients, args.rounds, args.sse)
    finally:
        if forks is not None:
            forks.kill()
        for p in targets:
            p.kill()
        daemon.terminate()
        daemon.wait(30)
    reads, approvals, delivery = res["reads"], res["approvals"], res["delivery"]
    print(f"\n## API under load (bench/api.py) — {time.strftime('%Y-%m-%d')}\n")
    print(f"Command: `sudo .venv/bin/python bench/api.py --clients {args.clients} "
          f"--sse {args.sse} --forks {args.forks:g}`; the daemon processes a fork loop at "
          f"{args.forks:g} forks/s throughout.\n")
    print("| measure | p50 | p99 | samples |\n|---|---|---|---|")
    for name, values in ((f"GET /alerts, {args.clients} clients polling ~1/s", reads),
                         (f"GET /alerts, {args.clients} clients back to back", res["burst"]),
                         (f"POST approve, {args.clients} at once", approvals),
                         *((f"SSE: approve sent -> '{status}' event received by each of "
                            f"{args.sse - 1} readers (+1 silent)", values)
                           for status, values in sorted(delivery.items(), key=_order))):
        if values:
            print(f"| {name} | {1000 * statistics.median(values):.1f} ms | "
                  f"{1000 * pct(values, 0.99):.1f} ms | {len(values)} |")
    print(f"\nBack-to-back throughput: {res['burst_rate']:,.0f} requests/s. After the "
          f"{len(approvals)} approvals answered, their executions all reached a final state "
          f"within {1000 * res['settle']:,.0f} ms.")
    print(f"\nLargest tick lag seen: **{1000 * res['lag_max']:.0f} ms** "
          f"(target: under one tick, {1000 * TICK_S:.0f} ms). Read p99 target < 50 ms.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
