"""Per-queue overflow on the coordinator (scripted worker, real ledger): after max_wait, or at
once when nobody who could take the queue is signed in, a caller moves to another queue
keeping their place, gets a callback request for their own number, or is sent to an outside
number; a queue without overflow hands the caller back to the flow.
"""

import asyncio

from scripted import queue_caller, until, wait_for
from sqlalchemy import select

from hotline.domain import CallEventKind, EndReason
from hotline.store.tables import Call, CallbackRequest, CallEvent
from hotline.telephony import protocol as p


def _set_queue(cc, code, **changes):
    cc.settings.queues[code] = cc.settings.queues[code].model_copy(update=changes)



async def test_unstaffed_queue_overflows_at_once_to_a_callback_keeping_the_place(make_center):
    cc, sent, factory, ledger = make_center(HOTLINE_TELEPHONY_QUEUE_WAIT="60")
    _set_queue(cc, "general", overflow="callback", overflow_when_unstaffed=True)
    i = await queue_caller(cc, sent, number="13800138000")
    i, told = await until(sent, p.PlayFiles, i + 1, call="k1", loop=False,
                          timeout=3)  # at once, not after 60 s
    cc.on_worker_event("w1", p.PlaybackDone("k1", told.token))
    await until(sent, p.Hangup, i + 1, call="k1")
    cc.on_worker_event("w1", p.LegEnded("k1", "caller", "ivr_hangup", 200))

    def requests():
        with factory() as s:
            return [(r.number, r.queue_code, r.status, r.place_at)
                    for r in s.scalars(select(CallbackRequest))]

    await wait_for(lambda: len(requests()) == 1)
    [(number, queue, status, place_at)] = requests()
    assert (number, queue, status) == ("13800138000", "general", "pending")
    with factory() as s:
        call = s.scalar(select(Call))
        assert place_at == call.queued_at  # the caller's place in line
        assert call.end_reason is EndReason.IVR_HANGUP
    assert any(k.startswith("cb-") for k in cc.desk.waiting)
    await cc.shutdown(grace=0.1)


async def test_max_wait_moves_the_caller_to_the_next_queue(make_center):
    cc, sent, factory, ledger = make_center()  # queue_wait 5 s caps every max_wait
    _set_queue(cc, "general", overflow="labor")
    cc.desk.login("8009", "sip:8009@10.0.0.9", cc.now(), skills={"labor": 5})
    i = await queue_caller(cc, sent)
    await asyncio.sleep(1.0)
    assert not [m for _, m in sent[i:] if isinstance(m, p.Originate)]  # not a labor caller
    i, ring = await until(sent, p.Originate, i, uri="sip:8009@10.0.0.9", timeout=8)
    ledger.flush()
    with factory() as s:
        call = s.scalar(select(Call))
        assert call.queue_code == "labor"
        moves = [e.data for e in s.scalars(select(CallEvent).where(
            CallEvent.kind == CallEventKind.ENQUEUED).order_by(CallEvent.seq))]
    assert moves[-1]["overflow_from"] == "general" and moves[-1]["reason"] == "max_wait"
    await cc.shutdown(grace=0.1)


async def test_overflow_to_an_outside_number(make_center):
    cc, sent, factory, ledger = make_center()
    _set_queue(cc, "general", overflow="transfer:12345")
    i = await queue_caller(cc, sent)
    i, out = await until(sent, p.Originate, i, call="k1", timeout=8)
    assert out.uri.startswith("sip:12345@")
    await cc.shutdown(grace=0.1)


async def test_a_bad_overflow_target_is_a_clear_config_error(tmp_path):
    from hotline.config import load_settings
    from hotline.errors import ConfigError

    try:
        load_settings(environ={"HOTLINE_QUEUES": '{"general": {"name": "综合", '
                                                 '"overflow": "transfer:abc"}}'})
    except ConfigError as exc:
        assert "overflow" in str(exc) and "transfer:号码" in str(exc)
    else:
        raise AssertionError("accepted a bad overflow")
