r"""The tap stream: one leg's audio as 8 kHz 16-bit mono PCM over a stream socket.

A media worker's :class:`~hotline.telephony.tap.LegTap` connects to a consumer (the
speech-to-text service, or :mod:`hotline.telephony.tap_sink` for debugging) and sends one
stream per connection, per leg. This module is the wire format and nothing else: a sans-IO
encoder and parser, plus the consumer address syntax. It imports no pjsua2, so a consumer
needs only this file.

Stream format, version 1 (all integers little-endian)::

    header   one line of UTF-8 JSON ending in "\n" (at most 4096 bytes), e.g.
             {"v": 1, "call": "9f3c...", "leg": "caller", "rate": 8000,
              "format": "s16le", "channels": 1, "frame_ms": 20, "started": 1718000000.123}
    records  any number of: kind (1 byte) | pos (uint64) | size (uint32) | payload (size bytes)
             kind b"A": audio; payload = s16le mono samples (size even, at most 65536 bytes);
                        pos = offset of its first sample from the start of the stream.
             kind b"E": end; payload = UTF-8 JSON {"frames": n, "sent": n, "dropped": n};
                        pos = samples the bridge produced in all. Nothing follows it.

``started`` is the wall-clock time (Unix epoch seconds) of sample 0; sample ``n`` was heard
``n / rate`` seconds later. ``pos`` runs on the bridge's clock, one 20 ms frame per tick
whether the tap could send the frame or not: when the consumer is slow the sender drops
frames, and the next audio record's ``pos`` jumps past them (a gap the consumer may fill
with silence to stay aligned with the call's recording). A stream that ends without an end
record was cut short (worker stopped, network lost). Unknown header keys are ignored;
another ``v`` is rejected.

Consumer addresses: ``host:port`` or ``[v6addr]:port`` for TCP, ``unix:/path`` (or any
absolute path) for a Unix stream socket.
"""

from __future__ import annotations

import json
import socket
import struct
from dataclasses import dataclass
from typing import Any

from hotline.errors import HotlineError

VERSION = 1
RATE = 8000
FORMAT = "s16le"
CHANNELS = 1
FRAME_MS = 20
SAMPLE_BYTES = 2
MAX_HEADER = 4096
MAX_PAYLOAD = 65536

KIND_AUDIO = b"A"
KIND_END = b"E"
_RECORD = struct.Struct("<cQI")
RECORD_HEADER = _RECORD.size  # 13 bytes


class TapStreamError(HotlineError):
    """Bytes that are not a version-1 tap stream, or an unusable consumer address."""

    default_code = "telephony.tap_stream"


@dataclass(frozen=True)
class Header:
    """What the stream carries: whose audio, in which format, from when.

    Attributes:
        call: The worker's call key (the coordinator's call id).
        leg: The leg inside the call ("caller", "lawyer", ...).
        started: Wall-clock time (epoch seconds) of sample 0.
        rate: Samples per second.
        format: Sample format; always "s16le".
        channels: Always 1.
        frame_ms: Duration of one bridge frame.
    """

    call: str
    leg: str
    started: float
    rate: int = RATE
    format: str = FORMAT
    channels: int = CHANNELS
    frame_ms: int = FRAME_MS

    @property
    def frame_samples(self) -> int:
        """Samples in one bridge frame (160 at 8 kHz and 20 ms)."""
        return self.rate * self.frame_ms // 1000


@dataclass(frozen=True)
class Audio:
    """PCM samples starting ``pos`` samples after the start of the stream."""

    pos: int
    pcm: bytes

    @property
    def samples(self) -> int:
        """Number of samples in ``pcm``."""
        return len(self.pcm) // SAMPLE_BYTES


@dataclass(frozen=True)
class End:
    """The sender's closing record: what the bridge produced and what reached the socket.

    Attributes:
        pos: Samples the bridge produced for this tap in all.
        frames: Frames the bridge produced (including silence for ticks without audio).
        sent: Frames written to the socket.
        dropped: Frames dropped because the consumer was slow or gone.
    """

    pos: int
    frames: int
    sent: int
    dropped: int


Event = Header | Audio | End


def encode_header(header: Header) -> bytes:
    """The header line for ``header``."""
    body = {"v": VERSION, "call": header.call, "leg": header.leg, "rate": header.rate,
            "format": header.format, "channels": header.channels,
            "frame_ms": header.frame_ms, "started": header.started}
    line = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    if len(line) > MAX_HEADER:
        raise TapStreamError(detail="header too long")
    return line


def encode_audio(pos: int, pcm: bytes) -> bytes:
    """One audio record."""
    if len(pcm) > MAX_PAYLOAD or len(pcm) % SAMPLE_BYTES:
        raise TapStreamError(detail=f"bad audio payload of {len(pcm)} bytes")
    return _RECORD.pack(KIND_AUDIO, pos, len(pcm)) + pcm


def encode_end(end: End) -> bytes:
    """The end record."""
    body = json.dumps({"frames": end.frames, "sent": end.sent, "dropped": end.dropped},
                      separators=(",", ":")).encode()
    return _RECORD.pack(KIND_END, end.pos, len(body)) + body


class StreamParser:
    """Turns received bytes into :data:`Event` values; sans-IO, one instance per connection.

    Feed it whatever ``recv`` returned; it returns the complete events so far (the
    :class:`Header` first) and keeps partial ones for the next call. Anything malformed
    raises :class:`TapStreamError`; the parser is then unusable.

    Attributes:
        header: The stream's header once parsed.
        ended: True once the end record was parsed.
    """

    def __init__(self) -> None:
        self.header: Header | None = None
        self.ended = False
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete event."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Event]:
        """Parse ``data`` (appended to what is left over) into complete events."""
        if data and self.ended:
            raise TapStreamError(detail="data after the end record")
        self._buf += data
        events: list[Event] = []
        if self.header is None:
            newline = self._buf.find(b"\n", 0, MAX_HEADER)
            if newline < 0:
                if len(self._buf) >= MAX_HEADER:
                    raise TapStreamError(detail="no header line")
                return events
            self.header = _parse_header(bytes(self._buf[:newline]))
            del self._buf[:newline + 1]
            events.append(self.header)
        start = 0
        while len(self._buf) - start >= RECORD_HEADER:
            kind, pos, size = _RECORD.unpack_from(self._buf, start)
            if kind not in (KIND_AUDIO, KIND_END):
                raise TapStreamError(detail=f"unknown record kind {kind!r}")
            if size > MAX_PAYLOAD or (kind == KIND_AUDIO and size % SAMPLE_BYTES):
                raise TapStreamError(detail=f"bad record size {size}")
            end = start + RECORD_HEADER + size
            if len(self._buf) < end:
                break
            payload = bytes(self._buf[start + RECORD_HEADER:end])
            start = end
            if kind == KIND_AUDIO:
                events.append(Audio(pos, payload))
                continue
            events.append(_parse_end(pos, payload))
            self.ended = True
            if len(self._buf) > start:
                raise TapStreamError(detail="data after the end record")
            break
        del self._buf[:start]
        return events

    def eof(self) -> bool:
        """Call when the connection closed: True if the stream ended properly.

        Raises:
            TapStreamError: The connection closed in the middle of the header or a record.
        """
        if self._buf:
            raise TapStreamError(detail=f"stream cut inside a record ({len(self._buf)} bytes)")
        return self.ended


def _parse_header(line: bytes) -> Header:
    try:
        body = json.loads(line.decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise TapStreamError(detail=f"header is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise TapStreamError(detail="header is not a JSON object")
    if body.get("v") != VERSION:
        raise TapStreamError(detail=f"unsupported version {body.get('v')!r}")
    try:
        header = Header(call=_text(body, "call"), leg=_text(body, "leg"),
                        started=float(body["started"]), rate=int(body.get("rate", RATE)),
                        format=str(body.get("format", FORMAT)),
                        channels=int(body.get("channels", CHANNELS)),
                        frame_ms=int(body.get("frame_ms", FRAME_MS)))
    except (KeyError, TypeError, ValueError) as exc:
        raise TapStreamError(detail=f"bad header field: {exc}") from None
    if header.format != FORMAT or header.channels != CHANNELS or header.rate <= 0:
        raise TapStreamError(detail=f"unsupported audio {header.format}/{header.channels}ch/"
                                    f"{header.rate}Hz")
    return header


def _text(body: dict[str, Any], key: str) -> str:
    value = body[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} must be a string")
    return value


def _parse_end(pos: int, payload: bytes) -> End:
    try:
        body = json.loads(payload.decode())
        return End(pos=pos, frames=int(body["frames"]), sent=int(body["sent"]),
                   dropped=int(body["dropped"]))
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise TapStreamError(detail=f"bad end record: {exc}") from None


@dataclass(frozen=True)
class Address:
    """A parsed consumer address: ``family`` and what ``socket.connect``/``bind`` take."""

    family: socket.AddressFamily
    target: str | tuple[str, int]

    def __str__(self) -> str:
        if isinstance(self.target, str):
            return f"unix:{self.target}"
        host, port = self.target
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_address(text: str) -> Address:
    """``host:port``, ``[v6]:port``, ``unix:/path`` or ``/path`` → :class:`Address`.

    Raises:
        TapStreamError: The text is none of these.
    """
    text = text.strip()
    if text.startswith("unix:") or text.startswith("/"):
        path = text.removeprefix("unix:")
        if not path:
            raise TapStreamError(detail=f"bad tap address {text!r}")
        return Address(socket.AF_UNIX, path)
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise TapStreamError(detail=f"bad tap address {text!r} (want host:port or unix:/path)")
    if host.startswith("[") and host.endswith("]"):
        return Address(socket.AF_INET6, (host[1:-1], int(port)))
    if not host or ":" in host:
        raise TapStreamError(detail=f"bad tap address {text!r} (want host:port or unix:/path)")
    return Address(socket.AF_INET, (host, int(port)))


def connect(address: Address, timeout: float) -> socket.socket:
    """A connected, blocking stream socket to ``address`` (raises ``OSError``)."""
    if isinstance(address.target, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(address.target)
        except BaseException:
            sock.close()
            raise
        return sock
    sock = socket.create_connection(address.target, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
