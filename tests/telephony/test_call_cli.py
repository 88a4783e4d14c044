"""`hotline call` against a real `hotline serve` node on loopback, plus its pure parts.

The node is started exactly like tests/telephony/test_e2e.py does (free ports, a copy of the
shipped flows, short queue wait); `hotline call` runs as a subprocess like an operator runs it.
"""

import array
import json
import math
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from hotline.telephony.callplan import (
    Action,
    CallPlan,
    CallResult,
    DigitStep,
    EndedBy,
    LegScript,
    Report,
    digit_schedule,
    parse_target,
    percentile,
)

ROOT = Path(__file__).resolve().parents[2]


# --- pure parts ------------------------------------------------------------------------------


def test_targets():
    t = parse_target("sip:12348@127.0.0.1")
    assert (t.user, t.host, t.port) == ("12348", "127.0.0.1", 5060)
    assert parse_target("12348@10.0.0.5:5070").uri == "sip:12348@10.0.0.5:5070"
    assert parse_target("sip:12348@pbx.example.cn;transport=tcp").host == "pbx.example.cn"
    for bad in ("http://x", "sip:@h", "sip:1@h:0", "sip:1@h:70000", "12348", "sip:1@h:x"):
        with pytest.raises(ValueError, match="无效"):
            parse_target(bad)


def test_digit_timeline_scheme():
    assert digit_schedule("1 0", 2, 3) == (DigitStep(2, "1"), DigitStep(5, "0"))
    assert digit_schedule("1 5s 2 #", 2, 3) == (DigitStep(2, "1"), DigitStep(10, "2"),
                                                 DigitStep(13, "#"))
    assert digit_schedule("4s 123", 0, 1) == (DigitStep(4, "123"),)
    assert digit_schedule("", 2, 3) == ()
    with pytest.raises(ValueError, match="'x'"):
        digit_schedule("1 x", 2, 3)


def test_leg_script_sends_keys_then_hangs_up_on_time():
    plan = CallPlan(uri="sip:1@h", digits=digit_schedule("1 2", 2, 3), hold=8)
    s = LegScript(0, plan, placed_at=100.0, responded=True, confirmed_at=100.5)
    assert s.actions(101.0) == [] and s.deadline() == 102.5
    assert s.actions(102.6) == [Action.SEND] and s.next_step().digits == "1"
    assert s.deadline() == 105.5
    assert s.actions(110.0) == [Action.SEND, Action.HANGUP] and s.next_step().digits == "2"
    assert s.ended_by is EndedBy.LOCAL and s.actions(111) == [] and s.deadline() is None
    s.ended(110.1, 200, "OK")
    r = s.result(100.0)
    assert r.confirmed and r.setup_ms == 500.0 and r.duration_s == 9.6 and r.digits == ("1", "2")


def test_leg_script_gives_up_without_any_response_as_408():
    s = LegScript(0, CallPlan(uri="sip:1@h", answer_timeout=60), placed_at=0.0)
    assert s.deadline() == 5.0 and s.actions(4.9) == []
    assert s.actions(5.0) == [Action.HANGUP] and s.ended_by is EndedBy.TIMEOUT
    s.ended(5.01, 487, "Request Terminated")
    assert (s.status, s.reason, s.result(0).confirmed) == (408, "Request Timeout", False)
    ringing = LegScript(1, CallPlan(uri="sip:1@h", answer_timeout=60), placed_at=0.0,
                        responded=True)
    assert ringing.actions(30) == [] and ringing.deadline() == 60
    unplaced, live = LegScript(3, CallPlan(uri="sip:1@h")), LegScript(
        4, CallPlan(uri="sip:1@h"), placed_at=0.0, confirmed_at=0.1)
    assert not unplaced.stop() and live.stop() and not live.stop()
    assert live.ended_by is EndedBy.STOPPED and unplaced.result(0).ended_by == "stopped"
    far_end = LegScript(2, CallPlan(uri="sip:1@h"), placed_at=0.0, responded=True)
    far_end.ended(0.1, 503, "Service Unavailable")
    assert (far_end.status, far_end.ended_by) == (503, EndedBy.REMOTE)


def test_report_figures():
    assert percentile([], 50) is None
    assert percentile([5, 1, 3, 2, 4], 50) == 3 and percentile(list(range(1, 101)), 95) == 95
    calls = [CallResult(i, True, 200, "OK", "local", float(i + 1), 6.0, i / 3)
             for i in range(5)]
    calls.append(CallResult(5, False, 503, "Service Unavailable", "remote", None, None, 1.7))
    report = Report(uri="sip:1@h", rate=3, hold=6, calls=tuple(calls), wall_s=8)
    data = report.to_json()
    assert (data["confirmed"], data["failed"]) == (5, 1)
    assert data["statuses"] == {"200": 5, "503": 1}
    assert data["setup_ms"] == {"p50": 3.0, "p95": 5.0, "max": 5.0}
    assert json.loads(json.dumps(data))["calls"][5]["status"] == 503
    plan = CallPlan(uri="sip:1@h", digits=(DigitStep(2, "1"),), record="/r/x-{n}.wav")
    assert CallPlan.from_json(plan.to_json()) == plan and plan.record_path(0) == "/r/x-01.wav"


# --- the command against a real node ---------------------------------------------------------


def _hotline(*args, cwd, env=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "hotline", *args], cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def _rms(samples):
    return math.sqrt(sum(s * s for s in samples) / len(samples)) if len(samples) else 0.0


def _ended_calls(db, count, timeout=20.0):
    engine = create_engine(f"sqlite:///{db}")
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as c:
                rows = c.execute(text("SELECT id, end_reason FROM calls "
                                      "WHERE ended_at IS NOT NULL")).all()
                if len(rows) >= count:
                    events = {r.id: c.execute(text(
                        "SELECT kind, data FROM call_events WHERE call_id = :c ORDER BY seq"),
                        {"c": r.id}).all() for r in rows}
                    return rows, events
            time.sleep(0.2)
    finally:
        engine.dispose()
    raise AssertionError("calls not closed in the ledger in time")


def test_one_call_with_a_key_and_a_recording(start_node):
    node = start_node(2)
    out = node["dir"] / "out.wav"
    result = _hotline("call", node["uri"], "--digits", "0", "--hold", "8", "--record", str(out),
                      cwd=node["dir"], env=node["env"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    kinds = [line.split("] ", 1)[1].split(" ")[0] for line in lines]
    assert kinds[0] == "呼叫" and "接通" in kinds and "按键" in kinds, result.stdout
    assert kinds.index("接通") < kinds.index("按键") < kinds.index("挂机"), result.stdout
    assert "按键 0" in result.stdout and "通话结束: 本方挂机, 通话 8.0 秒" in result.stdout
    with wave.open(str(out), "rb") as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (1, 8000, 2)
        assert 7.5 < w.getnframes() / 8000 < 8.5
        frames = array.array("h", w.readframes(w.getnframes()))
    assert _rms(frames[:8000 * 2]) > 300  # the welcome / recording notice
    rows, events = _ended_calls(node["db"], 1)
    digits = [json.loads(e.data)["value"] for e in events[rows[0].id] if e.kind == "digits"]
    assert digits == ["0"]


def test_six_calls_in_child_processes_with_json(start_node):
    node = start_node(3)
    report = node["dir"] / "calls.json"
    result = _hotline("call", node["uri"], "--count", "6", "--rate", "3", "--hold", "6",
                      "--json", str(report), cwd=node["dir"], env=node["env"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "共 6 路: 接通 6 路, 失败 0 路" in result.stdout
    assert "建立用时 (INVITE→接通): 中位" in result.stdout
    data = json.loads(report.read_text())
    assert (data["count"], data["confirmed"], data["failed"]) == (6, 6, 0)
    assert data["statuses"] == {"200": 6}
    assert 0 < data["setup_ms"]["p50"] <= data["setup_ms"]["p95"] <= data["setup_ms"]["max"]
    assert data["setup_ms"]["max"] < 2000
    assert all(5.9 < c["duration_s"] < 6.5 for c in data["calls"])
    placed = sorted(c["placed_at"] for c in data["calls"])
    assert placed[-1] - placed[0] == pytest.approx(5 / 3, abs=0.2)  # 3 calls per second
    rows, _ = _ended_calls(node["db"], 6)
    assert len(rows) == 6


def _keys_in_ledger(rows, events):
    """Each ledger call's keys, in the order the node heard them."""
    return {r.id: [json.loads(e.data)["value"] for e in events[r.id] if e.kind == "digits"]
            for r in rows}


def test_twenty_calls_each_key_reaches_the_node(start_node):
    """Every call of a batch sends its key, whichever child process places it.

    Regression: pjsua closed the caller's null sound device (the bridge clock) one second
    after libStart when nothing was connected to the bridge, so a child that had placed all
    its calls by then sent neither audio nor RFC 2833 keys; the node heard no "0" from the
    first two children's eight calls. A lone call without --play/--record lost its key the
    same way, so one such call runs first.
    """
    node = start_node(10)  # 2 callers per worker (the fixture keeps 2 legs per call)
    single = _hotline("call", node["uri"], "--digits", "0", "--first-digit", "1.5", "--hold",
                      "4", cwd=node["dir"], env=node["env"])
    assert single.returncode == 0, single.stdout + single.stderr
    rows, events = _ended_calls(node["db"], 1)
    assert _keys_in_ledger(rows, events) == {rows[0].id: ["0"]}, events

    report = node["dir"] / "keys.json"
    result = _hotline("call", node["uri"], "--count", "20", "--rate", "10", "--digits", "0",
                      "--hold", "5", "-q", "--json", str(report), cwd=node["dir"],
                      env=node["env"], timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    data = json.loads(report.read_text())
    assert (data["confirmed"], data["failed"]) == (20, 0), data
    assert all(c["digits"] == ["0"] for c in data["calls"]), data["calls"]
    rows, events = _ended_calls(node["db"], 21)
    keys = _keys_in_ledger(rows, events)
    assert len(keys) == 21
    missing = sorted(call_id for call_id, heard in keys.items() if heard != ["0"])
    assert not missing, f"calls without their key in the ledger: {missing}"


def test_bad_uri_is_one_line_without_traceback(tmp_path):
    result = _hotline("call", "http://12348", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "SIP 地址" in result.stderr, result.stderr
    bad_keys = _hotline("call", "sip:12348@127.0.0.1", "--digits", "1 z", cwd=tmp_path)
    assert bad_keys.returncode == 2 and "'z'" in bad_keys.stderr and "Traceback" not in \
        bad_keys.stderr


def test_nobody_listening_fails_cleanly_with_408(tmp_path, port_block):
    port = port_block(1)
    t0 = time.monotonic()
    result = _hotline("call", f"sip:12348@127.0.0.1:{port}", "--json",
                      str(tmp_path / "r.json"), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stderr == "", result.stderr
    assert "呼叫失败: SIP 408" in result.stdout, result.stdout
    assert time.monotonic() - t0 < 15
    assert json.loads((tmp_path / "r.json").read_text())["statuses"] == {"408": 1}


def test_ctrl_c_hangs_every_call_up(start_node):
    node = start_node(3)
    report = node["dir"] / "stopped.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hotline", "call", node["uri"], "--count", "5", "--rate", "10",
         "--hold", "60", "--json", str(report)],
        cwd=node["dir"], env=node["env"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    confirmed = 0
    deadline = time.monotonic() + 20
    while confirmed < 5 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        confirmed += "接通" in line
    assert confirmed == 5
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err and "已中断" in err
    data = json.loads(report.read_text())
    assert data["interrupted"] and data["confirmed"] == 5
    assert {c["ended_by"] for c in data["calls"]} == {"stopped"}
    assert all(c["duration_s"] < 10 for c in data["calls"])
    rows, _ = _ended_calls(node["db"], 5)
    assert {r.end_reason for r in rows} == {"caller_hangup"}  # during the IVR notice
