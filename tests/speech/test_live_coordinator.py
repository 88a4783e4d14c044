"""The coordinator's side of live speech (hotline.speech.live) against the real speech
service process (real Vosk, real sockets), with a scripted media worker: taps asked for when
a lawyer answers, captions to that lawyer, capacity K, batch marking, a service that dies
and comes back, urgency alerts to the lawyer and the supervisors.
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from scripted import queue_caller, until
from sqlalchemy import select

from hotline.domain import CallEventKind
from hotline.speech import control as c
from hotline.speech.live import LiveSpeech
from hotline.store.tables import Call, CallEvent
from hotline.telephony import protocol as p
from hotline.telephony.tap_stream import End, Header, encode_audio, encode_end, encode_header

sys.path.insert(0, str(Path(__file__).parent))
from audio import CALLER_SENTENCES, KO_MODEL, pcm_of, speech_wav  # noqa: E402

LAWYERS = '["sip:8001@127.0.0.1:7001", "sip:8002@127.0.0.1:7002"]'


class Service:
    """`python -m hotline.speech.server` on sockets in ``tmp``."""

    def __init__(self, tmp: Path, db_url: str, capacity: int) -> None:
        self.tap, self.control = tmp / "tap.sock", tmp / "ctl.sock"
        self.args = [sys.executable, "-m", "hotline.speech.server", "--tap", str(self.tap),
                     "--control", str(self.control), "--model", f"ko={KO_MODEL}",
                     "--preload", "ko", "--capacity", str(capacity), "--db", db_url]
        self.log = tmp / "speech.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL,
                                     stderr=self.log.open("ab"))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


def _stream(tap: Path, call: str, leg: str, pcm: bytes, pace: float = 0.0) -> None:
    """What a worker's tap sends: header, 20 ms frames, end record."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(tap))
        s.sendall(encode_header(Header(call=call, leg=leg, started=0.0)))
        pos = 0
        try:
            for at in range(0, len(pcm), 320):
                s.sendall(encode_audio(pos, pcm[at:at + 320]))
                pos += 160
                if pace:
                    threading.Event().wait(pace)
            s.sendall(encode_end(End(pos, pos // 160, pos // 160, 0)))
        except OSError:
            pass  # the service went away mid-stream


async def _wait(check, timeout=60.0, what=""):
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out: {what}")


def _events(factory, ledger, kind):
    ledger.flush()
    with factory() as s:
        return [(e.call_id, e.data) for e in s.scalars(
            select(CallEvent).where(CallEvent.kind == kind).order_by(CallEvent.id))]


def _states(factory, ledger):
    ledger.flush()
    with factory() as s:
        return [c.transcript_state for c in s.scalars(select(Call).order_by(Call.id))]


async def _talking(cc, sent, key):
    i = await queue_caller(cc, sent, key)
    i, ring = await until(sent, p.Originate, i, call=key)
    cc.on_worker_event("w1", p.LegRinging(key, ring.leg))
    cc.on_worker_event("w1", p.LegAnswered(key, ring.leg))
    return i, ring.leg


@pytest.mark.timeout(240)
async def test_live_speech_through_the_coordinator(make_center, tmp_path):
    cc, sent, factory, ledger = make_center(HOTLINE_TELEPHONY_LAWYER_URIS=LAWYERS)
    pcm = pcm_of(speech_wav(tmp_path / "c.wav", CALLER_SENTENCES))[1]
    service = Service(tmp_path, f"sqlite:///{tmp_path / 'h.db'}", capacity=2)
    service.start()
    published = []
    cc.publish = lambda event, to, staff: published.append((event, set(to), staff))
    cc.speech = LiveSpeech(cc, control_path=service.control, tap_path=service.tap,
                           capacity=2, model_for=lambda call: "ko")
    cc.speech.start()
    try:
        await asyncio.wait_for(cc.speech.connected.wait(), 60)
        i, leg = await _talking(cc, sent, "k1")
        taps = []
        for _ in range(2):
            i, tap = await until(sent, p.StartTap, i, call="k1")
            taps.append(tap)
            i += 1
        assert {t.leg for t in taps} == {"caller", leg}
        assert all(t.address == f"unix:{service.tap}" for t in taps)
        lawyer = cc.calls["k1"].legs[leg].agent
        assert lawyer == "duty1"
        # The worker streams both legs (the lawyer's is silence); paced so it lasts.
        streams = [threading.Thread(target=_stream, args=(service.tap, "k1", "caller", pcm,
                                                          0.005), daemon=True),
                   threading.Thread(target=_stream, args=(service.tap, "k1", leg,
                                                          bytes(len(pcm)), 0.005),
                                    daemon=True)]
        for t in streams:
            t.start()
        await _wait(lambda: any(e["type"] == "caption" for e, _, _ in published), 60,
                    "a caption")
        caption, to, staff = next(x for x in published if x[0]["type"] == "caption")
        assert caption["call"] == "k1" and caption["speaker"] == "caller"
        assert to == {lawyer} and staff is False  # captions go to the call's lawyer only
        on = [e for e, _, _ in published if e["type"] == "captions"]
        assert on == [{"type": "captions", "call": "k1", "on": True, "why": ""}]

        # A second call while both streams are busy: K = 2 is full → batch, captions off.
        i2, leg2 = await _talking(cc, sent, "k2")
        await _wait(lambda: any(e["type"] == "captions" and e["call"] == "k2"
                                for e, _, _ in published), 10, "captions off")
        [(off, to2, _)] = [x for x in published if x[0]["type"] == "captions"
                           and x[0]["call"] == "k2"]
        assert off["on"] is False and "capacity" in off["why"] and to2 == {"duty2"}
        assert not [m for _, m in sent[i2:] if isinstance(m, p.StartTap) and m.call == "k2"]
        assert _states(factory, ledger) == ["live", "pending"]

        # Urgency heard in the caller's words: the lawyer and every supervisor are told.
        cc.speech._on_message(c.Alert("k1", "caller", ("self_harm",), ("110", "120"),
                                      "我不想活了", ("不想活了",)))
        urgent, to3, staff3 = published[-1]
        assert urgent["type"] == "urgent" and urgent["transfers"] == ["110", "120"]
        assert to3 == {lawyer} and staff3 is True
        assert [d["flags"] for _, d in _events(factory, ledger, CallEventKind.URGENT)] == [
            ["self_harm"]]

        # The service dies mid-call: the call's live transcript is cut → batch; it comes back
        # and the coordinator reconnects by itself.
        await _wait(lambda: any(e["type"] == "caption" and e.get("final")
                                for e, _, _ in published), 60, "a final")
        service.kill()
        await _wait(lambda: not cc.speech.connected.is_set(), 10, "disconnect seen")
        assert cc.speech.active == 0
        assert _states(factory, ledger) == ["pending", "pending"]
        service.start()
        await asyncio.wait_for(cc.speech.connected.wait(), 60)
        kinds = [d.get("state") for _, d in _events(factory, ledger,
                                                      CallEventKind.TRANSCRIPTION)]
        assert kinds == ["live", "pending", "pending"]
    finally:
        await cc.speech.stop()
        service.kill()
    with factory() as s:  # what was said before the service died is kept
        stored = s.scalars(select(Call.id).where(Call.transcript_state == "pending")).all()
    assert len(stored) == 2
    assert os.path.exists(service.log)
