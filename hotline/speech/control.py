"""The speech service's control protocol: JSON lines between the coordinator and the service.

Audio does not travel here: the media workers stream each leg to the service's tap socket
(:mod:`hotline.telephony.tap_stream`). This connection says what each stream is before it
arrives and carries the text back. Sans-IO: dataclasses and their encoding only.

Coordinator → service:
    ``Expect``  a leg's stream is coming: whose voice, which ticket/call row, which model,
                live captions or a spoken menu choice (grammar mode).
    ``Forget``  the call is over: drop expectations its streams never used.
Service → coordinator:
    ``Ready``    the service is up: its capacity and the models it can load.
    ``Partial``  live caption text of the utterance in progress (masked).
    ``Final``    a finished utterance, already stored as a transcript segment (masked).
    ``Heard``    the decision on a spoken menu choice (route None = rejected).
    ``StreamEnd``  a stream is over (``ok`` false: refused, cut short or failed).
    ``Alert``    urgency phrases in what the caller said (self-harm, violence, ...).
    ``Drafted``  the ticket's draft was recomputed from the stored segments.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from hotline.errors import HotlineError


class ControlError(HotlineError):
    """A line on the speech control connection that is not a known message."""

    default_code = "speech.control"


@dataclass(frozen=True)
class Expect:
    """A stream for ``(call, leg)`` will connect to the tap socket.

    Attributes:
        call: The call key (the tap header's ``call``).
        leg: The leg name (the tap header's ``leg``).
        speaker: "caller" or "lawyer".
        call_id: The call's ledger row (segments are stored against it), or None.
        t0: Epoch seconds that segment times count from (the recording's start).
        model: Name of the model to use (one the service was started with).
        mode: "live" (captions + segments) or "grammar" (one spoken menu choice).
        token: The IVR's listen token (grammar mode).
        phrases: (phrase, route) pairs of the menu (grammar mode).
    """

    call: str
    leg: str
    speaker: str
    call_id: int | None
    t0: float
    model: str
    mode: Literal["live", "grammar"] = "live"
    token: str = ""
    phrases: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Forget:
    """Drop what is still expected of ``call``."""

    call: str


@dataclass(frozen=True)
class Ready:
    """The service is listening; ``capacity`` streams at most."""

    capacity: int
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class Partial:
    """The utterance in progress on one leg."""

    call: str
    leg: str
    speaker: str
    text: str


@dataclass(frozen=True)
class Final:
    """One utterance, stored as transcript segment ``segment_id`` (0 when not stored)."""

    call: str
    leg: str
    speaker: str
    start: float
    end: float
    text: str
    confidence: float
    segment_id: int = 0


@dataclass(frozen=True)
class Heard:
    """A spoken menu choice: ``route`` None when the rejection rule refused it."""

    call: str
    token: str
    route: str | None
    text: str
    reason: str = ""


@dataclass(frozen=True)
class StreamEnd:
    """A stream is over; ``why`` says what went wrong when ``ok`` is false."""

    call: str
    leg: str
    ok: bool
    segments: int = 0
    dropped_frames: int = 0
    why: str = ""


@dataclass(frozen=True)
class Alert:
    """Urgency flags raised by what ``speaker`` said (hotline.speech.text.urgency)."""

    call: str
    speaker: str
    flags: tuple[str, ...]
    transfers: tuple[str, ...]
    text: str
    evidence: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Drafted:
    """The call's ticket now holds this draft (``hotline.speech.text.draft``)."""

    call: str
    call_id: int
    category: str | None
    draft: dict[str, Any] = field(default_factory=dict)


Message = Expect | Forget | Ready | Partial | Final | Heard | StreamEnd | Alert | Drafted
_TYPES: dict[str, type[Any]] = {cls.__name__: cls for cls in (
    Expect, Forget, Ready, Partial, Final, Heard, StreamEnd, Alert, Drafted)}
_TUPLES = {"phrases", "models", "flags", "transfers", "evidence"}


def encode(message: Message) -> bytes:
    """One JSON line."""
    body = {"t": type(message).__name__, **asdict(message)}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes | str) -> Message:
    """Parse one line.

    Raises:
        ControlError: Not JSON, an unknown type or fields that do not fit it.
    """
    try:
        body = json.loads(line)
        cls = _TYPES[body.pop("t")]
        for key in _TUPLES & body.keys():
            value = body[key]
            body[key] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        message: Message = cls(**body)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ControlError(detail=f"bad control line: {exc}"[:200]) from None
    return message
