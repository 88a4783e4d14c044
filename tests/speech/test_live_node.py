"""Live transcription on a real node: `hotline serve` starts the speech service with the real
Vosk model (Korean: the only one reachable here), a pjsua2 caller speaks (espeak-ng) to a
lawyer whose pjsua2 phone speaks back; the lawyer's event stream gets captions in order,
both speakers' segments are stored with times inside the recording, the ticket gets its
draft; `hotline transcribe` then produces the same structure from the recording. More
calls than K at once: the extra call goes to batch and the event loop stays responsive.
"""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "telephony"))
from audio import CALLER_SENTENCES, KO_MODEL, LAWYER_SENTENCES, speech_wav  # noqa: E402
from phones import Ua, close_all  # noqa: E402

CALLER = Path(__file__).parents[1] / "telephony" / "sip_caller.py"
PASSWORD = "correct-horse-1"


def _rows(node, sql, **params):
    engine = create_engine(f"sqlite:///{node['db']}")
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).all()
    finally:
        engine.dispose()


def _wait_rows(node, sql, check, timeout=60.0, **params):
    deadline = time.monotonic() + timeout
    while True:
        rows = _rows(node, sql, **params)
        if check(rows):
            return rows
        assert time.monotonic() < deadline, rows
        time.sleep(0.3)


def _hotline(node, *args, stdin=""):
    return subprocess.run([sys.executable, "-m", "hotline", *args], input=stdin, text=True,
                          capture_output=True, cwd=node["dir"], env=node["env"], timeout=300)


def _lawyer(node, work_id, phone):
    add = _hotline(node, "users", "add", work_id, "--name", "王律师", "--role", "lawyer",
                   "--skill", "general:4", "--sip-uri", phone, stdin=PASSWORD + "\n")
    assert add.returncode == 0, add.stderr
    api = f"http://127.0.0.1:{node['api']}/api/v1"
    token = httpx.post(f"{api}/login", json={"work_id": work_id,
                                             "password": PASSWORD}).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.post(f"{api}/agent/login", json={}, headers=auth).status_code == 200
    return api, token, auth


class Events:
    """A lawyer's WebSocket event stream, collected on a thread."""

    def __init__(self, node, token):
        self.ws = connect(f"ws://127.0.0.1:{node['api']}/api/v1/events?token={token}")
        self.events = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for raw in self.ws:
                self.events.append(json.loads(raw))
        except Exception:  # noqa: BLE001 - closed at the end of the test
            pass

    def of(self, kind, **match):
        return [e for e in self.events if e.get("type") == kind
                and all(e.get(k) == v for k, v in match.items())]

    def wait(self, kind, timeout=60.0, **match):
        deadline = time.monotonic() + timeout
        while not self.of(kind, **match):
            assert time.monotonic() < deadline, (kind, match, self.events[-20:])
            time.sleep(0.1)
        return self.of(kind, **match)


def _call(tmp, node, name, wav, hold):
    return subprocess.Popen(
        [sys.executable, str(CALLER), "--target", node["uri"], "--wav", str(wav), "--dtmf",
         "0:1.0", "--hold", str(hold), "--timeout", str(hold + 40), "--result",
         str(tmp / f"{name}.json")], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=(tmp / f"{name}.log").open("wb"))


@pytest.mark.timeout(300)
def test_live_captions_segments_draft_and_batch_on_a_real_node(start_node, tmp_path):
    caller_wav = speech_wav(tmp_path / "caller.wav", CALLER_SENTENCES)
    lawyer_wav = speech_wav(tmp_path / "lawyer.wav", LAWYER_SENTENCES, gap=1.5)
    phone = Ua("8001", "--wav", str(lawyer_wav))
    try:
        node = start_node(1, legs_per_call=4, telephony_queue_wait=60,
                          speech_live_model=str(KO_MODEL), speech_batch_model=str(KO_MODEL),
                          speech_max_live_streams=4)
        log = (node["dir"] / "serve.log").read_text()
        assert "语音服务已启动" in log, log
        deadline = time.monotonic() + 60
        while "已连接语音服务" not in (node["dir"] / "serve.log").read_text():
            assert time.monotonic() < deadline, (node["dir"] / "serve.log").read_text()
            time.sleep(0.2)
        api, token, auth = _lawyer(node, "8001", phone.uri)
        events = Events(node, token)
        caller = _call(tmp_path, node, "caller", caller_wav, hold=24)
        events.wait("captions", on=True, timeout=40)
        events.wait("caption", final=True, speaker="caller", timeout=60)
        events.wait("caption", final=True, speaker="lawyer", timeout=60)
        assert caller.wait(60) == 0
        [[call_id, ticket_no]] = _wait_rows(
            node, "select c.id, t.ticket_no from calls c join tickets t on t.call_id = c.id "
                  "join recordings r on r.call_id = c.id where r.sha256 is not null",
            lambda r: len(r) == 1)
        [draft_event] = events.wait("draft", timeout=60)
    finally:
        close_all(phone)
    events.ws.close()
    assert draft_event["ticket_no"] == ticket_no and isinstance(draft_event["draft"], dict)
    captions = [e for e in events.events if e.get("type") == "caption"]
    for speaker in ("caller", "lawyer"):
        mine = [e for e in captions if e["speaker"] == speaker]
        finals = [e for e in mine if e["final"]]
        # a partial of an utterance comes before its final
        assert mine.index(next(e for e in mine if not e["final"])) < mine.index(finals[0])
        for a, b in zip(finals, finals[1:], strict=False):
            assert a["start"] < a["end"] <= b["start"] + 0.01
    segments = _rows(node, "select speaker, start_s, end_s, text, text_original, source, "
                           "model, recording_id from transcript_segments where call_id = :c "
                           "order by start_s", c=call_id)
    finals = [e for e in captions if e["final"]]
    assert len(segments) == len(finals)
    assert {s[0] for s in segments} == {"caller", "lawyer"}
    [[seconds, state]] = _rows(node, "select r.duration_s, c.transcript_state from "
                                     "recordings r join calls c on c.id = r.call_id")
    assert state == "live"
    assert all(0 <= s[1] < s[2] <= seconds + 1.0 for s in segments), (segments, seconds)
    assert {s[5] for s in segments} == {"live"} and all(s[7] for s in segments)
    kinds = [r[0] for r in _rows(node, "select kind from call_events where call_id = :c",
                                 c=call_id)]
    assert "transcription" in kinds
    # The lawyer reads the transcript and draft of their ticket; the access is audited.
    body = httpx.get(f"{api}/tickets/{ticket_no}/transcript", headers=auth).json()
    assert [s["text"] for s in body["segments"]] == [s[3] for s in segments]
    assert body["state"] == "live" and isinstance(body["draft"], dict)
    assert _rows(node, "select count(*) from audit_log where action = 'transcript_read'") == \
        [(1,)]

    # Batch: the same call from its recording, both channels, replacing the live segments.
    done = _hotline(node, "transcribe", str(call_id), "--model", str(KO_MODEL), "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    batch = _rows(node, "select speaker, start_s, end_s, source from transcript_segments "
                        "where call_id = :c order by start_s", c=call_id)
    assert {s[0] for s in batch} == {"caller", "lawyer"}
    assert {s[3] for s in batch} == {"batch"}
    assert all(0 <= s[1] < s[2] <= seconds + 1.0 for s in batch)
    assert _rows(node, "select transcript_state from calls") == [("batch",)]
    again = _hotline(node, "transcribe", str(call_id), "--model", str(KO_MODEL), "--quiet")
    assert again.returncode == 0
    assert _rows(node, "select speaker, start_s, end_s, source from transcript_segments "
                       "where call_id = :c order by start_s", c=call_id) == batch  # idempotent
    nothing = _hotline(node, "transcribe", "--pending", "--model", str(KO_MODEL))
    assert nothing.returncode == 0 and "没有需要转写的通话" in nothing.stdout
