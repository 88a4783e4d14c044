"""A callback on a real node survives a restart: the caller finds no lawyer on duty, the
queue's overflow books a callback for their number and says goodbye; ``hotline serve``
restarts; a lawyer signs in; the hotline rings the lawyer's phone first, then dials the
caller through the front's trunk; the conversation is recorded and the request is done.
"""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parent))
from phones import Ua, close_all, make_tone  # noqa: E402

from hotline.config import load_settings

CALLER = Path(__file__).with_name("sip_caller.py")
PASSWORD = "correct-horse-1"


def _rows(node, sql):
    engine = create_engine(f"sqlite:///{node['db']}")
    try:
        with engine.connect() as c:
            return c.execute(text(sql)).all()
    finally:
        engine.dispose()


def _wait_rows(node, sql, check, timeout=40.0):
    deadline = time.monotonic() + timeout
    while True:
        rows = _rows(node, sql)
        if check(rows):
            return rows
        assert time.monotonic() < deadline, rows
        time.sleep(0.3)


@pytest.mark.timeout(240)
def test_a_waiting_callback_survives_a_restart_and_is_called_back(start_node, tmp_path):
    queues = {code: q.model_dump(mode="json") for code, q in load_settings(
        environ={}).queues.items()}
    queues["general"].update(overflow="callback", overflow_when_unstaffed=True)
    trunk = Ua("trunk", "--wav", str(make_tone(tmp_path / "c.wav", 1000)),
               "--hangup-after", "5")
    lawyer = Ua("8001", "--wav", str(make_tone(tmp_path / "l.wav", 600)))
    try:
        node = start_node(1, legs_per_call=4, telephony_queue_wait=60,
                          trunk_enabled="true",
                          trunk_registrar=f"sip:127.0.0.1:{trunk.port}",
                          queues=json.dumps(queues, ensure_ascii=False))
        caller = subprocess.Popen(
            [sys.executable, str(CALLER), "--target", node["uri"], "--wav",
             str(make_tone(tmp_path / "x.wav", 1000)), "--dtmf", "0:1.0", "--hold", "60",
             "--timeout", "90", "--result", str(tmp_path / "caller.json")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "caller.log").open("wb"))
        assert caller.wait(60) == 0  # told "we will call you back", then hung up
        [(number, status)] = _wait_rows(
            node, "select number, status from callback_requests", lambda r: len(r) == 1)
        assert (number, status) == ("13800138000", "pending")

        node["proc"].send_signal(signal.SIGTERM)  # the node restarts with it waiting
        node["proc"].wait(60)
        start_node.again(node)
        add = subprocess.run(
            [sys.executable, "-m", "hotline", "users", "add", "8001", "--name", "王律师",
             "--role", "lawyer", "--skill", "general:4", "--sip-uri", lawyer.uri],
            input=PASSWORD + "\n", text=True, capture_output=True, cwd=node["dir"],
            env=node["env"])
        assert add.returncode == 0, add.stderr
        api = f"http://127.0.0.1:{node['api']}/api/v1"
        token = httpx.post(f"{api}/login", json={"work_id": "8001",
                                                 "password": PASSWORD}).json()["token"]
        httpx.post(f"{api}/agent/login", json={},
                   headers={"Authorization": f"Bearer {token}"})
        lawyer.wait("incoming", timeout=20)  # the lawyer first...
        trunk.wait("incoming", timeout=20)  # ...then the caller's number, via the trunk
        _wait_rows(node, "select status from callback_requests",
                   lambda r: r == [("done",)], timeout=30)
        rows = _wait_rows(
            node, "select c.end_reason, c.answered_at, r.sha256, r.duration_s from calls c "
                  "join recordings r on r.call_id = c.id where c.outbound",
            lambda r: len(r) == 1 and r[0][0] and r[0][2], timeout=30)
    finally:
        close_all(trunk, lawyer)
    [(reason, answered_at, sha, seconds)] = rows
    assert answered_at is not None and sha and seconds > 3
    assert reason in ("caller_hangup", "lawyer_hangup")
    [(kind, lawyer_id)] = _rows(node, "select t.kind, t.lawyer_id from tickets t join calls c "
                                      "on c.id = t.call_id where c.outbound")
    assert kind == "callback" and lawyer_id is not None
    log = (node["dir"] / "serve.log").read_text()
    assert "恢复了 1 个等待回拨的请求" in log
