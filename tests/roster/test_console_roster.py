"""The roster in the Textual console, driven by Pilot against a real ``hotline serve``
(telephony off; the roster API is mounted all the same).

A scheduler plans next month from the console (a small shift catalogue, so the solver is
quick), publishes it and reads the grid (every lawyer × day shows the codes the server
holds) and the coverage heat map; a month with every lawyer on leave one day shows the
solver's reasons. A lawyer's desk shows only their own shifts, sends a swap request and a
handover note from the 我的班次 form. Back on the scheduler's screen, a swap that would
break the rest rule is refused with the server's reason, the lawyer's swap is approved and
the grid changes.

Events that only a telephony node's duty keeper sends at shift edges (``duty``,
``shift_start``, ``shift_end``) and the watch job's supervisor ``alert`` are handed to the
screens directly, in the server's shape.
"""

from __future__ import annotations

import io
import re
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console, Group
from rich.text import Text
from textual.widgets import Button, DataTable, Input, RichLog, Static, TextArea

from agent_console.app import ConsoleApp, DeskScreen, WallboardScreen
from agent_console.roster_view import (
    ENDED,
    LEAVING,
    NOT_YET,
    ON_DUTY,
    MyShiftsScreen,
    SchedulerScreen,
    heat_map,
    shift_month,
)
from hotline.config import load_settings
from hotline.domain import Role
from hotline.roster.files import load_lawyers, load_templates
from hotline.store.engine import make_engine, make_session_factory
from hotline.store.roster import import_lawyers
from hotline.store.session import session_scope
from hotline.store.users import add_user, set_password

PASSWORD = "Roster-console-26"
LAWYERS = ("L3001", "L3002", "L3003", "L3004")
SCHEDULER = "S7001"
SUPERVISOR = "B9001"
THIS_MONTH = f"{date.today():%Y-%m}"
MONTH = shift_month(THIS_MONTH, 1)  # planned and published
BLOCKED = shift_month(THIS_MONTH, 2)  # every lawyer on leave on its 10th: infeasible

SHIFTS = """\
lines:
  main: {name: 主线}
shifts:
  - {code: D, name: 白班, line: main, start: "08:00", end: "16:00", need: {lawyers: 1}}
  - {code: E, name: 晚班, line: main, start: "16:00", end: "24:00", need: {lawyers: 1}}
"""


def _lawyers_yaml() -> str:
    names = ("张明华", "李秀英", "王建国", "刘芳")
    firms = ("甲律师事务所", "甲律师事务所", "乙律师事务所", "乙律师事务所")
    rows = [f"  - {{work_id: {w}, name: {n}, firm: {f}, skills: {{general: 3}}, "
            f"unavailable: [{{date: {BLOCKED}-10, reason: 开庭}}]}}"
            for w, n, f in zip(LAWYERS, names, firms, strict=True)]
    return "lawyers:\n" + "\n".join(rows) + "\n"


def _seed(node: dict[str, Any], shifts: Any) -> None:
    """Lawyers from a YAML file, passwords, a scheduler and a supervisor (the real code)."""
    settings = load_settings(environ=node["env"])
    lawyers_file = node["dir"] / "lawyers.yaml"
    lawyers_file.write_text(_lawyers_yaml(), encoding="utf-8")
    lawyers = load_lawyers(lawyers_file, tz=settings.tz, templates=load_templates(shifts))
    engine = make_engine(f"sqlite:///{node['db']}")
    try:
        with session_scope(make_session_factory(engine)) as session:
            import_lawyers(session, lawyers, today=date.today())
            for work_id in LAWYERS:
                set_password(session, work_id, PASSWORD)
            add_user(session, SCHEDULER, name="排班员", role=Role.SCHEDULER, password=PASSWORD)
            add_user(session, SUPERVISOR, name="班长", role=Role.SUPERVISOR, password=PASSWORD)
    finally:
        engine.dispose()


async def _until(pilot: Any, check: Any, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def _login(pilot: Any, app: ConsoleApp, kind: type) -> Any:
    await pilot.pause()
    app.screen.query_one("#password", Input).value = PASSWORD
    await pilot.press("enter")
    await _until(pilot, lambda: isinstance(app.screen, kind), 15, kind.__name__)
    return app.screen


def _plain(renderable: Any) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def _text(screen: Any, selector: str) -> str:
    content = screen.query_one(selector, Static).content
    return content if isinstance(content, str) else _plain(content)


def _log(screen: Any) -> str:
    return "\n".join(strip.text for strip in screen.query_one("#log", RichLog).lines)


async def _api(server: str, work_id: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=f"{server}/api/v1", timeout=30)
    token = (await http.post("/login", json={"work_id": work_id, "password": PASSWORD})
             ).json()["token"]
    http.headers["Authorization"] = f"Bearer {token}"
    return http


def _grid_expected(view: dict[str, Any]) -> dict[tuple[str, str], str]:
    slots = {s["id"]: s for s in view["slots"]}
    out: dict[tuple[str, str], str] = {}
    for a in view["assignments"]:
        key = (a["work_id"], slots[a["slot_id"]]["date"])
        out[key] = out.get(key, "") + slots[a["slot_id"]]["code"]
    return out


def _assert_grid(screen: SchedulerScreen, view: dict[str, Any]) -> None:
    grid = screen.query_one("#grid", DataTable)
    expected = _grid_expected(view)
    assert grid.row_count == len(LAWYERS)
    first = date.fromisoformat(f"{MONTH}-01")
    day = first
    while day.month == first.month:
        for work_id in LAWYERS:
            cell = str(grid.get_cell(work_id, day.isoformat()))
            assert cell == (expected.get((work_id, day.isoformat())) or "·"), (work_id, day)
        day += timedelta(days=1)


def _pick_swaps(view: dict[str, Any], giver: str, window_end: datetime
                ) -> tuple[dict[str, Any], str, dict[str, Any], str]:
    """A swap the rules allow (the receiver's other shifts leave 11 hours of rest) and one
    that breaks the rest rule (the receiver works the same day), both of ``giver``'s."""
    slots = {s["id"]: s for s in view["slots"]}
    by_lawyer: dict[str, list[dict[str, Any]]] = {}
    for a in view["assignments"]:
        by_lawyer.setdefault(a["work_id"], []).append(slots[a["slot_id"]])
    mine = sorted((s for s in by_lawyer[giver]
                   if datetime.fromisoformat(s["start"]) < window_end), key=lambda s: s["start"])
    rest = timedelta(hours=11)

    def clash(a: dict[str, Any], b: dict[str, Any]) -> bool:
        start_a, end_a = datetime.fromisoformat(a["start"]), datetime.fromisoformat(a["end"])
        start_b, end_b = datetime.fromisoformat(b["start"]), datetime.fromisoformat(b["end"])
        return start_b < end_a + rest and start_a < end_b + rest

    good = next(((slot, other) for slot in mine for other in LAWYERS if other != giver
                 and not any(clash(slot, t) for t in by_lawyer.get(other, []))), None)
    bad = next(((slot, other) for slot in mine for other in LAWYERS if other != giver
                and (good is None or slot["id"] != good[0]["id"])
                and slot["date"] in {s["date"] for s in by_lawyer.get(other, [])}), None)
    if good is not None and bad is not None:
        return good[0], good[1], bad[0], bad[1]
    raise AssertionError("no swap pair in the planned month")


@pytest.mark.timeout(150)
async def test_scheduler_and_lawyer_roster_screens(start_node: Any, tmp_path: Path) -> None:
    shifts = tmp_path / "shifts.yaml"
    shifts.write_text(SHIFTS, encoding="utf-8")
    node = start_node(1, telephony_enabled="false", roster_templates=str(shifts),
                      roster_solver_seconds=20)
    _seed(node, shifts)
    server = f"http://127.0.0.1:{node['api']}"

    # --- the scheduler plans and publishes next month ----------------------------------
    app = ConsoleApp(server, SCHEDULER, state_dir=tmp_path / "s1")
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await _login(pilot, app, SchedulerScreen)
        await _until(pilot, lambda: screen.view is not None, 15, "this month")
        assert screen.month == THIS_MONTH and "未排班" in _text(screen, "#month_bar")
        await pilot.press("]")
        await _until(pilot, lambda: (screen.view or {}).get("month") == MONTH, 15,
                     "next month")
        assert screen.check_action("publish", ()) is None  # nothing to publish yet
        await pilot.press("p")
        assert "排班中… " in _log(screen)  # shown while the solver runs
        await _until(pilot, lambda: "排班完成" in _text(screen, "#notice"), 60, "plan")
        await _until(pilot, lambda: "草稿" in _text(screen, "#month_bar"), 10, "draft")
        await pilot.press("u")
        await _until(pilot, lambda: (screen.view or {}).get("published"), 15, "published")
        assert "已发布" in _text(screen, "#month_bar")
        # A published month is re-planned as a preview first, applied with U.
        await pilot.press("p")
        await _until(pilot, lambda: "重排预览" in _text(screen, "#notice"), 60, "preview")
        assert "撤下 0 处, 排上 0 处" in _text(screen, "#notice")
        await pilot.press("u")
        await _until(pilot, lambda: "重排已发布" in _text(screen, "#notice"), 60, "replan")
        assert "没有违反硬性规则" in _text(screen, "#rules")
        assert "每人班次最少" in _text(screen, "#rules")

        http = await _api(server, SCHEDULER)
        view = (await http.get("/roster", params={"month": MONTH})).json()
        assert view["published"] and view["assignments"]
        _assert_grid(screen, view)
        # Weekends are marked in the header (red); the total column counts shifts.
        grid = screen.query_one("#grid", DataTable)
        saturday = next(d for d in range(1, 8)
                        if date.fromisoformat(f"{MONTH}-0{d}").weekday() == 5)
        header = grid.columns[f"{MONTH}-0{saturday}"].label
        assert header.plain.endswith("六") and "red" in str(header.style)
        total = sum(int(str(grid.get_cell(w, "total"))) for w in LAWYERS)
        assert total == len(view["assignments"])

        await pilot.press("2")
        heat = _text(screen, "#heat")
        assert "图例" in heat and "人手不足" in heat and "不足 0 小时, 超出 0 小时" in heat
        # One line per day of the month, 24 hours each: 08–24 met (green), 00–08 no need.
        days = len(view["slots"]) // 2
        rows = [line for line in heat.splitlines() if re.match(r"\d\d [一二三四五六日] ", line)]
        assert len(rows) == days
        # A day short of a lawyer shows red cells: the heat map's own colours.
        coverage = dict(screen.coverage or {})
        coverage["staffed"] = [[0] * 24] + coverage["staffed"][1:]
        red = heat_map(coverage)
        assert "不足 16 小时" in _plain(red)

        # The month after: everyone is in court on the 10th, the solver says so.
        await pilot.press("]")
        await _until(pilot, lambda: (screen.view or {}).get("month") == BLOCKED, 15,
                     "the month after")
        await pilot.press("p")
        await _until(pilot, lambda: "无法排出" in _text(screen, "#notice"), 60, "infeasible")
        notice = _text(screen, "#notice")
        assert "10日" in notice and "只有 0 人可排" in notice and "请假" in notice, notice
        await pilot.press("ctrl+q")

    # --- a lawyer sees only their own shifts, asks for a swap, writes a handover ------
    giver = LAWYERS[0]
    now = datetime.now().astimezone()
    good, good_to, bad, bad_to = _pick_swaps(view, giver, now + timedelta(days=44))
    own = {a["slot_id"] for a in view["assignments"] if a["work_id"] == giver}
    app = ConsoleApp(server, giver, state_dir=tmp_path / "s2")
    async with app.run_test(size=(160, 50)) as pilot:
        desk = await _login(pilot, app, DeskScreen)
        await _until(pilot, lambda: "下一班次" in _text(desk, "#duty"), 15, "duty line")
        await pilot.press("s")
        await _until(pilot, lambda: isinstance(app.screen, MyShiftsScreen), 5, "my shifts")
        form = app.screen
        table = form.query_one("#my_shifts", DataTable)
        await _until(pilot, lambda: table.row_count > 0, 15, "my shifts rows")
        keys = {str(row.value) for row in table.rows}
        assert keys <= own  # nobody else's shift
        soon = {a for a in own if datetime.fromisoformat(
            next(s["start"] for s in view["slots"] if s["id"] == a)) < now + timedelta(days=44)}
        assert soon <= keys
        table.move_cursor(row=table.get_row_index(good["id"]))
        form.query_one("#swap_to", Input).value = good_to
        form.query_one("#swap_note", Input).value = "家中有事"
        form.query_one("#ask_swap", Button).press()
        await _until(pilot, lambda: "已提交" in _text(form, "#swap_result"), 10, "swap asked")
        await _until(pilot, lambda: "待审批" in _text(form, "#my_swaps"), 10, "my swaps")
        form.query_one("#handover_text", TextArea).text = "来电人王某明天会再打来, 已约定回访"
        form.query_one("#send_handover", Button).press()
        await _until(pilot, lambda: "已保存" in _text(form, "#handover_result"), 10,
                     "handover saved")
        await _until(pilot, lambda: "王某" in _text(form, "#notes"), 10, "note listed")
        await pilot.press("escape")
        await _until(pilot, lambda: app.screen is desk, 5, "back to the desk")

        # Shift edges as a telephony node's duty keeper announces them.
        duty = {"in_force": True, "eligible": True, "lines": ["main"], "shifts": []}
        await desk.on_server_event({"type": "duty", "work_id": giver, "on_duty": False,
                                    "leaving": False, **duty})
        assert NOT_YET in _text(desk, "#duty")
        await desk.on_server_event({
            "type": "shift_start", "work_id": giver, "on_duty": True, "leaving": False,
            **duty, "handover": [{"line": "main", "author": "L3002", "name": "李秀英",
                                  "text": "12345 转来的欠薪工单待回访",
                                  "at": now.isoformat()}]})
        assert ON_DUTY in _text(desk, "#duty")
        assert "交接班记录" in _log(desk) and "欠薪工单待回访" in _log(desk)
        await desk.on_server_event({"type": "duty", "work_id": giver, "on_duty": False,
                                    "leaving": True, **duty})
        assert LEAVING in _text(desk, "#duty")
        await desk.on_server_event({"type": "shift_end", "work_id": giver, "why": "shift_end"})
        assert "已被自动签出" in _log(desk) and ENDED in _text(desk, "#duty")
        await pilot.press("ctrl+q")

    lawyer = await _api(server, giver)
    mine = (await lawyer.get("/roster", params={"month": MONTH})).json()
    assert {a["work_id"] for a in mine["assignments"]} == {giver}
    assert not mine["violations"] and not mine["figures"]
    reply = await lawyer.post("/roster/swaps", json={"slot_id": bad["id"], "to_work_id": bad_to,
                                                    "note": "想换"})
    assert reply.status_code == 200, reply.text
    bad_id = reply.json()["id"]
    await lawyer.aclose()

    # --- the scheduler decides: the rest rule refuses one, the other goes through ------
    app = ConsoleApp(server, SCHEDULER, state_dir=tmp_path / "s3")
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await _login(pilot, app, SchedulerScreen)
        await pilot.press("]")
        await _until(pilot, lambda: (screen.view or {}).get("month") == MONTH, 15, "month")
        swaps = screen.query_one("#swaps", DataTable)
        await pilot.press("4")
        await _until(pilot, lambda: swaps.row_count == 2, 10, "two pending swaps")
        swaps.move_cursor(row=swaps.get_row_index(str(bad_id)))
        await pilot.press("y")
        await _until(pilot, lambda: "无法批准" in _text(screen, "#notice"), 15, "refusal")
        assert "休息不足" in _text(screen, "#notice"), _text(screen, "#notice")
        assert swaps.row_count == 2  # still pending
        good_id = next(s["id"] for s in screen.pending if s["id"] != bad_id)
        swaps.move_cursor(row=swaps.get_row_index(str(good_id)))
        await pilot.press("y")
        await _until(pilot, lambda: "已批准" in _text(screen, "#notice"), 15, "approved")
        await _until(pilot, lambda: swaps.row_count == 1, 10, "one left")
        grid = screen.query_one("#grid", DataTable)
        assert good["code"] in str(grid.get_cell(good_to, good["date"]))
        assert good["code"] not in str(grid.get_cell(giver, good["date"]))
        after = (await http.get("/roster", params={"month": MONTH})).json()
        _assert_grid(screen, after)
        swaps.move_cursor(row=0)
        await pilot.press("n")
        await _until(pilot, lambda: swaps.row_count == 0, 10, "rejected")
        await pilot.press("ctrl+q")
    await http.aclose()

    # --- a supervisor hears of a shift nobody came to ---------------------------------
    app = ConsoleApp(server, SUPERVISOR, state_dir=tmp_path / "s4")
    async with app.run_test(size=(140, 40)) as pilot:
        board = await _login(pilot, app, WallboardScreen)
        await board.on_server_event({"type": "alert", "kind": "unstaffed", "line": "main",
                                     "code": "D", "text": "12月01日 08:00 开始的 D 班 [main] "
                                                          "已过 10 分钟仍无人签入"})
        await board.on_server_event({"type": "alert", "kind": "overdue", "ticket_no": "T-1",
                                     "text": "工单 T-1 已逾期未办结"})
        await _until(pilot, lambda: "无人值班: 12月01日 08:00" in _log(board)
                     and "工单逾期: 工单 T-1" in _log(board), 5, "alerts in the log")
        await pilot.press("ctrl+q")


def _on_duty_now(view: dict[str, Any]) -> set[str] | None:
    """Lawyers of the shifts running now; None when no shift runs (roster not in force)."""
    now = datetime.now().astimezone()
    running = {s["id"] for s in view["slots"] if datetime.fromisoformat(s["start"]) <= now
               < datetime.fromisoformat(s["end"])}
    if not running:
        return None
    return {a["work_id"] for a in view["assignments"] if a["slot_id"] in running}


@pytest.mark.timeout(120)
async def test_lawyer_desk_follows_the_duty_keeper(start_node: Any, tmp_path: Path) -> None:
    """With telephony on, the server's duty keeper decides: a lawyer logged in before the
    roster is published takes calls (roster not in force), then hears that their shift
    has not started (a real ``duty`` event); a lawyer on the running shift sees 值班中."""
    shifts = tmp_path / "shifts.yaml"
    shifts.write_text(SHIFTS, encoding="utf-8")
    node = start_node(1, roster_templates=str(shifts))
    _seed(node, shifts)
    server = f"http://127.0.0.1:{node['api']}"
    http = await _api(server, SCHEDULER)
    reply = await http.post("/roster/plan", json={"month": THIS_MONTH})  # a draft
    assert reply.status_code == 200, reply.text
    view = (await http.get("/roster", params={"month": THIS_MONTH})).json()
    on_duty = _on_duty_now(view)
    off = next(w for w in LAWYERS if not on_duty or w not in on_duty)

    app = ConsoleApp(server, off, phone=f"sip:{off}@127.0.0.1:5999", state_dir=tmp_path / off)
    async with app.run_test(size=(140, 40)) as pilot:
        desk = await _login(pilot, app, DeskScreen)
        await _until(pilot, lambda: (desk.agent or {}).get("status") == "available", 15,
                     "signed in")
        await _until(pilot, lambda: "值班表未生效" in _text(desk, "#duty"), 10, "no roster")
        reply = await http.post("/roster/publish", json={"month": THIS_MONTH})
        assert reply.status_code == 200, reply.text
        if on_duty is not None:  # a shift runs now (not 00:00–08:00 with these templates)
            await _until(pilot, lambda: NOT_YET in _text(desk, "#duty"), 10, "duty event")
            assert f"值班状态: {NOT_YET}" in _log(desk)
            mine = await _api(server, off)
            assert (await mine.get("/agent")).json()["on_duty"] is False
            await mine.aclose()
        await pilot.press("ctrl+q")

    if on_duty:
        lawyer = sorted(on_duty)[0]
        app = ConsoleApp(server, lawyer, phone=f"sip:{lawyer}@127.0.0.1:5999",
                         state_dir=tmp_path / lawyer)
        async with app.run_test(size=(140, 40)) as pilot:
            desk = await _login(pilot, app, DeskScreen)
            await _until(pilot, lambda: ON_DUTY in _text(desk, "#duty"), 15, "on duty")
            assert "[main]" in _text(desk, "#duty")
            await pilot.press("ctrl+q")
    await http.aclose()


def test_heat_map_colours_and_months() -> None:
    coverage = {"month": "2026-12", "first": "2026-12-01",
                "staffed": [[1] * 8 + [0] * 8 + [1] * 8], "need": [[0] * 8 + [1] * 16]}
    text = heat_map(coverage)
    assert isinstance(text, Group)
    plain = _plain(text)
    assert "不足 8 小时, 超出 8 小时" in plain and "01 二" in plain
    styles = {str(span.style) for part in text.renderables if isinstance(part, Text)
              for span in part.spans}
    assert {"bold white on red", "black on green", "bold white on blue"} <= styles
    assert shift_month("2026-12", 1) == "2027-01" and shift_month("2027-01", -1) == "2026-12"
