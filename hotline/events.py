"""Events: what happened on a call, as frozen dataclasses.

Media workers (telephony issue), the ACD (queue issue) and timers report these; the IVR engine
and the coordinator consume them. They carry no behaviour and never mutate.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DigitReceived:
    """The caller keyed one DTMF digit (RFC 4733 or SIP INFO)."""

    digit: str


@dataclass(frozen=True)
class PlaybackFinished:
    """A ``Play`` command's prompts finished (or were stopped)."""

    token: int


@dataclass(frozen=True)
class RecordingFinished:
    """A ``RecordMessage`` ended (silence, max length, or a key)."""

    token: int
    seconds: float


@dataclass(frozen=True)
class SpeechHeard:
    """The caller said something while a ``Listen(token)`` ran; the worker already judged it.

    ``route`` is the menu key the utterance stands for, or None when it was rejected or not
    understood (the engine then treats it like an invalid key and falls back to keys);
    ``text`` is what the recogniser heard, for the timeline.
    """

    token: int
    route: str | None
    text: str


@dataclass(frozen=True)
class CallerHungUp:
    """The caller's leg is gone."""


@dataclass(frozen=True)
class TimerFired:
    """The session's deadline passed (the adapter arms it from ``Step.deadline``)."""


@dataclass(frozen=True)
class QueueAnswered:
    """A lawyer took the call (from enqueue or a transfer to a lawyer)."""

    lawyer: str


@dataclass(frozen=True)
class AgentLeft:
    """The lawyer hung up while the caller stays on the line (e.g. for the survey)."""


@dataclass(frozen=True)
class QueueOverflow:
    """The call left its queue unanswered (max wait, or nobody logged in)."""

    reason: str


@dataclass(frozen=True)
class TransferFailed:
    """A transfer target did not answer or is not available."""

    reason: str


IvrEvent = (DigitReceived | PlaybackFinished | RecordingFinished | SpeechHeard | CallerHungUp
            | TimerFired | QueueAnswered | AgentLeft | QueueOverflow | TransferFailed)
