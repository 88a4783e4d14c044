"""The duty desk through the coordinator with a scripted worker: lawyers log in, callers
are offered to the right phone, misses and wrap-up change who is rung next.
"""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from scripted import queue_caller, until

from hotline.acd.desk import Desk
from hotline.config import load_settings
from hotline.domain import AgentState, AgentStatus, Language, Priority, Role
from hotline.errors import DomainError
from hotline.store import users as store_users
from hotline.store.session import session_scope
from hotline.telephony import protocol as p

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


async def test_lawyers_are_rung_on_their_phones_and_wrap_up(make_center):
    cc, sent, factory, ledger = make_center()
    now = cc.now()
    cc.desk.login("8001", "sip:8001@10.0.0.1", now, skills={"general": 4})
    cc.desk.login("8002", "sip:8002@10.0.0.2", now + timedelta(seconds=1),
                  skills={"general": 2})
    i = await queue_caller(cc, sent)
    i, ring = await until(sent, p.Originate, i)
    first = ring.uri
    assert cc.desk.agents[first[4:8]].state is AgentState.RINGING
    cc.on_worker_event("w1", p.LegEnded("k1", ring.leg, "no_answer", 408))  # missed
    i, ring2 = await until(sent, p.Originate, i + 1)
    assert ring2.uri != first
    cc.on_worker_event("w1", p.LegAnswered("k1", ring2.leg))
    await until(sent, p.Connect, i, legs=("caller", ring2.leg))
    taker = ring2.uri[4:8]
    assert cc.desk.agents[taker].state is AgentState.IN_CALL
    assert cc.desk.agents[first[4:8]].missed == 1
    with pytest.raises(DomainError):
        cc.desk.logout(taker, cc.now())  # not in the middle of a call
    cc.on_worker_event("w1", p.LegEnded("k1", ring2.leg, "remote_hangup", 200))
    await asyncio.sleep(0.05)
    assert cc.desk.agents[taker].state is AgentState.WRAP_UP
    assert cc.desk.agents[taker].calls == 1


async def test_a_queued_caller_waits_for_a_lawyer_who_logs_in_later(make_center):
    cc, sent, factory, ledger = make_center()
    i = await queue_caller(cc, sent)
    await asyncio.sleep(1.2)
    assert not [m for _, m in sent if isinstance(m, p.Originate)]
    cc.desk.login("8003", "sip:8003@10.0.0.3", cc.now(), skills={"general": 3})
    await until(sent, p.Originate, i, uri="sip:8003@10.0.0.3", timeout=3)  # next tick


async def test_a_caller_hanging_up_releases_the_ringing_lawyer(make_center):
    cc, sent, factory, ledger = make_center()
    cc.desk.login("8001", "sip:8001@10.0.0.1", cc.now(), skills={"general": 4})
    i = await queue_caller(cc, sent)
    i, ring = await until(sent, p.Originate, i)
    cc.on_worker_event("w1", p.LegEnded("k1", "caller", "remote_hangup", 200))
    cc.on_worker_event("w1", p.LegEnded("k1", ring.leg, "caller_gone", 0))
    await asyncio.sleep(0.05)
    agent = cc.desk.agents["8001"]
    assert agent.takes_calls and agent.missed == 0  # released, not a miss
    assert not cc.desk.waiting


def test_desk_pause_resume_logout_and_missed_offers_break():
    settings = load_settings(environ={})
    desk = Desk(settings.queues)
    desk.login("8001", "sip:8001@h", T0, skills={"labor": 5})
    desk.pause("8001", "lunch", T0)
    assert desk.agents["8001"].status is AgentStatus.ON_BREAK
    desk.resume("8001", T0)
    for n in range(3):
        desk.enqueue(f"c{n}", "labor", T0, priority=Priority.GREEN)
        [offer] = desk.route(T0)
        assert offer.agents == ("8001",)
        desk.ringing("8001", T0)
        desk.missed("8001", offer.call, T0)
        desk.withdraw(offer.call)
    assert desk.agents["8001"].status is AgentStatus.ON_BREAK  # three misses in a row
    assert desk.agents["8001"].break_reason == "missed_offers"
    desk.logout("8001", T0)
    assert "8001" not in desk.agents
    with pytest.raises(DomainError) as err:
        desk.pause("8001", "x", T0)
    assert err.value.code == "agent.not_logged_in"
    with pytest.raises(DomainError):
        desk.login("8002", "", T0)
    # wrap-up is the longest of the lawyer's queues'
    desk.login("8003", "sip:8003@h", T0, skills={"labor": 3},
               languages=frozenset({Language.MANDARIN}))
    assert desk.wrap_up_seconds("8003") == settings.queues["labor"].wrap_up


async def test_a_repeat_caller_is_offered_to_the_lawyer_of_their_last_ticket(make_center):
    cc, sent, factory, ledger = make_center()
    with session_scope(factory) as s:
        for work_id in ("8001", "8002"):
            store_users.add_user(s, work_id, name="律师", role=Role.LAWYER,
                                 password="correct-horse-1")
    cc.desk.login("8001", "sip:8001@h", cc.now(), skills={"general": 4})
    i = await queue_caller(cc, sent, "k1")
    assert not cc.calls["k1"].facts.repeat  # its own new ticket does not count
    i, ring = await until(sent, p.Originate, i)
    cc.on_worker_event("w1", p.LegAnswered("k1", ring.leg))
    await until(sent, p.Connect, i)
    cc.on_worker_event("w1", p.LegEnded("k1", "caller", "remote_hangup", 200))
    cc.on_worker_event("w1", p.LegEnded("k1", ring.leg, "caller_gone", 0))
    await asyncio.sleep(0.05)
    cc.desk.wrap_done("8001", cc.now())
    # 8002 has been idle longest: without 首问负责 the next caller would go to them.
    cc.desk.login("8002", "sip:8002@h", cc.now() - timedelta(hours=1), skills={"general": 4})
    cc.desk.agents["8002"] = replace(cc.desk.agents["8002"], since=cc.now() - timedelta(hours=1))
    ledger.flush()
    i = await queue_caller(cc, sent, "k2")  # the same number calls again
    i, ring = await until(sent, p.Originate, i, call="k2")
    assert cc.calls["k2"].facts.last_lawyer == "8001", cc.calls["k2"].facts
    assert ring.uri == "sip:8001@h"


async def test_asking_for_a_lawyer_by_work_id(make_center):
    cc, sent, factory, ledger = make_center()
    cc.desk.login("8001", "sip:8001@h", cc.now(), skills={"general": 1})
    cc.desk.login("8002", "sip:8002@h", cc.now(), skills={"general": 5})
    cc.on_worker_event("w1", p.CallOffered("k1", "sip-k1", "sip:139@h", "12348", "r"))
    cc.on_worker_event("w1", p.LegAnswered("k1", "caller"))
    i, _ = await until(sent, p.PlayFiles)
    call = cc.calls["k1"]
    cc.talk.ask_for(call, "8001", 1)  # 点名: only 8001 rings, for 1 s
    i, ring = await until(sent, p.Originate, i)
    assert ring.uri == "sip:8001@h"
    cc.on_worker_event("w1", p.LegRinging("k1", ring.leg))
    await until(sent, p.Hangup, i, leg=ring.leg, reason="overflow", timeout=3)
    assert not call.queued and "k1" not in cc.desk.waiting
    assert not [m for _, m in sent[i:] if isinstance(m, p.Originate) and m.uri == "sip:8002@h"]
