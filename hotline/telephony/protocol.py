"""The one message protocol between the coordinator and media workers.

Frozen dataclasses, serialised as one JSON object per line (``{"type": "PlayFiles", ...}``)
over a stream socket, so a worker may later run on another host. The codec is sans-IO:
:func:`encode` gives bytes, :class:`Decoder` turns received bytes into messages and rejects
anything malformed with a :class:`ProtocolError` instead of crashing the reader.

Every message about a call carries ``call`` (the coordinator's call id, a string the worker
echoes back); ``leg`` names a leg inside that call ("caller", "lawyer", "consult", ...).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from typing import Any

from hotline.errors import HotlineError

MAX_LINE = 64 * 1024


class ProtocolError(HotlineError):
    """A line that is not a known, well-formed message."""

    default_code = "telephony.protocol"


# --- worker → coordinator ------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerReady:
    """A worker is up: its id, SIP port, and how many legs its pjsua2 build can carry.

    ``held`` lists the SIP Call-IDs of calls the worker carried on while it had no
    coordinator (a :class:`CallHeld` for each follows); empty for a fresh worker.
    """

    worker: str
    sip_port: int
    max_legs: int
    pid: int
    held: tuple[str, ...] = ()


@dataclass(frozen=True)
class CallHeld:
    """After a reconnect: a call that lived on without a coordinator.

    ``legs`` are the legs still up (empty when the call ended meanwhile: its ``LegEnded``
    and ``RecordingDone`` follow), ``group`` the legs talking to each other.
    """

    call: str
    sip_call_id: str
    legs: tuple[str, ...]
    group: tuple[str, ...]


@dataclass(frozen=True)
class CallOffered:
    """An INVITE reached the worker; the worker has answered with 180 and waits."""

    call: str
    sip_call_id: str
    from_uri: str
    to_user: str
    remote: str


@dataclass(frozen=True)
class LegAnswered:
    """A leg is connected (the caller after ``Answer``, or an originated leg).

    ``codec`` is the negotiated audio codec ("PCMA", "PCMU", "G722"), "" when unknown.
    """

    call: str
    leg: str
    codec: str = ""


@dataclass(frozen=True)
class LegRinging:
    """An originated leg rings (180/183)."""

    call: str
    leg: str


@dataclass(frozen=True)
class Digit:
    """A DTMF digit from a leg (RFC 4733 or SIP INFO)."""

    call: str
    leg: str
    digit: str


@dataclass(frozen=True)
class PlaybackDone:
    """The files of ``PlayFiles(token)`` finished, or were stopped."""

    call: str
    token: int


@dataclass(frozen=True)
class RecordingDone:
    """A recording was closed: path, seconds of audio, sha256 of the file."""

    call: str
    token: int
    path: str
    seconds: float
    sha256: str


@dataclass(frozen=True)
class LegEnded:
    """A leg is gone (hang-up, failure); ``status`` is the SIP status when known."""

    call: str
    leg: str
    reason: str
    status: int
    at: float = 0.0  # when it ended (epoch seconds), for ends reported after a reconnect


@dataclass(frozen=True)
class CommandFailed:
    """A command could not be carried out (bad file, unwritable path, wrong leg...).

    ``command`` is the command's type name, ``token`` its token (0 when it has none).
    Sent in addition to the usual reply: a ``PlayFiles`` that cannot start still ends
    with ``PlaybackDone``, so a flow waiting for it moves on.
    """

    call: str
    command: str
    token: int
    detail: str


# --- coordinator → worker ------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """Answer the offered caller leg (200 OK)."""

    call: str


@dataclass(frozen=True)
class PlayFiles:
    """Play 8 kHz mono WAVs in order to ``leg``; ``loop`` repeats (hold music)."""

    call: str
    token: int
    paths: tuple[str, ...]
    leg: str = "caller"
    loop: bool = False


@dataclass(frozen=True)
class StopPlayback:
    """Stop the playback with this token."""

    call: str
    token: int


@dataclass(frozen=True)
class Record:
    """Record the call as stereo WAV (left caller, right everything the caller hears)."""

    call: str
    token: int
    path: str


@dataclass(frozen=True)
class StopRecording:
    """Close the recording with this token (a ``RecordingDone`` follows)."""

    call: str
    token: int


@dataclass(frozen=True)
class Hangup:
    """End a leg, or the whole call when ``leg`` is empty."""

    call: str
    reason: str
    leg: str = ""


@dataclass(frozen=True)
class Originate:
    """Call ``uri`` as a new leg named ``leg`` (through the SIP front when it has one).

    ``new_call``: the worker opens the call ``call`` first when it does not hold it (a call
    the hotline places itself, e.g. a callback: the lawyer's leg comes first, then the
    caller's, named ``caller``).
    """

    call: str
    leg: str
    uri: str
    new_call: bool = False


@dataclass(frozen=True)
class Connect:
    """Make ``legs`` hear each other; every other leg of the call hears no leg at all.

    The recording's right channel follows: it hears the legs in the caller's group.
    An empty tuple parts everybody (e.g. the caller on hold while the lawyer consults).
    """

    call: str
    legs: tuple[str, ...]


@dataclass(frozen=True)
class StartTap:
    """Stream ``leg``'s audio to ``address`` until ``StopTap`` or the leg ends.

    8 kHz s16le in :mod:`hotline.telephony.tap_stream`'s format; ``address`` is
    ``host:port`` or ``unix:/path``.
    """

    call: str
    leg: str
    address: str


@dataclass(frozen=True)
class StopTap:
    """Stop streaming ``leg``'s audio (the consumer gets the end record)."""

    call: str
    leg: str


@dataclass(frozen=True)
class Shutdown:
    """Hang up everything, close recordings, exit."""


MESSAGES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (WorkerReady, CallHeld, CallOffered, LegRinging, LegAnswered, Digit,
                PlaybackDone, RecordingDone, LegEnded, CommandFailed, Answer, PlayFiles,
                StopPlayback, Record, StopRecording, Hangup, Originate, Connect, StartTap,
                StopTap, Shutdown)
}

Message = (WorkerReady | CallHeld | CallOffered | LegRinging | LegAnswered | Digit
           | PlaybackDone | RecordingDone | LegEnded | CommandFailed | Answer | PlayFiles
           | StopPlayback | Record | StopRecording | Hangup | Originate | Connect | StartTap
           | StopTap | Shutdown)


def encode(message: Any) -> bytes:
    """One message as a JSON line."""
    name = type(message).__name__
    if MESSAGES.get(name) is not type(message):
        raise ProtocolError("telephony.protocol", detail=f"not a protocol message: {name}")
    body = {"type": name, **dataclasses.asdict(message)}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


_SCALARS: dict[Any, type[Any]] = {str: str, int: int, float: float, bool: bool}


def decode(line: bytes) -> Any:
    """One JSON line back into its dataclass; ProtocolError when anything is off."""
    try:
        data = json.loads(line)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError("telephony.protocol", detail=f"bad JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("telephony.protocol", detail="no message type")
    cls = MESSAGES.get(data.pop("type"))
    if cls is None:
        raise ProtocolError("telephony.protocol", detail="unknown message type")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if set(data) - set(fields):
        raise ProtocolError("telephony.protocol", detail=f"unknown fields in {cls.__name__}")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in data:
            if field.default is dataclasses.MISSING:
                raise ProtocolError("telephony.protocol",
                                    detail=f"{cls.__name__}.{name} missing")
            continue
        values[name] = _coerce(cls.__name__, name, hints[name], data[name])
    return cls(**values)


def _coerce(cls_name: str, name: str, hint: Any, value: Any) -> Any:
    if typing.get_origin(hint) is tuple:
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        if not isinstance(value, list):
            raise ProtocolError("telephony.protocol", detail=f"{cls_name}.{name}: list expected")
        return tuple(_coerce(cls_name, name, item, v) for v in value)
    expected = _SCALARS.get(hint)
    ok = expected is not None and isinstance(value, expected) and not (
        expected is not bool and isinstance(value, bool))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise ProtocolError("telephony.protocol", detail=f"{cls_name}.{name}: bad value")
    return value


class Decoder:
    """Split a byte stream into messages; a bad line is reported, the stream goes on."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[Any]:
        """Messages completed by ``data``; malformed lines come back as ProtocolError."""
        self._buffer += data
        out: list[Any] = []
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            if line.strip():
                try:
                    out.append(decode(line))
                except ProtocolError as exc:
                    out.append(exc)
        if len(self._buffer) > MAX_LINE:
            self._buffer = b""
            out.append(ProtocolError("telephony.protocol", detail="line too long"))
        return out
