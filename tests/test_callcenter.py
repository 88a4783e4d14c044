"""The coordinator with a scripted worker: ledger rows, IVR commands, end reasons.

The real worker and front are exercised in tests/telephony; this drives the pure call logic
through the real ledger (SQLite), real flows and real prompt audio.
"""

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from hotline.domain import CallEventKind, EndReason
from hotline.store.tables import Call, CallEvent, Recording, Ticket
from hotline.telephony import protocol as p

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def center(make_center):
    return make_center()


async def _until(sent, kind, start=0, timeout=10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for i in range(start, len(sent)):
            if isinstance(sent[i][1], kind):
                return i, sent[i][1]
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {kind.__name__} in {sent[start:]}")


def _events(factory, call_id):
    with factory() as s:
        return [(e.kind, e.data) for e in s.scalars(
            select(CallEvent).where(CallEvent.call_id == call_id).order_by(CallEvent.seq))]


async def test_call_walks_the_main_flow_into_a_queue_then_abandons(center):
    cc, sent, factory, ledger = center
    cc.on_worker_event("w1", p.CallOffered("k1", "sip-1@x", "<sip:13800000000@127.0.0.1>",
                                           "12348", "127.0.0.1:5060"))
    i, answer = await _until(sent, p.Answer)
    assert answer == p.Answer("k1")  # at once: the row is written meanwhile
    cc.on_worker_event("w1", p.LegAnswered("k1", "caller"))
    i, record = await _until(sent, p.Record)
    with factory() as s:  # the call row and its first event exist once anything plays
        call = s.scalar(select(Call))
        assert call.caller_number == "13800000000" and call.flow == "main"
    first_play = next(n for n, (_, m) in enumerate(sent) if isinstance(m, p.PlayFiles))
    assert first_play > i  # recording first, then the prompts
    assert record.path.endswith(f"{cc.calls['k1'].ticket_no}.wav")
    i, play = await _until(sent, p.PlayFiles, i)
    assert all(Path(x).exists() for x in play.paths) and len(play.paths) == 2  # notice
    cc.on_worker_event("w1", p.PlaybackDone("k1", play.token))
    i, play = await _until(sent, p.PlayFiles, i + 1)  # language menu
    cc.on_worker_event("w1", p.Digit("k1", "caller", "1"))
    i, play = await _until(sent, p.PlayFiles, i + 1)  # category menu (after stop)
    cc.on_worker_event("w1", p.PlaybackDone("k1", play.token))
    cc.on_worker_event("w1", p.Digit("k1", "caller", "1"))  # labor
    i, play = await _until(sent, p.PlayFiles, i + 1)  # wages question
    cc.on_worker_event("w1", p.Digit("k1", "caller", "1"))  # migrant worker → green
    i, hold = await _until(sent, p.PlayFiles, i + 1)
    assert hold.loop and hold.paths[0].endswith(".wav")
    cc.on_worker_event("w1", p.LegEnded("k1", "caller", "normal", 200))
    cc.on_worker_event("w1", p.RecordingDone("k1", 1, record.path, 3.0, "ab" * 32))
    await asyncio.sleep(0.05)
    ledger.flush()
    with factory() as s:
        call = s.scalar(select(Call))
        assert call.end_reason is EndReason.ABANDONED
        assert call.queue_code == "labor" and call.priority.value == "green"
        ticket = s.scalar(select(Ticket))
        assert (ticket.category.value, ticket.green_reasons) == ("labor", ["migrant_wages"])
        assert "main/labor_queue" in ticket.ivr_path
        rec = s.scalar(select(Recording))
        assert rec.sha256 == "ab" * 32 and rec.closed_at is not None
    kinds = [k for k, _ in _events(factory, call.id)]
    assert kinds[:3] == [CallEventKind.OFFERED, CallEventKind.ANSWERED, CallEventKind.IVR_NODE]
    assert CallEventKind.DIGITS in kinds and CallEventKind.ENQUEUED in kinds
    assert kinds[-1] is CallEventKind.ENDED
    assert "k1" not in cc.calls


async def test_queue_without_lawyers_overflows_to_the_busy_menu(center):
    cc, sent, factory, ledger = center
    cc.on_worker_event("w1", p.CallOffered("k2", "sip-2@x", "sip:13900000000@h", "12348", "r"))
    await _until(sent, p.Answer)
    cc.on_worker_event("w1", p.LegAnswered("k2", "caller"))
    i, play = await _until(sent, p.PlayFiles)
    cc.on_worker_event("w1", p.Digit("k2", "caller", "0"))  # anytime 0 → operator
    i, play = await _until(sent, p.PlayFiles, i + 1)  # "connecting"
    cc.on_worker_event("w1", p.PlaybackDone("k2", play.token))
    i, hold = await _until(sent, p.PlayFiles, i + 1)
    assert hold.loop
    i, stop = await _until(sent, p.StopPlayback, i + 1, timeout=10)  # queue_wait = 5 s
    assert stop.token == hold.token
    i, busy = await _until(sent, p.PlayFiles, i + 1)
    assert busy.paths  # the busy menu
    cc.on_worker_event("w1", p.LegEnded("k2", "caller", "normal", 200))
    ledger.flush()
    with factory() as s:
        call = s.scalar(select(Call))
        assert call.end_reason is EndReason.CALLER_HANGUP
    kinds = [k for k, _ in _events(factory, call.id)]
    assert CallEventKind.ENQUEUED in kinds and kinds[-1] is CallEventKind.ENDED


async def test_hangup_while_the_call_row_is_written(center):
    cc, sent, factory, ledger = center
    cc.on_worker_event("w1", p.CallOffered("k3", "sip-3@x", "sip:anonymous@h", "12348", "r"))
    cc.on_worker_event("w1", p.LegEnded("k3", "caller", "cancel", 487))
    await asyncio.sleep(0.3)
    ledger.flush()
    with factory() as s:
        call = s.scalar(select(Call))
        assert call.caller_number == "" and call.end_reason is EndReason.CALLER_HANGUP
    assert not any(isinstance(m, p.Record | p.PlayFiles) for _, m in sent)


async def test_worker_loss_ends_its_calls_as_worker_crash(center):
    cc, sent, factory, ledger = center
    cc.on_worker_event("w2", p.CallOffered("k4", "sip-4@x", "sip:1@h", "12348-8", "r"))
    await _until(sent, p.Answer)
    cc.on_worker_event("w2", p.LegAnswered("k4", "caller"))
    await _until(sent, p.Record)
    cc.on_worker_lost("w2")
    ledger.flush()
    with factory() as s:
        call = s.scalar(select(Call))
        assert call.flow == "sme" and call.end_reason is EndReason.WORKER_CRASH
    assert cc.calls == {}


async def test_bad_events_are_ignored(center):
    cc, sent, _factory, _ledger = center
    cc.on_worker_event("w1", p.Digit("nope", "caller", "1"))
    cc.on_worker_event("w1", object())
    assert sent == []
