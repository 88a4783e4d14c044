"""The lawyers' desk over the API, in the coordinator's own event loop: sign in, be offered
a queued caller, hold and transfer it; other lawyers and other roles are refused.
"""

import asyncio

import httpx
import pytest
from scripted import queue_caller, until
from sqlalchemy import select

from hotline.api.app import create_app
from hotline.domain import CallEventKind, Language, Role
from hotline.store import agents as ledger_agents
from hotline.store import users as store_users
from hotline.store.session import session_scope
from hotline.store.tables import CallEvent
from hotline.telephony import protocol as p

PASSWORD = "correct-horse-1"


@pytest.fixture
async def desk(make_center):
    cc, sent, factory, ledger = make_center()
    with session_scope(factory) as s:
        for work_id, role in (("8001", Role.LAWYER), ("8002", Role.LAWYER),
                              ("9001", Role.SUPERVISOR), ("7001", Role.SCHEDULER)):
            store_users.add_user(s, work_id, name=f"用户{work_id}", role=role,
                                 password=PASSWORD, skills=[("general", 4)],
                                 languages=[Language.MANDARIN],
                                 sip_uri=f"sip:{work_id}@10.0.0.1")
    app = create_app(lambda: {}, factory, center=lambda: cc)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://hotline") as client:
        tokens = {}
        for work_id in ("8001", "8002", "9001", "7001"):
            reply = await client.post("/api/v1/login",
                                      json={"work_id": work_id, "password": PASSWORD})
            tokens[work_id] = {"Authorization": f"Bearer {reply.json()['token']}"}
        yield cc, sent, client, tokens


async def test_sign_in_take_a_call_hold_and_transfer(desk):
    cc, sent, client, tokens = desk
    lawyer = tokens["8001"]
    state = (await client.post("/api/v1/agent/login", json={}, headers=lawyer)).json()
    assert (state["status"], state["state"], state["phone"]) == ("available", "idle",
                                                                 "sip:8001@10.0.0.1")
    i = await queue_caller(cc, sent, number="13800138000")
    i, ring = await until(sent, p.Originate, i, uri="sip:8001@10.0.0.1")
    assert (await client.get("/api/v1/agent", headers=lawyer)).json()["state"] == "ringing"
    cc.on_worker_event("w1", p.LegAnswered("k1", ring.leg))
    await until(sent, p.Connect, i, legs=("caller", ring.leg))
    [mine] = (await client.get("/api/v1/calls/mine", headers=lawyer)).json()
    assert mine["call"] == "k1" and mine["state"] == "talking"
    assert mine["caller"] == "138****8000"  # masked
    # Another lawyer cannot see or command it; a scheduler has no desk at all.
    other = await client.post("/api/v1/calls/k1/hold", headers=tokens["8002"])
    assert other.status_code == 404 and other.json()["code"] == "call.not_found"
    assert (await client.get("/api/v1/agent", headers=tokens["7001"])).status_code == 403
    assert (await client.post("/api/v1/calls/k1/hold")).status_code == 401
    held = await client.post("/api/v1/calls/k1/hold", headers=lawyer)
    assert held.status_code == 200 and held.json()["state"] == "held"
    again = await client.post("/api/v1/calls/k1/hold", headers=lawyer)
    assert again.status_code == 409 and again.json()["code"] == "call.bad_state"
    assert cc.calls["k1"].held  # nothing changed by the refused command
    bad = await client.post("/api/v1/calls/k1/transfer", json={"attended": True},
                            headers=lawyer)
    assert bad.status_code == 422
    wrong = await client.post("/api/v1/calls/k1/transfer", json={"target": "转给张律师"},
                              headers=lawyer)
    assert wrong.status_code == 409 and wrong.json()["code"] == "call.bad_target"
    assert (await client.post("/api/v1/calls/k1/unhold", headers=lawyer)).status_code == 200
    n = len(sent)
    moved = await client.post("/api/v1/calls/k1/transfer", json={"target": "12345"},
                              headers=lawyer)
    assert moved.status_code == 200
    await until(sent, p.Hangup, n, leg=ring.leg, reason="transferred")
    await until(sent, p.Originate, n, uri="sip:12345@127.0.0.1:5060")
    # The supervisor may command any call.
    assert (await client.post("/api/v1/calls/nope/hangup",
                              headers=tokens["9001"])).status_code == 404


async def test_break_and_logout(desk):
    cc, sent, client, tokens = desk
    lawyer = tokens["8001"]
    assert (await client.post("/api/v1/agent/status", json={"status": "available"},
                              headers=lawyer)).json()["code"] == "agent.not_logged_in"
    await client.post("/api/v1/agent/login", json={"phone": "sip:8001@10.9.9.9"},
                      headers=lawyer)
    paused = await client.post("/api/v1/agent/status",
                               json={"status": "on_break", "reason": "午休"}, headers=lawyer)
    assert paused.json()["status"] == "on_break" and paused.json()["break_reason"] == "午休"
    i = await queue_caller(cc, sent, number="13800138000")
    await asyncio.sleep(1.2)  # nobody available: nobody is rung
    assert not [m for _, m in sent[i:] if isinstance(m, p.Originate)]
    await client.post("/api/v1/agent/status", json={"status": "available"}, headers=lawyer)
    await until(sent, p.Originate, i, uri="sip:8001@10.9.9.9")
    bad = await client.post("/api/v1/agent/status", json={"status": "dancing"},
                            headers=lawyer)
    assert bad.status_code == 422


async def test_without_telephony_the_desk_is_503(make_center):
    cc, sent, factory, ledger = make_center()
    with session_scope(factory) as s:
        store_users.add_user(s, "8001", name="律师", role=Role.LAWYER, password=PASSWORD)
    app = create_app(lambda: {}, factory)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://hotline") as client:
        token = (await client.post("/api/v1/login", json={"work_id": "8001",
                                                          "password": PASSWORD})).json()
        reply = await client.get("/api/v1/agent",
                                 headers={"Authorization": f"Bearer {token['token']}"})
    assert reply.status_code == 503 and reply.json()["code"] == "telephony.disabled"


async def test_reject_passes_the_caller_on_and_the_desk_timeline_is_kept(desk):
    cc, sent, client, tokens = desk
    for work_id in ("8001", "8002"):
        await client.post("/api/v1/agent/login", json={}, headers=tokens[work_id])
    i = await queue_caller(cc, sent)
    i, ring = await until(sent, p.Originate, i)
    first = ring.uri[4:8]
    second = "8002" if first == "8001" else "8001"
    nobody = await client.post("/api/v1/offers/k1/reject", headers=tokens[second])
    assert nobody.status_code == 404  # not ringing for them: not theirs to see
    rejected = await client.post("/api/v1/offers/k1/reject", headers=tokens[first])
    assert rejected.status_code == 200
    i, hangup = await until(sent, p.Hangup, i, leg=ring.leg, reason="rejected")
    cc.on_worker_event("w1", p.LegEnded("k1", ring.leg, "rejected", 603))
    await until(sent, p.Originate, i, uri=f"sip:{second}@10.0.0.1")
    me = (await client.get("/api/v1/agent", headers=tokens[first])).json()
    assert me["state"] == "idle" and me["missed"] == 0  # declining is not missing
    timeline = await cc.ledger.run(ledger_agents.timeline, first)
    kinds = [(kind, state) for _, kind, _, state in timeline]
    assert kinds[0] == ("login", "idle")
    assert ("state", "ringing") in kinds and kinds[-1] == ("state", "idle")


async def test_history_of_the_caller_and_the_wallboard(desk):
    cc, sent, client, tokens = desk
    lawyer = tokens["8001"]
    # An earlier call of the same number, never answered by a lawyer.
    cc.on_worker_event("w1", p.CallOffered("k0", "sip-k0", "sip:13800138000@h", "12348", "r"))
    cc.on_worker_event("w1", p.LegAnswered("k0", "caller"))
    await until(sent, p.PlayFiles, call="k0")
    first_ticket = cc.calls["k0"].ticket_no
    cc.on_worker_event("w1", p.LegEnded("k0", "caller", "remote_hangup", 200))
    await asyncio.sleep(0.05)
    i = await queue_caller(cc, sent, number="13800138000")
    board = (await client.get("/api/v1/stats", headers=tokens["9001"])).json()
    assert sum(q["waiting"] for q in board["queues"].values()) == 1
    assert (await client.get("/api/v1/stats", headers=lawyer)).status_code == 200  # counts
    assert (await client.get("/api/v1/stats", headers=tokens["7001"])).status_code == 403
    await client.post("/api/v1/agent/login", json={}, headers=lawyer)
    i, ring = await until(sent, p.Originate, i)
    cc.on_worker_event("w1", p.LegAnswered("k1", ring.leg))
    await until(sent, p.Connect, i)
    cc.ledger.flush()
    history = (await client.get("/api/v1/calls/k1/history", headers=lawyer)).json()
    assert [h["ticket_no"] for h in history] == [first_ticket]
    assert history[0]["status"] == "accepted" and "summary" in history[0]
    assert (await client.get("/api/v1/calls/k1/history",
                             headers=tokens["8002"])).status_code == 404
    board = (await client.get("/api/v1/stats", headers=tokens["9001"])).json()
    assert board["agents"] == {"in_call": 1} and board["calls"] == 1


async def test_wrap_up_closes_the_ticket_and_frees_the_lawyer(desk):
    cc, sent, client, tokens = desk
    lawyer = tokens["8001"]
    await client.post("/api/v1/agent/login", json={}, headers=lawyer)
    i = await queue_caller(cc, sent, number="13800138000")
    i, ring = await until(sent, p.Originate, i)
    cc.on_worker_event("w1", p.LegAnswered("k1", ring.leg))
    await until(sent, p.Connect, i)
    ticket = cc.calls["k1"].ticket_no
    cc.on_worker_event("w1", p.LegEnded("k1", "caller", "remote_hangup", 200))
    cc.on_worker_event("w1", p.LegEnded("k1", ring.leg, "caller_gone", 0))
    await asyncio.sleep(0.05)
    cc.ledger.flush()
    assert (await client.get("/api/v1/agent", headers=lawyer)).json()["state"] == "wrap_up"
    url = f"/api/v1/tickets/{ticket}/wrapup"
    incomplete = await client.put(url, json={"disposition": "answered"}, headers=lawyer)
    assert incomplete.status_code == 422
    assert incomplete.json()["message"] == ("话后整理未完成: 请选择咨询类别; 请填写事项; "
                                            "请填写答复意见")
    bad = await client.put(url, json={"disposition": "shrug"}, headers=lawyer)
    assert bad.status_code == 422 and bad.json()["code"] == "api.bad_request"
    other = await client.put(url, json={"disposition": "dropped"}, headers=tokens["8002"])
    assert other.status_code == 404 and other.json()["code"] == "ticket.not_found"
    done = await client.put(url, json={
        "disposition": "answered", "category": "labor", "summary": "工资被拖欠三个月",
        "answer": "可向劳动监察大队投诉, 或申请劳动仲裁", "tags": ["欠薪"]}, headers=lawyer)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "closed" and done.json()["closed_at"]
    assert (await client.get("/api/v1/agent", headers=lawyer)).json()["state"] == "idle"
    again = await client.put(url, json={"disposition": "dropped"}, headers=lawyer)
    assert again.status_code == 409 and again.json()["code"] == "ticket.closed"
    history = (await client.get("/api/v1/calls/mine", headers=lawyer)).json()
    assert history == []


async def test_the_supervisor_sees_why_a_lawyer_is_on_break_and_puts_them_back(desk):
    cc, sent, client, tokens = desk
    await client.post("/api/v1/agent/login", json={}, headers=tokens["8001"])
    for n in range(3):  # three offers missed in a row
        i = await queue_caller(cc, sent, key=f"m{n}")
        i, ring = await until(sent, p.Originate, i, call=f"m{n}")
        cc.on_worker_event("w1", p.LegEnded(f"m{n}", ring.leg, "no_answer", 408))
        if n < 2:  # still available: the waiting caller is offered again, then hangs up
            i, again = await until(sent, p.Originate, i + 1, call=f"m{n}")
            cc.on_worker_event("w1", p.LegEnded(f"m{n}", "caller", "remote_hangup", 200))
            cc.on_worker_event("w1", p.LegEnded(f"m{n}", again.leg, "caller_gone", 0))
        else:
            cc.on_worker_event("w1", p.LegEnded(f"m{n}", "caller", "remote_hangup", 200))
        await asyncio.sleep(0.05)
    [row] = (await client.get("/api/v1/agents", headers=tokens["9001"])).json()
    assert (row["work_id"], row["status"], row["break_reason"]) == (
        "8001", "on_break", "missed_offers")
    assert (await client.get("/api/v1/agents", headers=tokens["8001"])).status_code == 403
    back = await client.post("/api/v1/agents/8001/status", json={"status": "available"},
                             headers=tokens["9001"])
    assert back.status_code == 200 and back.json()["status"] == "available"
    nobody = await client.post("/api/v1/agents/4040/status", json={"status": "available"},
                               headers=tokens["9001"])
    assert nobody.status_code == 409 and nobody.json()["code"] == "agent.not_logged_in"


async def test_transfer_to_a_colleague_by_work_id_and_to_a_queue(desk):
    cc, sent, client, tokens = desk
    for work_id in ("8001", "8002"):
        await client.post("/api/v1/agent/login", json={}, headers=tokens[work_id])
    i = await queue_caller(cc, sent)
    i, ring = await until(sent, p.Originate, i)
    first = ring.uri[4:8]
    second = "8002" if first == "8001" else "8001"
    cc.on_worker_event("w1", p.LegAnswered("k1", ring.leg))
    await until(sent, p.Connect, i, legs=("caller", ring.leg))
    url = "/api/v1/calls/k1/transfer"
    both = await client.post(url, json={"target": "12345", "queue": "labor"},
                             headers=tokens[first])
    assert both.status_code == 422
    # attended, to the colleague by work id
    n = len(sent)
    moved = await client.post(url, json={"lawyer": second, "attended": True},
                              headers=tokens[first])
    assert moved.status_code == 200 and moved.json()["state"] == "consulting"
    i, consult = await until(sent, p.Originate, n, uri=f"sip:{second}@10.0.0.1")
    assert cc.desk.agents[second].state.value == "ringing"
    cc.on_worker_event("w1", p.LegAnswered("k1", consult.leg))
    assert (await client.post("/api/v1/calls/k1/complete",
                              headers=tokens[first])).status_code == 200
    cc.on_worker_event("w1", p.LegEnded("k1", ring.leg, "transferred", 200))
    await asyncio.sleep(0.05)
    assert cc.desk.agents[first].state.value == "wrap_up"  # the first lawyer is done
    assert cc.desk.agents[second].state.value == "in_call"
    # the colleague sends the caller on to the labour queue; the first lawyer is in wrap-up
    busy = await client.post(url, json={"lawyer": first}, headers=tokens[second])
    assert busy.status_code == 409 and busy.json()["code"] == "call.lawyer_busy"
    n = len(sent)
    queued = await client.post(url, json={"queue": "labor"}, headers=tokens[second])
    assert queued.status_code == 200 and queued.json()["state"] == "queued"
    await until(sent, p.Hangup, n, leg=consult.leg, reason="transferred")
    assert cc.calls["k1"].queue == "labor" and "k1" in cc.desk.waiting
    nowhere = await client.post(url, json={"queue": "nope"}, headers=tokens["9001"])
    assert nowhere.status_code == 409 and nowhere.json()["code"] == "call.bad_state"


async def test_console_accept_dials_the_phone_only_after_the_lawyer_accepts(desk):
    cc, sent, client, tokens = desk
    lawyer = tokens["8001"]
    await client.post("/api/v1/agent/login", json={"accept_in_console": True}, headers=lawyer)
    i = await queue_caller(cc, sent, number="13800138000")
    await asyncio.sleep(0.3)
    assert not [m for _, m in sent[i:] if isinstance(m, p.Originate)]  # not dialled yet
    assert (await client.get("/api/v1/agent", headers=lawyer)).json()["state"] == "reserved"
    # The offered lawyer may read the caller's history before accepting; others may not.
    assert (await client.get("/api/v1/calls/k1/history", headers=lawyer)).status_code == 200
    assert (await client.get("/api/v1/calls/k1/history",
                             headers=tokens["8002"])).status_code == 404
    assert (await client.post("/api/v1/offers/k1/accept",
                              headers=tokens["8002"])).status_code == 404
    assert (await client.post("/api/v1/offers/nope/accept",
                              headers=lawyer)).json()["code"] == "offer.not_found"
    accepted = await client.post("/api/v1/offers/k1/accept", headers=lawyer)
    assert accepted.status_code == 200 and accepted.json()["state"] == "ringing"
    i, ring = await until(sent, p.Originate, i, uri="sip:8001@10.0.0.1")
    again = await client.post("/api/v1/offers/k1/accept", headers=lawyer)
    assert again.status_code == 409 and again.json()["code"] == "offer.answer_on_phone"
    cc.on_worker_event("w1", p.LegAnswered("k1", ring.leg))
    await until(sent, p.Connect, i, legs=("caller", ring.leg))
    assert (await client.get("/api/v1/agent", headers=lawyer)).json()["state"] == "in_call"


async def test_a_console_offer_rejected_or_left_to_time_out_passes_the_caller_on(make_center):
    cc, sent, factory, ledger = make_center(HOTLINE_TELEPHONY_RING_TIMEOUT="5",
                                          HOTLINE_TELEPHONY_QUEUE_WAIT="60")
    with session_scope(factory) as s:
        for work_id in ("8001", "8002"):
            store_users.add_user(s, work_id, name="律师", role=Role.LAWYER, password=PASSWORD,
                                 skills=[("general", 4)], sip_uri=f"sip:{work_id}@10.0.0.1")
    app = create_app(lambda: {}, factory, center=lambda: cc)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://hotline") as client:
        tokens = {}
        for work_id in ("8001", "8002"):
            reply = await client.post("/api/v1/login",
                                      json={"work_id": work_id, "password": PASSWORD})
            assert reply.status_code == 200, reply.text
            tokens[work_id] = {"Authorization": f"Bearer {reply.json()['token']}"}
            await client.post("/api/v1/agent/login", json={"accept_in_console": True},
                              headers=tokens[work_id])
        await queue_caller(cc, sent)
        await asyncio.sleep(0.2)
        [first] = list(cc.talk.console_offers)
        second = "8002" if first == "8001" else "8001"
        rejected = await client.post("/api/v1/offers/k1/reject", headers=tokens[first])
        assert rejected.status_code == 200 and rejected.json()["missed"] == 0
        await asyncio.sleep(0.2)
        assert list(cc.talk.console_offers) == [second]
        await asyncio.sleep(5.2)  # ring timeout: a miss, and the offer moves on
        me = (await client.get("/api/v1/agent", headers=tokens[second])).json()
        assert me["missed"] == 1
        assert cc.talk.console_offers and second not in cc.talk.console_offers
        # The caller hangs up: the pending offer is withdrawn and the lawyer is free.
        cc.on_worker_event("w1", p.LegEnded("k1", "caller", "caller_hangup", 200))
        await asyncio.sleep(0.2)
        assert not cc.talk.console_offers
        states = {(await client.get("/api/v1/agent", headers=t)).json()["state"]
                  for t in tokens.values()}
        assert states == {"idle"}


async def test_a_lawyer_cannot_sign_out_mid_call_and_nothing_changes(desk):
    cc, sent, client, tokens = desk
    lawyer = tokens["8001"]
    await client.post("/api/v1/agent/login", json={}, headers=lawyer)
    i = await queue_caller(cc, sent)
    i, ring = await until(sent, p.Originate, i, uri="sip:8001@10.0.0.1")
    cc.on_worker_event("w1", p.LegAnswered("k1", ring.leg))
    await until(sent, p.Connect, i, legs=("caller", ring.leg))
    out = await client.post("/api/v1/agent/logout", headers=lawyer)
    assert out.status_code == 409 and out.json()["code"] == "agent.illegal_transition"
    assert (await client.get("/api/v1/agent", headers=lawyer)).json()["state"] == "in_call"
    [mine] = (await client.get("/api/v1/calls/mine", headers=lawyer)).json()
    assert mine["state"] == "talking"
    # After the call (and its wrap-up) signing out works.
    cc.on_worker_event("w1", p.LegEnded("k1", "caller", "remote_hangup", 200))
    cc.on_worker_event("w1", p.LegEnded("k1", ring.leg, "caller_gone", 200))
    await asyncio.sleep(0.1)
    cc.desk.wrap_done("8001", cc.now())
    done = await client.post("/api/v1/agent/logout", headers=lawyer)
    assert done.status_code == 200 and done.json()["status"] == "logged_out"


async def test_a_phone_that_never_answers_is_a_miss_and_the_next_lawyer_is_rung(make_center):
    cc, sent, factory, ledger = make_center(HOTLINE_TELEPHONY_RING_TIMEOUT="5",
                                            HOTLINE_TELEPHONY_QUEUE_WAIT="60")
    for work_id in ("8001", "8002"):
        cc.desk.login(work_id, f"sip:{work_id}@10.0.0.1", cc.now(), skills={"general": 4})
    i = await queue_caller(cc, sent)
    i, first = await until(sent, p.Originate, i)
    cc.on_worker_event("w1", p.LegRinging("k1", first.leg))
    # Nobody picks up: after the ring timeout the worker is told to stop ringing.
    i, stop = await until(sent, p.Hangup, i, leg=first.leg, timeout=7)
    assert stop.reason == "no_answer"
    cc.on_worker_event("w1", p.LegEnded("k1", first.leg, "no_answer", 487))
    i, second = await until(sent, p.Originate, i)
    assert second.uri != first.uri
    missed = first.uri[4:8]
    assert cc.desk.agents[missed].missed == 1
    ledger.flush()
    with factory() as s:
        rejected = [e.data for e in s.scalars(select(CallEvent).where(
            CallEvent.kind == CallEventKind.OFFER_REJECTED))]
    assert rejected and rejected[0]["reason"] == "no_answer"
