"""Offer-to-console latency: server offer → the event on each lawyer's WebSocket.

Run by hand::

    .venv/bin/python bench/offer_bench.py [--calls 100] [--rounds 5]

A real coordinator (scripted media worker: no SIP here, bench/calls_bench.py measures the
telephony) and the real agent API served by uvicorn on loopback, with ``--calls`` lawyers
logged in over the API (accepting in the console) and each listening on its own WebSocket,
as the console does. Each round queues ``--calls`` callers at once; the router offers every
one of them to a lawyer, and each client notes when its offer arrived against the offer's
server timestamp (same clock). Prints p50 / p95 / p99 / max per round and overall.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import uvicorn
from websockets.asyncio.client import connect

from hotline.api.app import create_app
from hotline.api.events import EventHub
from hotline.callcenter import CallCenter, LiveCall
from hotline.config import load_settings
from hotline.domain import Language, Role
from hotline.ivr.registry import FlowRegistry
from hotline.ivr.tts import PromptAudio
from hotline.ledger import Ledger
from hotline.store import users as store_users
from hotline.store.engine import make_engine, make_session_factory
from hotline.store.migrate import upgrade
from hotline.store.session import session_scope
from hotline.telephony import protocol as p

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench-password-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main(calls: int, rounds: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="offer-bench-"))
    url = f"sqlite:///{tmp / 'h.db'}"
    settings = load_settings(environ={
        "HOTLINE_DATABASE_URL": url, "HOTLINE_PATHS_FLOWS": str(ROOT / "ivr_flows"),
        "HOTLINE_PATHS_VAR": str(tmp / "var"), "HOTLINE_PATHS_RECORDINGS": str(tmp / "rec"),
        "HOTLINE_TELEPHONY_QUEUE_WAIT": "3600", "HOTLINE_TELEPHONY_RING_TIMEOUT": "120"})
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    ledger = Ledger(factory)
    cc = CallCenter(settings, FlowRegistry(settings), PromptAudio(tmp / "var" / "prompts"),
                    ledger, lambda worker, msg: True)
    hub = EventHub()
    cc.publish = hub.publish
    work_ids = [f"{8000 + i}" for i in range(calls)]
    t0 = time.perf_counter()
    with session_scope(factory) as s:
        for w in work_ids:
            store_users.add_user(s, w, name=f"律师{w}", role=Role.LAWYER, password=PASSWORD,
                                 skills=[("general", 4)], languages=[Language.MANDARIN],
                                 sip_uri=f"sip:{w}@127.0.0.1:5999")
    print(f"{calls} lawyers created in {time.perf_counter() - t0:.1f} s (argon2)")
    port = _free_port()
    app = create_app(lambda: {}, factory, center=lambda: cc, hub=hub)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    base = f"http://127.0.0.1:{port}/api/v1"
    tokens = {}
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        for w in work_ids:
            reply = await http.post("/login", json={"work_id": w, "password": PASSWORD})
            tokens[w] = reply.json()["token"]
            await http.post("/agent/login", json={"accept_in_console": True},
                            headers={"Authorization": f"Bearer {tokens[w]}"})
    arrivals: list[list[float]] = [[] for _ in range(rounds)]
    got: asyncio.Queue[None] = asyncio.Queue()
    current = {"round": 0}

    async def listen(w: str) -> None:
        async with connect(f"ws://127.0.0.1:{port}/api/v1/events",
                           additional_headers={"Authorization": f"Bearer {tokens[w]}"},
                           max_queue=None) as ws:
            async for raw in ws:
                event = json.loads(raw)
                if event.get("type") == "offer":
                    arrivals[current["round"]].append(time.time() - float(event["at"]))
                    got.put_nowait(None)

    listeners = [asyncio.create_task(listen(w)) for w in work_ids]
    await asyncio.sleep(2.0)  # every client connected and greeted
    for r in range(rounds):
        current["round"] = r
        for i in range(calls):
            key = f"r{r}c{i}"
            call = LiveCall(key, "w1", f"sip-{key}", f"1380000{i:04d}", "12348", cc.now())
            call.queue, call.queued_since = "general", cc.now()
            cc.calls[key] = call
            cc.talk.queued(call)  # routes at once: every free lawyer gets one offer
        for _ in range(calls):
            await asyncio.wait_for(got.get(), 60)
        ms = sorted(x * 1000 for x in arrivals[r])
        print(f"round {r + 1}: {len(ms)} offers, p50 {statistics.median(ms):.1f} ms, "
              f"p95 {ms[int(0.95 * (len(ms) - 1))]:.1f} ms, "
              f"p99 {ms[int(0.99 * (len(ms) - 1))]:.1f} ms, max {ms[-1]:.1f} ms")
        for i in range(calls):  # free the lawyers for the next round
            key = f"r{r}c{i}"
            cc.on_worker_event("w1", p.LegEnded(key, "caller", "caller_hangup", 200))
        await asyncio.sleep(0.5)
        while cc.talk.console_offers:
            await asyncio.sleep(0.1)
    everything = sorted(x * 1000 for r in arrivals for x in r)
    print(f"all: {len(everything)} offers at {calls} concurrent calls: "
          f"p50 {statistics.median(everything):.1f} ms, "
          f"p95 {everything[int(0.95 * (len(everything) - 1))]:.1f} ms, "
          f"p99 {everything[int(0.99 * (len(everything) - 1))]:.1f} ms, "
          f"max {everything[-1]:.1f} ms")
    for task in listeners:
        task.cancel()
    server.should_exit = True
    await serving
    ledger.close()
    engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.rounds))
    sys.exit(0)
