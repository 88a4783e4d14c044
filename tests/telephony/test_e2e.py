"""A real call end to end: pjsua2 caller → Kamailio → media worker → coordinator → ledger.

`hotline serve` runs as a real process; the caller is a separate pjsua2 process like a phone.
"""

import array
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[2]
CALLER = Path(__file__).with_name("sip_caller.py")


@pytest.fixture
def node(request, tmp_path, start_node):
    started = start_node(getattr(request, "param", 2))
    tone = tmp_path / "tone.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(tone), "synth", "3",
                    "sine", "700", "vol", "0.5"], check=True)
    return {**started, "tone": tone}


def _call(node, name, dtmf, hold, calls=1):
    result = node["dir"] / f"{name}.json"
    cmd = [sys.executable, str(CALLER), "--target", f"sip:12348@127.0.0.1:{node['sip']}",
           "--calls", str(calls), "--wav", str(node["tone"]), "--dtmf", dtmf,
           "--hold", str(hold), "--timeout", str(hold + 30), "--result", str(result)]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=(node["dir"] / f"{name}.log").open("wb"), timeout=hold + 60)
    assert proc.returncode == 0, (node["dir"] / f"{name}.log").read_text()[-2000:]
    return json.loads(result.read_text())


def _rms(samples):
    return math.sqrt(sum(s * s for s in samples) / len(samples)) if len(samples) else 0.0


def _wait_closed(db, count, timeout=20.0):
    engine = create_engine(f"sqlite:///{db}")
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as c:
                done = c.execute(text(
                    "SELECT count(*) FROM recordings WHERE closed_at IS NOT NULL")).scalar()
                ended = c.execute(text(
                    "SELECT count(*) FROM calls WHERE ended_at IS NOT NULL")).scalar()
            if done >= count and ended >= count:
                return
            time.sleep(0.2)
    finally:
        engine.dispose()
    raise AssertionError("calls/recordings not closed in time")


def test_zero_during_the_notice_queue_overflow_then_voicemail(node):
    # 0 during the recording notice → operator → general queue (no lawyers: 5 s of hold
    # music) → busy menu → 1 → voicemail; the caller hangs up while leaving the message.
    results = _call(node, "vm", "0:2.0,1:14.0", hold=34)
    assert results[0]["confirmed"], results
    _wait_closed(node["db"], 1)
    engine = create_engine(f"sqlite:///{node['db']}")
    with engine.connect() as c:
        call = c.execute(text("SELECT id, caller_number, line_dialed, flow, end_reason, "
                              "answered_at, queued_at, queue_code, ended_at FROM calls")).one()
        assert call.line_dialed == "12348" and call.flow == "main"
        assert call.end_reason == "voicemail" and call.queue_code == "general"
        assert call.answered_at is not None and call.queued_at is not None
        events = c.execute(text("SELECT kind, data FROM call_events WHERE call_id = :c "
                                "ORDER BY seq"), {"c": call.id}).all()
        kinds = [e.kind for e in events]
        assert kinds[:3] == ["offered", "answered", "ivr_node"]
        assert kinds[-1] == "ended"
        digits = [json.loads(e.data)["value"] for e in events if e.kind == "digits"]
        assert digits == ["0", "1"]
        for kind in ("enqueued", "voicemail", "prompt"):
            assert kind in kinds
        nodes = [json.loads(e.data)["node"] for e in events if e.kind == "ivr_node"]
        assert nodes[:3] == ["notice", "operator", "general_queue"]
        assert "busy" in nodes and nodes[-1] == "leave_message"
        ticket = c.execute(text("SELECT ticket_no, recording_id, ivr_path FROM tickets "
                                "WHERE call_id = :c"), {"c": call.id}).one()
        rec = c.execute(text("SELECT path, sha256, duration_s, flagged_reason FROM recordings "
                             "WHERE id = :r"), {"r": ticket.recording_id}).one()
    engine.dispose()
    path = Path(rec.path)
    assert path.name == f"{ticket.ticket_no}.wav" and path.parent.parent.parent.parent.name \
        == "rec"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == rec.sha256
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (2, 8000, 2)
        frames = array.array("h", w.readframes(w.getnframes()))
        seconds = w.getnframes() / 8000
    assert abs(seconds - rec.duration_s) < 0.01
    assert 30 < seconds < 40, seconds
    left, right = frames[0::2], frames[1::2]
    assert _rms(left[8000 * 3:8000 * 5]) > 500  # the caller's tone
    assert _rms(right[:8000 * 2]) > 100  # the welcome prompt the caller heard


def test_four_calls_at_once_across_workers(node):
    # 2 workers × 2 inbound calls: all four answered, recorded and closed in the ledger.
    results = _call(node, "four", "0:1.0", hold=9, calls=4)
    assert [r["confirmed"] for r in results] == [True] * 4, results
    _wait_closed(node["db"], 4)
    engine = create_engine(f"sqlite:///{node['db']}")
    with engine.connect() as c:
        rows = c.execute(text("SELECT worker, end_reason FROM calls")).all()
        assert sorted(r.worker for r in rows) == ["w1", "w1", "w2", "w2"]
        assert {r.end_reason for r in rows} == {"abandoned"}
        paths = c.execute(text("SELECT path FROM recordings")).scalars().all()
    engine.dispose()
    assert len(set(paths)) == 4 and all(Path(p).exists() for p in paths)


def test_worker_killed_mid_call_is_closed_repaired_and_replaced(node):
    result = node["dir"] / "crash.json"
    caller = subprocess.Popen(
        [sys.executable, str(CALLER), "--target", f"sip:12348@127.0.0.1:{node['sip']}",
         "--calls", "1", "--wav", str(node["tone"]), "--hold", "12", "--timeout", "40",
         "--result", str(result)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=(node["dir"] / "crash.log").open("wb"))
    engine = create_engine(f"sqlite:///{node['db']}")
    worker = None
    deadline = time.monotonic() + 20
    while worker is None and time.monotonic() < deadline:
        with engine.connect() as c:
            worker = c.execute(text("SELECT c.worker FROM calls c JOIN recordings r "
                                    "ON r.call_id = c.id")).scalar()
        time.sleep(0.2)
    assert worker is not None
    time.sleep(4)  # some audio in the recording's part files
    pid = subprocess.run(["pgrep", "-f", f"hotline.telephony.worker --id {worker} .*"
                          f"--control"], capture_output=True, text=True).stdout.split()
    serve_children = subprocess.run(["pgrep", "-P", str(node["proc"].pid)],
                                    capture_output=True, text=True).stdout.split()
    victims = [p for p in pid if p in serve_children]
    assert len(victims) == 1, (pid, serve_children)
    os.kill(int(victims[0]), signal.SIGKILL)
    _wait_closed(node["db"], 1)
    with engine.connect() as c:
        call = c.execute(text("SELECT end_reason FROM calls")).one()
        rec = c.execute(text("SELECT path, sha256, duration_s FROM recordings")).one()
    assert call.end_reason == "worker_crash"
    path = Path(rec.path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == rec.sha256
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 2 and w.getnframes() / 8000 > 3
    caller.wait(60)
    # The pool replaced the worker: a new call is answered and recorded.
    log = node["dir"] / "serve.log"
    deadline = time.monotonic() + 20
    while "正在重启" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert f"媒体进程 {worker}" in log.read_text()
    time.sleep(3)
    results = _call(node, "after", "0:1.0", hold=3, calls=2)
    assert [r["confirmed"] for r in results] == [True, True]
    _wait_closed(node["db"], 3)
    engine.dispose()


def test_stopping_the_node_ends_live_calls_cleanly(node):
    result = node["dir"] / "stop.json"
    caller = subprocess.Popen(
        [sys.executable, str(CALLER), "--target", f"sip:12348@127.0.0.1:{node['sip']}",
         "--calls", "2", "--wav", str(node["tone"]), "--hold", "0", "--timeout", "40",
         "--result", str(result)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=(node["dir"] / "stop.log").open("wb"))
    engine = create_engine(f"sqlite:///{node['db']}")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with engine.connect() as c:
            if c.execute(text("SELECT count(*) FROM recordings")).scalar() == 2:
                break
        time.sleep(0.2)
    time.sleep(2)
    node["proc"].send_signal(signal.SIGTERM)
    assert node["proc"].wait(60) == 0
    assert caller.wait(40) == 0
    outcome = json.loads(result.read_text())
    assert [r["confirmed"] for r in outcome] == [True, True]
    with engine.connect() as c:
        reasons = c.execute(text("SELECT end_reason FROM calls")).scalars().all()
        open_recs = c.execute(text(
            "SELECT count(*) FROM recordings WHERE closed_at IS NULL OR sha256 IS NULL"
        )).scalar()
    engine.dispose()
    assert reasons == ["system_restart", "system_restart"]
    assert open_recs == 0
    assert "已结束 2 个进行中的通话" in (node["dir"] / "serve.log").read_text()


@pytest.mark.parametrize("node", [10], indirect=True)
def test_twenty_concurrent_calls_on_ten_workers(node):
    # Well past one pjsua2 process's 4 legs: 10 workers × 2 inbound calls, all at once.
    out = node["dir"] / "twenty.json"
    proc = subprocess.run(
        [sys.executable, "-m", "hotline", "call", f"sip:12348@127.0.0.1:{node['sip']}",
         "--count", "20", "--rate", "10", "--hold", "10", "-q",
         "--json", str(out)],
        cwd=node["dir"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    _wait_closed(node["db"], 20, timeout=40)
    engine = create_engine(f"sqlite:///{node['db']}")
    with engine.connect() as c:
        workers = c.execute(text("SELECT worker, count(*) FROM calls GROUP BY worker")).all()
        recs = c.execute(text("SELECT path, sha256, duration_s FROM recordings")).all()
        prompts = c.execute(text("SELECT count(DISTINCT call_id) FROM call_events "
                                 "WHERE kind = 'prompt'")).scalar()
        reasons = c.execute(text("SELECT DISTINCT end_reason FROM calls")).scalars().all()
    engine.dispose()
    assert sorted(n for _, n in workers) == [2] * 10
    assert len(recs) == 20 and prompts == 20 and reasons == ["caller_hangup"]
    for rec in recs:
        assert hashlib.sha256(Path(rec.path).read_bytes()).hexdigest() == rec.sha256
        assert rec.duration_s > 9.0
