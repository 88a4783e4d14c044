"""The coordinator's side of speech: which legs are transcribed live, and what comes back.

Runs on the event loop (asyncio adapter around :mod:`hotline.speech.control`). When a
lawyer's leg starts talking with the caller, both legs are tapped to the speech service,
if there is capacity for them: at most ``capacity`` streams at once (K). A call that does
not get its streams — no capacity, no model, no service, a stream cut short — is marked
``pending`` and transcribed in batch after hang-up; the lawyer's console says captions are
off for that call. Nothing here waits on the service: SIP and audio go on whatever it does.

Text coming back becomes console events: ``caption`` (partial and final), ``captions``
(on/off for a call), ``urgent`` (an urgency flag: supervisors are alerted, the lawyer is
offered a 110/120 transfer) and ``draft`` (the wrap-up form's pre-filled ticket). IVR menus
with spoken choices (``Listen``) get a grammar-mode stream of the caller's leg.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotline.domain import CallEventKind
from hotline.speech import control as c
from hotline.store import transcripts as store
from hotline.telephony import protocol as p

if TYPE_CHECKING:
    from hotline.callcenter import CallCenter, LiveCall

log = logging.getLogger("hotline.speech")
RECONNECT_DELAY = 1.0
DRAFT_MEMORY = 600.0  # seconds a finished call's recipients are kept for its draft
STREAM_GRACE = 30.0  # seconds after a call's end for its streams to report their end


@dataclass
class _CallSpeech:
    """What speech knows of one call."""

    key: str
    ticket_no: str
    call_id: int | None
    agents: set[str] = field(default_factory=set)
    streams: dict[str, str] = field(default_factory=dict)  # leg → "live" | "ended" | "lost"
    captions: bool | None = None  # None: not decided yet
    pending: bool = False
    listen_leg: str = ""
    listen_token: int | None = None
    ended_at: float = 0.0


class LiveSpeech:
    """Taps, capacity and the control connection; see the module docstring."""

    def __init__(self, center: CallCenter, *, control_path: Path | None, tap_path: Path | None,
                 capacity: int, model_for: Callable[[LiveCall], str | None],
                 why_off: str = "") -> None:
        self.center = center
        self.control_path, self.tap_path = control_path, tap_path
        self.capacity = capacity
        self.model_for = model_for
        self.why_off = why_off  # why there is no live transcription at all ("" if there is)
        self.calls: dict[str, _CallSpeech] = {}
        self.active = 0  # streams reserved (live + grammar)
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    @property
    def available(self) -> bool:
        """The service is up and connected."""
        return self._writer is not None and not self.why_off

    # --- connection -------------------------------------------------------------------

    def start(self) -> None:
        """Keep a connection to the service (reconnects after a restart of it)."""
        if self.control_path is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        assert self.control_path is not None
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(str(self.control_path))
            except OSError:
                await asyncio.sleep(RECONNECT_DELAY)
                continue
            try:
                async for line in reader:
                    try:
                        message = c.decode(line)
                    except c.ControlError as exc:
                        log.warning("语音服务消息无效: %s", exc)
                        continue
                    if isinstance(message, c.Ready):
                        self._writer = writer
                        self.connected.set()
                        log.info("已连接语音服务: 最多 %d 路实时转写", message.capacity)
                    else:
                        self._on_message(message)
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                self._writer = None
                self.connected.clear()
                writer.close()
                self._service_lost()
            await asyncio.sleep(RECONNECT_DELAY)

    def _send(self, message: c.Message) -> bool:
        if self._writer is None:
            return False
        try:
            self._writer.write(c.encode(message))
        except (OSError, RuntimeError):
            return False
        return True

    def _service_lost(self) -> None:
        """Every live stream is gone with the service: those calls go to batch."""
        for speech in self.calls.values():
            live = [leg for leg, state in speech.streams.items() if state == "live"]
            for leg in live:
                self._stream_over(speech, leg, ok=False, why="speech service stopped")

    # --- hooks the coordinator calls ----------------------------------------------------

    def can_listen(self, call: LiveCall) -> bool:
        """Whether spoken menu choices may be offered to this call (a model, the service)."""
        return not self.why_off and self._writer is not None and (
            self.model_for(call) is not None)

    def leg_up(self, call: LiveCall, leg: str) -> None:
        """``leg`` (a lawyer, a transfer target) talks to the caller: transcribe both."""
        speech = self._speech(call)
        agent = call.legs[leg].agent if leg in call.legs else ""
        if agent:
            speech.agents.add(agent)
        caller_up = call.callback_id is None or call.callback_answered
        legs = [name for name in (("caller", leg) if caller_up else (leg,))
                if name not in speech.streams]
        if not legs:
            return
        why = self._why_not(call, len(legs))
        if why:
            self._mark_pending(call, speech, why)
            return
        model = self.model_for(call) or ""
        t0 = (call.recording_started or call.started).timestamp()
        for name in legs:
            speaker = "caller" if name == "caller" else "lawyer"
            self._send(c.Expect(call.key, name, speaker, call.db_id, t0, model))
            self.active += 1
            speech.streams[name] = "live"
            self.center.send(call.worker, p.StartTap(call.key, name, f"unix:{self.tap_path}"))
        if speech.captions is None:
            speech.captions = True
            self._post_state(speech, store.LIVE)
            self._publish_captions(speech, True, "")
            self.center.talk.event(call, CallEventKind.TRANSCRIPTION,
                                   {"state": "live", "legs": legs})

    def caller_answered(self, call: LiveCall) -> None:
        """A callback's caller answered: their leg joins the lawyer's."""
        if call.lawyer:
            self.leg_up(call, call.lawyer)

    def listen(self, call: LiveCall, token: int, phrases: tuple[tuple[str, str], ...]) -> bool:
        """Tap the caller for one spoken menu choice; False when speech cannot (DTMF only)."""
        speech = self._speech(call)
        if self._why_not(call, 1) or speech.listen_leg or "caller" in speech.streams:
            return False
        model = self.model_for(call) or ""
        self._send(c.Expect(call.key, "caller", "caller", call.db_id, 0.0, model,
                            mode="grammar", token=str(token), phrases=phrases))
        self.active += 1
        speech.listen_leg, speech.listen_token = "caller", token
        self.center.send(call.worker, p.StartTap(call.key, "caller",
                                                 f"unix:{self.tap_path}"))
        return True

    def stop_listening(self, call: LiveCall, token: int) -> None:
        """The menu is over: stop the caller's grammar stream."""
        speech = self.calls.get(call.key)
        if speech is None or speech.listen_token != token or not speech.listen_leg:
            return
        self.center.send(call.worker, p.StopTap(call.key, speech.listen_leg))
        speech.listen_token = None  # the slot is freed by the stream's end

    def call_ended(self, call: LiveCall) -> None:
        """Drop what the service still expects; the call keeps its recipients for the draft."""
        speech = self.calls.get(call.key)
        self._send(c.Forget(call.key))
        if speech is None:
            return
        speech.ended_at = time.monotonic()
        # A stream whose tap never connected (the worker could not start it) never ends by
        # itself: free its slot once the others have had time to finish.
        asyncio.get_running_loop().call_later(STREAM_GRACE, self._reap, call.key)
        if speech.captions is None and call.agent_since is not None:
            # A lawyer talked but nothing was tapped (e.g. a callback cut short).
            self._mark_pending(call, speech, self.why_off or "not tapped")
        self._forget_old()

    # --- from the service --------------------------------------------------------------

    def _on_message(self, message: c.Message) -> None:
        speech = self.calls.get(getattr(message, "call", ""))
        if speech is None:
            return
        if isinstance(message, c.Partial | c.Final):
            event: dict[str, Any] = {"type": "caption", "call": message.call,
                                     "speaker": message.speaker, "text": message.text,
                                     "final": isinstance(message, c.Final)}
            if isinstance(message, c.Final):
                event.update(start=message.start, end=message.end,
                             confidence=message.confidence)
            self.center.publish(event, speech.agents, False)
        elif isinstance(message, c.StreamEnd):
            self._stream_over(speech, message.leg, message.ok, message.why)
        elif isinstance(message, c.Heard):
            self._heard(speech, message)
        elif isinstance(message, c.Alert):
            self._alert(speech, message)
        elif isinstance(message, c.Drafted):
            self.center.publish({"type": "draft", "call": message.call,
                                 "ticket_no": speech.ticket_no, "category": message.category,
                                 "draft": message.draft}, speech.agents, False)

    def _stream_over(self, speech: _CallSpeech, leg: str, ok: bool, why: str) -> None:
        if leg == speech.listen_leg and speech.streams.get(leg) != "live":
            speech.listen_leg, speech.listen_token = "", None
            self.active = max(0, self.active - 1)
            return
        if speech.streams.get(leg) != "live":
            return
        speech.streams[leg] = "ended" if ok else "lost"
        self.active = max(0, self.active - 1)
        if not ok:
            log.warning("实时转写中断: 工单 %s %s: %s", speech.ticket_no, leg, why)
            self._mark_pending(self.center.calls.get(speech.key), speech, why)

    def _heard(self, speech: _CallSpeech, message: c.Heard) -> None:
        call = self.center.calls.get(speech.key)
        if call is None or message.token != str(speech.listen_token):
            return
        from hotline import events as ev

        self.center.feed(call, ev.SpeechHeard(int(message.token), message.route, message.text))

    def _alert(self, speech: _CallSpeech, message: c.Alert) -> None:
        event = {"type": "urgent", "call": message.call, "ticket_no": speech.ticket_no,
                 "speaker": message.speaker, "flags": list(message.flags),
                 "transfers": list(message.transfers), "text": message.text}
        log.warning("紧急情况提示: 工单 %s %s", speech.ticket_no, ", ".join(message.flags))
        self.center.publish(event, speech.agents, True)
        call = self.center.calls.get(speech.key)
        if call is not None:
            self.center.talk.event(call, CallEventKind.URGENT,
                                   {"flags": list(message.flags),
                                    "transfers": list(message.transfers)})

    # --- helpers ----------------------------------------------------------------------

    def _speech(self, call: LiveCall) -> _CallSpeech:
        speech = self.calls.get(call.key)
        if speech is None:
            speech = self.calls[call.key] = _CallSpeech(call.key, call.ticket_no, call.db_id)
        speech.call_id = speech.call_id or call.db_id
        return speech

    def _why_not(self, call: LiveCall, streams: int) -> str:
        if self.why_off:
            return self.why_off
        if self._writer is None:
            return "speech service not connected"
        if self.model_for(call) is None:
            return "no model for this line"
        if self.active + streams > self.capacity:
            return f"at capacity ({self.capacity} streams)"
        return ""

    def _mark_pending(self, call: LiveCall | None, speech: _CallSpeech, why: str) -> None:
        """The call goes to batch (once); its timeline says so while the call is known."""
        if not speech.pending:
            speech.pending = True
            self._post_state(speech, store.PENDING)
            if call is not None:
                self.center.talk.event(call, CallEventKind.TRANSCRIPTION,
                                       {"state": "pending", "why": why})
        if speech.captions is not False:
            speech.captions = False
            self._publish_captions(speech, False, why)

    def _publish_captions(self, speech: _CallSpeech, on: bool, why: str) -> None:
        self.center.publish({"type": "captions", "call": speech.key, "on": on, "why": why},
                            speech.agents, False)

    def _post_state(self, speech: _CallSpeech, state: str) -> None:
        if speech.call_id is not None:
            self.center.ledger.post(store.set_state, speech.call_id, state)

    def _reap(self, key: str) -> None:
        speech = self.calls.get(key)
        if speech is None:
            return
        for leg in [leg for leg, state in speech.streams.items() if state == "live"]:
            self._stream_over(speech, leg, ok=False, why="stream never ended")
        if speech.listen_leg:
            speech.listen_leg, speech.listen_token = "", None
            self.active = max(0, self.active - 1)

    def _forget_old(self) -> None:
        cutoff = time.monotonic() - DRAFT_MEMORY
        for key in [k for k, s in self.calls.items() if s.ended_at and s.ended_at < cutoff]:
            del self.calls[key]
