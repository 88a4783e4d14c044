"""A third-party phone calls the real node: baresip 1.0 → Kamailio → media worker → ledger.

Nothing of pjsua2 on the caller side: baresip's own SIP stack, SDP, RTP timing and RFC 4733
DTMF must all be understood by the node, and the recording must carry what baresip sent.
"""

import array
import hashlib
import json
import math
import subprocess
import sys
import time
import wave
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parent))
from baresip import Baresip  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TONE_HZ = 700


@pytest.fixture
def node(start_node):
    return start_node(1)


@pytest.fixture
def phone(tmp_path, port_block):
    # A tone longer than the call: baresip's aufile source ends the audio at end of file.
    tone = tmp_path / "tone.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(tone), "synth", "40",
                    "sine", str(TONE_HZ), "vol", "0.5"], check=True)
    # baresip's SIP takes UDP+TCP on the port and TLS on the next one.
    sip, ctrl, rtp = port_block(2), port_block(1), port_block(20)
    bs = Baresip(tmp_path / "baresip", sip_port=sip, ctrl_port=ctrl,
                 rtp_ports=(rtp, rtp + 19), source=tone, dump_dir=tmp_path / "heard",
                 lifetime=90)
    try:
        yield bs.start()
    finally:
        bs.close()
    assert bs.proc is not None and bs.proc.poll() is not None


def _rms(samples):
    return math.sqrt(sum(s * s for s in samples) / len(samples)) if len(samples) else 0.0


def _power_at(samples, hz, rate=8000):
    """Goertzel: the share of the signal's power at ``hz`` (≈ 0.5 for a pure tone)."""
    coeff = 2 * math.cos(2 * math.pi * hz / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    total = sum(x * x for x in samples) or 1
    return power / (total * len(samples) / 2)


def _wait_closed(db, timeout=20.0):
    engine = create_engine(f"sqlite:///{db}")
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as c:
                done = c.execute(text(
                    "SELECT count(*) FROM recordings WHERE closed_at IS NOT NULL")).scalar()
                ended = c.execute(text(
                    "SELECT count(*) FROM calls WHERE ended_at IS NOT NULL")).scalar()
            if done >= 1 and ended >= 1:
                return
            time.sleep(0.2)
    finally:
        engine.dispose()
    raise AssertionError("call/recording not closed in time")


def _ts(value):
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _read_wav(path):
    with wave.open(str(path), "rb") as w:
        shape = (w.getnchannels(), w.getframerate(), w.getsampwidth())
        frames = array.array("h", w.readframes(w.getnframes()))
    return shape, frames


def _ivr_nodes(db):
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as c:
            rows = c.execute(text("SELECT data FROM call_events WHERE kind = 'ivr_node' "
                                  "ORDER BY seq")).scalars().all()
    finally:
        engine.dispose()
    return [json.loads(r)["node"] for r in rows]


def test_baresip_calls_queues_on_zero_overflows_and_hangs_up(node, phone):
    phone.dial(f"sip:12348@127.0.0.1:{node['sip']}")
    established = phone.wait_event("CALL_ESTABLISHED", timeout=15).at
    time.sleep(max(0.0, established + 2.0 - time.monotonic()))
    phone.send_dtmf("0")
    # "connecting" (≈ 5.5 s), then 5 s in the general queue, then the busy menu: hang up
    # a second into it, ≈ 14 s after the answer.
    deadline = established + 25
    while "busy" not in _ivr_nodes(node["db"]):
        assert time.monotonic() < deadline, _ivr_nodes(node["db"])
        time.sleep(0.2)
    in_busy = time.monotonic()
    time.sleep(1.0)
    phone.hangup()
    closed = phone.wait_event("CALL_CLOSED", timeout=10)
    assert 8 < in_busy - established < 20, in_busy - established
    held = closed.at - established
    phone.close()  # sndfile finalises its WAV dumps when the call's audio is torn down
    _wait_closed(node["db"])

    engine = create_engine(f"sqlite:///{node['db']}")
    with engine.connect() as c:
        call = c.execute(text("SELECT id, caller_number, line_dialed, flow, end_reason, "
                              "answered_at, queued_at, queue_code, ended_at FROM calls")).one()
        events = c.execute(text("SELECT kind, data, at FROM call_events WHERE call_id = :c "
                                "ORDER BY seq"), {"c": call.id}).all()
        rec = c.execute(text("SELECT path, sha256, duration_s FROM recordings "
                             "WHERE call_id = :c"), {"c": call.id}).one()
    engine.dispose()
    assert call.line_dialed == "12348" and call.flow == "main", call
    assert call.caller_number == "caller", call
    assert call.answered_at is not None and call.queued_at is not None
    assert call.queue_code == "general"
    kinds = [e.kind for e in events]
    data = [json.loads(e.data) if e.data else {} for e in events]
    assert kinds[:3] == ["offered", "answered", "ivr_node"], kinds
    assert kinds[-1] == "ended" and data[-1]["reason"] == call.end_reason, events[-1]
    # baresip's RFC 4733 "0" reached pjsua2 and the anytime route.
    assert [d["value"] for k, d in zip(kinds, data, strict=True) if k == "digits"] == ["0"]
    assert "enqueued" in kinds and "prompt" in kinds
    nodes = [d["node"] for k, d in zip(kinds, data, strict=True) if k == "ivr_node"]
    assert nodes[:3] == ["notice", "operator", "general_queue"], nodes
    # Queue wait 5 s: the caller overflowed to the busy menu and hung up in it, so this is
    # a caller hang-up in a menu, not an abandon while waiting.
    assert nodes[3:] == ["busy"], nodes
    assert call.end_reason == "caller_hangup", call.end_reason
    enqueued = next(e.at for e in events if e.kind == "enqueued")
    overflow = [e.at for e in events if e.kind == "ivr_node"][-1]
    assert 4.5 < (_ts(overflow) - _ts(enqueued)).total_seconds() < 6.5, (enqueued, overflow)

    # The stereo recording: left = what baresip sent (the tone), right = the prompts.
    path = Path(rec.path)
    assert path.exists()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == rec.sha256
    (channels, rate, width), frames = _read_wav(path)
    assert (channels, rate, width) == (2, 8000, 2)
    seconds = len(frames) / 2 / 8000
    assert abs(seconds - rec.duration_s) < 0.01
    assert abs(seconds - held) < 1.5, (seconds, held)
    left, right = frames[0::2], frames[1::2]
    tone = left[8000 * 3:8000 * 5]
    assert _rms(tone) > 500, _rms(tone)
    assert _power_at(tone, TONE_HZ) > 0.3, _power_at(tone, TONE_HZ)
    assert _rms(right[:8000 * 2]) > 100  # the welcome prompt baresip heard
    assert _power_at(right[:8000 * 2], TONE_HZ) < 0.1  # and no tone bled into it

    # baresip's own dumps: it sent the tone and heard the prompts.
    dumps = sorted((node["dir"] / "heard").glob("dump-*.wav"))
    sent = [p for p in dumps if p.name.endswith("-enc.wav")]
    heard = [p for p in dumps if p.name.endswith("-dec.wav")]
    assert len(sent) == 1 and len(heard) == 1, dumps
    (channels, rate, _), samples = _read_wav(heard[0])
    assert (channels, rate) == (1, 8000)
    assert abs(len(samples) / 8000 - held) < 1.5, (len(samples), held)
    assert _rms(samples[:8000 * 2]) > 100, _rms(samples[:8000 * 2])
    (channels, rate, _), samples = _read_wav(sent[0])
    assert (channels, rate) == (1, 8000)
    assert _power_at(samples[8000:8000 * 3], TONE_HZ) > 0.3
