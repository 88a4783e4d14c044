"""The consoles' event stream over a real uvicorn server in the coordinator's event loop:
a lawyer sees their desk state, the offer with the caller's masked facts, the call's state
and its end; another lawyer sees none of it; a supervisor sees everything; bad tokens are
refused.
"""

import asyncio
import json
import socket

import httpx
import pytest
import uvicorn
import websockets
from scripted import queue_caller, until

from hotline.api.app import create_app
from hotline.api.events import EventHub
from hotline.domain import Language, Role
from hotline.store import users as store_users
from hotline.store.session import session_scope
from hotline.telephony import protocol as p

PASSWORD = "correct-horse-1"


@pytest.fixture
async def served(make_center):
    cc, sent, factory, ledger = make_center()
    with session_scope(factory) as s:
        for work_id, role in (("8001", Role.LAWYER), ("8002", Role.LAWYER),
                              ("9001", Role.SUPERVISOR)):
            store_users.add_user(s, work_id, name=f"用户{work_id}", role=role,
                                 password=PASSWORD, skills=[("general", 4)],
                                 languages=[Language.MANDARIN],
                                 sip_uri=f"sip:{work_id}@10.0.0.1")
    hub = EventHub()
    cc.publish = hub.publish
    app = create_app(lambda: {}, factory, center=lambda: cc, hub=hub)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    yield cc, sent, port
    server.should_exit = True
    await task


async def _token(port, work_id):
    async with httpx.AsyncClient() as client:
        reply = await client.post(f"http://127.0.0.1:{port}/api/v1/login",
                                  json={"work_id": work_id, "password": PASSWORD})
        return reply.json()["token"]


async def _next(ws, kind, timeout=5.0):
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if event["type"] == kind:
            return event


async def test_offer_call_state_and_end_reach_the_right_consoles(served):
    cc, sent, port = served
    url = f"ws://127.0.0.1:{port}/api/v1/events"
    tokens = {w: await _token(port, w) for w in ("8001", "8002", "9001")}
    async with websockets.connect(f"{url}?token={tokens['8001']}") as lawyer, \
            websockets.connect(url, additional_headers={
                "Authorization": f"Bearer {tokens['8002']}"}) as other, \
            websockets.connect(f"{url}?token={tokens['9001']}") as boss:
        hello = json.loads(await lawyer.recv())
        assert hello["type"] == "hello" and hello["user"]["work_id"] == "8001"
        assert hello["agent"] is None
        for ws in (other, boss):
            assert json.loads(await ws.recv())["type"] == "hello"
        cc.desk.login("8001", "sip:8001@10.0.0.1", cc.now(), skills={"general": 4})
        agent = await _next(lawyer, "agent")
        assert (agent["status"], agent["state"]) == ("available", "idle")
        i = await queue_caller(cc, sent, number="13800138000")
        offer = await _next(lawyer, "offer")
        assert offer["caller"] == "138****8000" and offer["queue"]
        assert offer["ivr_path"] and offer["ticket_no"].startswith("12348-")
        assert offer["region"] == "" and offer["repeat"] is False and offer["at"] > 0
        history = await _next(lawyer, "caller_history")
        assert history["call"] == offer["call"] and history["tickets"] == []
        assert (await _next(boss, "offer"))["call"] == offer["call"]
        board = await _next(boss, "stats")  # the wallboard follows the queue
        assert board["agents"] and "queues" in board
        i, ring = await until(sent, p.Originate, i)
        cc.on_worker_event("w1", p.LegAnswered("k1", ring.leg))
        state = await _next(lawyer, "call")
        assert state["state"] == "talking"
        cc.talk.hold("k1")
        assert (await _next(lawyer, "call"))["state"] == "held"
        cc.on_worker_event("w1", p.LegEnded("k1", "caller", "remote_hangup", 200))
        cc.on_worker_event("w1", p.LegEnded("k1", ring.leg, "caller_gone", 0))
        ended = await _next(lawyer, "call_ended")
        assert ended["reason"] == "caller_hangup"
        assert (await _next(boss, "call_ended"))["call"] == "k1"
        with pytest.raises(TimeoutError):  # the other lawyer saw nothing of it
            await _next(other, "offer", timeout=0.5)


@pytest.mark.parametrize("query", ["", "?token=nope"])
async def test_bad_tokens_are_refused(served, query):
    cc, sent, port = served
    with pytest.raises(websockets.exceptions.InvalidStatus):
        async with websockets.connect(f"ws://127.0.0.1:{port}/api/v1/events{query}"):
            pass
