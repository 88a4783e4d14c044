"""Calls as plain data: the SIP address, the key timeline, one call's script, the results.

No pjsua2 here: :mod:`hotline.telephony.caller` drives pjsua2 with these, and child caller
processes exchange them as JSON.

Timing of a call (all offsets count from CONFIRMED, i.e. the 200 OK was ACKed): the first
``--digits`` token goes ``first`` seconds after CONFIRMED, each later one ``gap`` seconds after
the previous token; a token ``5s`` sends nothing and pushes everything after it 5 seconds
later; the caller hangs up ``hold`` seconds after CONFIRMED (``hold == 0``: only when the far
end does). Call *i* of a batch is placed ``i / rate`` seconds after the batch starts.

Measurements: the setup time is ``makeCall`` to CONFIRMED (the 200 OK and our ACK), the
duration is CONFIRMED to DISCONNECTED. A call that got no SIP response at all within
:data:`NO_RESPONSE_TIMEOUT` (not even 100 Trying: nothing listens there) is hung up and
reported as 408; one not answered within the answer timeout is cancelled (487).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

# Seconds without any response to the INVITE (UDP gives no error when nothing listens).
NO_RESPONSE_TIMEOUT = 5.0
DEFAULT_SIP_PORT = 5060

_TARGET = re.compile(r"^sip:([^@\s;:]+)@([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::(\d+))?"
                     r"(;[^\s]*)?$", re.IGNORECASE)
_DTMF = re.compile(r"^[0-9*#A-D]+$")
_WAIT = re.compile(r"^(\d+(?:\.\d+)?)s$")


class EventKind(StrEnum):
    """What happened on a call, in timeline order."""

    DIALING = "dialing"  # 呼叫
    TRYING = "trying"  # 对方已受理 (100 Trying)
    RINGING = "ringing"  # 振铃 (180/183)
    CONFIRMED = "confirmed"  # 接通
    DIGIT = "digit"  # 按键
    HANGUP = "hangup"  # 本方挂机
    ENDED = "ended"  # 通话结束


class EndedBy(StrEnum):
    """Who or what ended a call."""

    LOCAL = "local"  # 本方挂机 (通话时长已到)
    REMOTE = "remote"  # 对方挂机, 或对方拒绝
    TIMEOUT = "timeout"  # 等待应答超时
    STOPPED = "stopped"  # 被中断 (Ctrl-C)
    ERROR = "error"  # 本地错误, 呼叫未能发出


@dataclass(frozen=True)
class Target:
    """A parsed ``sip:user@host[:port]`` address."""

    uri: str
    user: str
    host: str
    port: int


def parse_target(text: str) -> Target:
    """Check a SIP address; the ValueError's message is a Chinese line for the operator."""
    text = text.strip()
    if "@" in text and ":" not in text.split("@", 1)[0]:
        text = f"sip:{text}"  # 12348@host
    match = _TARGET.match(text)
    if match is None:
        raise ValueError(f"SIP 地址 {text!r} 无效, 应为 sip:号码@主机[:端口], "
                         "例如 sip:12348@127.0.0.1:5060")
    port = int(match.group(3)) if match.group(3) else DEFAULT_SIP_PORT
    if not 1 <= port <= 65535:
        raise ValueError(f"SIP 地址 {text!r} 的端口 {port} 无效, 应在 1-65535 之间")
    return Target(uri=text, user=match.group(1), host=match.group(2), port=port)


@dataclass(frozen=True)
class DigitStep:
    """Keys to send ``at`` seconds after CONFIRMED."""

    at: float
    digits: str


def digit_schedule(script: str, first: float, gap: float) -> tuple[DigitStep, ...]:
    """Turn ``"1 0 5s #"`` into timed steps (see the module docstring for the scheme).

    Raises:
        ValueError: A token is neither DTMF keys (0-9 * # A-D) nor a wait like ``5s``.
    """
    steps: list[DigitStep] = []
    at = first
    for token in script.split():
        wait = _WAIT.match(token)
        if wait:
            at += float(wait.group(1))
        elif _DTMF.match(token.upper()):
            steps.append(DigitStep(round(at, 3), token.upper()))
            at += gap
        else:
            raise ValueError(f"--digits 中的 {token!r} 无效: 应为按键 0-9 * # A-D, "
                             "或等待秒数如 5s")
    return tuple(steps)


@dataclass(frozen=True)
class CallPlan:
    """What one batch (or one child's share of it) does; plain data so it crosses processes.

    Attributes:
        uri: The SIP address to call.
        first: Index of the first call this process places (calls are numbered from 0).
        count: Calls this process places.
        rate: Calls per second across the whole batch; call *i* starts at ``i / rate``.
        digits: The key timeline of every call.
        hold: Seconds after CONFIRMED to hang up; 0 waits for the far end.
        answer_timeout: Seconds to wait for CONFIRMED before giving up.
        play: WAV file the caller plays, looped; empty for silence.
        record: WAV file of what the caller hears; ``{n}`` is replaced by the call number.
        bind: Local address for SIP and RTP; empty binds every interface.
        caller: The calling number (user part of From), as the node's ledger shows it.
        pj_log_level: pjsip's log verbosity (0-6), logged under ``hotline.pjsip``.
    """

    uri: str
    first: int = 0
    count: int = 1
    rate: float = 2.0
    digits: tuple[DigitStep, ...] = ()
    hold: float = 30.0
    answer_timeout: float = 60.0
    play: str = ""
    record: str = ""
    bind: str = "127.0.0.1"
    caller: str = "13800138000"
    pj_log_level: int = 1

    def offset(self, index: int) -> float:
        """Seconds after the batch start at which call ``index`` is placed."""
        return index / self.rate

    def record_path(self, index: int) -> str:
        """The recording file of call ``index`` (numbered from 1 in the file name)."""
        return self.record.replace("{n}", f"{index + 1:02d}") if self.record else ""

    def to_json(self) -> str:
        """The plan as one JSON string (a child's ``--plan``)."""
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> CallPlan:
        """Read :meth:`to_json`'s output back."""
        data = json.loads(text)
        data["digits"] = tuple(DigitStep(float(s["at"]), str(s["digits"]))
                               for s in data.get("digits", ()))
        return cls(**data)


@dataclass(frozen=True)
class CallEvent:
    """One line of a call's timeline; ``at`` counts seconds from the batch start."""

    call: int
    kind: EventKind
    at: float
    status: int = 0
    reason: str = ""
    digits: str = ""
    setup_ms: float | None = None
    ended_by: str = ""
    duration_s: float | None = None


@dataclass(frozen=True)
class CallResult:
    """The outcome of one call.

    Attributes:
        status: The final response to the INVITE: 200 when answered, the failure code
            otherwise (408 for our own timeouts, 0 when the call could not be sent).
        setup_ms: ``makeCall`` to CONFIRMED, in milliseconds.
        duration_s: CONFIRMED to DISCONNECTED.
        placed_at: Seconds after the batch start at which the call was placed.
    """

    index: int
    confirmed: bool
    status: int
    reason: str
    ended_by: str
    setup_ms: float | None
    duration_s: float | None
    placed_at: float | None
    digits: tuple[str, ...] = ()
    recording: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallResult:
        """Read one entry of a child's result file."""
        return cls(**{**data, "digits": tuple(data.get("digits", ()))})


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0-100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Report:
    """A batch's results and the figures derived from them."""

    uri: str
    rate: float
    hold: float
    calls: tuple[CallResult, ...]
    wall_s: float
    interrupted: bool = False

    @property
    def confirmed(self) -> int:
        """Calls that reached CONFIRMED."""
        return sum(1 for c in self.calls if c.confirmed)

    @property
    def failed(self) -> int:
        """Calls that never reached CONFIRMED."""
        return len(self.calls) - self.confirmed

    def statuses(self) -> dict[int, int]:
        """Histogram of the final INVITE statuses, lowest code first."""
        return dict(sorted(Counter(c.status for c in self.calls).items()))

    def setup_ms(self) -> dict[str, float | None]:
        """INVITE→CONFIRMED percentiles in milliseconds."""
        values = [c.setup_ms for c in self.calls if c.setup_ms is not None]
        return {"p50": percentile(values, 50), "p95": percentile(values, 95),
                "max": max(values) if values else None}

    def duration_s(self) -> dict[str, float | None]:
        """Talk-time figures of the answered calls in seconds."""
        values = [c.duration_s for c in self.calls if c.duration_s is not None]
        return {"min": min(values) if values else None, "p50": percentile(values, 50),
                "max": max(values) if values else None}

    def to_json(self) -> dict[str, Any]:
        """The machine-readable form written by ``hotline call --json``."""
        return {"target": self.uri, "count": len(self.calls), "rate": self.rate,
                "hold": self.hold, "wall_s": round(self.wall_s, 3),
                "interrupted": self.interrupted, "confirmed": self.confirmed,
                "failed": self.failed,
                "statuses": {str(k): v for k, v in self.statuses().items()},
                "setup_ms": self.setup_ms(), "duration_s": self.duration_s(),
                "calls": [asdict(c) for c in self.calls]}


# --- the per-call script (no pjsua2 here) ------------------------------------------------


class Action(StrEnum):
    """What the script asks of the SIP stack."""

    SEND = "send"  # send the next key step
    HANGUP = "hangup"  # hang up (reason in LegScript.ended_by)


@dataclass
class LegScript:
    """One call's facts and timeline decisions; the pjsua2 adapter records, this decides.

    Times are ``time.monotonic()`` values.
    """

    index: int
    plan: CallPlan
    placed_at: float | None = None
    responded: bool = False
    confirmed_at: float | None = None
    ended_at: float | None = None
    status: int = 0
    reason: str = ""
    ended_by: EndedBy | None = None
    sent: list[str] = field(default_factory=list)
    hangup_sent: bool = False

    def actions(self, now: float) -> list[Action]:
        """Keys and hang-ups due at ``now``; a hang-up decision also sets ``ended_by``."""
        if self.placed_at is None or self.ended_at is not None or self.hangup_sent:
            return []
        if self.confirmed_at is None:
            waited = now - self.placed_at
            if (not self.responded and waited >= NO_RESPONSE_TIMEOUT) \
                    or waited >= self.plan.answer_timeout:
                return self._hangup(EndedBy.TIMEOUT)
            return []
        talk = now - self.confirmed_at
        due = [Action.SEND for step in self.plan.digits[len(self.sent):] if step.at <= talk]
        if self.plan.hold > 0 and talk >= self.plan.hold:
            return due + self._hangup(EndedBy.LOCAL)
        return due

    def stop(self) -> bool:
        """Interrupted: True when the call is live and must be hung up now."""
        if self.placed_at is None or self.ended_at is not None or self.hangup_sent:
            return False
        self._hangup(EndedBy.STOPPED)
        return True

    def _hangup(self, why: EndedBy) -> list[Action]:
        self.hangup_sent = True
        self.ended_by = why
        return [Action.HANGUP]

    def deadline(self) -> float | None:
        """The next monotonic time :meth:`actions` may have something to do."""
        if self.placed_at is None or self.ended_at is not None or self.hangup_sent:
            return None
        if self.confirmed_at is None:
            limit = self.plan.answer_timeout if self.responded else min(
                NO_RESPONSE_TIMEOUT, self.plan.answer_timeout)
            return self.placed_at + limit
        times = [s.at for s in self.plan.digits[len(self.sent):]]
        if self.plan.hold > 0:
            times.append(self.plan.hold)
        return self.confirmed_at + min(times) if times else None

    def next_step(self) -> DigitStep:
        """The key step to send now (call after :attr:`Action.SEND`)."""
        step = self.plan.digits[len(self.sent)]
        self.sent.append(step.digits)
        return step

    def ended(self, now: float, status: int, reason: str) -> None:
        """Record DISCONNECTED: who ended it and the status the operator should see."""
        self.ended_at = now
        if self.confirmed_at is not None:
            self.ended_by = self.ended_by or EndedBy.REMOTE
            return
        if self.ended_by is EndedBy.TIMEOUT and not self.responded:
            status, reason = 408, "Request Timeout"  # ours: pjsua says 487 after CANCEL
        self.ended_by = self.ended_by or EndedBy.REMOTE
        self.status, self.reason = status, reason

    def result(self, start: float) -> CallResult:
        """The call's outcome; ``start`` is the batch's monotonic start."""
        setup = duration = None
        if self.confirmed_at is not None and self.placed_at is not None:
            setup = round((self.confirmed_at - self.placed_at) * 1000, 3)
            if self.ended_at is not None:
                duration = round(self.ended_at - self.confirmed_at, 3)
        return CallResult(
            index=self.index, confirmed=self.confirmed_at is not None, status=self.status,
            reason=self.reason, ended_by=str(self.ended_by or EndedBy.STOPPED),
            setup_ms=setup, duration_s=duration,
            placed_at=round(self.placed_at - start, 3) if self.placed_at is not None else None,
            digits=tuple(self.sent), recording=self.plan.record_path(self.index))


