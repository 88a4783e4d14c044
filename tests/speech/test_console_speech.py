"""The lawyer's console and speech, with Textual's Pilot against a real `hotline serve`:
live captions of a real call (real Vosk, Korean test speech) appear on the desk as both
sides speak; the wrap-up form opens pre-filled from the transcript's draft (Chinese text
through the real pipeline), with personal numbers masked; urgency alerts are shown.
"""

import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update
from textual.widgets import Input, RichLog, TextArea

from agent_console.app import ConsoleApp, DeskScreen, WrapUpScreen
from hotline.domain import EndReason
from hotline.speech.text.pipeline import TextPipeline
from hotline.store import transcripts
from hotline.store.calls import close_call, open_call
from hotline.store.engine import make_engine, make_session_factory
from hotline.store.session import session_scope
from hotline.store.tables import Ticket, User

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "telephony"))
from audio import CALLER_SENTENCES, KO_MODEL, LAWYER_SENTENCES, speech_wav  # noqa: E402
from phones import Ua, close_all  # noqa: E402

CALLER = Path(__file__).parents[1] / "telephony" / "sip_caller.py"
PASSWORD = "correct-horse-1"


def _add_lawyer(node, work_id, phone):
    done = subprocess.run(
        [sys.executable, "-m", "hotline", "users", "add", work_id, "--name", f"用户{work_id}",
         "--role", "lawyer", "--skill", "general:4", "--sip-uri", phone],
        input=PASSWORD + "\n", text=True, capture_output=True, cwd=node["dir"], env=node["env"])
    assert done.returncode == 0, done.stderr


async def _until(pilot, check, timeout=30.0, what=""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def _login(pilot, app):
    await pilot.pause()
    app.screen.query_one("#password", Input).value = PASSWORD
    await pilot.press("enter")
    await _until(pilot, lambda: isinstance(app.screen, DeskScreen), 15, "desk")


def _lines(log: RichLog) -> list[str]:
    return [strip.text for strip in log.lines]


@pytest.mark.timeout(300)
async def test_live_captions_reach_the_lawyers_desk(start_node, tmp_path):
    caller_wav = speech_wav(tmp_path / "caller.wav", CALLER_SENTENCES)
    lawyer_wav = speech_wav(tmp_path / "lawyer.wav", LAWYER_SENTENCES, gap=1.5)
    phone = Ua("8001", "--wav", str(lawyer_wav))
    caller = None
    try:
        node = start_node(1, legs_per_call=4, telephony_queue_wait=60,
                          speech_live_model=str(KO_MODEL), speech_max_live_streams=4)
        _add_lawyer(node, "8001", phone.uri)
        app = ConsoleApp(f"http://127.0.0.1:{node['api']}", "8001",
                         state_dir=tmp_path / "console")
        async with app.run_test(size=(140, 50)) as pilot:
            await _login(pilot, app)
            desk = app.screen
            await _until(pilot, lambda: (desk.agent or {}).get("status") == "available", 15,
                         "signed in")
            caller = subprocess.Popen(
                [sys.executable, str(CALLER), "--target", node["uri"], "--wav",
                 str(caller_wav), "--dtmf", "0:1.0", "--hold", "22", "--timeout", "60",
                 "--result", str(tmp_path / "c.json")], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=(tmp_path / "c.log").open("wb"))
            captions = desk.query_one("#captions", RichLog)
            await _until(pilot, lambda: "转写中" in str(captions.border_title), 60,
                         "captions on")
            await _until(pilot, lambda: any("[来电人" in line for line in _lines(captions))
                         and any("[律师" in line for line in _lines(captions)), 90,
                         "captions of both speakers")
            await _until(pilot, lambda: isinstance(app.screen, WrapUpScreen), 60, "wrap-up")
            await _until(pilot, lambda: bool(app.suggestions), 60, "the transcript's draft")
            assert caller.wait(30) == 0
            said = [line for line in _lines(captions) if line.startswith("[")]
            # in order of time per speaker: [来电人 00:03] ...
            for who in ("来电人", "律师"):
                times = [line.split(" ", 1)[1].split("]")[0] for line in said if who in line]
                assert times == sorted(times), said
    finally:
        if caller is not None and caller.poll() is None:
            caller.kill()
        close_all(phone)


CHINESE = [
    ("caller", 1.0, 4.0, "我 在 工地 干 了 三 个 月 老板 欠 我 三千五百 块 钱 不 给"),
    ("lawyer", 4.5, 6.0, "您 可以 去 劳动 监察 大队 投诉"),
    ("caller", 6.5, 9.0, "我的 电话 是 幺 三 八 零 零 一 三 八 零 零 零"),
]


@pytest.mark.timeout(180)
async def test_wrap_up_opens_prefilled_from_the_transcript(start_node, tmp_path):
    node = start_node(1, telephony_enabled="false")
    _add_lawyer(node, "8001", "sip:8001@127.0.0.1:5999")
    engine = make_engine(f"sqlite:///{node['db']}")
    pipeline = TextPipeline.from_files(None, None)
    factory = make_session_factory(engine)
    now = datetime.now(UTC)
    with session_scope(factory) as s:
        opened = open_call(s, sip_call_id="c1", line="12348", caller_number="13800138000",
                           flow="main", worker="w1", at=now, local_day=date.today())
        lawyer_id = s.scalar(select(User.id).where(User.work_id == "8001"))
        s.execute(update(Ticket).where(Ticket.id == opened.ticket_id).values(
            lawyer_id=lawyer_id))
        close_call(s, opened.call_id, at=now, reason=EndReason.CALLER_HANGUP,
                   ivr_vars={}, ivr_path=[], data={})
        # As the speech service stores them: the pipeline's text, masked.
        for speaker, start, end, raw in CHINESE:
            done = pipeline.process(raw)
            transcripts.add_segment(s, opened.call_id, speaker, start, end, done.text,
                                    done.original_masked, 0.9, source="live", model="m")
        transcripts.refresh_draft(s, opened.call_id, pipeline)
        ticket_no = opened.ticket_no
    engine.dispose()
    app = ConsoleApp(f"http://127.0.0.1:{node['api']}", "8001", state_dir=tmp_path / "c")
    async with app.run_test(size=(140, 50)) as pilot:
        await _login(pilot, app)
        desk = app.screen
        desk.open_wrapup(ticket_no)
        await _until(pilot, lambda: isinstance(app.screen, WrapUpScreen), 10, "wrap-up")
        form = app.screen
        await _until(pilot, lambda: form.category == "labor", 15, "suggested category")
        summary = form.query_one("#summary", TextArea).text
        assert "3500元" in summary
        assert "13800138000" not in summary and "一三八" not in summary
        assert "核对" in str(form.query_one("#wrap_errors").content)
        # The lawyer edits and confirms: their own text wins, and stays a local draft.
        form.query_one("#summary", TextArea).text = "农民工讨薪, 欠薪3500元"
        await pilot.pause(0.2)
        assert app.drafts.load(ticket_no)["summary"] == "农民工讨薪, 欠薪3500元"

        await pilot.press("escape")
        await _until(pilot, lambda: isinstance(app.screen, DeskScreen), 10, "desk again")
        desk.speech_event("urgent", {"type": "urgent", "call": "k", "ticket_no": ticket_no,
                                     "flags": ["self_harm"], "transfers": ["110", "120"],
                                     "text": "我不想活了"})
        await pilot.pause(0.2)
        shown = " ".join(_lines(desk.query_one("#captions", RichLog)))
        assert "自伤" in shown and "110/120" in shown
