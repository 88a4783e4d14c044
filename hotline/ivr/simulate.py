"""Run a flow with a scripted caller and print the call as a timeline (no phone needed).

The script is a list of tokens, consumed one per chance to key something: ``1`` or
``13800000000#`` presses those keys, ``_`` stays silent (the menu times out), ``!`` hangs up,
and a ``^`` prefix (``^0``) presses during the prompt instead of after it. ``say:劳动`` says
劳动 to a menu that listens (``speech:``): an exact phrase of the menu (spaces ignored) is
recognised as its route, anything else is rejected, as the real rejection rule would; said to
a menu that does not listen, it is not heard and the menu times out. When the script runs out
the caller stays silent. Queues, lawyers and voicemail are played by a scripted
"world": the queue answers (or overflows, or the caller gives up) after a fixed wait, the
lawyer talks for a while and hangs up, a message lasts 20 s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from hotline import commands as cmd
from hotline import events as ev
from hotline.callers import CallerFacts, mask_number
from hotline.domain import Category, Language, Priority
from hotline.errors import HotlineError
from hotline.ivr.engine import IvrSession, Outcome, OutcomeKind, Step
from hotline.ivr.tts import estimate_seconds
from hotline.ivr.validate import FlowSet
from hotline.speech.grammar import phrase_key

QueueBehaviour = Literal["answered", "overflow", "abandon"]
KEY_DELAY = 1.5  # seconds a scripted caller takes to react after a prompt
KEY_GAP = 0.4  # seconds between keys of one entry
SAY = "say:"  # script prefix of a spoken answer
SPEECH_ENDPOINT = 0.8  # seconds of silence before the recogniser gives its final result
QUEUE_WAIT = 20.0
TALK_TIME = 300.0
VOICEMAIL_SECONDS = 20.0
MAX_EVENTS = 2000


@dataclass
class SimResult:
    """Everything a scenario can assert on."""

    flow: str
    outcome: Outcome | None
    vars: dict[str, Any]
    path: list[tuple[str, str]]
    timeline: list[str] = field(default_factory=list)
    commands: list[cmd.IvrCommand] = field(default_factory=list)
    played: list[str] = field(default_factory=list)
    events: int = 0
    done: bool = False
    elapsed: float = 0.0


def parse_script(text: str) -> list[str]:
    """Split ``"1 0 _ 13800000000#"`` into tokens, rejecting anything a caller can't do."""
    tokens = text.split()
    for token in tokens:
        if token.startswith(SAY) and len(token) > len(SAY):
            continue  # no `^say:`: menus listen only after their prompt
        body = token[1:] if token.startswith("^") else token
        if body in ("_", "!"):
            continue
        if not body or any(c not in "0123456789*#" for c in body):
            raise HotlineError("sim.bad_script", token=token)
    return tokens


class _Clock:
    def __init__(self, start: datetime) -> None:
        self.start = start
        self.now = start

    def offset(self) -> str:
        seconds = (self.now - self.start).total_seconds()
        return f"{int(seconds // 60):02d}:{seconds % 60:04.1f}"


def simulate(flows: FlowSet, flow_id: str, *, script: list[str], at: datetime,
             caller: CallerFacts, queue: QueueBehaviour = "answered",
             hangup_at: int | None = None) -> SimResult:
    """Drive one session to its end with a scripted caller and world."""
    session = IvrSession(flows, flow_id, caller, at.tzinfo)  # type: ignore[arg-type]
    clock = _Clock(at)
    result = SimResult(flow=flow_id, outcome=None, vars={}, path=[])
    tokens = list(script)
    # (time, order, event): a tiny event queue; order keeps same-time events stable.
    pending: list[tuple[datetime, int, ev.IvrEvent]] = []
    order = 0
    listening: list[cmd.Listen] = []  # the running Listen, if any

    def schedule(delay: float, event: ev.IvrEvent) -> None:
        nonlocal order
        order += 1
        pending.append((clock.now + timedelta(seconds=delay), order, event))

    def log(text: str) -> None:
        result.timeline.append(f"{clock.offset():>8}  {text}")

    def apply(step: Step) -> None:
        for trace in step.trace:
            _describe_trace(trace, log)
        for command in step.commands:
            result.commands.append(command)
            _react(command)
        if step.outcome is not None:
            log(f"→ {_outcome_text(step.outcome)}")

    def _react(command: cmd.IvrCommand) -> None:
        if isinstance(command, cmd.Play):
            seconds = sum(estimate_seconds(i.text) if i.text else 2.0 for i in command.items)
            for item in command.items:
                result.played.append(item.ref)
            schedule(seconds, ev.PlaybackFinished(command.token))
            if tokens and tokens[0].startswith("^"):
                keys = tokens.pop(0)[1:]
                _press(keys, 1.0)
        elif isinstance(command, cmd.StopPlayback):
            pending[:] = [p for p in pending if p[2] != ev.PlaybackFinished(command.token)]
        elif isinstance(command, cmd.RecordMessage):
            log(f"● 录音留言 (最长 {command.max_seconds} 秒)")
            schedule(min(VOICEMAIL_SECONDS, command.max_seconds),
                     ev.RecordingFinished(command.token, VOICEMAIL_SECONDS))
        elif isinstance(command, cmd.Enqueue | cmd.TransferToLawyer):
            if queue == "answered":
                schedule(QUEUE_WAIT, ev.QueueAnswered("1001"))
                schedule(QUEUE_WAIT + TALK_TIME, ev.AgentLeft())
            elif queue == "overflow":
                wait = float(getattr(command, "max_wait", None) or getattr(
                    command, "timeout", None) or 60)
                schedule(wait, ev.QueueOverflow("max_wait") if isinstance(
                    command, cmd.Enqueue) else ev.TransferFailed("no_answer"))
            else:
                schedule(QUEUE_WAIT, ev.CallerHungUp())
        elif isinstance(command, cmd.TransferOut):
            log(f"⇒ 转接外线 {command.number}")
        elif isinstance(command, cmd.Listen):
            listening[:] = [command]
            log(f"◎ 开始听语音 ({len(command.phrases)} 个说法)")
        elif isinstance(command, cmd.StopListening):
            listening.clear()
            pending[:] = [p for p in pending if not (
                isinstance(p[2], ev.SpeechHeard) and p[2].token == command.token)]
        elif isinstance(command, cmd.Hangup):
            log(f"■ 挂机 ({command.reason})")

    def _press(keys: str, first: float) -> None:
        for i, key in enumerate(keys):
            schedule(first + i * KEY_GAP, ev.DigitReceived(key))

    def _say(text: str) -> None:
        if not listening:
            log(f"☎ 说「{text}」(此菜单不听语音)")
            return
        listen = listening[0]
        routes = {phrase_key(p): route for p, route in listen.phrases}
        schedule(KEY_DELAY + estimate_seconds(text) + SPEECH_ENDPOINT,
                 ev.SpeechHeard(listen.token, routes.get(phrase_key(text)), text))

    apply(session.start(clock.now))
    while not session.done and result.events < MAX_EVENTS:
        if session.waiting_for == "digits" and not any(
                isinstance(p[2], ev.DigitReceived | ev.CallerHungUp | ev.SpeechHeard)
                for p in pending):
            token = tokens.pop(0) if tokens else "_"
            if token == "!":
                schedule(KEY_DELAY, ev.CallerHungUp())
            elif token.startswith(SAY):
                _say(token[len(SAY):])
            elif token != "_":
                _press(token.lstrip("^"), KEY_DELAY)
        deadline = session.deadline
        if deadline is not None:
            pending.append((deadline, 10**9, ev.TimerFired()))
        if not pending:
            break
        pending.sort(key=lambda p: (p[0], p[1]))
        when, _, event = pending.pop(0)
        pending[:] = [p for p in pending if not isinstance(p[2], ev.TimerFired)]
        clock.now = max(clock.now, when)
        result.events += 1
        if hangup_at is not None and result.events >= hangup_at:
            log("☎ 来电人挂机")
            apply(session.handle(ev.CallerHungUp(), clock.now))
            break
        if isinstance(event, ev.DigitReceived):
            log(f"☎ 按键 {event.digit}")
        elif isinstance(event, ev.CallerHungUp):
            log("☎ 来电人挂机")
        elif isinstance(event, ev.SpeechHeard):
            log(f"☎ 说「{event.text}」")
        elif isinstance(event, ev.QueueAnswered):
            log(f"☏ 律师 {event.lawyer} 接听")
        elif isinstance(event, ev.AgentLeft):
            log("☏ 律师挂机, 来电人仍在线")
        elif isinstance(event, ev.QueueOverflow | ev.TransferFailed):
            log(f"☏ 无人接听 ({event.reason})")
        elif isinstance(event, ev.TimerFired):
            log("… 等待超时")
        apply(session.handle(event, clock.now))
    result.outcome = session.outcome
    result.vars = dict(session.vars)
    result.path = list(session.path)
    result.done = session.done
    result.elapsed = (clock.now - clock.start).total_seconds()
    return result


def _describe_trace(trace: Any, log: Any) -> None:
    where = f"[{trace.flow}/{trace.node}]"
    data = trace.data
    if trace.kind == "node":
        log(f"{where} {data['verb']}")
    elif trace.kind == "prompt":
        log(f"  ▶ 播放 {', '.join(data['items'])}: 「{_clip(data['text'])}」")
    elif trace.kind == "field":
        log(f"  ✎ {data['name']} = {_field_text(data['name'], data['value'])}")
    elif trace.kind == "digits" and data.get("anytime"):
        log(f"  ⤳ 随时按键 {data['value']}")
    elif trace.kind == "digits" and data.get("spoken"):
        if data["value"]:
            log(f"  ◎ 语音识别为按键 {data['value']}")
        else:
            log("  ◎ 语音未能识别, 改为按键")
    elif trace.kind == "note":
        if "hours" in data:
            log(f"  ◷ 服务时间判断: {_HOURS.get(data['hours'], data['hours'])}")
        elif "retry" in data:
            why = "无输入" if data["retry"] == "no_input" else "输入无效"
            log(f"  ↺ {why}, 第 {data['attempt']} 次")
        elif "error" in data:
            log(f"  ⚠ {data['error']}")


_HOURS = {"open": "服务时间内", "closed": "非服务时间", "holiday": "法定节假日"}
_OUTCOME = {OutcomeKind.ENQUEUE: "进入人工队列", OutcomeKind.TRANSFER: "转接",
            OutcomeKind.VOICEMAIL: "留言", OutcomeKind.HANGUP: "挂机"}


def _outcome_text(outcome: Outcome) -> str:
    text = _OUTCOME[outcome.kind]
    if outcome.target:
        text += f" {outcome.target}"
    if outcome.reason:
        text += f" ({outcome.reason})"
    return text


def _clip(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _field_text(name: str, value: Any) -> str:
    vocab = {"category": Category, "language": Language, "priority": Priority}.get(name)
    if vocab is not None:
        try:
            return f"{value} ({vocab(value).label})"
        except ValueError:
            return str(value)
    if name == "callback_number":
        return str(value)
    return str(value)


def render(result: SimResult, flows: FlowSet, at: datetime, caller: CallerFacts) -> str:
    """The whole report: header, timeline, outcome, ticket fields and path."""
    flow = flows.flow(result.flow)
    lines = [f"呼叫流程模拟: {flow.id} ({flow.name})  时间 {at:%Y-%m-%d %H:%M} ({at.tzinfo})"
             f"  来电 {mask_number(caller.number) if caller.number else '未知号码'}", ""]
    lines += result.timeline
    lines.append("")
    lines.append(f"结果: {_outcome_text(result.outcome) if result.outcome else '未结束'}")
    fields = {k: v for k, v in result.vars.items() if v not in (None, "", [], False)}
    if fields:
        lines.append("工单字段: " + ", ".join(f"{k}={_field_text(k, v)}"
                                           for k, v in sorted(fields.items())))
    else:
        lines.append("工单字段: (无)")
    lines.append("路径: " + " → ".join(f"{f}/{n}" for f, n in result.path))
    lines.append(f"用时: {result.elapsed:.1f} 秒")
    return "\n".join(lines)
