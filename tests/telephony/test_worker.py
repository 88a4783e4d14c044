"""The media worker for real: pjsua2 over loopback, a scripted caller process, no mocks.

Each test plays the coordinator: it listens on a control port, starts
``python -m hotline.telephony.worker`` on free ports, and calls it with
``tests/telephony/sip_caller.py`` (a separate pjsua2 process, like a phone).
"""

from __future__ import annotations

import array
import json
import math
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest
from baresip import Baresip
from phones import Ua, close_all, make_tone, read_channels, tones

from hotline.recording import merge_stereo, part_paths, recover_parts, sha256_of
from hotline.telephony import protocol as p
from hotline.telephony.pjsua import incoming_facts
from hotline.telephony.tap_sink import TapSink

ROOT = Path(__file__).resolve().parents[2]
CALLER = Path(__file__).with_name("sip_caller.py")
CALLER_URI = "sip:13800138000@127.0.0.1"


# --- helpers ----------------------------------------------------------------------------------


def _free_sip_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def _free_rtp_base(count: int = 8) -> int:
    """An even port starting ``count`` free UDP ports."""
    for _ in range(50):
        base = random.randrange(40000, 60000, 2)
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free RTP range")


class Control:
    """The coordinator's side of one worker: accept, expect events, send commands."""

    def __init__(self, port: int = 0) -> None:
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", port))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None
        self.decoder = p.Decoder()
        self.backlog: list[object] = []
        self.log: list[tuple[float, object]] = []
        self.eof = False

    def accept(self, timeout: float = 10.0) -> None:
        self.server.settimeout(timeout)
        self.conn, _ = self.server.accept()
        self.conn.settimeout(0.05)

    def send(self, message: object) -> None:
        assert self.conn is not None
        self.conn.sendall(p.encode(message))

    def send_raw(self, data: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(data)

    def _pump(self) -> None:
        assert self.conn is not None
        try:
            data = self.conn.recv(65536)
        except TimeoutError:
            return
        except OSError:
            data = b""
        if not data:
            self.eof = True
            time.sleep(0.05)
            return
        for message in self.decoder.feed(data):
            assert not isinstance(message, p.ProtocolError), message
            self.log.append((time.monotonic(), message))
            self.backlog.append(message)

    def expect(self, kind: type, timeout: float = 5.0, **fields: object):
        """The first event of ``kind`` whose fields match; others stay in the backlog."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.backlog:
                if isinstance(message, kind) and all(
                        getattr(message, k) == v for k, v in fields.items()):
                    self.backlog.remove(message)
                    return message
            if time.monotonic() > deadline or self.eof:
                raise AssertionError(f"no {kind.__name__} {fields} within {timeout}s; "
                                     f"seen: {[m for _, m in self.log]}")
            self._pump()

    def idle(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self.eof:
            self._pump()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


class Worker:
    def __init__(self, tmp: Path, *extra: str) -> None:
        self.control = Control()
        self.sip_port = _free_sip_port()
        self.rtp_port = _free_rtp_base()
        self.stderr_path = tmp / "worker.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hotline.telephony.worker", "--id", "w1",
             "--sip-port", str(self.sip_port), "--rtp-port", str(self.rtp_port),
             "--control", f"127.0.0.1:{self.control.port}", "--host", "127.0.0.1", *extra],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=self.stderr_path.open("wb"))
        self.control.accept()
        self.ready = self.control.expect(p.WorkerReady, timeout=10)
        self.target = f"sip:12348@127.0.0.1:{self.sip_port}"

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> int:
        """Close the control connection (an orderly stop); SIGKILL only as a last resort."""
        self.control.close()
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)


@pytest.fixture
def worker(tmp_path):
    w = Worker(tmp_path)
    yield w
    # Every test ends with an orderly stop: exit 0, no Python or pjsip failure logged.
    assert w.stop() == 0, w.stderr()[-3000:]
    assert "Traceback" not in w.stderr() and "Assertion" not in w.stderr(), w.stderr()[-3000:]


@pytest.fixture(scope="module")
def audio(tmp_path_factory) -> dict[str, Path]:
    """A 1 kHz tone for the caller, a spoken prompt, a short hold-music loop (8 kHz mono)."""
    d = tmp_path_factory.mktemp("audio")
    tone, prompt, hold = d / "tone.wav", d / "prompt.wav", d / "hold.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(tone),
                    "synth", "30", "sine", "1000", "vol", "0.5"], check=True)
    raw = d / "prompt-raw.wav"
    if shutil.which("espeak-ng"):
        subprocess.run(["espeak-ng", "-v", "cmn", "-w", str(raw), "法律服务热线"], check=True)
    else:
        subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", str(raw),
                        "synth", "1.5", "sine", "440"], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(prompt)],
                   check=True, stderr=subprocess.DEVNULL)
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(hold),
                    "synth", "1", "sine", "440", "vol", "0.3"], check=True)
    return {"tone": tone, "prompt": prompt, "hold": hold}


def _caller(tmp: Path, target: str, name: str, *, calls: int = 1, wav: Path | None = None,
            dtmf: str = "", hold: float = 3.0, timeout: float = 20.0,
            codecs: str = "PCMA/8000/1,PCMU/8000/1"):
    result = tmp / f"{name}.json"
    cmd = [sys.executable, str(CALLER), "--target", target, "--calls", str(calls),
           "--hold", str(hold), "--timeout", str(timeout), "--result", str(result),
           "--codecs", codecs]
    if wav is not None:
        cmd += ["--wav", str(wav)]
    if dtmf:
        cmd += ["--dtmf", dtmf]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=(tmp / f"{name}.log").open("wb"))
    return proc, result


def _finish_caller(proc, result: Path, timeout: float = 20.0) -> list[dict]:
    assert proc.wait(timeout) == 0
    return json.loads(result.read_text())


def _channels(path: Path) -> tuple[array.array, array.array, wave.Wave_read]:
    with wave.open(str(path), "rb") as w:
        frames = array.array("h", w.readframes(w.getnframes()))
        if sys.byteorder == "big":
            frames.byteswap()
        return frames[0::2], frames[1::2], w


def _rms(samples) -> float:
    return math.sqrt(sum(s * s for s in samples) / len(samples)) if len(samples) else 0.0


def _answered_call(w: Worker, tmp: Path, audio, **caller_args):
    proc, result = _caller(tmp, w.target, "caller", wav=audio["tone"], **caller_args)
    offer = w.control.expect(p.CallOffered, timeout=10, from_uri=CALLER_URI)
    w.control.send(p.Answer(offer.call))
    w.control.expect(p.LegAnswered, call=offer.call, leg="caller")
    return offer, proc, result


# --- the worker over real SIP ---------------------------------------------------------------


@pytest.mark.timeout(60)
def test_call_answer_prompt_digits_record_hangup(worker, tmp_path, audio):
    ready = worker.ready
    assert ready == p.WorkerReady("w1", worker.sip_port, 4, worker.proc.pid)
    proc, result = _caller(tmp_path, worker.target, "caller", wav=audio["tone"],
                           dtmf="1:1.0,0:1.5,i#:2.0", hold=5.0)
    offer = worker.control.expect(p.CallOffered, timeout=10)
    assert (offer.to_user, offer.from_uri) == ("12348", CALLER_URI)
    assert offer.sip_call_id and offer.remote.startswith("127.0.0.1:")
    worker.control.send(p.Answer(offer.call))
    worker.control.expect(p.LegAnswered, call=offer.call, leg="caller")

    path = tmp_path / "rec" / "2026" / "call.wav"
    worker.control.send(p.Record(offer.call, 1, str(path)))
    worker.control.send(p.PlayFiles(offer.call, 2, (str(audio["prompt"]),)))
    started = time.monotonic()
    for digit in "10#":  # RFC 2833 twice, then SIP INFO; each reported exactly once
        worker.control.expect(p.Digit, call=offer.call, leg="caller", digit=digit)
    worker.control.expect(p.PlaybackDone, call=offer.call, token=2)
    worker.control.send(p.PlayFiles(offer.call, 3, (str(audio["hold"]),), loop=True))
    worker.control.idle(0.3)
    worker.control.send(p.StopPlayback(offer.call, 3))
    worker.control.expect(p.PlaybackDone, call=offer.call, token=3)

    ended = worker.control.expect(p.LegEnded, timeout=10, call=offer.call)
    wall = time.monotonic() - started
    assert (ended.leg, ended.reason, ended.status) == ("caller", "remote_hangup", 200)
    done = worker.control.expect(p.RecordingDone, call=offer.call, token=1)
    assert not [m for m in worker.control.backlog if isinstance(m, p.Digit)]
    assert [c["confirmed"] for c in _finish_caller(proc, result)] == [True]

    assert done.path == str(path) and done.sha256 == sha256_of(path)
    assert abs(done.seconds - wall) <= 0.1 * wall, (done.seconds, wall)
    left, right, info = _channels(path)
    assert (info.getnchannels(), info.getframerate(), info.getsampwidth()) == (2, 8000, 2)
    assert len(left) / 8000 == pytest.approx(done.seconds)
    assert _rms(left) > 2000  # the caller's 1 kHz tone
    assert _rms(right[: 8000]) > 300  # the prompt, first second
    assert _rms(right[-8000:]) < 50  # nothing plays at the end
    assert sorted(f.name for f in path.parent.iterdir()) == ["call.wav"]  # parts removed

    worker.control.close()
    assert worker.proc.wait(10) == 0
    assert worker.proc.stdout is not None and worker.proc.stdout.read() == b""  # stderr only


@pytest.mark.timeout(60)
def test_four_calls_answered_fifth_refused_with_486(worker, tmp_path, audio):
    proc, result = _caller(tmp_path, worker.target, "four", calls=4, wav=audio["tone"],
                           hold=0, timeout=20)
    offers = [worker.control.expect(p.CallOffered, timeout=10) for _ in range(4)]
    for offer in offers:
        worker.control.send(p.Answer(offer.call))
    for offer in offers:
        worker.control.expect(p.LegAnswered, call=offer.call)

    fifth, fifth_result = _caller(tmp_path, worker.target, "fifth", hold=1.0, timeout=10)
    [refused] = _finish_caller(fifth, fifth_result)
    assert (refused["confirmed"], refused["status"]) == (False, 486)
    assert worker.proc.poll() is None

    for offer in offers:
        worker.control.send(p.Hangup(offer.call, "agent_done"))
    for offer in offers:
        ended = worker.control.expect(p.LegEnded, call=offer.call)
        assert ended.reason == "agent_done"
    assert [c["confirmed"] for c in _finish_caller(proc, result)] == [True] * 4
    assert not [m for m in worker.control.backlog if isinstance(m, p.CallOffered)]


@pytest.mark.timeout(60)
def test_closed_control_hangs_up_finishes_recording_and_exits_0(worker, tmp_path, audio):
    proc, result = _caller(tmp_path, worker.target, "caller", wav=audio["tone"], hold=20.0)
    offer = worker.control.expect(p.CallOffered, timeout=10)
    path = tmp_path / "rec" / "cut.wav"
    # Sent before the media is up: both wait for it, then start.
    worker.control.send(p.Answer(offer.call))
    worker.control.send(p.Record(offer.call, 7, str(path)))
    worker.control.send(p.PlayFiles(offer.call, 8, (str(audio["hold"]),), loop=True))
    worker.control.expect(p.LegAnswered, call=offer.call)
    worker.control.idle(1.0)
    worker.control.close()
    assert worker.proc.wait(10) == 0
    [call] = _finish_caller(proc, result)
    assert call["confirmed"] and call["seconds"] < 10  # the worker hung up, not the caller
    left, right, info = _channels(path)
    assert info.getnchannels() == 2 and 0.8 < len(left) / 8000 < 3.0
    assert _rms(left) > 2000 and _rms(right) > 300
    assert sorted(f.name for f in path.parent.iterdir()) == ["cut.wav"]
    assert "Traceback" not in worker.stderr()


@pytest.mark.timeout(60)
def test_killed_worker_leaves_parts_that_recover_into_a_stereo_wav(tmp_path, audio):
    w = Worker(tmp_path)
    try:
        offer, proc, result = _answered_call(w, tmp_path, audio, hold=2.0)
        path = tmp_path / "rec" / "killed.wav"
        w.control.send(p.Record(offer.call, 1, str(path)))
        w.control.idle(1.5)
        w.proc.send_signal(signal.SIGKILL)
        assert w.proc.wait(5) == -signal.SIGKILL
        assert all(part.exists() for part in part_paths(path)) and not path.exists()
        _finish_caller(proc, result)
    finally:
        w.stop()
    recovered = recover_parts(path)
    assert recovered is not None and recovered.sha256 == sha256_of(path)
    left, right, info = _channels(path)
    assert info.getnchannels() == 2 and 0.5 < recovered.seconds < 2.0  # minus unflushed tail
    assert _rms(left) > 2000
    assert sorted(f.name for f in path.parent.iterdir()) == ["killed.wav"]
    assert recover_parts(path) is None


@pytest.mark.timeout(30)
def test_sigterm_and_shutdown_exit_0(tmp_path):
    first = Worker(tmp_path)
    try:
        first.proc.send_signal(signal.SIGTERM)
        assert first.proc.wait(10) == 0
    finally:
        first.stop()
    second = Worker(tmp_path)
    try:
        second.control.send(p.Shutdown())
        assert second.proc.wait(10) == 0
        assert "Traceback" not in second.stderr()
    finally:
        second.stop()


@pytest.mark.timeout(30)
def test_busy_sip_port_exits_2(tmp_path):
    control = Control()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "hotline.telephony.worker", "--id", "w9", "--sip-port",
             str(port), "--rtp-port", str(_free_rtp_base()), "--control",
             f"127.0.0.1:{control.port}"], cwd=ROOT, capture_output=True, timeout=20)
    control.close()
    assert proc.returncode == 2
    assert b"cannot start SIP" in proc.stderr and proc.stdout == b""


@pytest.mark.timeout(60)
def test_unanswered_call_cancelled_by_caller(worker, tmp_path):
    proc, result = _caller(tmp_path, worker.target, "impatient", hold=5.0, timeout=1.0)
    offer = worker.control.expect(p.CallOffered, timeout=10)
    ended = worker.control.expect(p.LegEnded, call=offer.call)
    assert (ended.reason, ended.status) == ("caller_cancelled", 487)
    assert _finish_caller(proc, result)[0]["confirmed"] is False
    worker.control.send(p.Answer(offer.call))  # too late: ignored


@pytest.mark.timeout(60)
def test_garbage_on_control_socket_is_ignored(worker, tmp_path, audio):
    c = worker.control
    c.send_raw(b"\x00\xff\xfe garbage\n{not json}\n[1,2]\n{\"type\":\"Answer\"}\n")
    c.send_raw(b'{"type":"Nope","call":"x"}\n{"type":"PlayFiles","call":"x","token":"a"}\n')
    c.send_raw(b"x" * (p.MAX_LINE + 100) + b"\n")
    c.send_raw(p.encode(p.WorkerReady("evil", 1, 1, 1)))  # an event is no command
    for message in (p.Answer("nope"), p.PlayFiles("nope", 1, ("/x.wav",)),
                    p.StopPlayback("nope", 1), p.Record("nope", 1, str(tmp_path / "n.wav")),
                    p.StopRecording("nope", 1), p.Hangup("nope", "x")):
        c.send(message)
    c.idle(0.3)
    assert worker.proc.poll() is None

    offer, proc, result = _answered_call(worker, tmp_path, audio, hold=1.5)
    # Bad commands on a live call fail alone: a missing prompt still ends in PlaybackDone.
    c.send(p.PlayFiles(offer.call, 5, (str(tmp_path / "missing.wav"),)))
    failed = c.expect(p.CommandFailed, call=offer.call, command="PlayFiles", token=5)
    assert "missing.wav" in failed.detail
    c.expect(p.PlaybackDone, call=offer.call, token=5)
    c.send(p.PlayFiles(offer.call, 6, (str(audio["prompt"]),), leg="lawyer"))
    c.expect(p.CommandFailed, call=offer.call, token=6)
    c.expect(p.PlaybackDone, call=offer.call, token=6)
    c.send(p.Record(offer.call, 9, "/proc/no/such/dir/r.wav"))
    c.expect(p.CommandFailed, call=offer.call, command="Record", token=9)
    c.send(p.Answer(offer.call))  # twice: ignored
    c.expect(p.LegEnded, call=offer.call, reason="remote_hangup")
    assert [x["confirmed"] for x in _finish_caller(proc, result)] == [True]
    assert worker.proc.poll() is None
    assert not [m for m in c.backlog if isinstance(m, p.RecordingDone)]


def _fuzz_packets(port: int) -> list[bytes]:
    rng = random.Random(12348)
    invite = (
        f"INVITE sip:12348@127.0.0.1:{port} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-fuzz{n}\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:fuzz@127.0.0.1>;tag=f{n}\r\n"
        f"To: <sip:12348@127.0.0.1:{port}>\r\nCall-ID: fuzz-{{n}}@127.0.0.1\r\n"
        "CSeq: 1 INVITE\r\nContact: <sip:fuzz@127.0.0.1:5999>\r\n"
        "Content-Type: application/sdp\r\nContent-Length: {length}\r\n\r\n{body}")
    sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           "m=audio 5998 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n")
    packets = [bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 1500)))
               for _ in range(150)]
    full = invite.format(n=0, length=len(sdp), body=sdp).encode()
    head_end = full.index(b"\r\n\r\n")
    packets += [full[: rng.randrange(1, head_end)] for _ in range(100)]
    packets += [invite.format(n=i, length=len(sdp), body=sdp).encode().replace(
        b"Max-Forwards: 70", b"X-Big: " + b"A" * 64000 + b"\r\nMax-Forwards: 70")
        for i in range(3)]
    packets += [invite.format(n=i, length=99999, body="v=0 garbage").encode()
                for i in range(5)]
    packets += [b"SIP/2.0 200 OK\r\nVia: garbage\r\n\r\n", b"\r\n\r\n", b"\x00" * 3000]
    return packets


@pytest.mark.timeout(60)
def test_sip_garbage_does_not_kill_worker(worker, tmp_path, audio):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for packet in _fuzz_packets(worker.sip_port):
        udp.sendto(packet, ("127.0.0.1", worker.sip_port))
    udp.close()
    with socket.create_connection(("127.0.0.1", worker.sip_port)) as tcp:
        tcp.sendall(b"INVITE sip:x SIP/2.0\r\nContent-Length: 5\r\n" + b"B" * 70000)
        tcp.sendall(bytes(random.Random(1).getrandbits(8) for _ in range(20000)))
    worker.control.idle(0.5)
    assert worker.proc.poll() is None, worker.stderr()[-2000:]
    # Anything the fuzz managed to offer is refused, so it cannot hold a leg.
    for message in list(worker.control.backlog):
        if isinstance(message, p.CallOffered):
            worker.control.send(p.Hangup(message.call, "fuzz"))

    offer, proc, result = _answered_call(worker, tmp_path, audio, hold=1.0)
    worker.control.expect(p.LegEnded, call=offer.call, reason="remote_hangup")
    assert [c["confirmed"] for c in _finish_caller(proc, result)] == [True]
    assert worker.proc.poll() is None


# --- pure parts -----------------------------------------------------------------------------


def _mono(path: Path, samples: list[int]) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(array.array("h", samples).tobytes())


def test_merge_stereo_interleaves_and_pads_the_shorter(tmp_path):
    _mono(tmp_path / "l.wav", [1, 2, 3, 4, 5])
    _mono(tmp_path / "r.wav", [-1, -2])
    out = tmp_path / "out.wav"
    assert merge_stereo(tmp_path / "l.wav", tmp_path / "r.wav", out) == 5 / 8000
    left, right, info = _channels(out)
    assert info.getnchannels() == 2
    assert (list(left), list(right)) == ([1, 2, 3, 4, 5], [-1, -2, 0, 0, 0])
    assert merge_stereo(tmp_path / "gone.wav", tmp_path / "r.wav", out) == 2 / 8000
    assert sorted(f.name for f in tmp_path.iterdir()) == ["l.wav", "out.wav", "r.wav"]


@pytest.mark.parametrize(("message", "to_user"), [
    ("INVITE sip:12348@10.0.0.5:5101;transport=udp SIP/2.0\r\nTo: <sip:x@y>\r\n", "12348"),
    ("INVITE sip:10.0.0.5 SIP/2.0\r\nTo: \"热线\" <sip:12348@front>;tag=1\r\n", "12348"),
    ("INVITE tel:+8612348 SIP/2.0\r\n", "+8612348"),
])
def test_incoming_facts_take_the_dialled_number(message, to_user):
    facts = incoming_facts(message, '"张三" <sip:138@x>', "<sip:worker@h>", "cid", "1.2.3.4:5")
    assert facts.to_user == to_user
    assert (facts.from_uri, facts.sip_call_id, facts.remote) == ("sip:138@x", "cid",
                                                                  "1.2.3.4:5")


# --- lawyer legs: originate, bridge, hold, transfer, conference -------------------------------

CALLER_HZ, HOLD_HZ, LAWYER_HZ, CONSULT_HZ = 1000, 440, 600, 1500
ALL_HZ = (CALLER_HZ, HOLD_HZ, LAWYER_HZ, CONSULT_HZ)


@pytest.fixture
def phones(tmp_path):
    """Two lawyers' phones (sip_ua.py) that answer, play their own tone and record."""
    made = []

    def make(name: str, hz: int, *extra: str) -> Ua:
        folder = tmp_path / name
        folder.mkdir()
        tone = make_tone(tmp_path / f"{name}.wav", hz)
        ua = Ua(name, "--wav", str(tone), "--record-dir", str(folder), *extra)
        ua.folder = folder
        made.append(ua)
        return ua

    yield make
    close_all(*made)


def _bridged(worker, tmp_path, audio, phone, hold=30.0):
    """A caller answered and recorded, then bridged to ``phone`` as leg "lawyer"."""
    offer, proc, result = _answered_call(worker, tmp_path, audio, hold=hold)
    path = tmp_path / "rec" / "call.wav"
    worker.control.send(p.Record(offer.call, 1, str(path)))
    started = time.monotonic()
    worker.control.send(p.Originate(offer.call, "lawyer", phone.uri))
    worker.control.expect(p.LegAnswered, call=offer.call, leg="lawyer", timeout=10)
    worker.control.send(p.Connect(offer.call, ("caller", "lawyer")))
    return offer, proc, result, path, started


@pytest.mark.timeout(90)
def test_bridge_hold_attended_transfer_conference_and_leave(worker, tmp_path, audio, phones):
    lawyer, consult = phones("lawyer", LAWYER_HZ), phones("consult", CONSULT_HZ)
    offer, proc, result, path, t0 = _bridged(worker, tmp_path, audio, lawyer)
    call, c = offer.call, worker.control
    marks = {}

    def phase(name, seconds):
        marks[name] = (time.monotonic() - t0, time.monotonic() - t0 + seconds)
        c.idle(seconds)

    phase("talk", 2.0)
    c.send(p.Connect(call, ()))  # hold: the caller hears music, the lawyer nothing
    c.send(p.PlayFiles(call, 5, (str(audio["hold"]),), loop=True))
    phase("hold", 2.0)
    c.send(p.Originate(call, "consult", consult.uri))  # attended transfer: consult first
    c.expect(p.LegAnswered, call=call, leg="consult", timeout=10)
    c.send(p.Connect(call, ("lawyer", "consult")))
    phase("consult", 2.0)
    c.send(p.StopPlayback(call, 5))
    c.expect(p.PlaybackDone, call=call, token=5)
    c.send(p.Connect(call, ("caller", "lawyer", "consult")))  # three-way conference
    phase("conference", 2.0)
    c.send(p.Hangup(call, "left", leg="lawyer"))  # the lawyer leaves: the transfer completes
    assert c.expect(p.LegEnded, call=call, leg="lawyer").reason == "left"
    c.send(p.Connect(call, ("caller", "consult")))
    phase("transferred", 2.0)
    c.send(p.Hangup(call, "agent_done"))
    ends = {c.expect(p.LegEnded, call=call, leg=leg).reason for leg in ("caller", "consult")}
    assert ends == {"agent_done"}
    c.expect(p.RecordingDone, call=call, token=1, timeout=10)
    assert not [m for m in c.backlog if isinstance(m, p.CommandFailed)], c.backlog
    _finish_caller(proc, result)

    left, right = read_channels(path)
    expected = {"talk": {LAWYER_HZ}, "hold": {HOLD_HZ}, "consult": {HOLD_HZ},
                "conference": {LAWYER_HZ, CONSULT_HZ}, "transferred": {CONSULT_HZ}}
    for name, heard in expected.items():
        start, end = marks[name]
        window = (start + 0.4, end - 0.2)
        assert tones(right, *window, ALL_HZ) == heard, (name, window)
        assert tones(left, *window, ALL_HZ) == {CALLER_HZ}, (name, window)
    # What the phones heard: the lawyer never heard the caller while the caller was on hold.
    [heard_by_lawyer] = read_channels(next(lawyer.folder.glob("*.wav")))
    [heard_by_consult] = read_channels(next(consult.folder.glob("*.wav")))
    assert CALLER_HZ in tones(heard_by_lawyer, 0.5, 1.8, ALL_HZ)
    assert LAWYER_HZ in tones(heard_by_consult, 0.4, 1.5, ALL_HZ)  # the consultation
    assert CALLER_HZ not in tones(heard_by_consult, 0.4, 1.5, ALL_HZ)
    assert {CALLER_HZ, LAWYER_HZ} <= tones(heard_by_consult, 2.6, 3.8, ALL_HZ)  # conference


@pytest.mark.timeout(90)
def test_blind_transfer_busy_target_and_leg_limit(worker, tmp_path, audio, phones):
    lawyer, second = phones("lawyer", LAWYER_HZ), phones("second", CONSULT_HZ)
    busy = phones("busy", HOLD_HZ, "--busy")
    offer, proc, result, path, t0 = _bridged(worker, tmp_path, audio, lawyer)
    call, c = offer.call, worker.control
    c.idle(1.0)
    # Blind transfer: the lawyer goes at once, the caller hears music while the target rings.
    c.send(p.Hangup(call, "transferred", leg="lawyer"))
    c.send(p.PlayFiles(call, 9, (str(audio["hold"]),), loop=True))
    assert c.expect(p.LegEnded, call=call, leg="lawyer").reason == "transferred"
    c.send(p.Originate(call, "busy", busy.uri))
    gone = c.expect(p.LegEnded, call=call, leg="busy", timeout=10)
    assert (gone.reason, gone.status) == ("busy", 486)
    t_hold = time.monotonic() - t0
    c.idle(1.5)  # the caller waits with music
    c.send(p.Originate(call, "lawyer", second.uri))  # a leg name may be used again
    c.expect(p.LegAnswered, call=call, leg="lawyer", timeout=10)
    c.send(p.StopPlayback(call, 9))
    c.send(p.Connect(call, ("caller", "lawyer")))
    t_second = time.monotonic() - t0
    c.idle(2.0)
    # The PyPI wheel carries 4 legs: caller + 3 more; the next one is refused, cleanly.
    extra = [phones(f"x{i}", 2000 + 100 * i) for i in range(3)]
    for i, ua in enumerate(extra[:2]):
        c.send(p.Originate(call, f"x{i}", ua.uri))
        c.expect(p.LegAnswered, call=call, leg=f"x{i}", timeout=10)
    c.send(p.Originate(call, "x2", extra[2].uri))
    refused = c.expect(p.LegEnded, call=call, leg="x2", timeout=5)
    assert refused.reason == "no_free_leg"
    c.expect(p.CommandFailed, call=call, command="Originate")
    c.send(p.Hangup(call, "done"))
    for leg in ("caller", "lawyer", "x0", "x1"):
        c.expect(p.LegEnded, call=call, leg=leg, timeout=10)
    c.expect(p.RecordingDone, call=call, token=1, timeout=10)
    _finish_caller(proc, result)
    _, right = read_channels(path)
    assert tones(right, t_second + 0.4, t_second + 1.8, ALL_HZ) == {CONSULT_HZ}
    assert tones(right, t_hold + 0.2, t_hold + 1.3, ALL_HZ) == {HOLD_HZ}


@pytest.mark.timeout(60)
def test_caller_hangs_up_while_the_lawyer_rings(worker, tmp_path, audio, phones):
    slow = phones("slow", LAWYER_HZ, "--answer-after", "20")
    offer, proc, result = _answered_call(worker, tmp_path, audio, hold=2.0)
    worker.control.send(p.Originate(offer.call, "lawyer", slow.uri))
    worker.control.expect(p.LegRinging, call=offer.call, leg="lawyer", timeout=10)
    assert worker.control.expect(p.LegEnded, call=offer.call, leg="caller",
                                 timeout=10).reason == "remote_hangup"
    ended = worker.control.expect(p.LegEnded, call=offer.call, leg="lawyer", timeout=10)
    assert ended.reason == "caller_gone"
    slow.wait("ended", timeout=10)
    _finish_caller(proc, result)


@pytest.mark.timeout(90)
def test_bridged_call_outlives_the_coordinator_and_is_reported_back(tmp_path, audio, phones):
    lawyer = phones("lawyer", LAWYER_HZ)
    w = Worker(tmp_path, "--lost-prompt", str(audio["prompt"]))
    try:
        offer, proc, result, path, _ = _bridged(w, tmp_path, audio, lawyer, hold=8.0)
        ivr_proc, ivr_result = _caller(tmp_path, w.target, "ivr", wav=audio["tone"], hold=30)
        ivr = w.control.expect(p.CallOffered, timeout=10)
        w.control.send(p.Answer(ivr.call))
        w.control.expect(p.LegAnswered, call=ivr.call)
        w.control.idle(1.0)
        port = w.control.port
        w.control.close()  # the coordinator dies
        # The IVR caller hears the prompt (≈2 s), then is hung up; the bridged call goes on.
        [ivr_call] = _finish_caller(ivr_proc, ivr_result, timeout=20)
        assert ivr_call["confirmed"] and ivr_call["seconds"] < 8
        time.sleep(1.0)
        assert w.proc.poll() is None
        w.control = Control(port)  # a new coordinator on the same address
        w.control.accept(timeout=15)
        ready = w.control.expect(p.WorkerReady)
        assert set(ready.held) == {offer.sip_call_id, ivr.sip_call_id}
        held = {m.call: m for m in (w.control.expect(p.CallHeld) for _ in range(2))}
        assert held[offer.call].legs == ("caller", "lawyer")
        assert held[offer.call].group == ("caller", "lawyer")
        assert held[ivr.call].legs == ()
        assert w.control.expect(p.LegEnded, call=ivr.call).reason == "coordinator_lost"
        # The caller hangs up after 8 s: reported live to the new coordinator.
        ended = w.control.expect(p.LegEnded, call=offer.call, leg="caller", timeout=15)
        assert ended.reason == "remote_hangup" and ended.at > 0
        assert w.control.expect(p.LegEnded, call=offer.call, leg="lawyer").reason == (
            "caller_gone")
        done = w.control.expect(p.RecordingDone, call=offer.call, timeout=10)
        [call] = _finish_caller(proc, result)
        assert call["confirmed"]
        assert done.seconds > 6
    finally:
        assert w.stop() == 0, w.stderr()[-3000:]
    assert "Traceback" not in w.stderr()


@pytest.mark.timeout(60)
def test_tap_streams_each_leg_like_the_recording_hears_it(worker, tmp_path, audio, phones):
    noise = tmp_path / "noise.wav"  # not periodic: samples line up at exactly one offset
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(noise), "synth",
                    "30", "whitenoise", "vol", "0.3"], check=True)
    lawyer = phones("lawyer", LAWYER_HZ)
    sink = TapSink(tmp_path / "taps").start()
    try:
        proc, result = _caller(tmp_path, worker.target, "caller", wav=noise, hold=6.0)
        offer = worker.control.expect(p.CallOffered, timeout=10)
        call, c = offer.call, worker.control
        c.send(p.Answer(call))
        c.send(p.StartTap(call, "caller", sink.address))  # waits for the media
        path = tmp_path / "rec" / "tapped.wav"
        c.send(p.Record(call, 1, str(path)))
        c.send(p.StartTap(call, "nobody", sink.address))
        assert c.expect(p.CommandFailed, call=call, command="StartTap").detail == (
            "no leg 'nobody'")
        c.send(p.Originate(call, "lawyer", lawyer.uri))
        c.expect(p.LegAnswered, call=call, leg="lawyer", timeout=10)
        c.send(p.Connect(call, ("caller", "lawyer")))
        c.send(p.StartTap(call, "lawyer", sink.address))
        c.expect(p.LegEnded, call=call, leg="caller", timeout=15)
        c.expect(p.LegEnded, call=call, leg="lawyer", timeout=10)
        done = c.expect(p.RecordingDone, call=call, timeout=10)
        _finish_caller(proc, result)
        streams = {r.header.leg: r for r in sink.wait(2, timeout=10)}
    finally:
        sink.close()
    assert set(streams) == {"caller", "lawyer"}
    for r in streams.values():
        assert r.end is not None and r.end.dropped == 0 and not r.gaps, r
    left, right = read_channels(path)
    [tapped_caller] = read_channels(Path(streams["caller"].path))
    [tapped_lawyer] = read_channels(Path(streams["lawyer"].path))
    assert abs(len(tapped_caller) / 8000 - done.seconds) < 0.5
    # The caller's stream is the recording's left channel, sample for sample.
    chunk = tapped_caller[16000:24000]
    best = min(range(0, len(left) - len(chunk), 160),
               key=lambda o: sum(abs(a - b) for a, b in zip(chunk[::40], left[o:o + 8000:40],
                                                           strict=True)))
    assert list(left[best:best + 8000]) == list(chunk)
    assert tones(tapped_lawyer, 1.0, 2.5, ALL_HZ) == {LAWYER_HZ}


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("offer", "codec"), [
    ("G722/16000/1,PCMA/8000/1", "G722"),  # a wideband phone gets G.722
    ("PCMU/8000/1", "PCMU"),
    ("PCMA/8000/1,PCMU/8000/1,G722/16000/1", "PCMA"),
])
def test_codecs_g711_and_g722(worker, tmp_path, audio, offer, codec):
    proc, result = _caller(tmp_path, worker.target, "caller", wav=audio["tone"], hold=3.0,
                           codecs=offer, dtmf="5:1.0")
    offered = worker.control.expect(p.CallOffered, timeout=10)
    worker.control.send(p.Answer(offered.call))
    answered = worker.control.expect(p.LegAnswered, call=offered.call)
    assert answered.codec == codec
    path = tmp_path / "rec" / f"{codec}.wav"
    worker.control.send(p.Record(offered.call, 1, str(path)))
    worker.control.send(p.PlayFiles(offered.call, 2, (str(audio["prompt"]),)))
    worker.control.expect(p.Digit, call=offered.call, digit="5")
    worker.control.expect(p.LegEnded, call=offered.call, timeout=10)
    worker.control.expect(p.RecordingDone, call=offered.call)
    _finish_caller(proc, result)
    left, right = read_channels(path)
    assert tones(left, 0.5, 2.0, (1000,)) == {1000}
    assert _rms(right[:8000]) > 300  # the prompt


@pytest.mark.timeout(90)
def test_baresip_lawyer_holds_consults_and_leaves_a_conference(worker, tmp_path, audio, phones,
                                                               port_block):
    tone = make_tone(tmp_path / "baresip.wav", LAWYER_HZ)
    sip, ctrl, rtp = port_block(2), port_block(1), port_block(20)
    lawyer = Baresip(tmp_path / "baresip", sip_port=sip, ctrl_port=ctrl,
                     rtp_ports=(rtp, rtp + 19), source=tone, user="8001", lifetime=80,
                     auto_answer=True).start()
    consult = phones("consult", CONSULT_HZ)
    try:
        lawyer_ua = type("Phone", (), {"uri": f"sip:8001@127.0.0.1:{sip}"})()
        offer, proc, result, path, t0 = _bridged(worker, tmp_path, audio, lawyer_ua)
        call, c = offer.call, worker.control
        marks = {}

        def phase(name, seconds):
            marks[name] = (time.monotonic() - t0, time.monotonic() - t0 + seconds)
            c.idle(seconds)

        phase("talk", 2.0)
        c.send(p.Connect(call, ("lawyer",)))
        c.send(p.PlayFiles(call, 5, (str(audio["hold"]),), loop=True))
        c.send(p.Originate(call, "consult", consult.uri))
        c.expect(p.LegAnswered, call=call, leg="consult", timeout=10)
        c.send(p.Connect(call, ("lawyer", "consult")))
        phase("consult", 2.0)
        c.send(p.StopPlayback(call, 5))
        c.send(p.Connect(call, ("caller", "lawyer", "consult")))
        phase("conference", 2.0)
        lawyer.hangup()  # the baresip lawyer leaves on its own
        assert c.expect(p.LegEnded, call=call, leg="lawyer", timeout=10).reason == (
            "remote_hangup")
        c.send(p.Connect(call, ("caller", "consult")))
        phase("after", 1.5)
        c.send(p.Hangup(call, "done"))
        c.expect(p.RecordingDone, call=call, token=1, timeout=10)
        _finish_caller(proc, result)
    finally:
        lawyer.close()
    left, right = read_channels(path)
    expected = {"talk": {LAWYER_HZ}, "consult": {HOLD_HZ},
                "conference": {LAWYER_HZ, CONSULT_HZ}, "after": {CONSULT_HZ}}
    for name, heard in expected.items():
        start, end = marks[name]
        assert tones(right, start + 0.4, end - 0.2, ALL_HZ) == heard, name
