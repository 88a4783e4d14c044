"""The Textual console driven by Pilot against a real ``hotline serve`` on loopback: a lawyer
logs in, accepts a real caller in the console (their phone is then dialled and answers),
holds, transfers attended to a colleague through the transfer dialog; the colleague's
console hangs up, the wrap-up form refuses an incomplete ticket, keeps a draft, and closes
the ticket with every field; the console notices the server going away and coming back.
"""

import asyncio
import io
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parent))
from phones import Ua, close_all, make_tone  # noqa: E402
from textual.widgets import Input, Select, Static, TextArea, Tree

from agent_console.app import ConsoleApp, DeskScreen, WallboardScreen, WrapUpScreen
from agent_console.roster_view import SchedulerScreen

CALLER = Path(__file__).with_name("sip_caller.py")
PASSWORD = "correct-horse-1"


def _rows(node, sql, **params):
    engine = create_engine(f"sqlite:///{node['db']}")
    try:
        with engine.connect() as c:
            return c.execute(text(sql), params).all()
    finally:
        engine.dispose()


def _add_user(node, work_id, role, phone=""):
    args = [sys.executable, "-m", "hotline", "users", "add", work_id, "--name",
            f"用户{work_id}", "--role", role]
    if role == "lawyer":
        args += ["--skill", "general:4", "--skill", "labor:4", "--sip-uri", phone]
    done = subprocess.run(args, input=PASSWORD + "\n", text=True, capture_output=True,
                          cwd=node["dir"], env=node["env"])
    assert done.returncode == 0, done.stderr


# The main flow by DTMF: after the recording notice (no barge-in) 1 = 普通话, 1 = 劳动争议,
# 1 = 农民工讨薪 (green channel) → the labor queue; presses that land during the notice or in
# the queue are ignored, so a steady series walks the menus whatever the prompts' lengths.
CATEGORY_DTMF = ",".join(f"1:{t}" for t in range(24, 60, 3))


def _caller(tmp, uri, hold, dtmf="0:1.0"):
    tone = make_tone(tmp / "caller.wav", 1000)
    return subprocess.Popen(
        [sys.executable, str(CALLER), "--target", uri, "--wav", str(tone), "--dtmf", dtmf,
         "--hold", str(hold), "--timeout", str(hold + 30), "--result", str(tmp / "c.json")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=(tmp / "caller.log").open("wb"))


async def _until(pilot, check, timeout=30.0, what=""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def _login(pilot, app, password=PASSWORD):
    await pilot.pause()
    app.screen.query_one("#password", Input).value = password
    await pilot.press("enter")


def _text(screen, selector):
    """What a Static shows, as plain text (Rich renderables rendered)."""
    content = screen.query_one(selector, Static).content
    if isinstance(content, str):
        return content
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(content)
    return console.export_text()


@pytest.mark.timeout(300)
async def test_lawyer_takes_transfers_and_a_colleague_closes_the_ticket(start_node, tmp_path):
    phone1 = Ua("8001", "--wav", str(make_tone(tmp_path / "l1.wav", 600)))
    phone2 = Ua("8002", "--wav", str(make_tone(tmp_path / "l2.wav", 800)))
    caller = None
    try:
        node = start_node(1, legs_per_call=4, telephony_queue_wait=120)
        _add_user(node, "8001", "lawyer", phone1.uri)
        _add_user(node, "8002", "lawyer", phone2.uri)
        server = f"http://127.0.0.1:{node['api']}"
        # The colleague is on duty with a phone that rings (and answers) at once.
        async with httpx.AsyncClient(base_url=f"{server}/api/v1") as http:
            token = (await http.post("/login", json={"work_id": "8002",
                                                     "password": PASSWORD})).json()["token"]
            colleague = {"Authorization": f"Bearer {token}"}
            await http.post("/agent/login", json={}, headers=colleague)
            await http.post("/agent/status", json={"status": "on_break", "reason": "会议"},
                            headers=colleague)

        app = ConsoleApp(server, "8001", accept_in_console=True, state_dir=tmp_path / "s1")
        async with app.run_test(size=(140, 48)) as pilot:
            await _login(pilot, app, "wrong-password")
            await _until(pilot, lambda: "密码" in _text(app.screen, "#login_error")
                         or "工号" in _text(app.screen, "#login_error"), 10, "login error")
            await _login(pilot, app)
            await _until(pilot, lambda: isinstance(app.screen, DeskScreen), 10, "desk")
            desk = app.screen
            await _until(pilot, lambda: (desk.agent or {}).get("status") == "available", 10,
                         "signed in")
            assert "示闲" in _text(desk, "#status")

            caller = _caller(tmp_path, node["uri"], hold=150, dtmf=CATEGORY_DTMF)
            await _until(pilot, lambda: "按 A 接听" in _text(desk, "#card"), 100, "offer card")
            card = _text(desk, "#card")
            assert "按 A 接听" in card and "****" in card  # masked caller number
            assert "劳动争议" in card and "绿色通道 (农民工讨薪" in card  # chosen by DTMF
            assert not phone1.drain()  # the phone is not rung before the lawyer accepts
            await pilot.press("a")
            phone1.wait("incoming", timeout=15)
            await _until(pilot, lambda: (desk.call or {}).get("state") == "talking", 20,
                         "talking")
            assert desk.offer is None
            await pilot.press("h")
            await _until(pilot, lambda: (desk.call or {}).get("state") == "held", 10, "held")
            await pilot.press("h")
            await _until(pilot, lambda: (desk.call or {}).get("state") == "talking", 10,
                         "unheld")

            # The transfer dialog checks its input; the colleague is on a break at first.
            await pilot.press("t")
            await pilot.pause()
            dialog = app.screen
            await pilot.press("enter")
            assert "请填写" in _text(dialog, "#transfer_error")
            dialog.query_one("#to", Input).value = "8002"
            dialog.query_one("#attended").value = True
            await pilot.click("#go")
            await _until(pilot, lambda: app.screen is desk, 5, "dialog closed")
            await _until(pilot, lambda: "未签入或正忙" in str(
                [str(line) for line in desk.query_one("#log").lines]), 10, "busy refusal")
            assert (desk.call or {}).get("state") == "talking"  # nothing changed
            async with httpx.AsyncClient(base_url=f"{server}/api/v1") as http:
                await http.post("/agent/status", json={"status": "available"},
                                headers=colleague)
            await pilot.press("t")
            await pilot.pause()
            app.screen.query_one("#to", Input).value = "8002"
            app.screen.query_one("#attended").value = True
            await pilot.click("#go")
            phone2.wait("incoming", timeout=15)
            await _until(pilot, lambda: (desk.call or {}).get("state") == "consulting", 20,
                         "consulting")
            await pilot.press("o")  # complete: the caller now talks to 8002
            await _until(pilot, lambda: desk.call is None, 20, "handed over")
            phone1.wait("ended", timeout=10)
            assert not isinstance(app.screen, WrapUpScreen)  # 8002 closes the ticket
            await pilot.press("ctrl+q")

        # The colleague's console: the call is theirs now; they hang up and wrap up.
        app2 = ConsoleApp(server, "8002", state_dir=tmp_path / "s2")
        async with app2.run_test(size=(140, 60)) as pilot:
            await _login(pilot, app2)
            await _until(pilot, lambda: isinstance(app2.screen, DeskScreen), 10, "desk 2")
            desk2 = app2.screen
            await _until(pilot, lambda: (desk2.call or {}).get("state") == "talking", 10,
                         "colleague talking")
            await pilot.press("x")
            await _until(pilot, lambda: isinstance(app2.screen, WrapUpScreen), 20,
                         "wrap-up form")
            form = app2.screen
            await pilot.press("ctrl+s")  # empty: refused with what is missing
            assert "请选择处理结果" in _text(form, "#wrap_errors")
            form.query_one("#disposition", Select).value = "answered"
            await pilot.pause()
            await pilot.press("ctrl+s")
            errors = _text(form, "#wrap_errors")
            assert "请选择咨询类别" in errors and "请填写事项" in errors
            tree = form.query_one("#category_tree", Tree)
            labor = next(n for g in tree.root.children for n in g.children
                         if n.data and n.data[0] == "labor")
            wages = next(n for n in labor.children if n.data[1] == "欠薪")
            tree.select_node(wages)
            await pilot.pause()
            assert "劳动争议 › 欠薪" in _text(form, "#chosen")
            form.query_one("#summary", TextArea).text = "工地老板拖欠三个月工资"
            form.query_one("#answer", TextArea).text = "可向劳动保障监察投诉或申请劳动仲裁"
            form.query_one("#follow_up", Input).value = "2020-01-01"
            await pilot.pause()
            await pilot.press("ctrl+s")
            assert "不能早于今天" in _text(form, "#wrap_errors")
            form.query_one("#follow_up", Input).value = ""
            form.query_one("#confidential").value = True
            await pilot.pause()
            draft = app2.drafts.load(form.ticket_no)
            assert draft["summary"] == "工地老板拖欠三个月工资"  # kept while typing
            await pilot.press("ctrl+s")
            await _until(pilot, lambda: app2.screen is desk2, 10, "form closed")
            assert app2.drafts.load(form.ticket_no) is None
            await pilot.press("ctrl+q")
        assert caller.wait(30) == 0
    finally:
        close_all(phone1, phone2)
        if caller is not None and caller.poll() is None:
            caller.kill()
    [(ticket_no, status, category, sub, summary, answer, disposition, confidential,
      lawyer)] = _rows(
        node, "select t.ticket_no, t.status, t.category, t.subcategory, t.summary, t.answer, "
              "t.disposition, t.confidential, u.work_id from tickets t "
              "join users u on u.id = t.lawyer_id")
    assert (status, category, sub, disposition, confidential, lawyer) == (
        "closed", "labor", "欠薪", "answered", 1, "8002")
    assert summary == "工地老板拖欠三个月工资" and answer.startswith("可向劳动保障监察")
    [(priority, reasons, queue)] = _rows(node, "select priority, green_reasons, queue_code "
                                               "from tickets")
    assert priority == "green" and "migrant_wages" in reasons and queue == "labor"
    kinds = [r[0] for r in _rows(node, "select kind from call_events order by seq")]
    for kind in ("digits", "enqueued", "offer", "agent_answered", "hold", "unhold", "transfer",
                 "ended"):
        assert kind in kinds, kinds


@pytest.mark.timeout(180)
async def test_console_says_when_the_server_goes_and_comes_back(start_node, tmp_path):
    node = start_node(1, legs_per_call=4)
    _add_user(node, "9001", "supervisor")
    _add_user(node, "8001", "lawyer", "sip:8001@127.0.0.1:5999")
    _add_user(node, "7001", "scheduler")
    server = f"http://127.0.0.1:{node['api']}"
    # A scheduler gets the roster screen (no desk).
    app = ConsoleApp(server, "7001", state_dir=tmp_path / "s")
    async with app.run_test(size=(120, 40)) as pilot:
        await _login(pilot, app)
        await _until(pilot, lambda: isinstance(app.screen, SchedulerScreen), 10,
                     "scheduler screen")
        await pilot.press("ctrl+q")
    app = ConsoleApp(server, "9001", state_dir=tmp_path / "s")
    async with app.run_test(size=(120, 40)) as pilot:
        await _login(pilot, app)
        await _until(pilot, lambda: isinstance(app.screen, WallboardScreen), 10, "wallboard")
        board = app.screen
        # A lawyer signs in elsewhere: the wallboard shows them.
        async with httpx.AsyncClient(base_url=f"{server}/api/v1") as http:
            token = (await http.post("/login", json={"work_id": "8001",
                                                     "password": PASSWORD})).json()["token"]
            await http.post("/agent/login", json={},
                            headers={"Authorization": f"Bearer {token}"})
        table = board.query_one("#agents")
        await _until(pilot, lambda: table.row_count == 1, 10, "lawyer row")
        await pilot.press("b")  # the supervisor puts them on a break
        await _until(pilot, lambda: "小休" in str(table.get_row_at(0)), 10, "on break")

        node["proc"].terminate()
        node["proc"].wait(30)
        await _until(pilot, lambda: "正在重新连接" in _text(board, "#banner"), 15, "banner")
        assert not board.connected
        await asyncio.to_thread(start_node.again, node)
        await _until(pilot, lambda: board.connected, 30, "reconnected")
        await _until(pilot, lambda: "已重新连接" in _text(board, "#banner"), 5, "back")
        # The desk state went with the old process; the board follows the new one.
        await _until(pilot, lambda: table.row_count == 0, 10, "fresh board")
        await pilot.press("ctrl+q")


@pytest.mark.timeout(180)
async def test_console_lawyer_on_a_baresip_phone(start_node, tmp_path, port_block):
    """The same desk with a third-party phone: baresip rings and auto-answers (phone mode:
    answering takes the call), the console holds, hangs up and files the ticket."""
    from baresip import Baresip

    sip, ctrl, rtp = port_block(2), port_block(1), port_block(20)
    phone = Baresip(tmp_path / "lawyer", sip_port=sip, ctrl_port=ctrl,
                    rtp_ports=(rtp, rtp + 19), source=make_tone(tmp_path / "l.wav", 600),
                    user="8001", lifetime=150, auto_answer=True).start()
    caller = None
    try:
        node = start_node(1, legs_per_call=4, telephony_queue_wait=120)
        _add_user(node, "8001", "lawyer", f"sip:8001@127.0.0.1:{sip}")
        app = ConsoleApp(f"http://127.0.0.1:{node['api']}", "8001",
                         state_dir=tmp_path / "s")
        async with app.run_test(size=(140, 60)) as pilot:
            await _login(pilot, app)
            await _until(pilot, lambda: isinstance(app.screen, DeskScreen), 10, "desk")
            desk = app.screen
            caller = _caller(tmp_path, node["uri"], hold=40)
            await _until(pilot, lambda: (desk.call or {}).get("state") == "talking", 40,
                         "baresip answered")
            await pilot.press("h")
            await _until(pilot, lambda: (desk.call or {}).get("state") == "held", 10, "held")
            await pilot.press("h")
            await _until(pilot, lambda: (desk.call or {}).get("state") == "talking", 10,
                         "back")
            await pilot.press("x")
            await _until(pilot, lambda: isinstance(app.screen, WrapUpScreen), 20, "wrap-up")
            form = app.screen
            form.query_one("#disposition", Select).value = "non_legal"
            await pilot.pause()
            await pilot.press("ctrl+s")
            await _until(pilot, lambda: app.screen is desk, 10, "filed")
            await pilot.press("ctrl+q")
        assert caller.wait(30) == 0
    finally:
        phone.close()
        if caller is not None and caller.poll() is None:
            caller.kill()
    [(status, disposition, lawyer)] = _rows(
        node, "select t.status, t.disposition, u.work_id from tickets t "
              "join users u on u.id = t.lawyer_id")
    assert (status, disposition, lawyer) == ("closed", "non_legal", "8001")
    [(reason,)] = _rows(node, "select end_reason from calls")
    assert reason == "lawyer_hangup"
