"""The coordinator: the single writer that turns worker events into IVR steps and ledger rows.

Runs on the asyncio loop. For each call: the worker offers it → the call and its ticket are
written (before anything is played) → answer → record → an :class:`IvrSession` runs the flow
for the dialled line; its commands become worker commands, its deadlines loop timers, its
trace the call's events. Until the ACD lands, a queued caller hears hold music (and position
announcements) while the duty lawyers of ``telephony.lawyer_uris`` are rung in turn, and
after the queue's wait the flow's overflow. Lawyer legs, hold, transfers and conferences are
:mod:`hotline.conversation`'s. Calls a worker carried through a coordinator restart are
adopted from its ``CallHeld`` reports.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hotline import commands as cmd
from hotline import events as ev
from hotline.acd.agents import Agent, AgentEvent
from hotline.acd.desk import Desk
from hotline.callbacks import Callbacks
from hotline.callers import CallerFacts, mask_number
from hotline.config import Settings
from hotline.conversation import AgentLeg, Conversations, now_epoch
from hotline.domain import AgentEventKind, AgentStatus, CallEventKind, EndReason, Language, Priority
from hotline.ivr.engine import IvrSession, OutcomeKind, Step
from hotline.ivr.registry import FlowRegistry
from hotline.ivr.tts import PromptAudio
from hotline.ledger import Ledger
from hotline.recording import flag_reason, inspect, recording_path, recover_parts, repair_wav
from hotline.speech.live import LiveSpeech
from hotline.store import agents as ledger_agents
from hotline.store import calls as ledger_calls
from hotline.store.callers import lookup_caller_facts
from hotline.telephony import protocol as p

log = logging.getLogger("hotline.callcenter")

RECORDING_TOKEN = 1
HOLD_TOKEN_BASE = 1_000_000  # hold-music playbacks, never confused with IVR prompt tokens
# Texts the node speaks outside any flow (rendered with the flows' TTS at start-up).
SYSTEM_PROMPTS = {
    "transfer_failed": "抱歉, 转接未能接通, 请稍后再拨. 再见.",
    "coordinator_lost": "系统正在维护, 请稍后再拨. 给您带来不便, 敬请谅解.",
    "overflow_callback": ("现在律师都在忙, 已为您预约回拨, 我们会按排队顺序给您回电, "
                          "请保持电话畅通. 再见."),
}
# Desk events → the agent_events kind (the rest are state changes).
_AGENT_KINDS = {AgentEvent.LOGIN: AgentEventKind.LOGIN,
                AgentEvent.LOGOUT: AgentEventKind.LOGOUT,
                AgentEvent.BREAK: AgentEventKind.STATUS,
                AgentEvent.AVAILABLE: AgentEventKind.STATUS}
# Average talk time assumed for the expected-wait announcement before any call has ended.
DEFAULT_HANDLE_SECONDS = 180.0
_TRACE_KINDS = {"node": CallEventKind.IVR_NODE, "prompt": CallEventKind.PROMPT,
                "digits": CallEventKind.DIGITS, "field": CallEventKind.FIELD_SET,
                "note": CallEventKind.IVR_NOTE}
_OUTCOME_KINDS = {OutcomeKind.ENQUEUE: CallEventKind.ENQUEUED,
                  OutcomeKind.TRANSFER: CallEventKind.TRANSFER,
                  OutcomeKind.VOICEMAIL: CallEventKind.VOICEMAIL}


@dataclass
class LiveCall:
    """What the coordinator holds for one call while it lasts."""

    key: str
    worker: str
    sip_call_id: str
    caller: str
    line: str
    started: datetime
    db_id: int | None = None
    ticket_no: str = ""
    session: IvrSession | None = None
    timer: asyncio.TimerHandle | None = None
    side_timers: list[asyncio.TimerHandle] = field(default_factory=list)
    recording_id: int | None = None
    recording_started: datetime | None = None
    hold_token: int | None = None
    end_reason: EndReason | None = None
    ended: bool = False
    ended_at: datetime | None = None
    closed: bool = False  # the ledger row has its end
    end_data: dict[str, Any] = field(default_factory=dict)
    # the talking part (hotline.conversation)
    legs: dict[str, AgentLeg] = field(default_factory=dict)
    lawyer: str | None = None
    consult: str | None = None
    held: bool = False
    conference: bool = False
    outside: bool = False
    recall_uri: str = ""
    leg_seq: int = 0
    queued: bool = False
    queue: str = ""
    queued_since: datetime | None = None
    priority: Priority = Priority.NORMAL
    language: Language = Language.MANDARIN
    facts: CallerFacts | None = None
    asked_for: str = ""  # 点名: the work id the caller keyed
    asked_timer: asyncio.TimerHandle | None = None
    agent_since: datetime | None = None
    queue_timers: list[asyncio.TimerHandle] = field(default_factory=list)
    announce_token: int | None = None
    hangup_after_token: int | None = None
    # adoption after a coordinator restart: events wait here until the ledger row is found
    pending: list[Any] | None = None
    # a callback the hotline places itself (hotline.callbacks): the request's id
    callback_id: int | None = None
    callback_answered: bool = False
    overflowed: set[str] = field(default_factory=set)  # queues the caller overflowed from
    enqueue_command: cmd.Enqueue | None = None
    opened: asyncio.Event = field(default_factory=asyncio.Event)  # the row write is over


class CallCenter:
    """Owns all live calls; every method runs on the event loop thread."""

    def __init__(self, settings: Settings, flows: FlowRegistry, audio: PromptAudio,
                 ledger: Ledger, send: Callable[[str, Any], bool],
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.settings = settings
        self.flows = flows
        self.audio = audio
        self.ledger = ledger
        self.send = send
        self.now = now
        self.calls: dict[str, LiveCall] = {}
        self._hold_seq = HOLD_TOKEN_BASE
        self.finished = 0
        # The consoles' event stream (hotline.api.events.EventHub.publish when serving).
        self.publish: Callable[[dict[str, Any], Iterable[str], bool], None] = (
            lambda event, to, staff: None)
        self.talk = Conversations(self)
        self.callbacks = Callbacks(self)
        # Live transcription (hotline serve connects it to the speech service).
        self.speech = LiveSpeech(self, control_path=None, tap_path=None, capacity=0,
                                 model_for=lambda call: None,
                                 why_off="speech service not running")
        # The media workers that can take a call the hotline places (the pool's, when serving).
        self.workers: Callable[[], list[str]] = lambda: []
        self._stats_at = 0.0
        self._last_stats: dict[str, Any] = {}
        self._handle_times: list[float] = []
        self.desk = Desk(settings.queues, on_change=self._agent_changed)
        skills = {skill: 3 for q in settings.queues.values() for skill in q.skills}
        for n, uri in enumerate(settings.telephony.lawyer_uris, start=1):
            # Duty phones of the configuration: every skill and language, always on duty.
            self.desk.login(f"duty{n}", uri, self.now(), skills=skills,
                            languages=frozenset(Language), static=True)

    def stats(self) -> dict[str, Any]:
        """The wallboard: callers waiting per queue (and the longest wait), lawyers by state."""
        now = self.now()
        queues: dict[str, dict[str, Any]] = {
            code: {"name": q.name, "waiting": 0, "longest": 0}
            for code, q in self.settings.queues.items()}
        for waiting in self.desk.waiting.values():
            entry = queues.setdefault(waiting.queue, {"name": waiting.queue, "waiting": 0,
                                                      "longest": 0})
            entry["waiting"] += 1
            entry["longest"] = max(entry["longest"],
                                   round((now - waiting.since).total_seconds()))
        agents: dict[str, int] = {}
        for agent in self.desk.agents.values():
            key = agent.state.value if agent.status is AgentStatus.AVAILABLE else (
                agent.status.value)
            agents[key] = agents.get(key, 0) + 1
        live = sum(1 for c in self.calls.values() if not c.ended)
        return {"type": "stats", "queues": queues, "agents": agents, "calls": live}

    def publish_stats(self) -> None:
        """Send the wallboard to supervisors and lawyers when it changed (at most 1/s)."""
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._stats_at < 1.0:
            return
        current = self.stats()
        if current != self._last_stats:
            self._stats_at, self._last_stats = loop_time, current
            # Counts only (no caller facts): the lawyers' consoles show the queue summary.
            self.publish(current, [w for w in self.desk.agents if w not in self.desk.static],
                         True)

    def _agent_changed(self, work_id: str, agent: Agent, event: AgentEvent) -> None:
        log.debug("律师 %s: %s/%s", work_id, agent.status.value, agent.state.value)
        kind = _AGENT_KINDS.get(event, AgentEventKind.STATE)
        if event is AgentEvent.MISS and agent.status is AgentStatus.ON_BREAK:
            kind = AgentEventKind.STATUS  # put on break by missed offers
        if work_id not in self.desk.static:
            self.ledger.post(ledger_agents.record, work_id, self.now(), kind, agent.status,
                             agent.state, agent.break_reason)
        self.publish({"type": "agent", "work_id": work_id, "status": agent.status.value,
                      "state": agent.state.value, "break_reason": agent.break_reason,
                      "calls": agent.calls, "missed": agent.missed}, (work_id,), True)

    # --- worker events ------------------------------------------------------------------

    def on_worker_event(self, worker: str, message: Any) -> None:
        """Dispatch one event from a worker (never raises: a bad event is logged)."""
        try:
            self._dispatch(worker, message)
        except Exception:  # noqa: BLE001 - one bad event must not take the node down
            log.exception("处理媒体进程事件失败: %r", message)

    def _dispatch(self, worker: str, message: Any) -> None:
        if isinstance(message, p.CallOffered):
            # Registered at once, so a hang-up arriving while the row is written is seen.
            offered = LiveCall(message.call, worker, message.sip_call_id,
                               _user_part(message.from_uri), message.to_user, self.now())
            self.calls[offered.key] = offered
            # Answered at once (setup time is what callers feel); nothing is played or
            # recorded before the call's row, ticket and first event are written.
            self.send(worker, p.Answer(offered.key))
            asyncio.get_running_loop().create_task(self._offered(offered, message))
            return
        if isinstance(message, p.CallHeld):
            self._adopt(worker, message)
            return
        call = self.calls.get(getattr(message, "call", ""))
        if call is None:
            return
        if call.pending is not None:  # adoption in progress: keep the order
            call.pending.append(message)
            return
        if isinstance(message, p.RecordingDone):
            self._recording_closed(call, message)
            return
        if isinstance(message, p.LegEnded) and message.leg != "caller":
            self.talk.on_event(call, message)  # a leg may end after the caller's
            return
        if call.ended:
            return
        if isinstance(message, p.CommandFailed):
            log.warning("媒体进程命令失败: 工单 %s %s: %s", call.ticket_no, message.command,
                        message.detail)
        elif isinstance(message, p.LegAnswered | p.Digit) and message.leg != "caller":
            self.talk.on_event(call, message)
        elif isinstance(message, p.LegAnswered) and call.callback_id is not None:
            asyncio.get_running_loop().create_task(
                self.callbacks.caller_answered(call, message.codec))
        elif isinstance(message, p.LegAnswered):
            asyncio.get_running_loop().create_task(self._answered(call, message.codec))
        elif isinstance(message, p.Digit):
            self._feed(call, ev.DigitReceived(message.digit))
        elif isinstance(message, p.PlaybackDone):
            self._playback_done(call, message.token)
        elif isinstance(message, p.LegEnded):
            if message.at:
                call.ended_at = now_epoch(message.at, self.now())
            self._caller_gone(call, message)

    def _playback_done(self, call: LiveCall, token: int) -> None:
        if token < HOLD_TOKEN_BASE:
            self._feed(call, ev.PlaybackFinished(token))
        elif token == call.hangup_after_token:
            self.send(call.worker, p.Hangup(call.key, "transfer_failed" if call.end_reason is
                                            EndReason.FAILED else "ivr_hangup"))
        elif token == call.announce_token:
            call.announce_token = None
            if call.queued:
                self.talk.music_on(call)

    # --- helpers for hotline.conversation ----------------------------------------------

    def feed(self, call: LiveCall, event: ev.IvrEvent) -> None:
        """Hand an event to the call's IVR session."""
        self._feed(call, event)

    def next_hold_token(self) -> int:
        """A fresh token for a playback outside the IVR (music, announcements)."""
        self._hold_seq += 1
        return self._hold_seq

    def prompt_path(self, key: str) -> Path | None:
        """The 8 kHz file of a catalogue prompt, or None when the catalogue lacks it."""
        entry = self.flows.current.prompts.get(key)
        if entry is None:
            return None
        return self.audio.for_file(entry.file) if entry.file else self.audio.for_text(
            entry.text)

    def system_prompt(self, name: str) -> Path:
        """One of :data:`SYSTEM_PROMPTS` as an 8 kHz file (cached after start-up)."""
        return self.audio.for_text(SYSTEM_PROMPTS[name])

    def left_queue(self, call: LiveCall) -> None:
        """A lawyer took the call: the queue's overflow and announcements stop."""
        for timer in call.queue_timers:
            timer.cancel()
        call.queue_timers = []
        if call.announce_token is not None:
            self.send(call.worker, p.StopPlayback(call.key, call.announce_token))
            call.announce_token = None

    # --- adoption after a coordinator restart -----------------------------------------------

    def _adopt(self, worker: str, held: p.CallHeld) -> None:
        call = LiveCall(held.call, worker, held.sip_call_id, "", "", self.now())
        call.pending = []
        call.opened.set()
        self.calls[call.key] = call
        asyncio.get_running_loop().create_task(self._adopted(call, held))

    async def _adopted(self, call: LiveCall, held: p.CallHeld) -> None:
        try:
            view = await self.ledger.run(ledger_calls.find_open_call, held.sip_call_id)
        except Exception:  # noqa: BLE001 - keep the call; it is closed by the next recovery
            log.exception("接管通话时读取账本失败")
            view = None
        pending, call.pending = call.pending or [], None
        if view is None:
            log.warning("媒体进程 %s 报告的通话不在账本中, 挂断", call.worker)
            self.calls.pop(call.key, None)
            if held.legs:
                self.send(call.worker, p.Hangup(call.key, "unknown_call"))
            return
        call.db_id, call.ticket_no = view.call_id, view.ticket_no
        call.caller, call.line, call.started = view.caller_number, view.line, view.started_at
        call.recording_id, call.recording_started = (view.recording_id,
                                                     view.recording_started_at)
        for name in held.legs:
            if name != "caller":
                call.legs[name] = AgentLeg(name, "", "lawyer", "up")
        talking = [n for n in held.group if n != "caller" and n in call.legs]
        call.lawyer = talking[0] if talking else None
        call.consult = talking[1] if len(talking) > 1 else None
        call.conference = len(talking) > 1
        self.ledger.post(ledger_calls.append_events, call.db_id, [
            (self.now(), CallEventKind.IVR_NOTE,
             {"adopted": True, "worker": call.worker, "legs": list(held.legs)})])
        log.info("已接管通话: 工单 %s (媒体进程 %s, 通话方 %s)", call.ticket_no, call.worker,
                 ", ".join(held.legs) or "已结束")
        if not held.legs:
            call.end_reason = EndReason.SYSTEM_RESTART
        for message in pending:
            self._dispatch(call.worker, message)

    def on_worker_lost(self, worker: str) -> None:
        """A worker died: its calls end as worker_crash; their recordings get repaired."""
        for call in [c for c in self.calls.values() if c.worker == worker]:
            if not call.ended:
                call.end_reason = EndReason.WORKER_CRASH
                self._finish(call, {"worker": worker})
            self._repair_recording(call)
            self.calls.pop(call.key, None)

    async def shutdown(self, grace: float = 5.0) -> None:
        """Hang every live call up as ``system_restart``.

        Waits up to ``grace`` seconds for the workers to report the ends and close the
        recordings; calls a worker never reports are closed in the ledger anyway.
        """
        self.callbacks.cancel_all()
        for call in list(self.calls.values()):
            if not call.ended:
                call.end_reason = EndReason.SYSTEM_RESTART
                self.send(call.worker, p.Hangup(call.key, "system_restart"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.calls and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for call in list(self.calls.values()):  # a worker that did not answer in time
            self._finish(call, {"shutdown": True})
            self.calls.pop(call.key, None)

    # --- call life ----------------------------------------------------------------------

    async def _offered(self, call: LiveCall, offer: p.CallOffered) -> None:
        number, worker = call.caller, call.worker
        flow_id = self.flows.flow_for_line(offer.to_user)
        local = call.started.astimezone(self.settings.tz)
        window = self.settings.callers.repeat_window_days

        def open_and_look_up(session: Any) -> tuple[ledger_calls.OpenedCall, Any]:
            # Facts first: the ticket opened below must not make the caller a "repeat".
            facts = lookup_caller_facts(session, number, call.started, window)
            opened = ledger_calls.open_call(
                session, sip_call_id=offer.sip_call_id, line=offer.to_user,
                caller_number=number, flow=flow_id, worker=worker, at=call.started,
                local_day=local.date(), data={"remote": offer.remote, "worker_call": call.key})
            return opened, facts

        try:
            try:
                opened, facts = await self.ledger.run(open_and_look_up)
            except Exception:  # noqa: BLE001 - no ledger row, no call: end it cleanly
                log.exception("无法写入来电 %s, 挂断", mask_number(number))
                call.ended = True
                self.calls.pop(call.key, None)
                self.send(worker, p.Hangup(call.key, "ledger_unavailable"))
                return
            call.db_id, call.ticket_no = opened.call_id, opened.ticket_no
            if call.ended:  # the caller hung up while we were writing
                self._close(call)
                return
            call.facts = facts
            # Spoken menu choices only when the speech service can hear this call;
            # otherwise menus with speech run as key menus, without the invitation to speak.
            call.session = IvrSession(self.flows.current, flow_id, facts, self.settings.tz,
                                      listen=self.speech.can_listen(call))
            log.info("来电 %s → %s (%s), 工单 %s, 媒体进程 %s", mask_number(number),
                     offer.to_user, flow_id, opened.ticket_no, worker)
        finally:
            call.opened.set()

    async def _answered(self, call: LiveCall, codec: str = "") -> None:
        at = self.now()
        await call.opened.wait()
        if call.db_id is None or call.session is None or _over(call):
            return
        self.ledger.post(ledger_calls.update_call, call.db_id, answered_at=at)
        self.ledger.post(ledger_calls.append_events, call.db_id,
                         [(at, CallEventKind.ANSWERED, {"codec": codec} if codec else {})])
        root = self.settings.path("recordings")
        path = recording_path(root, call.ticket_no, call.started.astimezone(self.settings.tz))
        path.parent.mkdir(parents=True, exist_ok=True)
        call.recording_started = at
        call.recording_id = await self.ledger.run(ledger_calls.add_recording, call.db_id,
                                                  str(path), at)
        if call.ended:  # hung up while the row was written: nothing was recorded
            self.ledger.post(ledger_calls.close_recording, call.recording_id, sha256="",
                             seconds=0.0, size=0, closed_at=self.now(),
                             flagged="通话在录音开始前结束")
            self.calls.pop(call.key, None)
            return
        self.send(call.worker, p.Record(call.key, RECORDING_TOKEN, str(path)))
        call.side_timers.append(asyncio.get_running_loop().call_later(
            self.settings.telephony.max_call_seconds, self._too_long, call))
        self._apply(call, call.session.start(at))

    def _too_long(self, call: LiveCall) -> None:
        """A call past ``telephony.max_call_seconds`` (a stuck line, a forgotten phone)."""
        if call.ended:
            return
        log.warning("通话超过最长时长, 挂断: 工单 %s", call.ticket_no)
        call.end_reason = EndReason.TIMEOUT
        self.send(call.worker, p.Hangup(call.key, "timeout"))

    def _feed(self, call: LiveCall, event: ev.IvrEvent) -> None:
        if call.session is None or call.session.done:
            return
        self._apply(call, call.session.handle(event, self.now()))

    def _apply(self, call: LiveCall, step: Step) -> None:
        assert call.db_id is not None
        at = self.now()
        events = [(at, _TRACE_KINDS.get(t.kind, CallEventKind.IVR_NOTE),
                   {"flow": t.flow, "node": t.node, **t.data})
                  for t in step.trace if t.kind in _TRACE_KINDS]
        if step.outcome is not None and step.outcome.kind in _OUTCOME_KINDS:
            events.append((at, _OUTCOME_KINDS[step.outcome.kind],
                           {"target": step.outcome.target}))
        if events:
            self.ledger.post(ledger_calls.append_events, call.db_id, events)
        for command in step.commands:
            self._command(call, command)
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        if step.deadline is not None and not call.ended:
            delay = max(0.0, (step.deadline - self.now()).total_seconds())
            call.timer = asyncio.get_running_loop().call_later(
                delay, self._feed, call, ev.TimerFired())

    def _command(self, call: LiveCall, command: cmd.IvrCommand) -> None:
        if isinstance(command, cmd.Play):
            paths = tuple(str(self._audio_for(item)) for item in command.items)
            self.send(call.worker, p.PlayFiles(call.key, command.token, paths))
        elif isinstance(command, cmd.StopPlayback):
            self.send(call.worker, p.StopPlayback(call.key, command.token))
        elif isinstance(command, cmd.RecordMessage):
            # The message is part of the call recording; the ledger keeps where it starts.
            self._later(call, command.max_seconds, ev.RecordingFinished(
                command.token, float(command.max_seconds)))
        elif isinstance(command, cmd.Enqueue):
            self._enqueue(call, command)
        elif isinstance(command, cmd.TransferToLawyer):
            self.talk.ask_for(call, command.work_id, command.timeout)
        elif isinstance(command, cmd.TransferOut):
            self.talk.call_out(call, command.number)
        elif isinstance(command, cmd.Listen):
            # No speech (no service, no capacity): the menu goes on by key alone.
            self.speech.listen(call, command.token, tuple(command.phrases))
        elif isinstance(command, cmd.StopListening):
            self.speech.stop_listening(call, command.token)
        elif isinstance(command, cmd.Hangup):
            if call.end_reason is None:  # a lawyer's hang-up stays the reason after a survey
                call.end_reason = (EndReason.VOICEMAIL if command.reason == "voicemail"
                                   else EndReason.IVR_HANGUP)
            self.send(call.worker, p.Hangup(call.key, command.reason))

    def _enqueue(self, call: LiveCall, command: cmd.Enqueue) -> None:
        assert call.db_id is not None
        call.queue, call.queued_since = command.queue or "", self.now()
        call.priority = command.priority
        spoken = command.language or (call.session.vars.get("language")
                                      if call.session is not None else None)
        known = {lang.value for lang in Language}
        call.language = Language(str(spoken)) if spoken in known else Language.MANDARIN
        self.ledger.post(ledger_calls.update_call, call.db_id, queued_at=call.queued_since,
                         queue_code=command.queue, priority=command.priority)
        if command.hold_music:
            path = self.prompt_path(command.hold_music)
            if path is not None:
                call.hold_token = self.next_hold_token()
                self.send(call.worker, p.PlayFiles(call.key, call.hold_token, (str(path),),
                                                   loop=True))
        call.enqueue_command = command
        self._arm_queue(call, command.max_wait)
        self.talk.queued(call)
        conf = self.settings.queues.get(call.queue)
        if conf is not None and conf.overflow_when_unstaffed and not self.staffed(call.queue):
            asyncio.get_running_loop().call_soon(self._overflow, call, "no_agent")

    def _arm_queue(self, call: LiveCall, flow_wait: int | None = None) -> None:
        """The call's overflow timer and announcements in its (current) queue."""
        cap = self.settings.telephony.queue_wait
        conf = self.settings.queues.get(call.queue)
        wait = min(flow_wait or cap, conf.max_wait if conf is not None else cap, cap)
        loop = asyncio.get_running_loop()
        call.queue_timers.append(loop.call_later(wait, self._overflow, call, "max_wait"))
        command = call.enqueue_command
        if command is not None and (command.announce_position or
                                    command.announce_expected_wait) and (
                command.announce_interval > 0):
            call.queue_timers.append(loop.call_later(
                command.announce_interval, self._announce, call, command))

    def staffed(self, queue: str) -> bool:
        """Some lawyer signed in (available or not) could take a caller of ``queue``."""
        spec = self.desk.queues.get(queue)
        if spec is None:
            return bool(self.desk.agents)
        return any(set(agent.skills) & set(spec.skills) for agent in self.desk.agents.values())

    def _overflow(self, call: LiveCall, reason: str) -> None:
        """The caller waited long enough (or nobody is on duty): the queue's overflow."""
        if not call.queued or call.ended or call.lawyer is not None:
            return
        conf = self.settings.queues.get(call.queue)
        target = conf.overflow if conf is not None else None
        call.overflowed.add(call.queue)
        self.talk.stop_waiting(call)
        self.left_queue(call)
        if target and target in self.settings.queues and target not in call.overflowed:
            before, call.queue = call.queue, target  # keeps their place (queued_since)
            assert call.db_id is not None
            self.ledger.post(ledger_calls.update_call, call.db_id, queue_code=target)
            self.talk.event(call, CallEventKind.ENQUEUED, {"queue": target,
                                                           "overflow_from": before,
                                                           "reason": reason})
            log.info("排队溢出: 工单 %s %s → %s (%s)", call.ticket_no, before, target, reason)
            self._arm_queue(call, None)
            self.talk.queued(call)
            return
        if call.hold_token is not None:
            self.send(call.worker, p.StopPlayback(call.key, call.hold_token))
            call.hold_token = None
        digits = call.caller.lstrip("+")
        if target == "callback" and digits.isdigit() and call.session is not None:
            call.session.vars["callback_number"] = call.caller
            call.session.vars["callback_queue"] = call.queue
            call.end_reason = EndReason.IVR_HANGUP
            self.talk.event(call, CallEventKind.IVR_NOTE, {"left_queue": reason,
                                                           "overflow": "callback"})
            call.hangup_after_token = self.next_hold_token()
            self.send(call.worker, p.PlayFiles(call.key, call.hangup_after_token,
                                               (str(self.system_prompt("overflow_callback")),)))
        elif target and target.startswith("transfer:"):
            self.talk.event(call, CallEventKind.IVR_NOTE, {"left_queue": reason,
                                                           "overflow": target})
            self.talk.call_out(call, target.split(":", 1)[1])
        else:
            self._feed(call, ev.QueueOverflow(reason))

    def _announce(self, call: LiveCall, command: cmd.Enqueue) -> None:
        """Tell a waiting caller their place and expected wait, then music again."""
        if not call.queued or call.ended:
            return
        call.queue_timers.append(asyncio.get_running_loop().call_later(
            command.announce_interval, self._announce, call, command))
        ahead = sum(1 for other in self.calls.values()
                    if other.queued and not other.ended and other.queue == call.queue
                    and other.queued_since is not None and call.queued_since is not None
                    and other.queued_since < call.queued_since)
        parts = []
        if command.announce_position:
            parts.append(f"您前面还有 {ahead} 位来电人." if ahead else "您是下一位.")
        if command.announce_expected_wait:
            minutes = max(1, round((ahead + 1) * self.average_handle_seconds() / 60))
            parts.append(f"预计等待约 {minutes} 分钟.")
        parts.append("请不要挂机, 律师马上为您服务.")
        text = " ".join(parts)
        asyncio.get_running_loop().create_task(self._play_announcement(call, text))

    async def _play_announcement(self, call: LiveCall, text: str) -> None:
        try:
            path = await asyncio.to_thread(self.audio.for_text, text)
        except Exception:  # noqa: BLE001 - no announcement is better than no call
            log.exception("排队播报合成失败")
            return
        if not call.queued or call.ended or call.announce_token is not None:
            return
        if call.hold_token is not None:
            self.send(call.worker, p.StopPlayback(call.key, call.hold_token))
            call.hold_token = None
        call.announce_token = self.next_hold_token()
        self.send(call.worker, p.PlayFiles(call.key, call.announce_token, (str(path),)))

    def average_handle_seconds(self) -> float:
        """Mean talk time of the last calls a lawyer handled on this node."""
        recent = self._handle_times[-50:]
        return sum(recent) / len(recent) if recent else DEFAULT_HANDLE_SECONDS

    def _later(self, call: LiveCall, seconds: float, event: ev.IvrEvent) -> None:
        call.side_timers.append(asyncio.get_running_loop().call_later(
            seconds, self._feed, call, event))

    def _audio_for(self, item: cmd.PromptItem) -> Path:
        if item.kind is cmd.PromptKind.CATALOGUE:
            entry = self.flows.current.prompts[item.ref]
            return self.audio.for_file(entry.file) if entry.file else self.audio.for_text(
                entry.text)
        if item.kind is cmd.PromptKind.FILE:
            return self.audio.for_file(self.flows.current.root / item.ref)
        return self.audio.for_text(item.text)

    def _caller_gone(self, call: LiveCall, message: p.LegEnded) -> None:
        self.talk.caller_gone(call)
        if call.session is not None and not call.session.done:
            was_waiting = call.session.waiting_for
            self._apply(call, call.session.handle(ev.CallerHungUp(), self.now()))
            if call.end_reason is None:
                outcome = call.session.outcome
                if outcome is not None and outcome.kind is OutcomeKind.VOICEMAIL:
                    call.end_reason = EndReason.VOICEMAIL  # hanging up ends the message
                elif was_waiting == "queue":
                    call.end_reason = EndReason.ABANDONED
                else:
                    call.end_reason = EndReason.CALLER_HANGUP
        self._finish(call, {"sip_status": message.status, "sip_reason": message.reason})

    def _finish(self, call: LiveCall, data: dict[str, Any]) -> None:
        if call.ended:
            return
        call.ended = True
        call.end_data = data
        self.talk.caller_gone(call)
        self.speech.call_ended(call)
        if call.agent_since is not None:
            talked = ((call.ended_at or self.now()) - call.agent_since).total_seconds()
            self._handle_times = [*self._handle_times[-49:], talked]
        for timer in [call.timer, *call.side_timers, *call.queue_timers]:
            if timer is not None:
                timer.cancel()
        if call.recording_id is None and all(leg.state == "ended"
                                             for leg in call.legs.values()):
            # Else kept until the worker closes the recording, or until its other legs'
            # ends reach the desk (a callback whose caller never answered).
            self.calls.pop(call.key, None)
        if call.db_id is not None:  # else the open write is in flight; _offered closes it
            self._close(call)

    def _close(self, call: LiveCall) -> None:
        if call.closed or call.db_id is None:
            return
        call.closed = True
        session = call.session
        if call.callback_id is not None and not call.callback_answered:
            call.end_reason = call.end_reason or EndReason.FAILED  # the caller never answered
        reason = call.end_reason or EndReason.CALLER_HANGUP
        at = call.ended_at or self.now()
        self.ledger.post(ledger_calls.close_call, call.db_id, at=at, reason=reason,
                         ivr_vars=dict(session.vars) if session else {},
                         ivr_path=[f"{f}/{n}" for f, n in session.path] if session else [],
                         data=call.end_data)
        self.finished += 1
        log.info("通话结束: 工单 %s, 原因 %s", call.ticket_no, reason.value)
        self.publish({"type": "call_ended", "call": call.key, "ticket_no": call.ticket_no,
                      "reason": reason.value},
                     {leg.agent for leg in call.legs.values() if leg.agent}, True)
        if call.callback_id is not None:
            self.callbacks.attempt_over(call)
        elif call.agent_since is None:
            self.callbacks.requested(call)  # a caller who asked to be called back

    def _recording_closed(self, call: LiveCall, message: p.RecordingDone) -> None:
        self._close_recording(call, Path(message.path), message.seconds, message.sha256)
        if call.ended:
            self.calls.pop(call.key, None)

    def _close_recording(self, call: LiveCall, path: Path, seconds: float, sha: str) -> None:
        if call.recording_id is None or call.recording_started is None:
            return
        wall = (self.now() - call.recording_started).total_seconds()
        size = path.stat().st_size if path.exists() else 0
        self.ledger.post(ledger_calls.close_recording, call.recording_id, sha256=sha,
                         seconds=seconds, size=size, closed_at=self.now(),
                         flagged=flag_reason(seconds, wall))

    def _repair_recording(self, call: LiveCall) -> None:
        if call.recording_id is None or call.recording_started is None:
            return
        path = recording_path(self.settings.path("recordings"), call.ticket_no,
                              call.started.astimezone(self.settings.tz))
        try:
            # A killed worker leaves only its mono part files: merge them into the call's WAV.
            recovered = recover_parts(path)
            if recovered is None and path.exists():
                repair_wav(path)
            if path.exists():
                facts = inspect(path)
                self._close_recording(call, path, facts.seconds, facts.sha256)
        except Exception:  # noqa: BLE001 - a broken file is reported, never fatal
            log.exception("录音修复失败: %s", path)


def _over(call: LiveCall) -> bool:
    """``call.ended``, read through a call so type narrowing survives an ``await``."""
    return call.ended


def _user_part(uri: str) -> str:
    """``"张三" <sip:13800000000@host>`` → ``13800000000`` (empty when withheld)."""
    text = uri
    if "<" in text and ">" in text:
        text = text[text.index("<") + 1:text.index(">")]
    if ":" in text:
        text = text.split(":", 1)[1]
    user = text.split("@", 1)[0].split(";", 1)[0]
    return "" if user.lower() in ("anonymous", "unknown") else user
