"""Shift edges in a running `hotline serve`: a lawyer logged in early becomes eligible at
their shift's start (not before), the outgoing lawyer is signed out, a restart mid-shift
keeps the duty, and the end of the shift signs the lawyer out."""

import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from hotline.roster.model import Assignment, Need, Slot, Solution
from hotline.store import roster as store
from hotline.store.engine import make_engine, make_session_factory
from hotline.store.session import session_scope

PASSWORD = "Shift-edge-2026!"
SH = ZoneInfo("Asia/Shanghai")


def _add_user(node, work_id, role):
    args = [sys.executable, "-m", "hotline", "users", "add", work_id, "--name",
            f"用户{work_id}", "--role", role]
    if role == "lawyer":
        args += ["--skill", "general:4", "--sip-uri", f"sip:{work_id}@127.0.0.1:5999"]
    done = subprocess.run(args, input=PASSWORD + "\n", text=True, capture_output=True,
                          cwd=node["dir"], env=node["env"])
    assert done.returncode == 0, done.stderr


def _slot(code, start, end):
    return Slot(start.date(), "main", code, f"班次{code}", start, end, Need(1))


def _seed(node, shifts):
    """Store ``shifts`` [(code, start, end, work_id)] as the month's draft."""
    engine = make_engine(f"sqlite:///{node['db']}")
    try:
        slots = [_slot(code, start, end) for code, start, end, _ in shifts]
        pairs = zip(slots, shifts, strict=True)
        solution = Solution(tuple(Assignment(s.id, w) for s, (*_, w) in pairs),
                            "feasible", 0, 0, 0)
        with session_scope(make_session_factory(engine)) as session:
            store.save_draft(session, f"{slots[0].date:%Y-%m}", slots, solution, need={},
                             by=None)
    finally:
        engine.dispose()
    return f"{slots[0].date:%Y-%m}"


class Api:
    def __init__(self, node, work_id):
        self.base = f"http://127.0.0.1:{node['api']}"
        self.work_id = work_id
        self.login()

    def login(self):
        reply = httpx.post(f"{self.base}/api/v1/login",
                           json={"work_id": self.work_id, "password": PASSWORD})
        assert reply.status_code == 200, reply.text
        self.headers = {"authorization": f"Bearer {reply.json()['token']}"}

    def __call__(self, method, path, body=None):
        reply = httpx.request(method, f"{self.base}/api/v1{path}", json=body,
                              headers=self.headers, timeout=30)
        assert reply.status_code == 200, reply.text
        return reply.json()


def _wait_until(moment, slack=1.5):
    time.sleep(max(0.0, (moment - datetime.now(SH)).total_seconds() + slack))


@pytest.mark.timeout(180)
def test_lawyers_become_eligible_at_their_shift_edges(start_node):
    node = start_node(workers=1, legs_per_call=2)
    for work_id, role in (("8001", "lawyer"), ("8002", "lawyer"), ("7001", "scheduler")):
        _add_user(node, work_id, role)
    t0 = datetime.now(SH).replace(microsecond=0)
    edge, end = t0 + timedelta(seconds=10), t0 + timedelta(seconds=32)
    month = _seed(node, [("B", t0 - timedelta(minutes=5), edge, "8002"),
                         ("A", edge, end, "8001")])
    scheduler, early, outgoing = Api(node, "7001"), Api(node, "8001"), Api(node, "8002")
    assert scheduler("POST", "/roster/publish", {"month": month})["published"]
    for lawyer in (early, outgoing):
        lawyer("POST", "/agent/login", {"phone": f"sip:{lawyer.work_id}@127.0.0.1:5999"})

    # Before the edge: the outgoing lawyer is on duty, the early one waits without offers.
    assert outgoing("GET", "/agent")["on_duty"] is True
    me = early("GET", "/agent")
    assert (me["status"], me["on_duty"]) == ("available", False)
    mine = early("GET", "/roster/mine")
    assert mine["duty"]["in_force"] and not mine["duty"]["on_duty"]
    assert [s["code"] for s in mine["shifts"]] == ["A"]
    assert datetime.now(SH) < edge, "the node took too long to start for this test"

    _wait_until(edge)
    assert early("GET", "/agent")["on_duty"] is True  # eligible at the shift's start
    assert outgoing("GET", "/agent")["status"] == "logged_out"  # idle: signed out at once

    # A restart mid-shift: the node recomputes duty from the ledger.
    node["proc"].send_signal(signal.SIGKILL)
    node["proc"].wait(10)
    start_node.again(node)
    early.login()
    early("POST", "/agent/login", {"phone": "sip:8001@127.0.0.1:5999"})
    me = early("GET", "/agent")
    assert (me["status"], me["on_duty"]) == ("available", True)
    assert datetime.now(SH) < end, "the restart took too long for this test"

    _wait_until(end)
    assert early("GET", "/agent")["status"] == "logged_out"  # the shift is over
    log = (node["dir"] / "serve.log").read_text(encoding="utf-8")
    assert "8001 开始值班" in log and "值班结束" in log
