"""Callbacks (回拨) on the coordinator with a scripted worker and the real ledger: a caller who
chose a callback keeps their place in line, survives a restart, and is called back through
a lawyer who is rung first; a caller who does not answer gets another try later.
"""

import asyncio
from datetime import timedelta

from scripted import until, wait_for
from sqlalchemy import select

from hotline.callcenter import CallCenter
from hotline.domain import CallEventKind, EndReason, Priority, TicketKind, TicketStatus
from hotline.store import callbacks as ledger_callbacks
from hotline.store.session import session_scope
from hotline.store.tables import Call, CallbackRequest, CallEvent, Ticket, TicketHistory
from hotline.telephony import protocol as p


async def _ask_for_a_callback(cc, sent, key="k1", number="13800000000"):
    """A caller queues, nobody answers, the busy menu: 2 (callback), # (this number)."""
    cc.on_worker_event("w1", p.CallOffered(key, f"sip-{key}", f"sip:{number}@h", "12348", "r"))
    cc.on_worker_event("w1", p.LegAnswered(key, "caller"))
    i, _ = await until(sent, p.PlayFiles, call=key)
    cc.on_worker_event("w1", p.Digit(key, "caller", "0"))
    i, play = await until(sent, p.PlayFiles, i + 1, call=key)
    cc.on_worker_event("w1", p.PlaybackDone(key, play.token))
    i, _ = await until(sent, p.StopPlayback, i + 1, call=key, timeout=10)  # queue_wait 5 s
    i, busy = await until(sent, p.PlayFiles, i + 1, call=key)
    cc.on_worker_event("w1", p.Digit(key, "caller", "2"))
    i, ask = await until(sent, p.PlayFiles, i + 1, call=key)
    cc.on_worker_event("w1", p.Digit(key, "caller", "#"))
    for _ in range(2):  # thanks, goodbye
        i, played = await until(sent, p.PlayFiles, i + 1, call=key)
        cc.on_worker_event("w1", p.PlaybackDone(key, played.token))
    await until(sent, p.Hangup, i + 1, call=key)
    cc.on_worker_event("w1", p.LegEnded(key, "caller", "ivr_hangup", 200))


async def _lawyer_on_duty(cc, work_id="8001"):
    cc.desk.login(work_id, f"sip:{work_id}@10.0.0.1", cc.now(), skills={"general": 4})
    cc.talk.route()


def _requests(factory):
    with factory() as s:
        return [(r.status, r.attempts, r.number) for r in s.scalars(select(CallbackRequest))]



async def test_a_callback_is_kept_survives_a_restart_and_calls_the_lawyer_then_the_caller(
        make_center):
    cc, sent, factory, ledger = make_center()
    cc.workers = lambda: ["w1"]
    await _ask_for_a_callback(cc, sent)
    await wait_for(lambda: _requests(factory) == [("pending", 0, "13800000000")])
    assert any(k.startswith("cb-") for k in cc.desk.waiting)
    with factory() as s:
        first = s.scalar(select(Ticket))
        assert first.callback_number == "13800000000"
        notes = [h.note for h in s.scalars(select(TicketHistory))]
        assert "来电人选择回拨, 已排队等待" in notes

    # The coordinator restarts: nothing in memory, the request is back in line.
    await cc.shutdown(grace=0.1)
    cc2 = CallCenter(cc.settings, cc.flows, cc.audio, ledger,
                     lambda worker, msg: sent.append((worker, msg)) or True,
                     now=lambda: cc.now() + timedelta(seconds=1))
    cc2.workers = lambda: ["w1"]
    assert await cc2.callbacks.restore() == 1
    # A later caller (same queue, same priority) must not overtake the request.
    [waiting] = cc2.desk.waiting.values()
    assert waiting.since <= cc2.now() and waiting.priority is Priority.NORMAL

    n = len(sent)
    await _lawyer_on_duty(cc2)
    i, ring = await until(sent, p.Originate, n, uri="sip:8001@10.0.0.1")
    assert ring.new_call  # the worker opens the hotline's own call with this leg
    key = ring.call
    await wait_for(lambda: cc2.calls[key].db_id is not None)
    cc2.on_worker_event("w1", p.LegAnswered(key, ring.leg))
    i, dial = await until(sent, p.Originate, i + 1, call=key, leg="caller")
    assert dial.uri.startswith("sip:13800000000@")  # through the front's trunk route
    cc2.on_worker_event("w1", p.LegAnswered(key, "caller", "PCMA"))
    i, connect = await until(sent, p.Connect, i + 1, call=key)
    assert set(connect.legs) == {"caller", ring.leg}
    await until(sent, p.Record, i + 1, call=key)
    await wait_for(lambda: _requests(factory)[0][0] == "dialing")
    cc2.on_worker_event("w1", p.LegEnded(key, "caller", "remote_hangup", 200))
    cc2.on_worker_event("w1", p.LegEnded(key, ring.leg, "caller_gone", 200))
    await wait_for(lambda: _requests(factory) == [("done", 1, "13800000000")])
    ledger.flush()
    with factory() as s:
        call = s.scalar(select(Call).where(Call.outbound.is_(True)))
        assert call.end_reason is EndReason.CALLER_HANGUP and call.answered_at
        ticket = s.scalar(select(Ticket).where(Ticket.call_id == call.id))
        assert ticket.kind is TicketKind.CALLBACK and ticket.lawyer_id is None  # no account
        kinds = [e.kind for e in s.scalars(select(CallEvent).where(
            CallEvent.call_id == call.id).order_by(CallEvent.seq))]
        assert kinds[0] is CallEventKind.OFFERED and CallEventKind.AGENT_ANSWERED in kinds
        assert kinds[-1] is CallEventKind.ENDED
        origin = s.scalar(select(Ticket).where(Ticket.id == first.id))
        assert origin.status is TicketStatus.CLOSED  # 已回拨接通
    await cc2.shutdown(grace=0.1)


async def test_an_unanswered_callback_is_tried_again_then_given_up(make_center):
    cc, sent, factory, ledger = make_center(HOTLINE_CALLERS_CALLBACK_ATTEMPTS="2",
                                            HOTLINE_CALLERS_CALLBACK_RETRY_MINUTES="1")
    cc.workers = lambda: ["w1"]
    with session_scope(factory) as s:
        s.add(Call(sip_call_id="asked", line_dialed="12348", caller_number="13900000000",
                   started_at=cc.now()))
        s.flush()
        call_id = s.scalar(select(Call.id))
        s.add(Ticket(ticket_no="12348-20261130-999999", call_id=call_id, created_at=cc.now(),
                     caller_number="13900000000"))
        s.flush()
        ledger_callbacks.request_callback(s, call_id, number="13900000000", queue="general",
                                          priority=Priority.GREEN, place_at=cc.now(),
                                          at=cc.now())
    await cc.callbacks.restore()
    await _lawyer_on_duty(cc)
    i = -1
    for attempt in (1, 2):
        i, ring = await until(sent, p.Originate, i + 1,
                              uri="sip:8001@10.0.0.1")
        key = ring.call
        await wait_for(lambda k=key: cc.calls[k].db_id is not None)
        cc.on_worker_event("w1", p.LegAnswered(key, ring.leg))
        i, dial = await until(sent, p.Originate, i + 1, call=key, leg="caller")
        cc.on_worker_event("w1", p.LegEnded(key, "caller", "no_answer", 408))
        cc.on_worker_event("w1", p.LegEnded(key, ring.leg, "caller_gone", 200))
        expected = ("pending", 1) if attempt == 1 else ("failed", 2)
        await wait_for(lambda e=expected: _requests(factory)[0][:2] == e)
        if attempt == 1:
            # Not before the pause (1 minute here): the lawyer is not rung again at once.
            await asyncio.sleep(1.0)
            assert not [m for _, m in sent[i + 1:] if isinstance(m, p.Originate)]
            cc.desk.wrap_done("8001", cc.now())  # the lawyer filed the try's ticket
            cc.callbacks._timers[-1]._run()  # the pause is over
    ledger.flush()
    with factory() as s:
        reasons = [c.end_reason for c in s.scalars(select(Call).where(Call.outbound.is_(True)))]
        assert reasons == [EndReason.FAILED, EndReason.FAILED]
        notes = [h.note for h in s.scalars(select(TicketHistory))]
        assert any("回拨失败" in (n or "") for n in notes)
    assert not cc.callbacks.waiting and not cc.desk.waiting
    await cc.shutdown(grace=0.1)

