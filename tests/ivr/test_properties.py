"""Property tests: any caller, any time, any world — the IVR always hands the call somewhere.

These drive :class:`IvrSession` directly (not the simulator) on the shipped flows. A small
driver plays the media worker and the ACD: it sends the generated actions one by one (keys,
silence up to the deadline, "prompt finished" for the latest ``Play``, queue results...),
optionally lets the current prompt finish after an action, and when the actions run out keeps
the caller silent — prompts finish, deadlines pass, recordings end, queues answer (then the
lawyer leaves) or overflow — until the session is done.

Properties: nothing raises; every call ends within MAX_EVENTS events with an outcome of the
four kinds (never the runaway-loop guard); every command is a frozen command dataclass and
every catalogue prompt exists; deadlines never lie in the past; once done, no event changes
anything; a hang-up at any moment ends the call at once without further commands (but the
``StopListening`` of a menu that was listening); every ``Listen`` is stopped exactly once and
never two run at once; the fields left on the ticket are usable; the main line at night
always offers the after-hours menu.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from hotline import commands as cmd
from hotline import events as ev
from hotline.callers import CallerFacts
from hotline.config import load_settings
from hotline.domain import Category, GreenReason, Language, Priority
from hotline.ivr.engine import IvrSession, OutcomeKind, Step
from hotline.ivr.registry import load_flows

REPO = Path(__file__).resolve().parents[2]
SETTINGS = load_settings(environ={"HOTLINE_PATHS_FLOWS": str(REPO / "ivr_flows")})
TZ = SETTINGS.tz
FLOWS = load_flows(SETTINGS)

COMMAND_TYPES = typing.get_args(cmd.IvrCommand)
OUTCOME_KINDS = {OutcomeKind.ENQUEUE, OutcomeKind.TRANSFER, OutcomeKind.VOICEMAIL,
                 OutcomeKind.HANGUP}
MAX_EVENTS = 500
DIGITS = tuple("0123456789*#")
WORLD_ACTIONS = ("silence", "prompt_done", "queue_answered", "agent_left", "overflow",
                 "transfer_failed", "recording_done", "early_timer", "said_phrase",
                 "said_noise", "stale_speech")

# (action, then let the current prompt finish). Keys are drawn more often than world events,
# menu keys 1-4 most, and prompts usually finish, so calls get deep into the menus.
KEY_DRAW = DIGITS * 2 + tuple("1234") * 4
# Lengths and hours come from sampled_from, which hypothesis draws about evenly (plain lists
# and integers favour short and zero, which would keep most calls in the first prompt / at 0:00).
action = st.tuples(st.sampled_from(KEY_DRAW + WORLD_ACTIONS),
                   st.sampled_from([True, True, True, False]))
actions = st.sampled_from(range(41)).flatmap(
    lambda n: st.lists(action, min_size=n, max_size=n))
flow_ids = st.sampled_from(sorted(FLOWS.flows))


def local_time(day: date, hour: int, minute: int) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=TZ)


start_times = st.builds(
    local_time,
    st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 12, 31)),
    st.sampled_from(range(24)), st.sampled_from(range(60)))
callers = st.builds(
    CallerFacts,
    number=st.sampled_from(["13800000000", "", "02788889999", "95588", "+8613912345678"]),
    repeat=st.booleans(), green_channel=st.booleans())
worlds = st.sampled_from(["answered", "overflow"])


@dataclass
class Call:
    """One call driven by hand: the session plus what a media worker / ACD would know."""

    session: IvrSession
    now: datetime
    events: int = 0
    steps: list[Step] = field(default_factory=list)
    play_token: int | None = None  # the latest Play
    record_token: int | None = None  # the latest RecordMessage
    listen: cmd.Listen | None = None  # the running Listen
    last_listen_token: int | None = None
    hung_up: bool = False

    @classmethod
    def start(cls, flow_id: str, at: datetime, caller: CallerFacts) -> Call:
        call = cls(IvrSession(FLOWS, flow_id, caller, TZ), at)
        call._record(call.session.start(at))
        return call

    def _record(self, step: Step) -> Step:
        for command in step.commands:
            assert isinstance(command, COMMAND_TYPES), f"not a command: {command!r}"
            assert type(command).__dataclass_params__.frozen  # type: ignore[attr-defined]
            if isinstance(command, cmd.Play):
                assert command.items, "Play without prompts"
                for item in command.items:
                    if item.kind is cmd.PromptKind.CATALOGUE:
                        assert item.ref in FLOWS.prompts, f"unknown prompt {item.ref!r}"
                        assert item.text, f"prompt {item.ref!r} has no text"
                assert self.play_token is None or command.token > self.play_token
                self.play_token = command.token
            elif isinstance(command, cmd.RecordMessage):
                self.record_token = command.token
            elif isinstance(command, cmd.Listen):
                assert self.listen is None, "two Listens at once"
                assert command.phrases, "Listen without phrases"
                self.listen = command
                self.last_listen_token = command.token
            elif isinstance(command, cmd.StopListening):
                assert self.listen is not None and command.token == self.listen.token, (
                    f"{command!r} without its Listen")
                self.listen = None
        assert step.deadline == self.session.deadline
        if step.deadline is not None:
            assert step.deadline >= self.now, "a deadline in the past"
        assert step.done == self.session.done
        self.steps.append(step)
        return step

    def send(self, event: ev.IvrEvent, advance: float = 0.5) -> Step:
        assert self.events < MAX_EVENTS, (
            f"no end after {MAX_EVENTS} events; waiting for {self.session.waiting_for}, "
            f"path {self.session.path[-10:]}")
        # Time moves on, but never past a pending deadline: a real timer would have fired.
        later = self.now + timedelta(seconds=advance)
        deadline = self.session.deadline
        self.now = min(later, deadline) if deadline is not None and deadline >= self.now else later
        self.events += 1
        if isinstance(event, ev.CallerHungUp):
            self.hung_up = True
        return self._record(self.session.handle(event, self.now))

    def silence(self) -> Step:
        deadline = self.session.deadline
        if deadline is None:
            step = self.send(ev.TimerFired())
            assert not step.commands and not step.trace, "a timer with no deadline acted"
            return step
        self.now = max(self.now, deadline)
        return self.send(ev.TimerFired(), advance=0)

    def act(self, action: str) -> None:
        if action in DIGITS:
            self.send(ev.DigitReceived(action))
        elif action == "silence":
            self.silence()
        elif action == "early_timer":
            deadline = self.session.deadline
            if deadline is not None and self.now + timedelta(seconds=0.5) < deadline:
                step = self.send(ev.TimerFired())
                assert not step.commands and step.outcome is None and not step.done
        elif action == "prompt_done":
            if self.play_token is not None:
                self.send(ev.PlaybackFinished(self.play_token), advance=3)
        elif action == "queue_answered":
            self.send(ev.QueueAnswered("1001"), advance=20)
        elif action == "agent_left":
            self.send(ev.AgentLeft(), advance=300)
        elif action == "overflow":
            self.send(ev.QueueOverflow("max_wait"), advance=120)
        elif action == "transfer_failed":
            self.send(ev.TransferFailed("no_answer"), advance=60)
        elif action == "recording_done":
            if self.record_token is not None:
                self.send(ev.RecordingFinished(self.record_token, 12.0), advance=12)
        elif action in ("said_phrase", "said_noise"):
            if self.listen is not None:
                phrase, route = self.listen.phrases[0]
                heard = (route, phrase) if action == "said_phrase" else (None, "嗯")
                self.send(ev.SpeechHeard(self.listen.token, *heard), advance=2)
        elif action == "stale_speech":
            if self.last_listen_token is not None and self.listen is None:
                step = self.send(ev.SpeechHeard(self.last_listen_token, "1", "劳动"))
                assert not step.commands and not step.trace, "stale speech acted"
        else:  # pragma: no cover - the strategy only draws the names above
            raise AssertionError(action)

    def let_prompt_finish(self) -> None:
        if self.session.waiting_for == "play" and self.play_token is not None:
            self.send(ev.PlaybackFinished(self.play_token), advance=3)

    def world_step(self, world: str) -> None:
        """One thing the silent caller's world does next (prompt ends, timer, queue...)."""
        waiting = self.session.waiting_for
        if waiting == "play":
            assert self.play_token is not None
            self.send(ev.PlaybackFinished(self.play_token), advance=3)
        elif waiting == "digits":
            assert self.session.deadline is not None, "waits for keys with no deadline"
            self.silence()
        elif waiting == "record":
            assert self.record_token is not None
            self.send(ev.RecordingFinished(self.record_token, 20.0), advance=20)
        elif waiting == "queue":
            self.send(ev.QueueAnswered("1001") if world == "answered"
                      else ev.QueueOverflow("max_wait"), advance=20)
        elif waiting == "agent":
            self.send(ev.AgentLeft(), advance=300)
        else:
            raise AssertionError(f"stuck: waiting for {waiting!r}, not done, "
                                 f"path {self.session.path[-10:]}")

    def run_out(self, world: str) -> None:
        """The caller keeps silent and the world plays along until the call is over."""
        while not self.session.done:
            self.world_step(world)


def _assert_frozen_after_done(call: Call) -> None:
    """Once done, nothing a worker or the ACD sends changes the session."""
    session = call.session
    outcome, path, variables = session.outcome, list(session.path), dict(session.vars)
    late: list[ev.IvrEvent] = [
        ev.DigitReceived("0"), ev.DigitReceived("1"), ev.TimerFired(),
        ev.PlaybackFinished(call.play_token or 0), ev.QueueAnswered("1001"), ev.AgentLeft(),
        ev.QueueOverflow("max_wait"), ev.TransferFailed("no_answer"),
        ev.RecordingFinished(call.record_token or 0, 5.0), ev.CallerHungUp(),
        ev.SpeechHeard(call.last_listen_token or 0, "1", "劳动")]
    for late_event in late:
        call.now += timedelta(hours=1)
        step = session.handle(late_event, call.now)
        assert step == Step((), None, (), None, True), f"{late_event!r} after done: {step!r}"
    assert session.outcome == outcome and session.path == path and session.vars == variables


def drive(flow_id: str, at: datetime, caller: CallerFacts, script: list[tuple[str, bool]],
          world: str) -> Call:
    """Play the script, then keep the caller silent until the call is over."""
    call = Call.start(flow_id, at, caller)
    for action, then_finish_prompt in script:
        if call.session.done:
            break
        call.act(action)
        if then_finish_prompt:
            call.let_prompt_finish()
    call.run_out(world)
    return call


@settings(max_examples=200, deadline=None)
@given(flow_id=flow_ids, at=start_times, caller=callers, script=actions, world=worlds)
def test_every_call_reaches_an_outcome(flow_id: str, at: datetime, caller: CallerFacts,
                                       script: list[tuple[str, bool]], world: str) -> None:
    call = drive(flow_id, at, caller, script, world)
    session = call.session
    assert session.done and call.steps[-1].done
    assert call.listen is None, "a Listen was never stopped"
    assert session.outcome is not None, "done without an outcome"
    assert session.outcome.kind in OUTCOME_KINDS
    assert session.outcome.reason != "runaway_loop", session.path
    announced = [s.outcome for s in call.steps if s.outcome is not None]
    assert announced and announced[-1] == session.outcome, "final outcome never announced"
    assert session.path and session.path[0] == (flow_id, FLOWS.flow(flow_id).start)
    for flow, node in session.path:
        assert node in FLOWS.flow(flow).nodes
    if not call.hung_up:
        last = [c for s in call.steps for c in s.commands][-1]
        assert isinstance(last, cmd.Hangup | cmd.TransferOut), (
            f"the IVR ended the call without hanging up or transferring: {last!r}")
    event(f"{flow_id}: {session.outcome.kind.value} {session.outcome.target or ''}"
          f" {session.outcome.reason}".rstrip())
    _assert_frozen_after_done(call)


@settings(max_examples=200, deadline=None)
@given(flow_id=flow_ids, at=start_times, caller=callers, script=actions, world=worlds,
       hang_up_after=st.sampled_from(range(61)))
def test_hanging_up_ends_the_session_at_once(flow_id: str, at: datetime, caller: CallerFacts,
                                              script: list[tuple[str, bool]], world: str,
                                              hang_up_after: int) -> None:
    call = Call.start(flow_id, at, caller)
    for action, then_finish_prompt in script:
        if call.session.done or call.events >= hang_up_after:
            break
        call.act(action)
        if then_finish_prompt and call.events < hang_up_after:
            call.let_prompt_finish()
    # Keep the world going (the caller silent) until the chosen event, unless the call ended.
    while not call.session.done and call.events < hang_up_after:
        call.world_step(world)
    was_done = call.session.done
    outcome_before = call.session.outcome
    listening = call.listen

    step = call.send(ev.CallerHungUp())

    assert step.done and call.session.done
    # Only the recogniser of a menu that was listening is stopped.
    stop = (cmd.StopListening(listening.token),) if listening is not None else ()
    assert step.commands == stop, f"commands after the caller hung up: {step.commands!r}"
    assert call.listen is None
    assert step.deadline is None and call.session.deadline is None
    assert call.session.waiting_for == "ended"
    if was_done:
        assert step == Step((), None, (), None, True)
        assert call.session.outcome == outcome_before
    elif outcome_before is None:
        assert call.session.outcome is not None
        assert call.session.outcome.kind is OutcomeKind.HANGUP
        assert call.session.outcome.reason == "caller_hangup"
        assert step.outcome == call.session.outcome
    else:
        assert call.session.outcome == outcome_before, "a hang-up replaced the handoff"
        assert step.outcome is None
    _assert_frozen_after_done(call)


@settings(max_examples=200, deadline=None)
@given(flow_id=flow_ids, at=start_times, caller=callers, script=actions, world=worlds)
@example(  # night menu → 2 (callback) → "*******#"
    flow_id="main", at=local_time(date(2026, 12, 1), 23, 30), caller=CallerFacts("13800000000"),
    script=[("prompt_done", False), ("prompt_done", False), ("2", True)]
    + [("*", False)] * 7 + [("#", False)], world="answered")
def test_ticket_fields_are_well_formed(flow_id: str, at: datetime, caller: CallerFacts,
                                       script: list[tuple[str, bool]], world: str) -> None:
    """Whatever was keyed, the fields the IVR leaves on the ticket are usable values."""
    variables = drive(flow_id, at, caller, script, world).session.vars
    number = variables.get("callback_number")
    if number is not None:
        # A lawyer must be able to dial it: the caller id, or digits only ("*" is no digit).
        assert number == caller.number or (number.isdigit() and 7 <= len(number) <= 12), (
            f"callback_number {number!r} booked")
    if "satisfaction" in variables:
        assert variables["satisfaction"] in (1, 2, 3, 4, 5)
    for name, vocabulary in (("category", Category), ("priority", Priority),
                             ("language", Language), ("green_reason", GreenReason)):
        if variables.get(name) is not None:
            assert variables[name] in {v.value for v in vocabulary}, (name, variables[name])
    if caller.green_channel or variables.get("green_reason"):
        assert variables.get("priority") == Priority.GREEN.value


# Main is manned 08:00-22:00 every day, holidays included ("Holidays keep the same hours" in
# ivr_flows/main.yaml); outside those hours the after-hours flow answers.
night_times = st.builds(
    local_time,
    st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 12, 31)),
    st.sampled_from([22, 23, 0, 1, 2, 3, 4, 5, 6, 7]), st.sampled_from(range(60)))


@settings(max_examples=200, deadline=None)
@given(at=night_times, caller=callers)
def test_main_at_night_always_offers_the_after_hours_menu(at: datetime,
                                                          caller: CallerFacts) -> None:
    call = drive("main", at, caller, [], "overflow")
    path = call.session.path
    assert path[:3] == [("main", "notice"), ("main", "check_hours"), ("main", "night")], (
        f"{at:%Y-%m-%d %a %H:%M} (holiday: "
        f"{FLOWS.calendars['china'].is_holiday(at.date())}) took {path}")
    assert ("after_hours", "menu") in path
