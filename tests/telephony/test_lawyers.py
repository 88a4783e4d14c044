"""Lawyers on the real node: a queued caller is bridged to a duty lawyer's phone through the
front, with baresip and pjsua2 as the lawyers' phones; a bridged conversation outlives a
killed coordinator and is closed properly by the next one.
"""

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parent))
from baresip import Baresip  # noqa: E402
from phones import Ua, close_all, make_tone, read_channels, tones  # noqa: E402

CALLER = Path(__file__).with_name("sip_caller.py")
CALLER_HZ, LAWYER_HZ = 1000, 600


def _db(node):
    return create_engine(f"sqlite:///{node['db']}")


def _rows(node, sql, **params):
    engine = _db(node)
    try:
        with engine.connect() as c:
            return c.execute(text(sql), params).all()
    finally:
        engine.dispose()


def _wait_event(node, kind, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _rows(node, "select call_id, at from call_events where kind = :k", k=kind)
        if rows:
            return rows
        time.sleep(0.2)
    raise AssertionError(f"no {kind} event in {timeout}s")


def _wait_closed(node, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _rows(node, "select c.id, c.end_reason, r.sha256, r.duration_s, r.path "
                           "from calls c left join recordings r on r.call_id = c.id")
        if rows and all(r[1] for r in rows) and all(r[2] for r in rows):
            return rows
        time.sleep(0.2)
    raise AssertionError(f"calls not closed: {rows}")


def _caller(tmp, uri, name, *, hold, dtmf="0:1.0"):
    tone = make_tone(tmp / f"{name}-tone.wav", CALLER_HZ)
    result = tmp / f"{name}.json"
    proc = subprocess.Popen(
        [sys.executable, str(CALLER), "--target", uri, "--wav", str(tone), "--dtmf", dtmf,
         "--hold", str(hold), "--timeout", str(hold + 30), "--result", str(result)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=(tmp / f"{name}.log").open("wb"))
    return proc, result


@pytest.mark.timeout(120)
def test_queued_caller_talks_to_a_baresip_lawyer_who_hangs_up(start_node, tmp_path,
                                                               port_block):
    tone = make_tone(tmp_path / "lawyer.wav", LAWYER_HZ)
    sip, ctrl, rtp = port_block(2), port_block(1), port_block(20)
    lawyer = Baresip(tmp_path / "lawyer", sip_port=sip, ctrl_port=ctrl,
                     rtp_ports=(rtp, rtp + 19), source=tone, dump_dir=tmp_path / "heard",
                     user="8001", lifetime=100, auto_answer=True).start()
    try:
        node = start_node(1, legs_per_call=4, telephony_queue_wait=60,
                          telephony_lawyer_uris=f'["sip:8001@127.0.0.1:{sip}"]')
        proc, result = _caller(tmp_path, node["uri"], "caller", hold=30)
        _wait_event(node, "agent_answered")
        time.sleep(4.0)
        lawyer.hangup()
        rows = _wait_closed(node, timeout=40)
        proc.wait(40)
    finally:
        lawyer.close()
    [(call_id, reason, sha, seconds, path)] = rows
    assert reason == "lawyer_hangup"
    kinds = [r[0] for r in _rows(node, "select kind from call_events where call_id = :c "
                                       "order by seq", c=call_id)]
    for kind in ("enqueued", "offer", "agent_answered", "leg_ended", "ended"):
        assert kind in kinds, kinds
    (answered_at,) = _rows(node, "select agent_answered_at from calls")[0]
    assert answered_at is not None
    left, right = read_channels(Path(path))
    talk = [r[1] for r in _rows(node, "select kind, at from call_events where call_id = :c "
                                      "and kind in ('answered', 'agent_answered') "
                                      "order by seq", c=call_id)]
    offset = (datetime.fromisoformat(str(talk[1])) - datetime.fromisoformat(str(talk[0]))
              ).total_seconds()
    assert tones(right, offset + 0.5, offset + 3.0, (CALLER_HZ, LAWYER_HZ)) == {LAWYER_HZ}
    assert tones(left, offset + 0.5, offset + 3.0, (CALLER_HZ, LAWYER_HZ)) == {CALLER_HZ}
    heard = list((tmp_path / "heard").glob("*dec*.wav")) or list(
        (tmp_path / "heard").glob("*.wav"))
    assert any(CALLER_HZ in tones(read_channels(f)[0], 1.0, 3.0, (CALLER_HZ,))
               for f in heard), heard


@pytest.mark.timeout(180)
def test_bridged_call_survives_a_killed_coordinator(start_node, tmp_path):
    lawyer = Ua("8002", "--wav", str(make_tone(tmp_path / "l.wav", LAWYER_HZ)))
    try:
        node = start_node(2, legs_per_call=4, telephony_queue_wait=60,
                          telephony_lawyer_uris=f'["{lawyer.uri}"]')
        talking, talking_result = _caller(tmp_path, node["uri"], "talking", hold=25)
        _wait_event(node, "agent_answered")
        # A second caller still in the IVR (no 0 pressed) when the coordinator dies.
        ivr, ivr_result = _caller(tmp_path, node["uri"], "ivr", hold=60, dtmf="")
        deadline = time.monotonic() + 20
        while len(_rows(node, "select id from calls where answered_at is not null")) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(1.0)
        node["proc"].kill()  # SIGKILL: no clean-up at all
        node["proc"].wait(10)
        # The IVR caller is told and hung up by its worker; the conversation goes on.
        assert ivr.wait(30) == 0
        time.sleep(2.0)
        assert talking.poll() is None
        start_node.again(node)
        assert talking.wait(40) == 0  # hangs up after 25 s as planned
        rows = _wait_closed(node, timeout=30)
    finally:
        close_all(lawyer)
    reasons = sorted(r[1] for r in rows)
    assert reasons == ["caller_hangup", "system_restart"], rows
    for _, reason, sha, seconds, path in rows:
        assert sha and Path(path).exists()
        if reason == "caller_hangup":
            assert seconds > 20  # the whole conversation, across the restart
    notes = _rows(node, "select data from call_events where kind = 'ivr_note' "
                        "and data like '%adopted%'")
    assert len(notes) == 1  # the IVR call's worker told its caller and stopped
    log = (node["dir"] / "serve.log").read_text()
    assert "接管了上次运行中仍在通话的" in log


@pytest.mark.timeout(150)
def test_a_lawyer_signs_in_over_the_api_takes_the_call_and_holds_it(start_node, tmp_path):
    phone = Ua("8001", "--wav", str(make_tone(tmp_path / "l.wav", LAWYER_HZ)))
    try:
        node = start_node(1, legs_per_call=4, telephony_queue_wait=60)
        add = subprocess.run(
            [sys.executable, "-m", "hotline", "users", "add", "8001", "--name", "王律师",
             "--role", "lawyer", "--skill", "general:4", "--sip-uri", phone.uri],
            input="correct-horse-1\n", text=True, capture_output=True, cwd=node["dir"],
            env=node["env"])
        assert add.returncode == 0, add.stderr
        api = f"http://127.0.0.1:{node['api']}/api/v1"
        token = httpx.post(f"{api}/login", json={"work_id": "8001",
                                                 "password": "correct-horse-1"}).json()
        auth = {"Authorization": f"Bearer {token['token']}"}
        desk = httpx.post(f"{api}/agent/login", json={}, headers=auth).json()
        assert desk["status"] == "available"
        caller, result = _caller(tmp_path, node["uri"], "caller", hold=20)
        _wait_event(node, "agent_answered")
        [mine] = httpx.get(f"{api}/calls/mine", headers=auth).json()
        assert mine["state"] == "talking"
        time.sleep(2.0)
        held = httpx.post(f"{api}/calls/{mine['call']}/hold", headers=auth)
        assert held.status_code == 200 and held.json()["state"] == "held"
        time.sleep(2.5)
        assert httpx.post(f"{api}/calls/{mine['call']}/unhold",
                          headers=auth).status_code == 200
        time.sleep(2.0)
        hung = httpx.post(f"{api}/calls/{mine['call']}/hangup", headers=auth)
        assert hung.status_code == 200
        rows = _wait_closed(node, timeout=30)
        assert caller.wait(30) == 0
        state = httpx.get(f"{api}/agent", headers=auth).json()
        assert state["calls"] == 1 and state["state"] in ("wrap_up", "idle")
    finally:
        close_all(phone)
    [(call_id, reason, sha, seconds, path)] = rows
    assert reason == "lawyer_hangup"
    kinds = [r[0] for r in _rows(node, "select kind from call_events where call_id = :c "
                                       "order by seq", c=call_id)]
    assert {"offer", "agent_answered", "hold", "unhold"} <= set(kinds), kinds
    hold_at = [datetime.fromisoformat(str(r[0])) for r in _rows(
        node, "select at from call_events where call_id = :c and kind in "
              "('answered', 'hold', 'unhold') order by seq", c=call_id)]
    left, right = read_channels(Path(path))
    start = (hold_at[1] - hold_at[0]).total_seconds()
    end = (hold_at[2] - hold_at[0]).total_seconds()
    assert LAWYER_HZ not in tones(right, start + 0.5, end - 0.3, (LAWYER_HZ,))  # on hold
    assert LAWYER_HZ in tones(right, end + 0.5, end + 1.5, (LAWYER_HZ,))  # back
