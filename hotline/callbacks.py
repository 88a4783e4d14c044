"""Callbacks (回拨) on the coordinator: a request waits in its queue like a caller would.

A caller who chose a callback in the IVR (the ``callback`` verb: ``callback_number``) and was
not served leaves a request in the ledger (:mod:`hotline.store.callbacks`) when the call
ends. The request joins the desk's waiting line under ``cb-<id>`` with the caller's
original place (``place_at``), priority and queue, so it is neither overtaken by later
callers nor ahead of earlier ones. When the router picks a lawyer for it, the hotline
places a call of its own on the least busy media worker: the lawyer's phone first (a
console lawyer accepts first, as for any offer), then, once the lawyer answers, the caller's
number through the SIP front. The caller's answer starts the recording and the
conversation; from then on it is an ordinary call (hold, transfer, wrap-up of its ticket).

A caller who does not answer gets another try ``callers.callback_retry_minutes`` later, up
to ``callers.callback_attempts``; requests survive restarts (``restore``), a try cut short
by one goes back in line.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Any

from hotline.callers import mask_number
from hotline.domain import CallEventKind, EndReason
from hotline.recording import recording_path
from hotline.store import callbacks as ledger_callbacks
from hotline.store import calls as ledger_calls
from hotline.store.callbacks import CallbackView
from hotline.telephony import protocol as p

if TYPE_CHECKING:
    from hotline.callcenter import CallCenter, LiveCall

log = logging.getLogger("hotline.callbacks")

PREFIX = "cb-"


class Callbacks:
    """The callback requests of one node (event loop only)."""

    def __init__(self, center: CallCenter) -> None:
        self.center = center
        self.waiting: dict[str, CallbackView] = {}  # desk key → request
        self._timers: list[asyncio.TimerHandle] = []

    # --- requests -----------------------------------------------------------------------

    def requested(self, call: LiveCall) -> None:
        """The call ended with a callback number and nobody served it: keep the request."""
        session = call.session
        number = str(session.vars.get("callback_number") or "") if session else ""
        if not number or call.db_id is None or call.callback_id is not None:
            return
        queue = str(session.vars.get("callback_queue") or "") if session else ""
        queue = queue or call.queue or "general"
        place = call.queued_since or call.started
        asyncio.get_running_loop().create_task(self._request(call, number, queue, place))

    async def _request(self, call: LiveCall, number: str, queue: str, place: Any) -> None:
        try:
            view = await self.center.ledger.run(
                ledger_callbacks.request_callback, call.db_id, number=number, queue=queue,
                priority=call.priority, place_at=place, at=self.center.now())
        except Exception:  # noqa: BLE001 - the ledger logs; the ticket keeps the number
            log.exception("回拨请求写入失败: 工单 %s", call.ticket_no)
            return
        log.info("回拨请求已排队: 工单 %s, 号码 %s, 队列 %s", view.ticket_no,
                 mask_number(number), view.queue)
        self.enqueue(view)
        self.center.talk.route()

    async def restore(self) -> int:
        """Put the ledger's open requests back in line (after a start or restart)."""
        views = await self.center.ledger.run(ledger_callbacks.open_requests)
        for view in views:
            self.enqueue(view)
        if views:
            log.info("恢复了 %d 个等待回拨的请求", len(views))
            self.center.talk.route()
        return len(views)

    def enqueue(self, view: CallbackView) -> None:
        """The request waits in its queue at the caller's original place."""
        key = f"{PREFIX}{view.id}"
        self.waiting[key] = view
        self.center.desk.enqueue(key, view.queue, view.place_at, priority=view.priority,
                                 language=view.language)

    def cancel_all(self) -> None:
        """Stop retry timers (shutdown)."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    # --- a try --------------------------------------------------------------------------

    def start(self, key: str, work_ids: tuple[str, ...]) -> LiveCall | None:
        """The router picked ``work_ids`` for request ``key``: place the hotline's own call.

        The call waits in the desk's line under its own key; its ledger row is written
        first, then the lawyers (still reserved) are offered it. Returns the call, or None
        when no media worker can take it (the lawyers are released and the request keeps
        its place).
        """
        from hotline.callcenter import LiveCall

        view = self.waiting.get(key)
        worker = self._free_worker()
        desk, now = self.center.desk, self.center.now()
        if view is None or worker is None:
            for work_id in work_ids:
                desk.missed(work_id, key, now, released=True)
            return None
        del self.waiting[key]
        # The key doubles as the SIP Call-ID of the ledger row: it names the request, so a
        # restart can tell whether its last try got through (see store.callbacks).
        call_key = f"{ledger_callbacks.CALL_PREFIX}{view.id}-{uuid.uuid4().hex[:12]}"
        call = LiveCall(call_key, worker, call_key, view.number, "callback", now)
        call.callback_id = view.id
        call.queue, call.queued_since = view.queue, view.place_at
        call.priority, call.language = view.priority, view.language
        call.queued = True
        self.center.calls[call_key] = call
        desk.rekey(key, call_key)
        asyncio.get_running_loop().create_task(self._open(call, view, work_ids))
        return call

    async def _open(self, call: LiveCall, view: CallbackView, work_ids: tuple[str, ...],
                    ) -> None:
        local = call.started.astimezone(self.center.settings.tz)
        try:
            opened = await self.center.ledger.run(
                ledger_callbacks.start_attempt, view.id, worker=call.worker,
                sip_call_id=call.sip_call_id, at=call.started, local_day=local.date())
        except Exception:  # noqa: BLE001 - no row, no call: the request waits on
            log.exception("回拨无法写入账本: 请求 %d", view.id)
            call.ended = True
            self.center.talk.stop_waiting(call)
            self.center.calls.pop(call.key, None)
            for work_id in work_ids:
                self.center.desk.missed(work_id, call.key, self.center.now(), released=True)
            self.enqueue(view)
            return
        finally:
            call.opened.set()
        call.db_id, call.ticket_no = opened.call_id, opened.ticket_no
        log.info("开始回拨: 请求 %d (原工单 %s), 第 %d 次, 工单 %s, 号码 %s", view.id,
                 view.ticket_no, view.attempts + 1, opened.ticket_no, mask_number(view.number))
        for work_id in work_ids:
            self.center.talk.offer(call, work_id)

    def lawyer_answered(self, call: LiveCall) -> None:
        """The lawyer is on the line: now ring the caller."""
        try:
            uri, _ = self.center.talk.target_uri(call.caller)
        except Exception:  # noqa: BLE001 - a number the trunk cannot dial
            log.warning("回拨号码无效: %s", mask_number(call.caller))
            call.end_reason = EndReason.FAILED
            self.center.send(call.worker, p.Hangup(call.key, "bad_number"))
            return
        self.center.send(call.worker, p.Originate(call.key, "caller", uri))
        self.center.talk.event(call, CallEventKind.OFFER, {"leg": "caller", "role": "caller",
                                                           "to": mask_number(call.caller)})

    async def caller_answered(self, call: LiveCall, codec: str) -> None:
        """The caller picked up: record, and the caller and the lawyer talk."""
        at = self.center.now()
        await call.opened.wait()
        if call.db_id is None or call.ended:
            return
        call.callback_answered = True
        self.center.ledger.post(ledger_calls.update_call, call.db_id, answered_at=at)
        self.center.ledger.post(ledger_calls.append_events, call.db_id,
                                [(at, CallEventKind.ANSWERED,
                                  {"codec": codec, "callback": call.callback_id})])
        lawyer = call.lawyer
        if lawyer is not None:
            self.center.talk.talk_to(call, lawyer)
        root = self.center.settings.path("recordings")
        path = recording_path(root, call.ticket_no, call.started.astimezone(
            self.center.settings.tz))
        path.parent.mkdir(parents=True, exist_ok=True)
        call.recording_started = at
        call.recording_id = await self.center.ledger.run(ledger_calls.add_recording,
                                                         call.db_id, str(path), at)
        if not call.ended:
            from hotline.callcenter import RECORDING_TOKEN

            self.center.send(call.worker, p.Record(call.key, RECORDING_TOKEN, str(path)))
            self.center.speech.caller_answered(call)

    def attempt_over(self, call: LiveCall) -> None:
        """The hotline's call ended: the request is done, or waits for another try."""
        if call.callback_id is None or call.db_id is None:
            return
        if call.end_reason is EndReason.SYSTEM_RESTART:
            return  # left "dialing": the next start puts it back in line, no try counted
        request_id, answered = call.callback_id, call.callback_answered
        settings = self.center.settings.callers

        async def finish() -> None:
            status = await self.center.ledger.run(
                ledger_callbacks.finish_attempt, request_id, answered=answered,
                at=self.center.now(), max_attempts=settings.callback_attempts)
            if status == ledger_callbacks.PENDING:
                delay = settings.callback_retry_minutes * 60.0
                log.info("回拨未接通, %d 分钟后再试: 请求 %d",
                         settings.callback_retry_minutes, request_id)
                self._timers.append(asyncio.get_running_loop().call_later(
                    delay, lambda: asyncio.get_running_loop().create_task(
                        self._retry(request_id))))
            elif status == ledger_callbacks.FAILED:
                log.warning("回拨失败 (已达最多次数): 请求 %d", request_id)

        asyncio.get_running_loop().create_task(finish())

    async def _retry(self, request_id: int) -> None:
        view = await self.center.ledger.run(ledger_callbacks.pending_request, request_id)
        if view is not None and f"{PREFIX}{view.id}" not in self.waiting:
            self.enqueue(view)
            self.center.talk.route()

    def _free_worker(self) -> str | None:
        """The media worker with the fewest live calls (None when there is none)."""
        workers = self.center.workers()
        if not workers:
            return None
        load = dict.fromkeys(workers, 0)
        for call in self.center.calls.values():
            if not call.ended and call.worker in load:
                load[call.worker] += 1
        return min(workers, key=lambda w: (load[w], w))
