"""Lawyer legs through the coordinator with a scripted worker: ring, bridge, hold, transfers.

The media side of the same commands runs for real in tests/telephony/test_worker.py and
test_lawyers.py; here every decision and ledger row is checked step by step.
"""

import asyncio
from pathlib import Path

import pytest
from scripted import queue_caller, until
from sqlalchemy import select

from hotline import commands as cmd
from hotline.conversation import CallControlError
from hotline.domain import CallEventKind, EndReason, Priority
from hotline.store.tables import Call, CallEvent
from hotline.telephony import protocol as p

LAWYERS = '["sip:8001@127.0.0.1:7001", "sip:8002@127.0.0.1:7002"]'


async def _queued(cc, sent, key="k1"):
    """A caller who pressed 0 and now waits in the operator queue with music."""
    i = await queue_caller(cc, sent, key)
    i, hold = await until(sent, p.PlayFiles, i + 1, call=key, loop=True)
    return i, hold


async def _talking(cc, sent, key="k1"):
    i, hold = await _queued(cc, sent, key)
    i, ring = await until(sent, p.Originate, i, call=key)
    cc.on_worker_event("w1", p.LegRinging(key, ring.leg))
    cc.on_worker_event("w1", p.LegAnswered(key, ring.leg))
    i, connect = await until(sent, p.Connect, i, call=key)
    assert connect.legs == ("caller", ring.leg)
    await until(sent, p.StopPlayback, i - 1, call=key, token=hold.token)
    return i, ring.leg


def _kinds(factory, ledger=None):
    if ledger is not None:
        ledger.flush()
    with factory() as s:
        return [(e.kind, e.data) for e in s.scalars(select(CallEvent).order_by(CallEvent.id))]


def _call(factory):
    with factory() as s:
        return s.scalar(select(Call))


async def test_queued_caller_rings_the_next_lawyer_when_one_is_busy(make_center):
    cc, sent, factory, ledger = make_center(HOTLINE_TELEPHONY_LAWYER_URIS=LAWYERS)
    i, _ = await _queued(cc, sent)
    i, first = await until(sent, p.Originate, i)
    cc.on_worker_event("w1", p.LegEnded("k1", first.leg, "busy", 486))
    i, second = await until(sent, p.Originate, i + 1)
    assert second.uri != first.uri
    cc.on_worker_event("w1", p.LegAnswered("k1", second.leg))
    await until(sent, p.Connect, i, legs=("caller", second.leg))
    cc.on_worker_event("w1", p.LegEnded("k1", "caller", "remote_hangup", 200))
    cc.on_worker_event("w1", p.LegEnded("k1", second.leg, "caller_gone", 0))
    await asyncio.sleep(0.05)
    ledger.flush()
    call = _call(factory)
    assert call.end_reason is EndReason.CALLER_HANGUP and call.agent_answered_at
    kinds = [k for k, _ in _kinds(factory, ledger)]
    assert kinds.count(CallEventKind.OFFER) == 2
    assert CallEventKind.OFFER_REJECTED in kinds and CallEventKind.AGENT_ANSWERED in kinds


async def test_hold_unhold_and_wrong_state_commands(make_center):
    cc, sent, factory, ledger = make_center(HOTLINE_TELEPHONY_LAWYER_URIS=LAWYERS)
    i, lawyer = await _talking(cc, sent)
    with pytest.raises(CallControlError) as bad:
        cc.talk.unhold("k1")
    assert bad.value.code == "call.bad_state" and "talking" in str(bad.value)
    with pytest.raises(CallControlError):
        cc.talk.hold("nope")
    with pytest.raises(CallControlError) as bad:
        cc.talk.transfer("k1", "not a number")
    assert bad.value.code == "call.bad_target"
    n = len(sent)
    cc.talk.hold("k1")
    i, connect = await until(sent, p.Connect, n)
    assert connect.legs == (lawyer,)
    i, music = await until(sent, p.PlayFiles, n, loop=True)
    cc.talk.unhold("k1")
    await until(sent, p.StopPlayback, n, token=music.token)
    await until(sent, p.Connect, i + 1, legs=("caller", lawyer))
    # The lawyer hangs up: the main flow's survey follows, the reason stays the lawyer's.
    cc.on_worker_event("w1", p.LegEnded("k1", lawyer, "remote_hangup", 200))
    await asyncio.sleep(0.05)
    assert cc.calls["k1"].end_reason is EndReason.LAWYER_HANGUP
    kinds = [k for k, _ in _kinds(factory, ledger)]
    assert kinds.count(CallEventKind.HOLD) == 1 and kinds.count(CallEventKind.UNHOLD) == 1


async def test_blind_transfer_that_fails_recalls_the_lawyer(make_center):
    cc, sent, factory, ledger = make_center(HOTLINE_TELEPHONY_LAWYER_URIS=LAWYERS)
    i, lawyer = await _talking(cc, sent)
    first_uri = cc.calls["k1"].legs[lawyer].uri
    n = len(sent)
    target = cc.talk.transfer("k1", "sip:9001@127.0.0.1:7009")
    await until(sent, p.Hangup, n, leg=lawyer, reason="transferred")
    await until(sent, p.PlayFiles, n, loop=True)
    await until(sent, p.Originate, n, leg=target, uri="sip:9001@127.0.0.1:7009")
    cc.on_worker_event("w1", p.LegEnded("k1", lawyer, "transferred", 200))
    cc.on_worker_event("w1", p.LegEnded("k1", target, "no_answer", 408))
    i, recall = await until(sent, p.Originate, n + 3)
    assert recall.uri == first_uri
    cc.on_worker_event("w1", p.LegAnswered("k1", recall.leg))
    await until(sent, p.Connect, i, legs=("caller", recall.leg))
    assert cc.calls["k1"].lawyer == recall.leg
    stages = [d.get("stage") for k, d in _kinds(factory, ledger) if k is CallEventKind.TRANSFER]
    assert stages == ["started", "failed", "answered"]


async def test_attended_transfer_conference_and_the_lawyer_leaving(make_center):
    cc, sent, factory, ledger = make_center(HOTLINE_TELEPHONY_LAWYER_URIS=LAWYERS)
    i, lawyer = await _talking(cc, sent)
    n = len(sent)
    consult = cc.talk.transfer("k1", "sip:9002@127.0.0.1:7010", attended=True)
    await until(sent, p.Connect, n, legs=(lawyer,))  # the caller holds with music
    with pytest.raises(CallControlError):
        cc.talk.conference("k1")  # the consulted party has not answered yet
    cc.on_worker_event("w1", p.LegAnswered("k1", consult))
    await until(sent, p.Connect, n, legs=(lawyer, consult))
    cc.talk.conference("k1")
    await until(sent, p.Connect, n, legs=("caller", lawyer, consult))
    cc.talk.leave("k1", lawyer)
    await until(sent, p.Hangup, n, leg=lawyer, reason="left")
    cc.on_worker_event("w1", p.LegEnded("k1", lawyer, "left", 200))
    await until(sent, p.Connect, n, legs=("caller", consult))
    assert cc.calls["k1"].lawyer == consult and not cc.calls["k1"].conference
    kinds = [k for k, _ in _kinds(factory, ledger)]
    assert CallEventKind.CONFERENCE in kinds and CallEventKind.LEG_ENDED in kinds


async def test_ivr_transfer_to_an_outside_number_goes_through_the_front(make_center):
    cc, sent, factory, ledger = make_center(HOTLINE_SIP_PORT="5099")
    cc.on_worker_event("w1", p.CallOffered("k9", "sip-k9", "sip:13800000000@h", "12348", "r"))
    await until(sent, p.Answer)
    cc.on_worker_event("w1", p.LegAnswered("k9", "caller"))
    await until(sent, p.PlayFiles)
    call = cc.calls["k9"]
    cc.talk.call_out(call, "12345")
    i, out = await until(sent, p.Originate)
    assert out.uri == "sip:12345@127.0.0.1:5099"
    cc.on_worker_event("w1", p.LegAnswered("k9", out.leg))
    await until(sent, p.Connect, i, legs=("caller", out.leg))
    cc.on_worker_event("w1", p.LegEnded("k9", out.leg, "remote_hangup", 200))
    await until(sent, p.Hangup, i, reason="transferred")
    assert call.end_reason is EndReason.TRANSFERRED


async def test_calls_carried_through_a_restart_are_adopted_and_closed(make_center):
    cc, sent, factory, ledger = make_center(HOTLINE_TELEPHONY_LAWYER_URIS=LAWYERS)
    i, lawyer = await _talking(cc, sent)
    await asyncio.sleep(0.05)
    ledger.flush()
    # A new coordinator over the same ledger: the worker reports the call, then its end.
    cc2, sent2, _, ledger2 = make_center()
    cc2.on_worker_event("w1", p.WorkerReady("w1", 5100, 4, 1, ("sip-k1",)))
    cc2.on_worker_event("w1", p.CallHeld("k1", "sip-k1", ("caller", lawyer),
                                         ("caller", lawyer)))
    cc2.on_worker_event("w1", p.LegEnded("k1", "caller", "remote_hangup", 200, 1.8e9))
    cc2.on_worker_event("w1", p.LegEnded("k1", lawyer, "caller_gone", 0, 1.8e9))
    cc2.on_worker_event("w1", p.RecordingDone("k1", 1, "/nonexistent.wav", 9.0, "cd" * 32))
    for _ in range(100):
        if "k1" not in cc2.calls:
            break
        await asyncio.sleep(0.02)
    ledger2.flush()
    call = _call(factory)
    assert call.end_reason is EndReason.CALLER_HANGUP
    assert call.ended_at.timestamp() == pytest.approx(1.8e9)
    assert any(d.get("adopted") for k, d in _kinds(factory, ledger) if k is CallEventKind.IVR_NOTE)


def _open_rows(factory):
    with factory() as s:
        return s.scalars(select(Call).where(Call.ended_at.is_(None))).all()


@pytest.mark.parametrize("state", ["ivr", "queued", "ringing", "talking", "held",
                                   "consulting", "conference", "blind_transfer"])
async def test_caller_hangs_up_in_every_state(make_center, state):
    cc, sent, factory, ledger = make_center(HOTLINE_TELEPHONY_LAWYER_URIS=LAWYERS)
    expected = {"ivr": EndReason.CALLER_HANGUP, "queued": EndReason.ABANDONED,
                "ringing": EndReason.ABANDONED}.get(state, EndReason.CALLER_HANGUP)
    legs = []
    if state == "ivr":
        cc.on_worker_event("w1", p.CallOffered("k1", "sip-k1", "sip:13800000000@h", "12348",
                                               "r"))
        cc.on_worker_event("w1", p.LegAnswered("k1", "caller"))
        await until(sent, p.PlayFiles)
    elif state in ("queued", "ringing"):
        i, _ = await _queued(cc, sent)
        i, ring = await until(sent, p.Originate, i)
        if state == "queued":  # the lawyer was busy; the next try waits
            cc.on_worker_event("w1", p.LegEnded("k1", ring.leg, "busy", 486))
        else:
            cc.on_worker_event("w1", p.LegRinging("k1", ring.leg))
            legs.append(ring.leg)
    else:
        i, lawyer = await _talking(cc, sent)
        legs.append(lawyer)
        if state == "held":
            cc.talk.hold("k1")
        elif state in ("consulting", "conference"):
            consult = cc.talk.transfer("k1", "sip:9002@127.0.0.1:7010", attended=True)
            cc.on_worker_event("w1", p.LegAnswered("k1", consult))
            legs.append(consult)
            if state == "conference":
                cc.talk.conference("k1")
        elif state == "blind_transfer":
            target = cc.talk.transfer("k1", "12345")
            cc.on_worker_event("w1", p.LegEnded("k1", lawyer, "transferred", 200))
            legs = [target]
    await asyncio.sleep(0.05)
    # The caller hangs up; the worker ends the other legs and closes the recording.
    cc.on_worker_event("w1", p.LegEnded("k1", "caller", "remote_hangup", 200))
    for leg in legs:
        cc.on_worker_event("w1", p.LegEnded("k1", leg, "caller_gone", 0))
    cc.on_worker_event("w1", p.RecordingDone("k1", 1, "/gone.wav", 1.0, "ef" * 32))
    await asyncio.sleep(0.1)
    ledger.flush()
    call = _call(factory)
    assert call.end_reason is expected, state
    assert not _open_rows(factory)
    assert "k1" not in cc.calls
    kinds = [k for k, _ in _kinds(factory, ledger)]
    assert kinds[-1] is CallEventKind.ENDED and kinds.count(CallEventKind.ENDED) == 1
    with pytest.raises(CallControlError):
        cc.talk.hold("k1")  # nothing is left to command
    # No timer fires into the closed call later (ring timeouts, overflow, retries).
    n = len(sent)
    await asyncio.sleep(0.3)
    assert not [m for _, m in sent[n:] if getattr(m, "call", "") == "k1"]


async def test_waiting_callers_hear_their_place_then_music_again(make_center):
    cc, sent, factory, ledger = make_center()
    cc.on_worker_event("w1", p.CallOffered("k1", "sip-k1", "sip:13800000000@h", "12348", "r"))
    cc.on_worker_event("w1", p.LegAnswered("k1", "caller"))
    await until(sent, p.PlayFiles)
    call = cc.calls["k1"]
    n = len(sent)
    cc._enqueue(call, cmd.Enqueue("general", (), Priority.NORMAL, None, True, True, 1,
                                  "hold_music", False, "cantonese", None))
    assert call.language.value == "cantonese"
    i, music = await until(sent, p.PlayFiles, n, loop=True)
    i, stop = await until(sent, p.StopPlayback, i + 1, token=music.token, timeout=5)
    i, spoken = await until(sent, p.PlayFiles, i + 1, timeout=10)
    assert not spoken.loop and Path(spoken.paths[0]).stat().st_size > 1000
    cc.on_worker_event("w1", p.PlaybackDone("k1", spoken.token))
    await until(sent, p.PlayFiles, i + 1, loop=True)  # the music is back


async def test_a_call_past_the_longest_duration_is_ended_as_timeout(make_center):
    cc, sent, factory, ledger = make_center()
    telephony = cc.settings.telephony.model_copy(update={"max_call_seconds": 1})
    cc.settings = cc.settings.model_copy(update={"telephony": telephony})
    cc.on_worker_event("w1", p.CallOffered("k1", "sip-k1", "sip:13800000000@h", "12348", "r"))
    cc.on_worker_event("w1", p.LegAnswered("k1", "caller"))
    await until(sent, p.Hangup, reason="timeout", timeout=5)
    cc.on_worker_event("w1", p.LegEnded("k1", "caller", "timeout", 200))
    await asyncio.sleep(0.05)
    ledger.flush()
    assert _call(factory).end_reason is EndReason.TIMEOUT
