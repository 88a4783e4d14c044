"""Per-leg PCM taps: the stream format, the sink, and real pjsua2 in a child process.

pjsua2 must live on one thread of its own process, so the pjsua2 tests run ``CHILD`` (a
small pjsua2 program: a player feeding a recorder and a tap) with ``sys.executable`` and
play the consumer's part here: a :class:`TapSink`, nobody at all, or a reader that stalls.
"""

from __future__ import annotations

import array
import json
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import pytest

from hotline.telephony import tap_stream as ts
from hotline.telephony.tap_sink import TapSink
from hotline.telephony.tap_stream import (
    Audio,
    End,
    Header,
    StreamParser,
    TapStreamError,
    encode_audio,
    encode_end,
    encode_header,
    parse_address,
)

ROOT = Path(__file__).resolve().parents[2]
FRAME = 160  # samples per 20 ms frame at 8 kHz

# The pjsua2 side, as a worker would run it: everything on the main thread.
CHILD = r'''
import dataclasses, json, sys, time
import pjsua2 as pj
from hotline.telephony.pjsua import LogWriter, endpoint_config
from hotline.telephony.tap import LegTap

args = json.loads(sys.argv[1])
ep = pj.Endpoint()
ep.libCreate()
writer = LogWriter()
ep.libInit(endpoint_config(max_calls=4, user_agent="tap-test", max_media_ports=16,
                           writer=writer, log_level=1))
ep.audDevManager().setNullDev()
ep.libStart()
player = pj.AudioMediaPlayer()
player.createPlayer(args["wav"], pj.PJMEDIA_FILE_NO_LOOP)
recorder = None
if args.get("record"):
    # Like StereoRecording: the silent master port makes the file grow on every tick.
    recorder = pj.AudioMediaRecorder()
    recorder.createRecorder(args["record"])
    ep.audDevManager().getCaptureDevMedia().startTransmit(recorder)
    player.startTransmit(recorder)
errors = []
tap = LegTap("call-1", "caller", args["address"], errors.append, **args.get("tap", {}))
tap.start(player)
tap.start(player)  # a second start with the same source changes nothing
polls = []
started = time.monotonic()
while time.monotonic() - started < args["seconds"]:
    t0 = time.monotonic()
    ep.libHandleEvents(10)
    polls.append(time.monotonic() - t0)
elapsed = time.monotonic() - started
t0 = time.monotonic()
tap.stop()
stop_seconds = time.monotonic() - t0
tap.stop()  # idempotent
recorder = None
player = None
for _ in range(10):  # the bridge finalises the recorder on a later tick
    ep.libHandleEvents(10)
joined = tap.join(args.get("join", 10))
stats = tap.stats
ep.libDestroy()
with open(args["result"], "w") as fh:
    json.dump({"stats": dataclasses.asdict(stats), "errors": errors, "max_poll": max(polls),
               "polls": len(polls), "elapsed": elapsed, "stop_seconds": stop_seconds,
               "joined": joined}, fh)
'''


# --- helpers ----------------------------------------------------------------------------------


def _write_wav(path: Path, samples: list[int]) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(array.array("h", samples).tobytes())


def _read_wav(path: str | Path) -> array.array[int]:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        data = array.array("h")
        data.frombytes(w.readframes(w.getnframes()))
        return data


def _noise(seconds: float, seed: int = 12348) -> list[int]:
    """Pseudo-random audio: no period, so only the right alignment matches."""
    rnd = random.Random(seed)
    return [rnd.randint(-12000, 12000) for _ in range(int(8000 * seconds))]


def _run_child(tmp_path: Path, address: str, *, seconds: float, record: Path | None = None,
               wav: Path | None = None, tap: dict | None = None, join: float = 10.0) -> dict:
    if wav is None:
        wav = tmp_path / "noise.wav"
        _write_wav(wav, _noise(1.0))
    result = tmp_path / "child.json"
    args = {"wav": str(wav), "address": address, "seconds": seconds, "result": str(result),
            "record": str(record) if record else "", "tap": tap or {}, "join": join}
    script = tmp_path / "tap_child.py"
    script.write_text(CHILD)
    proc = subprocess.run([sys.executable, str(script), json.dumps(args)], cwd=ROOT,
                          capture_output=True, timeout=seconds + join + 30)
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr and "Assertion" not in stderr, stderr[-3000:]
    return json.loads(result.read_text())


def _first_sound(samples: array.array[int]) -> int:
    return next(i for i, v in enumerate(samples) if v)


def _stream(call: str = "c1", leg: str = "caller", frames: list[tuple[int, bytes]] = (),
            end: End | None = None) -> bytes:
    data = encode_header(Header(call, leg, started=1700000000.5))
    for pos, pcm in frames:
        data += encode_audio(pos, pcm)
    if end is not None:
        data += encode_end(end)
    return data


def _pcm(value: int, samples: int = FRAME) -> bytes:
    return array.array("h", [value] * samples).tobytes()


# --- the stream format ------------------------------------------------------------------------


def test_stream_round_trip_in_any_chunking():
    frames = [(0, _pcm(1)), (160, _pcm(2)), (480, _pcm(3))]
    data = _stream(frames=frames, end=End(pos=640, frames=4, sent=3, dropped=1))
    expected = [Header("c1", "caller", 1700000000.5), Audio(0, _pcm(1)), Audio(160, _pcm(2)),
                Audio(480, _pcm(3)), End(640, 4, 3, 1)]
    for size in (1, 7, 13, 333, len(data)):
        parser = StreamParser()
        events = []
        for i in range(0, len(data), size):
            events += parser.feed(data[i:i + size])
        assert events == expected
        assert parser.ended and parser.eof() and parser.pending == 0
    assert expected[0].frame_samples == FRAME
    assert Audio(0, _pcm(0)).samples == FRAME


def test_header_is_one_json_line():
    line = encode_header(Header("9f3c", "caller", started=1.25))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {"v": 1, "call": "9f3c", "leg": "caller", "rate": 8000,
                                "format": "s16le", "channels": 1, "frame_ms": 20,
                                "started": 1.25}
    # Unknown keys are ignored; missing optional ones take the defaults.
    parser = StreamParser()
    body = {"v": 1, "call": "k", "leg": "lawyer", "started": 3, "extra": [1]}
    assert parser.feed(json.dumps(body).encode() + b"\n") == [Header("k", "lawyer", 3.0)]


@pytest.mark.parametrize("data", [
    b'{"v": 2, "call": "c", "leg": "l", "started": 0}\n',
    b'{"v": 1, "call": 5, "leg": "l", "started": 0}\n',
    b'{"v": 1, "call": "c", "leg": "l"}\n',
    b'{"v": 1, "call": "c", "leg": "l", "started": 0, "format": "f32le"}\n',
    b'{"v": 1, "call": "c", "leg": "l", "started": 0, "channels": 2}\n',
    b"[1, 2]\n",
    b"not json\n",
    b"\xff\xfe\n",
    b"x" * ts.MAX_HEADER,
])
def test_bad_headers_are_rejected(data):
    with pytest.raises(TapStreamError):
        StreamParser().feed(data)


def test_bad_records_are_rejected():
    head = _stream()
    for record in (b"X" + bytes(12),  # unknown kind
                   ts._RECORD.pack(b"A", 0, 3) + b"abc",  # odd sample bytes
                   ts._RECORD.pack(b"A", 0, ts.MAX_PAYLOAD + 2),  # too big
                   ts._RECORD.pack(b"E", 0, 2) + b"{}"):  # end without counts
        with pytest.raises(TapStreamError):
            StreamParser().feed(head + record)
    with pytest.raises(TapStreamError):  # anything after the end record
        StreamParser().feed(_stream(end=End(0, 0, 0, 0)) + b"A")
    parser = StreamParser()
    parser.feed(_stream(end=End(0, 0, 0, 0)))
    with pytest.raises(TapStreamError):
        parser.feed(b"more")
    with pytest.raises(TapStreamError):
        encode_audio(0, b"abc")


def test_eof_tells_cut_streams_from_finished_ones():
    parser = StreamParser()
    parser.feed(_stream(frames=[(0, _pcm(1))]))
    assert parser.eof() is False  # no end record: cut short, but on a record boundary
    parser = StreamParser()
    parser.feed(_stream(frames=[(0, _pcm(1))])[:-5])
    with pytest.raises(TapStreamError):
        parser.eof()


def test_addresses():
    assert parse_address("127.0.0.1:7100") == ts.Address(socket.AF_INET, ("127.0.0.1", 7100))
    assert parse_address("stt.local:9") == ts.Address(socket.AF_INET, ("stt.local", 9))
    assert parse_address("[::1]:7100") == ts.Address(socket.AF_INET6, ("::1", 7100))
    assert parse_address("unix:/run/stt.sock") == ts.Address(socket.AF_UNIX, "/run/stt.sock")
    assert parse_address("/run/stt.sock").target == "/run/stt.sock"
    assert str(parse_address("[::1]:7100")) == "[::1]:7100"
    assert str(parse_address("unix:/a")) == "unix:/a"
    for bad in ("", "7100", "host:", "host:port", "host:70000", "::1:7100", ":7100", "unix:"):
        with pytest.raises(TapStreamError):
            parse_address(bad)


# --- the sink and the sender, without pjsua2 -------------------------------------------------


def _send(address: str, data: bytes) -> None:
    with socket.create_connection(parse_address(address).target, timeout=5) as sock:
        sock.sendall(data)


def test_sink_writes_a_wav_per_stream_and_fills_gaps(tmp_path):
    sink = TapSink(tmp_path / "taps").start()
    try:
        _send(sink.address, _stream("call/1", "caller", [(0, _pcm(5)), (480, _pcm(6))],
                                    End(pos=640, frames=4, sent=2, dropped=2)))
        _send(sink.address, _stream("call/1", "caller", [(0, _pcm(7))]))  # cut short
        _send(sink.address, b'{"v": 9}\n')
        results = sink.wait(3, 10)
    finally:
        sink.close()
    assert len(results) == 3
    done = next(r for r in results if r.end)
    assert Path(done.path).name in ("call_1-caller.wav", "call_1-caller-2.wav")
    assert (done.samples, done.gaps, done.gap_samples, done.error) == (640, 1, 320, "")
    samples = _read_wav(done.path)
    assert list(samples) == [5] * 160 + [0] * 320 + [6] * 160
    side = json.loads(Path(done.path).with_suffix(".json").read_text())
    assert side["end"] == {"pos": 640, "frames": 4, "sent": 2, "dropped": 2}
    assert side["header"]["call"] == "call/1"
    cut = next(r for r in results if r.header and not r.end)
    assert "cut short" in cut.error and cut.samples == 160
    bad = next(r for r in results if r.header is None)
    assert "bad stream" in bad.error and bad.path == ""


def test_sink_on_a_unix_socket_without_gap_filling(tmp_path):
    sink = TapSink(tmp_path / "taps", f"unix:{tmp_path / 'sink.sock'}", fill_gaps=False).start()
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(tmp_path / "sink.sock"))
        with sock:
            sock.sendall(_stream("c", "lawyer", [(0, _pcm(1)), (320, _pcm(2))],
                                 End(480, 3, 2, 1)))
        (result,) = sink.wait(1, 10)
    finally:
        sink.close()
    assert sink.address == f"unix:{tmp_path / 'sink.sock'}"
    assert not (tmp_path / "sink.sock").exists()
    assert (result.samples, result.gaps, result.gap_samples) == (320, 1, 160)


@pytest.mark.parametrize("unix", [False, True])
def test_sender_counts_every_frame_as_sent_or_dropped(tmp_path, unix):
    from hotline.telephony.tap import FrameQueue, _Sender

    sink = TapSink(tmp_path, f"unix:{tmp_path / 's.sock'}" if unix else "127.0.0.1:0").start()
    try:
        frames = FrameQueue(capacity=5)
        sender = _Sender(Header("q", "caller", 0.0), sink.address, frames, None, 5, 5, 0)
        for i in range(8):  # the sender is not running yet: 3 of these are dropped
            frames.offer(_pcm(i))
        sender.thread.start()
        frames.close()
        sender.thread.join(10)
        frames.offer(_pcm(9))  # after close: dropped, never sent
        (result,) = sink.wait(1, 10)
    finally:
        sink.close()
    assert (frames.frames, frames.dropped, sender.sent, frames.pos) == (9, 4, 5, 9 * FRAME)
    assert result.end == End(pos=8 * FRAME, frames=8, sent=5, dropped=3)
    assert list(_read_wav(result.path)[::FRAME]) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        FrameQueue(0)


def test_sink_command_line(tmp_path):
    port_sock = socket.socket()
    port_sock.bind(("127.0.0.1", 0))
    port = port_sock.getsockname()[1]
    port_sock.close()
    proc = subprocess.Popen([sys.executable, "-m", "hotline.telephony.tap_sink", "--listen",
                             f"127.0.0.1:{port}", "--dir", str(tmp_path / "out")], cwd=ROOT,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                _send(f"127.0.0.1:{port}", _stream("cli", "caller", [(0, _pcm(3))],
                                                   End(160, 1, 1, 0)))
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        wav = tmp_path / "out" / "cli-caller.wav"
        while not wav.with_suffix(".json").exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err.decode()
    assert list(_read_wav(wav)) == [3] * 160
    assert b"cli/caller" in err


# --- real pjsua2 ------------------------------------------------------------------------------


def test_tap_stream_matches_the_recording(tmp_path):
    noise = _noise(1.0)
    wav = tmp_path / "noise.wav"
    _write_wav(wav, noise)
    sink = TapSink(tmp_path / "taps").start()
    try:
        out = _run_child(tmp_path, sink.address, seconds=2.5, record=tmp_path / "rec.wav",
                         wav=wav)
        (result,) = sink.wait(1, 10)
    finally:
        sink.close()
    stats = out["stats"]
    assert out["joined"] and stats["finished"] and stats["connected"]
    assert out["errors"] == [] and stats["error"] == ""
    assert stats["dropped"] == 0 and stats["callback_errors"] == 0 and stats["fast_copy"]
    assert stats["sent"] == stats["frames"] >= 2.5 * 50 - 5
    assert result.error == "" and result.end is not None
    assert result.header.call == "call-1" and result.header.leg == "caller"
    assert abs(result.header.started - time.time()) < 60
    assert result.end.frames == stats["frames"] and result.end.dropped == 0
    assert result.samples == result.end.pos == stats["frames"] * FRAME and result.gaps == 0

    tapped, recorded = _read_wav(result.path), _read_wav(tmp_path / "rec.wav")
    assert abs(len(tapped) - len(recorded)) <= 5 * FRAME
    # Align on the first sound (both start within a tick or two of each other) ...
    t0, r0 = _first_sound(tapped), _first_sound(recorded)
    assert abs(t0 - r0) <= 5 * FRAME
    overlap = min(len(tapped) - t0, len(recorded) - r0)
    assert overlap >= len(recorded) - 10 * FRAME
    # ... then they are the same, sample for sample ...
    assert tapped[t0:t0 + overlap] == recorded[r0:r0 + overlap], "tap and recording differ"
    # ... and both carry the played file unchanged.
    played = array.array("h", noise)
    start = t0 - (0 if noise[0] else _first_sound(played))
    assert tapped[start:start + len(played)] == played
    # The stop itself never waits for the network.
    assert out["stop_seconds"] < 0.5


def test_nobody_listening_costs_the_call_nothing(tmp_path):
    with socket.socket() as s:  # a port with nobody behind it
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    out = _run_child(tmp_path, address, seconds=1.5)
    stats = out["stats"]
    assert len(out["errors"]) == 1 and "cannot connect" in out["errors"][0]
    assert stats["error"] == out["errors"][0] and not stats["connected"]
    assert stats["sent"] == 0 and stats["dropped"] == stats["frames"] >= 1.5 * 50 - 5
    assert out["joined"] and stats["finished"]
    assert out["max_poll"] < 0.2


def test_a_stalled_consumer_loses_frames_not_time(tmp_path):
    """The consumer reads the header, then nothing: frames are dropped, the clock goes on."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    accepted: list[socket.socket] = []

    def accept() -> None:
        conn, _ = server.accept()
        conn.recv(200)  # part of the header, then stall
        accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        out = _run_child(tmp_path, f"127.0.0.1:{server.getsockname()[1]}", seconds=3.0,
                         tap={"capacity": 10, "send_timeout": 1.0, "send_buffer": 4096})
    finally:
        thread.join(5)
        for conn in accepted:
            conn.close()
        server.close()
    stats = out["stats"]
    assert stats["connected"] and "lost" in stats["error"]
    assert out["errors"] == [stats["error"]]
    assert stats["dropped"] > 0 and stats["sent"] > 0
    assert stats["sent"] + stats["dropped"] == stats["frames"] >= 3.0 * 50 - 5
    assert out["max_poll"] < 0.2  # SIP and the bridge never waited for the socket
    assert out["joined"] and out["stop_seconds"] < 0.5


def test_a_slow_consumer_gets_a_gap_and_the_rest(tmp_path):
    """The consumer pauses, then reads on: the stream shows the gap, nothing is given up."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    events: list = []

    def consume() -> None:
        conn, _ = server.accept()
        parser = StreamParser()
        with conn:
            events.extend(parser.feed(conn.recv(100)))
            time.sleep(2.0)
            while data := conn.recv(65536):
                events.extend(parser.feed(data))
        events.append(parser.eof())

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    try:
        out = _run_child(tmp_path, f"127.0.0.1:{server.getsockname()[1]}", seconds=3.5,
                         tap={"capacity": 10, "send_timeout": 10.0, "send_buffer": 4096})
    finally:
        thread.join(15)
        server.close()
    stats = out["stats"]
    assert stats["error"] == "" and out["errors"] == []
    assert stats["dropped"] > 0 and stats["sent"] + stats["dropped"] == stats["frames"]
    assert events[-1] is True  # the end record arrived
    audio = [e for e in events if isinstance(e, Audio)]
    end = events[-2]
    assert isinstance(end, End) and end.dropped == stats["dropped"]
    assert len(audio) == stats["sent"] == end.sent
    assert [a.pos for a in audio] == sorted(a.pos for a in audio)
    gaps = sum(b.pos - a.pos - FRAME for a, b in zip(audio, audio[1:], strict=False))
    assert gaps + (end.pos - audio[-1].pos - FRAME) + audio[0].pos == stats["dropped"] * FRAME
    assert out["max_poll"] < 0.2
