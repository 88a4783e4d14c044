"""The speech service process: Vosk models loaded once, one recogniser per tapped leg.

    python -m hotline.speech.service --tap PATH --control PATH --model NAME=DIR ...

``hotline serve`` starts and supervises it (:mod:`hotline.speech.supervisor`). Two unix
sockets:

* the **tap socket** receives one connection per leg from the media workers, in
  :mod:`hotline.telephony.tap_stream`'s format. A reader thread parses each connection into
  a bounded queue (≈10 s of audio); a decoding thread per stream feeds that stream's
  recogniser. When decoding falls behind, the queue fills, the reader stops reading and
  the worker's tap drops frames (counted) — the call's audio and SIP never wait for us.
* the **control socket** takes the coordinator's connection (:mod:`hotline.speech.control`):
  ``Expect`` says what a stream is before it arrives; captions, finals, menu decisions and
  alerts go back. A stream nobody announced is refused.

Final utterances go through the text pipeline (lexicon, numbers, masking) and are stored
as transcript segments at once by one database thread, so a crash loses at most the
utterance in progress. When a call's stream ends, the ticket's draft (suggested category,
summary, flags) is recomputed from all its segments.

At most ``capacity`` streams decode at once; one more is refused (``StreamEnd(ok=False)``)
and the coordinator transcribes that call in batch after hang-up.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hotline.speech import control as c
from hotline.speech.grammar import decide, grammar_json
from hotline.speech.text.pipeline import TextPipeline
from hotline.speech.vosk import Models, Recogniser, Utterance
from hotline.telephony.tap_stream import (
    SAMPLE_BYTES,
    Audio,
    End,
    Header,
    StreamParser,
    TapStreamError,
)

log = logging.getLogger("hotline.speech")

QUEUE_SECONDS = 10.0  # audio a stream may buffer before its reader stops reading
CHUNK_SECONDS = 0.2  # audio handed to AcceptWaveform at once
PARTIAL_INTERVAL = 0.25  # at most four captions a second per leg
EXPECT_WAIT = 2.0  # a stream may arrive just before its Expect is read
MAX_GAP_SECONDS = 5.0  # frames the tap dropped are fed as silence, up to this much
GRAMMAR_MAX_SECONDS = 8.0  # a menu answer longer than this is no answer


@dataclass
class _Stream:
    """One connected leg."""

    expect: c.Expect
    header: Header
    audio: queue.Queue[bytes | None]
    segments: int = 0
    dropped: int = 0
    cut: str = ""  # why the stream ended early ("" when it ended properly)
    done: threading.Event = field(default_factory=threading.Event)


class Outbox:
    """Messages to the coordinator; dropped while nobody is connected (finals are stored)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None

    def attach(self, sock: socket.socket | None) -> None:
        """Send to ``sock`` from now on (None: nobody listens)."""
        with self._lock:
            old, self._sock = self._sock, sock
        if old is not None and old is not sock:
            with contextlib.suppress(OSError):
                old.close()

    def send(self, message: c.Message) -> None:
        """Write one line; a broken connection is dropped, the service goes on."""
        data = c.encode(message)
        with self._lock:
            sock = self._sock
            if sock is None:
                return
            try:
                sock.sendall(data)
            except OSError:
                self._sock = None
                with contextlib.suppress(OSError):
                    sock.close()


class SpeechService:
    """The service's state; its sockets' threads call into it."""

    def __init__(self, models: Models, capacity: int, pipeline: TextPipeline,
                 store: Callable[[Callable[..., Any]], None] | None = None) -> None:
        self.models, self.capacity, self.pipeline = models, capacity, pipeline
        self.store = store  # runs a function with a DB session on the database thread
        self.outbox = Outbox()
        self._lock = threading.Lock()
        self._expected: dict[tuple[str, str], c.Expect] = {}
        self._arrived = threading.Condition(self._lock)
        self.streams: dict[tuple[str, str], _Stream] = {}
        self.stopping = threading.Event()

    # --- control ---------------------------------------------------------------------

    def on_control(self, message: c.Message) -> None:
        """Handle one coordinator message."""
        with self._lock:
            if isinstance(message, c.Expect):
                self._expected[(message.call, message.leg)] = message
                self._arrived.notify_all()
            elif isinstance(message, c.Forget):
                for key in [k for k in self._expected if k[0] == message.call]:
                    del self._expected[key]

    def _claim(self, header: Header) -> c.Expect | str:
        """The expectation for a stream, or why it is refused."""
        key = (header.call, header.leg)
        deadline = time.monotonic() + EXPECT_WAIT
        with self._lock:
            while key not in self._expected:
                left = deadline - time.monotonic()
                if left <= 0:
                    return "nobody announced this stream"
                self._arrived.wait(left)
            if len(self.streams) >= self.capacity:
                self._expected.pop(key)
                return f"at capacity ({self.capacity} streams)"
            if key in self.streams:
                return "this leg is streaming already"
            return self._expected.pop(key)

    # --- one tap connection ------------------------------------------------------------

    def serve_tap(self, sock: socket.socket) -> None:
        """Read one leg's stream (on its own thread) until it ends."""
        parser = StreamParser()
        stream: _Stream | None = None
        expected = 0
        try:
            with sock:
                sock.settimeout(30.0)
                while True:
                    data = sock.recv(65536)
                    if not data:
                        parser.eof()
                        break
                    for event in parser.feed(data):
                        if isinstance(event, Header):
                            stream = self._open(event)
                            if stream is None:
                                return
                        elif isinstance(event, Audio) and stream is not None:
                            expected = self._put_audio(stream, event, expected)
                        elif isinstance(event, End) and stream is not None:
                            stream.dropped = event.dropped
                    if parser.ended:
                        break
        except (OSError, TapStreamError) as exc:
            if stream is not None:
                stream.cut = str(exc)[:200]
            log.warning("语音流中断: %s", exc)
        finally:
            if stream is not None:
                if not parser.ended and not stream.cut:
                    stream.cut = "stream ended without its end record"
                stream.audio.put(None)

    def _open(self, header: Header) -> _Stream | None:
        claim = self._claim(header)
        if isinstance(claim, str):
            log.warning("拒绝语音流 %s/%s: %s", header.call, header.leg, claim)
            self.outbox.send(c.StreamEnd(header.call, header.leg, False, why=claim))
            return None
        frames = int(QUEUE_SECONDS * 1000 / header.frame_ms)
        stream = _Stream(claim, header, queue.Queue(maxsize=frames))
        with self._lock:
            self.streams[(header.call, header.leg)] = stream
        target = self._decode_grammar if claim.mode == "grammar" else self._decode_live
        threading.Thread(target=self._run_decoder, args=(stream, target),
                         name=f"decode-{header.leg}", daemon=True).start()
        return stream

    def _put_audio(self, stream: _Stream, audio: Audio, expected: int) -> int:
        """Queue the samples, with silence for frames the tap dropped (alignment)."""
        gap = audio.pos - expected
        if 0 < gap <= MAX_GAP_SECONDS * stream.header.rate:
            stream.audio.put(bytes(gap * SAMPLE_BYTES))
        stream.audio.put(audio.pcm)  # blocks when decoding is behind: backpressure
        return audio.pos + audio.samples

    # --- decoding ----------------------------------------------------------------------

    def _run_decoder(self, stream: _Stream, target: Callable[[_Stream], None]) -> None:
        e = stream.expect
        try:
            target(stream)
        except Exception as exc:  # a recogniser failure ends this stream, not the service
            log.exception("语音识别失败: %s/%s", e.call, e.leg)
            stream.cut = f"recogniser failed: {exc}"[:200]
            _drain(stream.audio)
        finally:
            with self._lock:
                self.streams.pop((e.call, e.leg), None)
            stream.done.set()
            self.outbox.send(c.StreamEnd(e.call, e.leg, not stream.cut, stream.segments,
                                         stream.dropped, stream.cut))
            if e.mode == "live" and e.call_id is not None and self.store is not None:
                self.store(_drafter(e, self.pipeline, self.outbox))

    def _chunks(self, stream: _Stream) -> Any:
        """The stream's audio in ≈200 ms pieces, until its end."""
        size = int(CHUNK_SECONDS * stream.header.rate) * SAMPLE_BYTES
        buf = bytearray()
        while True:
            pcm = stream.audio.get()
            if pcm is None:
                break
            buf += pcm
            if len(buf) >= size:
                yield bytes(buf)
                buf.clear()
        if buf:
            yield bytes(buf)

    def _decode_live(self, stream: _Stream) -> None:
        e, header = stream.expect, stream.header
        rec = Recogniser(self.models.get(e.model), header.rate)
        offset = header.started - e.t0
        last_partial = 0.0
        for pcm in self._chunks(stream):
            result = rec.accept(pcm)
            if isinstance(result, Utterance):
                self._final(stream, result, offset)
            elif result is not None and time.monotonic() - last_partial >= PARTIAL_INTERVAL:
                last_partial = time.monotonic()
                text = self.pipeline.process(result).text if result else ""
                self.outbox.send(c.Partial(e.call, e.leg, e.speaker, text))
        last = rec.finish()
        if last is not None:
            self._final(stream, last, offset)

    def _final(self, stream: _Stream, utterance: Utterance, offset: float) -> None:
        e = stream.expect
        processed = self.pipeline.process(utterance.text)
        start, end = round(offset + utterance.start, 2), round(offset + utterance.end, 2)
        stream.segments += 1
        if e.call_id is not None and self.store is not None:
            self.store(_segment_writer(e, start, end, processed.text,
                                       processed.original_masked, utterance.confidence))
        self.outbox.send(c.Final(e.call, e.leg, e.speaker, start, end, processed.text,
                                 utterance.confidence))
        flags = self.pipeline.urgency(processed.text) if e.speaker == "caller" else ()
        if flags:
            self.outbox.send(c.Alert(
                e.call, e.speaker, tuple(f.kind.value for f in flags),
                tuple(sorted({t.value for f in flags for t in f.transfers})), processed.text,
                tuple(ev.phrase for f in flags for ev in f.evidence)))

    def _decode_grammar(self, stream: _Stream) -> None:
        """One spoken menu choice: grammar pass and free pass on the same audio."""
        e, header = stream.expect, stream.header
        model = self.models.get(e.model)
        phrases = [p for p, _ in e.phrases]
        constrained = Recogniser(model, header.rate, grammar_json(phrases))
        free = Recogniser(model, header.rate)
        heard: Utterance | None = None
        fed = 0.0
        for pcm in self._chunks(stream):
            if heard is not None:
                continue  # decided; wait for the coordinator to stop the tap
            fed += len(pcm) / SAMPLE_BYTES / header.rate
            result = constrained.accept(pcm)
            free.accept(pcm)
            if isinstance(result, Utterance) or fed >= GRAMMAR_MAX_SECONDS:
                heard = result if isinstance(result, Utterance) else constrained.finish()
                self._decide(e, heard, free.finish(), fed)
                heard = heard or _NOTHING
        if heard is None:  # the stream ended first (the menu timed out, a key, a hang-up)
            self._decide(e, constrained.finish(), free.finish(), fed)

    def _decide(self, e: c.Expect, heard: Utterance | None, free: Utterance | None,
                seconds: float) -> None:
        grammar_result = heard.raw if heard is not None else {"text": "", "result": []}
        decision = decide(grammar_result, free.raw if free is not None else None, seconds,
                          [(p, r) for p, r in e.phrases])
        text = heard.text if heard is not None else ""
        log.info("语音菜单 %s: %r → %s (%s)", e.call, text, decision.route or "拒识",
                 decision.reason)
        self.outbox.send(c.Heard(e.call, e.token, decision.route, text, decision.reason))


_NOTHING = Utterance("", 0.0, 0.0, 0.0, ())


def _drain(q: queue.Queue[bytes | None]) -> None:
    """Consume a failed stream's queue so its reader is never stuck on a full queue."""
    while q.get() is not None:
        pass


def _segment_writer(e: c.Expect, start: float, end: float, text: str, original: str,
                    confidence: float) -> Callable[[Any], None]:
    def write(session: Any) -> None:
        from hotline.speech.batch import model_label
        from hotline.store.transcripts import add_segment

        add_segment(session, e.call_id or 0, e.speaker, start, end, text, original,
                    confidence, source="live", model=model_label(e.model))
    return write


def _drafter(e: c.Expect, pipeline: TextPipeline, outbox: Outbox) -> Callable[[Any], None]:
    def draft(session: Any) -> None:
        from hotline.store.transcripts import refresh_draft

        drafted = refresh_draft(session, e.call_id or 0, pipeline)
        if drafted is not None:
            category, body = drafted
            outbox.send(c.Drafted(e.call, e.call_id or 0, category, body))
    return draft
