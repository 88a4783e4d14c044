"""The sans-IO IVR engine: one :class:`IvrSession` per call.

The session takes events (digits, prompt finished, deadline passed, queue results, hang-up)
with the current time and returns a :class:`Step`: commands for the media worker / ACD, the
next deadline (the adapter arms a timer and feeds :class:`~hotline.events.TimerFired`), trace
records the coordinator appends to the call's timeline, and the outcome once the call leaves
the IVR. It never sleeps and never does I/O, so tests and the simulator drive it with a clock
of their own.

Keys pressed during a prompt: a flow's ``anytime`` keys (e.g. ``0`` for a human) jump from any
``play`` and from any menu that does not route that key itself; other keys during a
``barge_in`` prompt stop it and are kept as type-ahead for the next menu.

Spoken menu choices (a ``gather`` with ``speech``): when the menu's prompt has finished and it
waits for the first key, the session sends ``Listen`` and keeps waiting for keys; the first of
a key, a ``SpeechHeard`` with that token, the deadline, a hang-up or leaving the node ends it
with ``StopListening``. Listening starts only after the prompt because the menu prompt names
the phrases ("劳动争议请按1"), and an echo of it would be recognised as the caller's answer. A
recognised phrase acts exactly like its key; a rejected one like an invalid key, after which
the menu takes keys only: a caller the recogniser did not understand once is better served by
the keypad than by a second guess. A worker that never answers ``Listen`` leaves a plain DTMF
menu.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from hotline import commands as cmd
from hotline import events as ev
from hotline.callers import CallerFacts
from hotline.domain import Priority
from hotline.ivr import schema as s
from hotline.ivr.validate import FlowSet

# Node entries allowed without any caller input before the engine declares a runaway loop.
# The validator rejects such loops; this guards flows loaded without it.
MAX_SILENT_STEPS = 200


class OutcomeKind(StrEnum):
    """Where a call went when it left the IVR."""

    ENQUEUE = "enqueue"  # 进入人工队列
    TRANSFER = "transfer"  # 转接
    VOICEMAIL = "voicemail"  # 留言
    HANGUP = "hangup"  # 挂机


@dataclass(frozen=True)
class Outcome:
    """The IVR's result for the ticket: kind plus where exactly."""

    kind: OutcomeKind
    target: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Trace:
    """One timeline record: ``kind`` in node / digits / field / prompt / outcome / note."""

    kind: str
    flow: str
    node: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """What one input produced."""

    commands: tuple[cmd.IvrCommand, ...]
    deadline: datetime | None
    trace: tuple[Trace, ...]
    outcome: Outcome | None
    done: bool


class _Wait(StrEnum):
    NOTHING = "nothing"
    PLAY = "play"
    DIGITS = "digits"
    RECORD = "record"
    QUEUE = "queue"
    AGENT = "agent"
    ENDED = "ended"


@dataclass
class _Collect:
    """A digit collection in progress (gather, callback number, survey score)."""

    max_digits: int
    terminator: str
    first_timeout: float
    inter_timeout: float
    finish: Callable[[datetime, str], None]
    no_input: Callable[[datetime], None]
    menu_keys: frozenset[str] = frozenset()  # keys the node routes itself
    anytime: bool = False
    buffer: str = ""
    # Spoken choices as (phrase, route key); emptied once speech was rejected (keys only).
    speech: tuple[tuple[str, str], ...] = ()
    speech_timeout: float = 0.0
    spoken: Callable[[datetime, str | None, str], None] | None = None


class IvrSession:
    """Runs one caller through the flows. Not thread-safe: one owner (the coordinator)."""

    def __init__(self, flows: FlowSet, flow_id: str, caller: CallerFacts, tz: ZoneInfo,
                 *, listen: bool = True) -> None:
        """Prepare a session; ``listen=False`` when nobody can recognise this call's speech.

        Without a recogniser (no model, speech disabled, no free stream) menus with
        ``speech`` run as plain DTMF menus and never play their ``speech_prompt``, so the
        caller is not invited to speak to a menu that cannot hear.
        """
        self.flows = flows
        self.listen = listen
        self.caller = caller
        self.tz = tz
        self.flow: s.Flow = flows.flow(flow_id)
        self.vars: dict[str, Any] = dict(self.flow.vars)
        if caller.green_channel:
            self.vars["priority"] = Priority.GREEN.value
            if caller.green_reasons:
                self.vars["green_reason"] = caller.green_reasons[0].value
        self.path: list[tuple[str, str]] = []
        self.outcome: Outcome | None = None
        self.done = False
        self._node: s.Node | None = None
        self._stack: list[tuple[s.Flow, str | None]] = []
        self._wait = _Wait.NOTHING
        self._token = 0
        self._play_done: Callable[[datetime], None] | None = None
        self._play_barge = False
        self._play_anytime = False
        self._play_collects = False
        self._collect: _Collect | None = None
        self._listening: int | None = None  # token of the running Listen
        self._typeahead = ""
        self._deadline: datetime | None = None
        self._attempt = 0
        self._after_agent: str | None = None
        self._transfer_fallback: str | None = None
        self._silent_steps = 0
        self._commands: list[cmd.IvrCommand] = []
        self._trace: list[Trace] = []
        self._new_outcome: Outcome | None = None

    # --- public API ---------------------------------------------------------------------

    def start(self, now: datetime) -> Step:
        """Enter the flow's start node."""
        self._goto(self.flow.start, now)
        return self._step()

    def handle(self, event: ev.IvrEvent, now: datetime) -> Step:
        """Apply one event; events that do not fit the current wait are ignored."""
        if self.done:
            return self._step()
        if isinstance(event, ev.CallerHungUp):
            self._caller_gone(now)
        elif isinstance(event, ev.DigitReceived):
            self._silent_steps = 0
            self._digit(event.digit, now)
        elif isinstance(event, ev.PlaybackFinished):
            if self._wait is _Wait.PLAY and event.token == self._token:
                self._finish_play(now)
        elif isinstance(event, ev.TimerFired):
            if self._deadline is not None and now >= self._deadline:
                self._timeout(now)
        elif isinstance(event, ev.RecordingFinished):
            if self._wait is _Wait.RECORD and event.token == self._token:
                self._recorded(event.seconds, now)
        elif isinstance(event, ev.SpeechHeard):
            if self._listening is not None and event.token == self._listening:
                self._silent_steps = 0
                self._heard(event, now)
        else:
            self._queue_event(event, now)
        return self._step()

    @property
    def deadline(self) -> datetime | None:
        """When the adapter must send ``TimerFired`` (None: nothing timed)."""
        return self._deadline

    @property
    def waiting_for(self) -> str:
        """What the session waits for (play, digits, record, queue, agent, ended)."""
        return self._wait.value

    # --- plumbing -----------------------------------------------------------------------

    def _step(self) -> Step:
        step = Step(tuple(self._commands), self._deadline, tuple(self._trace),
                    self._new_outcome, self.done)
        self._commands, self._trace, self._new_outcome = [], [], None
        return step

    def _note(self, trace_kind: str, /, **data: Any) -> None:
        node = self._node.id if self._node else ""
        self._trace.append(Trace(trace_kind, self.flow.id, node, data))

    def _set_outcome(self, outcome: Outcome) -> None:
        self.outcome = self._new_outcome = outcome
        self._note("outcome", kind=outcome.kind.value, target=outcome.target,
                   reason=outcome.reason)

    def _end(self, reason: str) -> None:
        self._stop_listening()
        self._commands.append(cmd.Hangup(reason))
        self._wait = _Wait.ENDED
        self._deadline = None
        self.done = True

    def _items(self, prompt_ids: tuple[str, ...]) -> tuple[cmd.PromptItem, ...]:
        out = []
        for pid in prompt_ids:
            entry = self.flows.prompts.get(pid)
            out.append(cmd.PromptItem(cmd.PromptKind.CATALOGUE, pid, entry.text if entry else ""))
        return tuple(out)

    def _play(self, items: tuple[cmd.PromptItem, ...], now: datetime, *, barge_in: bool,
              anytime: bool, then: Callable[[datetime], None], collects: bool = False) -> None:
        if not items:
            then(now)
            return
        self._token += 1
        self._commands.append(cmd.Play(self._token, items, barge_in))
        self._note("prompt", items=[i.ref for i in items], text="".join(i.text for i in items))
        self._wait = _Wait.PLAY
        self._deadline = None
        self._play_done = then
        self._play_barge = barge_in
        self._play_anytime = anytime
        self._play_collects = collects

    def _finish_play(self, now: datetime) -> None:
        then = self._play_done
        self._play_done = None
        self._wait = _Wait.NOTHING
        if then is not None:
            then(now)

    # --- moving between nodes -------------------------------------------------------------

    def _goto(self, node_id: str | None, now: datetime) -> None:
        """Enter a node, or fall off the end of the current flow when ``node_id`` is None."""
        self._stop_listening()
        while node_id is None:
            if not self._stack:
                if self.outcome is None:
                    self._set_outcome(Outcome(OutcomeKind.HANGUP, reason="flow_end"))
                self._end("normal")
                return
            self.flow, node_id = self._stack.pop()
        self._silent_steps += 1
        if self._silent_steps > MAX_SILENT_STEPS:
            self._note("note", error="runaway_loop")
            self._set_outcome(Outcome(OutcomeKind.HANGUP, reason="runaway_loop"))
            self._end("error")
            return
        node = self.flow.nodes[node_id]
        self._node = node
        self._collect = None
        self.path.append((self.flow.id, node.id))
        self._note("node", verb=node.verb)
        getattr(self, f"_run_{node.verb}")(node, now)

    def _next(self, now: datetime) -> None:
        assert self._node is not None
        self._goto(self._node.next, now)

    def _jump_anytime(self, digit: str, now: datetime) -> None:
        if self._wait is _Wait.PLAY:
            self._commands.append(cmd.StopPlayback(self._token))
        self._collect = None
        self._play_done = None
        self._wait = _Wait.NOTHING
        self._deadline = None
        self._typeahead = ""
        self._note("digits", value=digit, anytime=True)
        self._goto(self.flow.anytime[digit], now)

    # --- verbs ------------------------------------------------------------------------------

    def _run_play(self, node: s.Node, now: datetime) -> None:
        spec: s.Play = node.spec
        if spec.prompt:
            items = self._items(spec.prompt)
        elif spec.file:
            items = (cmd.PromptItem(cmd.PromptKind.FILE, spec.file, f"[{spec.file}]"),)
        else:
            items = (cmd.PromptItem(cmd.PromptKind.SAY, spec.say or "", spec.say or ""),)
        self._play(items, now, barge_in=spec.barge_in, anytime=True, then=self._next)

    def _run_set(self, node: s.Node, now: datetime) -> None:
        for name, value in node.spec.values.items():
            if name == "tags":
                tags = list(self.vars.get("tags", []))
                for tag in [value] if isinstance(value, str) else value:
                    if tag not in tags:
                        tags.append(tag)
                value = tags
            self.vars[name] = value
            self._note("field", name=name, value=value)
        self._next(now)

    def _run_goto(self, node: s.Node, now: datetime) -> None:
        self._goto(node.spec.node, now)

    def _run_subflow(self, node: s.Node, now: datetime) -> None:
        spec: s.Subflow = node.spec
        self._stack.append((self.flow, node.next))
        self.flow = self.flows.flow(spec.flow)
        self._goto(spec.node or self.flow.start, now)

    def _run_hours(self, node: s.Node, now: datetime) -> None:
        spec: s.Hours = node.spec
        schedule = self.flows.schedules[(self.flow.id, node.id)]
        calendar = self.flows.calendars.get(spec.calendar) if spec.calendar else None
        local = now.astimezone(self.tz)
        status = schedule.status(local, calendar)
        if status == "holiday" and not spec.holiday:
            # Without a holiday branch a public holiday keeps the weekday's hours.
            status = schedule.status(local, None)
        self._note("note", hours=status)
        target = {"open": spec.open, "closed": spec.closed}.get(status, spec.holiday)
        self._goto(target, now)

    def _run_branch(self, node: s.Node, now: datetime) -> None:
        spec: s.Branch = node.spec
        facts = {**self.caller.as_facts(), **self.vars}
        for i, case in enumerate(spec.cases):
            if all(_holds(facts.get(name), cond) for name, cond in case.when.items()):
                self._note("note", branch=i)
                self._goto(case.goto, now)
                return
        self._note("note", branch="otherwise")
        self._goto(spec.otherwise, now)

    def _run_hangup(self, node: s.Node, now: datetime) -> None:
        spec: s.Hangup = node.spec
        if self.outcome is None:  # after a lawyer's call (survey) the outcome stays enqueue
            self._set_outcome(Outcome(OutcomeKind.HANGUP, reason=spec.reason))
        self._play(self._items(spec.prompt), now, barge_in=False, anytime=False,
                   then=lambda _now: self._end(spec.reason))

    def _run_enqueue(self, node: s.Node, now: datetime) -> None:
        spec: s.Enqueue = node.spec
        priority = Priority(spec.priority or self.vars.get("priority") or Priority.NORMAL)
        self._typeahead = ""
        self._commands.append(cmd.Enqueue(
            queue=spec.queue, skills=spec.skills, priority=priority, max_wait=spec.max_wait,
            announce_position=spec.announce.position,
            announce_expected_wait=spec.announce.expected_wait,
            announce_interval=spec.announce.interval, hold_music=spec.hold_music,
            offer_callback=spec.offer_callback, language=self.vars.get("language"),
            category=self.vars.get("category")))
        self._set_outcome(Outcome(OutcomeKind.ENQUEUE, target=spec.queue or
                                  ",".join(spec.skills)))
        self._wait = _Wait.QUEUE
        self._deadline = None
        self._after_agent = spec.after_call
        self._transfer_fallback = spec.overflow

    def _run_transfer(self, node: s.Node, now: datetime) -> None:
        spec: s.Transfer = node.spec

        def go(_now: datetime) -> None:
            if spec.number:
                self._set_outcome(Outcome(OutcomeKind.TRANSFER, target=spec.number))
                self._commands.append(cmd.TransferOut(spec.number))
                self._wait = _Wait.ENDED
                self.done = True
                return
            work_id = spec.lawyer or str(self.vars.get(spec.lawyer_var or "", ""))
            self._set_outcome(Outcome(OutcomeKind.TRANSFER, target=f"lawyer:{work_id}"))
            self._commands.append(cmd.TransferToLawyer(work_id, spec.timeout))
            self._wait = _Wait.QUEUE
            self._after_agent = None
            self._transfer_fallback = spec.fallback

        self._play(self._items(spec.prompt), now, barge_in=False, anytime=False, then=go)

    def _run_voicemail(self, node: s.Node, now: datetime) -> None:
        spec: s.Voicemail = node.spec

        def record(_now: datetime) -> None:
            self._token += 1
            self._commands.append(cmd.RecordMessage(self._token, spec.max_seconds, spec.beep,
                                                    spec.silence_timeout))
            self._set_outcome(Outcome(OutcomeKind.VOICEMAIL, target=spec.queue or ""))
            self._wait = _Wait.RECORD
            # A worker that never reports would leave the call open: allow a margin.
            self._deadline = _now + timedelta(seconds=spec.max_seconds + 10)

        self._play(self._items(spec.prompt), now, barge_in=False, anytime=False, then=record)

    def _recorded(self, seconds: float, now: datetime) -> None:
        assert self._node is not None
        spec: s.Voicemail = self._node.spec
        self._note("note", voicemail_seconds=round(seconds, 1))
        thanks = (spec.thanks,) if spec.thanks else ()
        self._play(self._items(thanks), now, barge_in=False, anytime=False,
                   then=lambda _now: self._end("voicemail"))

    def _run_gather(self, node: s.Node, now: datetime) -> None:
        spec: s.Gather = node.spec
        self._attempt = 0
        collect = _Collect(
            max_digits=spec.max_digits,
            terminator=spec.terminator if spec.max_digits > 1 else "",
            first_timeout=spec.first_digit_timeout, inter_timeout=spec.inter_digit_timeout,
            finish=lambda t, value: self._gather_value(spec, value, t),
            no_input=lambda t: self._gather_retry(spec, spec.no_input_prompt, "no_input", t),
            menu_keys=frozenset(spec.routes), anytime=not spec.store,
            speech=tuple((phrase, key) for key, phrases in spec.speech.items()
                         if key in spec.routes for phrase in phrases) if self.listen else (),
            speech_timeout=spec.speech_timeout or spec.first_digit_timeout,
            spoken=lambda t, route, text: self._gather_spoken(spec, route, text, t))
        self._prompt_then_collect(self._gather_prompt(spec, collect, ()), collect, now)

    def _gather_prompt(self, spec: s.Gather, collect: _Collect,
                       before: tuple[str, ...]) -> tuple[cmd.PromptItem, ...]:
        """The menu prompt, with its invitation to speak only while the menu listens."""
        speech = spec.speech_prompt if collect.speech else ()
        return self._items(before + spec.prompt + speech)

    def _gather_spoken(self, spec: s.Gather, route: str | None, text: str,
                       now: datetime) -> None:
        heard = _heard_text(text)
        if route is not None and route in spec.routes:
            self._note("digits", value=route, attempt=self._attempt, spoken=True, heard=heard)
            self._goto(spec.routes[route], now)
            return
        self._note("digits", value="", attempt=self._attempt, spoken=True, heard=heard)
        assert self._collect is not None
        self._collect.speech = ()  # keys only from now on (DTMF fallback)
        self._gather_retry(spec, spec.speech_invalid_prompt or spec.invalid_prompt, "invalid",
                           now, spoken=True)

    def _gather_value(self, spec: s.Gather, value: str, now: datetime) -> None:
        self._note("digits", value=value if not spec.store else _mask(value), attempt=self._attempt)
        if value in spec.routes:
            self._goto(spec.routes[value], now)
            return
        if spec.store and spec.min_digits <= len(value) <= spec.max_digits and (
                spec.pattern is None or re.fullmatch(spec.pattern, value)):
            self.vars[spec.store] = value
            self._note("field", name=spec.store, value=value)
            self._next(now)
            return
        self._gather_retry(spec, spec.invalid_prompt, "invalid", now)

    def _gather_retry(self, spec: s.Gather, prompt: tuple[str, ...], why: str,
                      now: datetime, *, spoken: bool = False) -> None:
        self._attempt += 1
        if spoken:
            self._note("note", retry=why, attempt=self._attempt, spoken=True)
        else:
            self._note("note", retry=why, attempt=self._attempt)
        if self._attempt > spec.retries:
            self._goto(spec.otherwise, now)
            return
        assert self._collect is not None
        collect = self._collect
        collect.buffer = ""
        self._prompt_then_collect(self._gather_prompt(spec, collect, prompt), collect, now)

    def _run_callback(self, node: s.Node, now: datetime) -> None:
        spec: s.Callback = node.spec

        def accept(value: str) -> bool:
            number = value
            if not value and spec.allow_caller_id and self.caller.number:
                number = self.caller.number
            own = not value and number == self.caller.number
            if not (number.isdigit() and (own or spec.min_digits <= len(number)
                                          <= spec.max_digits)):
                return False
            self.vars["callback_number"] = number
            self.vars["callback_queue"] = spec.queue or ""
            self._note("field", name="callback_number", value=_mask(number))
            self._note("field", name="callback_queue", value=spec.queue or "")
            return True

        # One digit more than allowed is collected so that a too-long number is refused
        # rather than silently cut off at max_digits.
        self._ask(spec, max_digits=spec.max_digits + 1, terminator="#", accept=accept,
                  shown=lambda v: _mask(v) if v else "#", now=now)

    def _run_survey(self, node: s.Node, now: datetime) -> None:
        spec: s.Survey = node.spec

        def accept(value: str) -> bool:
            if value not in ("1", "2", "3", "4", "5"):
                return False
            self.vars["satisfaction"] = int(value)
            self._note("field", name="satisfaction", value=int(value))
            return True

        self._ask(spec, max_digits=1, terminator="", accept=accept, shown=lambda v: v, now=now)

    def _ask(self, spec: s.Callback | s.Survey, *, max_digits: int, terminator: str,
             accept: Callable[[str], bool], shown: Callable[[str], str],
             now: datetime) -> None:
        """Ask for one entry; thank and go on when accepted, else retry, then go on anyway."""
        self._attempt = 0

        def finish(t: datetime, value: str) -> None:
            self._note("digits", value=shown(value), attempt=self._attempt)
            if accept(value):
                thanks = (spec.thanks,) if spec.thanks else ()
                self._play(self._items(thanks), t, barge_in=False, anytime=False,
                           then=self._next)
            else:
                retry(t, spec.invalid_prompt)

        def retry(t: datetime, prompt: tuple[str, ...]) -> None:
            self._attempt += 1
            self._note("note", retry="invalid" if prompt else "no_input", attempt=self._attempt)
            if self._attempt > spec.retries:
                self._next(t)
                return
            collect.buffer = ""
            self._prompt_then_collect(self._items(prompt + spec.prompt), collect, t)

        collect = _Collect(max_digits=max_digits, terminator=terminator,
                           first_timeout=spec.timeout, inter_timeout=spec.timeout,
                           finish=finish, no_input=lambda t: retry(t, ()))
        self._prompt_then_collect(self._items(spec.prompt), collect, now)

    # --- digit collection ---------------------------------------------------------------

    def _prompt_then_collect(self, items: tuple[cmd.PromptItem, ...], collect: _Collect,
                             now: datetime) -> None:
        self._collect = collect

        def listen(t: datetime) -> None:
            self._wait = _Wait.DIGITS
            timeout = collect.first_timeout
            if collect.speech:
                self._token += 1
                self._listening = self._token
                self._commands.append(cmd.Listen(self._token, collect.speech))
                # A spoken answer is known only after the caller stops and the recogniser's
                # endpoint; keys never get less time than without speech.
                timeout = max(timeout, collect.speech_timeout)
            self._deadline = t + timedelta(seconds=timeout)

        if self._typeahead:
            pending, self._typeahead = self._typeahead, ""
            self._wait = _Wait.DIGITS
            for digit in pending:
                if self._collect is not collect or self._wait is not _Wait.DIGITS:
                    break
                self._collect_digit(digit, now)
            return
        self._play(items, now, barge_in=True, anytime=collect.anytime, then=listen,
                   collects=True)

    def _digit(self, digit: str, now: datetime) -> None:
        if digit not in "0123456789*#" or len(digit) != 1:
            return
        if self._wait is _Wait.PLAY:
            collecting = self._play_collects and self._collect is not None
            if self._play_anytime and digit in self.flow.anytime and not (
                    collecting and self._collect is not None
                    and digit in self._collect.menu_keys):
                self._jump_anytime(digit, now)
            elif collecting:
                self._commands.append(cmd.StopPlayback(self._token))
                self._play_done = None
                self._wait = _Wait.DIGITS
                self._collect_digit(digit, now)
            elif self._play_barge:
                # Skip the rest of this prompt; keep the key for the next menu.
                self._commands.append(cmd.StopPlayback(self._token))
                self._typeahead += digit
                self._finish_play(now)
        elif self._wait is _Wait.DIGITS:
            self._collect_digit(digit, now)

    def _collect_digit(self, digit: str, now: datetime) -> None:
        collect = self._collect
        assert collect is not None
        self._stop_listening()  # a key wins over speech
        if (not collect.buffer and collect.anytime and digit in self.flow.anytime
                and digit not in collect.menu_keys):
            self._jump_anytime(digit, now)
            return
        if collect.terminator and digit == collect.terminator:
            self._deadline = None
            self._wait = _Wait.NOTHING
            collect.finish(now, collect.buffer)
            return
        collect.buffer += digit
        if len(collect.buffer) >= collect.max_digits:
            self._deadline = None
            self._wait = _Wait.NOTHING
            value, collect.buffer = collect.buffer, ""
            collect.finish(now, value)
            return
        self._deadline = now + timedelta(seconds=collect.inter_timeout)

    def _timeout(self, now: datetime) -> None:
        self._deadline = None
        if self._wait is _Wait.DIGITS and self._collect is not None:
            self._stop_listening()
            collect = self._collect
            self._wait = _Wait.NOTHING
            if collect.buffer:
                value, collect.buffer = collect.buffer, ""
                collect.finish(now, value)
            else:
                self._silent_steps = 0
                collect.no_input(now)
        elif self._wait is _Wait.RECORD:
            self._recorded(0.0, now)

    def _stop_listening(self) -> None:
        if self._listening is not None:
            self._commands.append(cmd.StopListening(self._listening))
            self._listening = None

    def _heard(self, event: ev.SpeechHeard, now: datetime) -> None:
        self._stop_listening()
        collect = self._collect
        if self._wait is not _Wait.DIGITS or collect is None or collect.spoken is None:
            return
        self._deadline = None
        self._wait = _Wait.NOTHING
        collect.spoken(now, event.route, event.text)

    # --- queue and end of call ------------------------------------------------------------

    def _queue_event(self, event: ev.IvrEvent, now: datetime) -> None:
        if isinstance(event, ev.QueueAnswered) and self._wait is _Wait.QUEUE:
            self._note("note", answered_by=event.lawyer)
            self._wait = _Wait.AGENT
        elif isinstance(event, ev.AgentLeft) and self._wait is _Wait.AGENT:
            self._note("note", agent_left=True)
            self._wait = _Wait.NOTHING
            self._silent_steps = 0
            if self._after_agent:
                self._goto(self._after_agent, now)
            else:
                self._end("normal")
        elif isinstance(event, ev.QueueOverflow | ev.TransferFailed) and (
                self._wait is _Wait.QUEUE):
            self._note("note", left_queue=event.reason)
            self.outcome = None  # the IVR takes the call back; its next handoff decides
            self._wait = _Wait.NOTHING
            self._silent_steps = 0
            if self._transfer_fallback:
                self._goto(self._transfer_fallback, now)
            else:
                self._set_outcome(Outcome(OutcomeKind.HANGUP, reason=event.reason))
                self._end("unanswered")

    def _caller_gone(self, now: datetime) -> None:
        self._stop_listening()
        self._note("note", caller_hung_up=True, waiting=self._wait.value)
        if self.outcome is None:
            self._set_outcome(Outcome(OutcomeKind.HANGUP, reason="caller_hangup"))
        self._wait = _Wait.ENDED
        self._deadline = None
        self.done = True


def _mask(value: str) -> str:
    """Entered numbers are personal data: keep only the last 4 digits in the timeline."""
    return value if len(value) <= 4 else "*" * (len(value) - 4) + value[-4:]


# Runs of five or more digits (Arabic or spoken Chinese) in what a caller said: a number.
_NUMBER_RUN = re.compile(r"[0-9零〇一二三四五六七八九幺两]{5,}")


def _heard_text(text: str) -> str:
    """What the recogniser heard, for the timeline: numbers masked like keyed ones, clipped.

    A rejected utterance can be anything, including a phone or ID number said aloud.
    """
    joined = "".join(text.split())  # Chinese needs no spaces; Vosk puts them between words
    masked = _NUMBER_RUN.sub(lambda m: _mask(m.group()), joined)
    return masked if len(masked) <= 40 else masked[:39] + "…"


def _holds(actual: Any, cond: Any) -> bool:
    """Evaluate one ``branch`` condition (scalar equality, list membership, or operators)."""
    if isinstance(cond, dict):
        return all(_holds_op(actual, op, value) for op, value in cond.items())
    if isinstance(cond, list):
        if isinstance(actual, list):
            return any(item in actual for item in cond)
        return actual in cond
    if isinstance(actual, list):
        return cond in actual
    return bool(actual == cond)


def _holds_op(actual: Any, op: str, value: Any) -> bool:
    if op == "eq":
        return bool(actual == value)
    if op == "ne":
        return bool(actual != value)
    if op == "in":
        return bool(actual in value)
    if op == "not_in":
        return bool(actual not in value)
    if op == "exists":
        return (actual not in (None, "", [])) == bool(value)
    number = _num(actual)
    if number is None:
        return False
    limit = float(value)
    return {"gt": number > limit, "gte": number >= limit, "lt": number < limit,
            "lte": number <= limit}.get(op, False)


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None
