"""The roster in the console: the scheduler's screen and the lawyer's own shifts.

:class:`SchedulerScreen` (role ``scheduler``) shows one month at a time (``[`` / ``]``
change it): the grid of who works which shift (lawyers × days), coverage per hour as a heat
map (staffed − needed, red under, green met, blue over), the hard-rule violations and
fairness figures, and the pending swap requests (``Y`` approve, ``N`` reject; a refusal shows
the server's reasons). ``P`` plans the month on the server (the solver may run a minute) and
``U`` publishes it.

For lawyers: :class:`DutyStatus` is the desk's one-line duty state, fed by ``/roster/mine``
and the ``duty`` / ``shift_start`` / ``shift_end`` events; :class:`MyShifts` (in the modal
:class:`MyShiftsScreen`) lists the coming shifts, asks for a swap of one of them and writes a
handover note (交接班记录).

The text of every panel comes from the pure functions at the top (API JSON in, Rich text
out), tested without Textual.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    RichLog,
    Static,
    TabbedContent,
    TabPane,
    TextArea,
)

from agent_console.client import ApiClient, ApiError
from agent_console.screen import MainScreen

WEEKDAY_ONE = "一二三四五六日"
WEEKDAY_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
PLAN_STATUS = {"draft": "草稿", "published": "已发布"}
SOLVER_STATUS = {"optimal": "最优", "feasible": "可行"}
SWAP_STATUS = {"pending": "待审批", "approved": "已批准", "rejected": "已驳回",
               "cancelled": "已撤回"}
FIGURES = (("shifts_min", "每人班次最少"), ("shifts_max", "每人班次最多"),
           ("shifts_spread", "班次差"), ("nights_spread", "夜班差"),
           ("weekends_spread", "周末节假日差"), ("firm_share_deviation", "律所份额偏差 (百分点)"),
           ("preferred_hits", "满足偏好"), ("avoided_hits", "排到回避的班"),
           ("continuity_changes", "班型切换"), ("assignments", "总人次"))
ALERTS = {"unstaffed": "无人值班", "overdue": "工单逾期"}
ON_DUTY = "值班中"
NOT_YET = "未到班次时间, 暂不分配来电"
LEAVING = "班次已结束, 处理完当前通话后自动签出"
ENDED = "班次已结束, 已自动签出"


# --- pure text ------------------------------------------------------------------------------


def month_of(d: date) -> str:
    """``YYYY-MM`` of a date."""
    return f"{d.year:04d}-{d.month:02d}"


def shift_month(month: str, delta: int) -> str:
    """The month ``delta`` months after ``month`` (``YYYY-MM``)."""
    year, mon = (int(x) for x in month.split("-"))
    index = year * 12 + mon - 1 + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_title(month: str) -> str:
    """``2026-12`` → ``2026年12月``."""
    year, mon = month.split("-")
    return f"{year}年{int(mon)}月"


def month_dates(month: str) -> list[date]:
    """Every date of a month."""
    first = date.fromisoformat(f"{month}-01")
    nxt = date.fromisoformat(f"{shift_month(month, 1)}-01")
    return [first + timedelta(days=i) for i in range((nxt - first).days)]


def day_kinds(view: dict[str, Any]) -> dict[date, str]:
    """Workday / weekend / holiday per date, from the month's slots (weekday otherwise)."""
    kinds = {d: ("weekend" if d.weekday() >= 5 else "workday")
             for d in month_dates(str(view["month"]))}
    for slot in view.get("slots") or ():
        kinds[date.fromisoformat(slot["date"])] = str(slot.get("kind") or "workday")
    return kinds


def day_header(d: date, kind: str) -> Text:
    """A grid column's header, ``05 六``: weekends in red, holidays red on white reversed."""
    text = f"{d.day:02d} {WEEKDAY_ONE[d.weekday()]}"
    if kind == "holiday":
        return Text(text, style="bold white on red")
    if kind == "weekend":
        return Text(text, style="bold red")
    return Text(text)


def who(lawyer: dict[str, Any]) -> str:
    """``姓名(工号)``."""
    name = str(lawyer.get("name") or "")
    return f"{name}({lawyer['work_id']})" if name else str(lawyer["work_id"])


def grid_cells(view: dict[str, Any]) -> dict[tuple[str, str], str]:
    """Shift codes per (work id, ISO date), in time order (``DE`` for two shifts)."""
    slots = {s["id"]: s for s in view.get("slots") or ()}
    cells: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for a in view.get("assignments") or ():
        slot = slots.get(a["slot_id"])
        if slot is None:
            continue
        cells.setdefault((a["work_id"], slot["date"]), []).append(
            (str(slot["start"]), str(slot["code"])))
    return {key: "".join(code for _, code in sorted(codes)) for key, codes in cells.items()}


def plan_summary(view: dict[str, Any]) -> Text:
    """The month's state: published / draft / not planned, the plan's solver result."""
    month = str(view["month"])
    line = Text(f"{month_title(month)} 班表: ", style="bold")
    plan = view.get("plan")
    if not view.get("slots"):
        line.append("未排班 (按 P 排班)", style="bold yellow")
        return line
    if view.get("published"):
        line.append("已发布", style="bold green")
    else:
        line.append("草稿 (未发布, 按 U 发布)", style="bold yellow")
    if plan:
        solver = SOLVER_STATUS.get(str(plan.get("solver")), str(plan.get("solver") or ""))
        line.append(f"  方案 #{plan.get('id')}: {solver}", style="")
        if plan.get("objective") is not None:
            line.append(f", 目标值 {float(plan['objective']):g}")
        if plan.get("seconds") is not None:
            line.append(f", 用时 {float(plan['seconds']):.1f} 秒")
        if plan.get("changes"):
            line.append(f", 改动 {plan['changes']} 处")
    violations = len(view.get("violations") or ())
    line.append(f"  {len(view.get('slots') or ())} 个班次, "
                f"{len(view.get('assignments') or ())} 人次, ")
    line.append(f"违反硬性规则 {violations} 条", style="bold red" if violations else "green")
    return line


def cell_style(diff: int, need: int, staffed: int) -> tuple[str, str]:
    """A heat map cell's text and style: staffed − need, red under, green met, blue over."""
    if need == 0 and staffed == 0:
        return " ·", "dim"
    if diff < 0:
        return f"{max(diff, -9)}", "bold white on red"
    if diff > 0:
        return f"+{min(diff, 9)}", "bold white on blue"
    return " 0", "black on green"


def heat_map(coverage: dict[str, Any]) -> RenderableType:
    """Days × 24 hours, each cell coloured by staffed − need, with a legend."""
    staffed: list[list[int]] = coverage.get("staffed") or []
    need: list[list[int]] = coverage.get("need") or []
    first = date.fromisoformat(str(coverage.get("first") or f"{coverage['month']}-01"))
    head = Text("      ")
    for h in range(24):
        head.append(f"{h:02d} ", style="dim")
    rows = [Text(f"{month_title(str(coverage['month']))} 每小时在班人数 − 需求人数", style="bold"),
            head]
    under = over = 0
    for d, (have, want) in enumerate(zip(staffed, need, strict=False)):
        day = first + timedelta(days=d)
        row = Text(f"{day.day:02d} {WEEKDAY_ONE[day.weekday()]} ",
                   style="red" if day.weekday() >= 5 else "")
        for h in range(24):
            diff = int(have[h]) - int(want[h])
            under += diff < 0
            over += diff > 0
            text, style = cell_style(diff, int(want[h]), int(have[h]))
            row.append(text, style=style)
            row.append(" ")
        rows.append(row)
    legend = Text.assemble(("图例: ", "bold"), (" -1 ", "bold white on red"), " 人手不足  ",
                           ("  0 ", "black on green"), " 刚好满足  ",
                           (" +1 ", "bold white on blue"), " 超出需求  ",
                           ("  · ", "dim"), " 无需求")
    summary = Text(f"不足 {under} 小时, 超出 {over} 小时",
                   style="bold red" if under else "green")
    return Group(*rows, Text(""), legend, summary)


def rules_panel(view: dict[str, Any], lawyers: dict[str, str]) -> RenderableType:
    """Violations of hard rules (or none) and the fairness figures."""
    parts: list[RenderableType] = []
    violations = view.get("violations") or []
    if not view.get("slots"):
        return Text("本月尚未排班", style="dim")
    if violations:
        table = Table(title=f"违反硬性规则 ({len(violations)} 条)", expand=True,
                      title_style="bold red")
        table.add_column("规则", no_wrap=True)
        table.add_column("律师", no_wrap=True)
        table.add_column("说明", overflow="fold")
        for v in violations:
            table.add_row(str(v.get("code", "")).removeprefix("roster."),
                          lawyers.get(str(v.get("work_id") or ""), str(v.get("work_id") or "")),
                          str(v.get("message", "")))
        parts.append(table)
    else:
        parts.append(Text("没有违反硬性规则", style="bold green"))
    figures = view.get("figures") or {}
    shown = [(label, figures[key]) for key, label in FIGURES if key in figures]
    if shown:
        table = Table(title="公平性与偏好", expand=False)
        table.add_column("指标")
        table.add_column("数值", justify="right")
        for label, value in shown:
            table.add_row(label, f"{float(value):g}")
        parts.append(table)
    counts = Counter(a["work_id"] for a in view.get("assignments") or ())
    if counts:
        per = Text("每人班次: ", style="bold")
        per.append("、".join(f"{lawyers.get(w, w)} {counts[w]}"
                            for w in sorted(lawyers, key=lambda w: -counts[w])))
        parts.append(per)
    return Group(*parts)


def reasons_text(message: str, reasons: list[str]) -> Text:
    """A refusal: the message, then every reason on its own line."""
    text = Text(message, style="bold red")
    for reason in reasons:
        text.append(f"\n  - {reason}", style="red")
    return text


def alert_text(event: dict[str, Any]) -> str:
    """A roster alert (unstaffed shift, overdue ticket) for supervisors."""
    kind = ALERTS.get(str(event.get("kind")), "提醒")
    return f"{kind}: {event.get('text') or event.get('ticket_no') or ''}"


def follow_up_text(event: dict[str, Any]) -> str:
    """A follow-up (回访) that fell due."""
    due = _local(str(event.get("due_at") or ""))
    reason = f" ({event['reason']})" if event.get("reason") else ""
    when = f", 应于 {due:%m月%d日 %H:%M} 前" if due else ""
    return f"回访到期: 工单 {event.get('ticket_no')}{reason}{when}"


def _local(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def slot_id_of(shift: dict[str, Any]) -> str:
    """The slot id of a ``/roster/mine`` shift: its local start date, line and code."""
    return f"{str(shift['start'])[:10]}/{shift['line']}/{shift['code']}"


def shift_label(shift: dict[str, Any]) -> str:
    """``12月03日(周四) 08:00–16:00 白班 D [main]`` (and 远程 for remote night duty)."""
    start = datetime.fromisoformat(str(shift["start"]))
    end = datetime.fromisoformat(str(shift["end"]))
    label = (f"{start:%m月%d日}({WEEKDAY_ZH[start.weekday()]}) {start:%H:%M}–{end:%H:%M} "
             f"{shift.get('name') or ''} {shift['code']} [{shift['line']}]")
    return label + (" 远程" if shift.get("remote") else "")


def duty_state(duty: dict[str, Any] | None) -> tuple[str, str]:
    """The duty state's words and style (empty when the server keeps no duty state)."""
    if duty is None:
        return "", ""
    if duty.get("ended"):
        return ENDED, "bold yellow"
    if duty.get("leaving"):
        return LEAVING, "bold yellow"
    if duty.get("in_force") and duty.get("on_duty"):
        return ON_DUTY, "bold green"
    if duty.get("in_force"):
        return NOT_YET, "bold yellow"
    return "值班表未生效, 签入即可接听", ""


def duty_line(duty: dict[str, Any] | None, shifts: list[dict[str, Any]],
              now: datetime | None = None, hint: bool = False) -> Text:
    """The lawyer's duty state in one line, with the current or next shift."""
    now = now or datetime.now(UTC)
    current = next((s for s in shifts
                    if datetime.fromisoformat(str(s["start"])) <= now
                    < datetime.fromisoformat(str(s["end"]))), None)
    coming = next((s for s in shifts if datetime.fromisoformat(str(s["start"])) > now), None)
    state, style = duty_state(duty)
    line = Text.assemble(("值班: ", "dim"), (state, style)) if state else Text("")
    if state == ON_DUTY and duty is not None:
        if duty.get("lines"):
            line.append(f" [{', '.join(str(x) for x in duty['lines'])}]")
        if current is not None:
            end = datetime.fromisoformat(str(current["end"]))
            line.append(f" 至 {end:%H:%M}")
    elif not state and current is not None:
        line.append(f"当前班次: {shift_label(current)}", style="bold")
    if coming is not None:
        line.append(f"{'   ' if line else ''}下一班次: {shift_label(coming)}")
    elif current is None:
        line.append(f"{'   ' if line else ''}近期没有排班", style="dim")
    if hint:
        line.append("   (S 我的班次)", style="dim")
    return line


def handover_lines(notes: list[dict[str, Any]]) -> list[Text]:
    """Handover notes: ``[main] 张三 12-01 08:00 text``."""
    out = []
    for n in notes:
        at = _local(str(n.get("at") or ""))
        out.append(Text.assemble(
            (f"[{n.get('line', '')}] {n.get('name') or n.get('author') or ''}", "bold cyan"),
            (f" {at:%m-%d %H:%M}" if at else "", "dim"), f" {n.get('text', '')}"))
    return out


# --- the scheduler ---------------------------------------------------------------------------


class SchedulerScreen(MainScreen):
    """The scheduler's month: grid, coverage heat map, rules and fairness, swap requests."""

    DEFAULT_CSS = """
    SchedulerScreen #month_bar { height: auto; padding: 0 1; }
    SchedulerScreen #notice { height: auto; max-height: 12; padding: 0 1; display: none; }
    SchedulerScreen #notice.shown { display: block; }
    SchedulerScreen TabbedContent { height: 1fr; }
    SchedulerScreen #grid, SchedulerScreen #swaps { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("[", "month(-1)", "上月"),
        Binding("]", "month(1)", "下月"),
        Binding("1", "tab('tab_grid')", "班表", show=False),
        Binding("2", "tab('tab_heat')", "覆盖", show=False),
        Binding("3", "tab('tab_rules')", "规则", show=False),
        Binding("4", "tab('tab_swaps')", "换班", show=False),
        Binding("y", "decide(True)", "批准换班"),
        Binding("n", "decide(False)", "驳回换班"),
        Binding("p", "plan", "排班"),
        Binding("u", "publish", "发布"),
        Binding("f5", "reload", "刷新"),
        Binding("ctrl+q", "quit", "退出"),
    ]

    def __init__(self, month: str | None = None) -> None:
        super().__init__()
        self.month = month or month_of(date.today())
        self.view: dict[str, Any] | None = None
        self.coverage: dict[str, Any] | None = None
        self.pending: list[dict[str, Any]] = []
        self.planning_since: float | None = None  # the solver is running on the server
        self.planning_month = self.month
        self.replan_preview: str | None = None  # month whose re-plan was previewed

    def compose(self) -> ComposeResult:
        """Month line, notice, the four pages, the log."""
        yield Header(show_clock=True)
        yield Static("", id="banner")
        yield Static("", id="month_bar")
        yield Static("", id="notice")
        with TabbedContent(id="tabs"):  # the grid first (no `initial`: it races a quick exit)
            with TabPane("班表 (1)", id="tab_grid"):
                yield DataTable(id="grid", cursor_type="cell", zebra_stripes=True,
                                fixed_columns=1)
            with TabPane("覆盖热力图 (2)", id="tab_heat"), VerticalScroll():
                yield Static("", id="heat")
            with TabPane("规则与公平 (3)", id="tab_rules"), VerticalScroll():
                yield Static("", id="rules")
            with TabPane("换班申请 (4)", id="tab_swaps"):
                yield DataTable(id="swaps", cursor_type="row")
        yield RichLog(id="log", wrap=True)
        yield Footer()

    async def on_mount(self) -> None:
        """Titles, the swap table's columns, the first load."""
        me = self.console.me
        self.title = "12348 排班管理"
        self.sub_title = f"{me.get('name', '')} ({me.get('work_id', '')})"
        swaps = self.query_one("#swaps", DataTable)
        for key, name in (("id", "编号"), ("by", "申请人"), ("give", "让出班次"),
                          ("to", "接班律师"), ("take", "换来班次"), ("note", "备注"),
                          ("at", "申请时间")):
            swaps.add_column(name, key=key)
        self.set_interval(1.0, self.tick)
        await self.reload()

    # --- messages -------------------------------------------------------------------------

    def notice(self, text: Text | str | None) -> None:
        """The result of the last action above the tabs (None hides it)."""
        try:
            box = self.query_one("#notice", Static)
        except NoMatches:
            return
        box.update(text or "")
        box.set_class(bool(text), "shown")

    def refused(self, what: str, exc: ApiError) -> None:
        """A refusal with the server's reasons: above the tabs and in the log."""
        self.notice(reasons_text(f"{what}, 原因:" if exc.reasons else f"{what}: {exc.message}",
                                 exc.reasons))
        self.say(f"{what}: {exc.message}", "bold red")

    async def on_server_event(self, event: dict[str, Any]) -> None:
        """Roster alerts (if the server sends them to schedulers); reload on reconnection."""
        kind = event.get("type")
        if kind == "hello":
            await self.reload()
        elif kind == "alert":
            self.app.bell()
            self.say(alert_text(event), "bold red")
            self.app.notify(alert_text(event), severity="error", timeout=10)

    # --- loading --------------------------------------------------------------------------

    async def reload(self) -> None:
        """The month, its coverage and the pending swaps, from the server."""
        try:
            view = await self.api.roster_month(self.month)
        except ApiError as exc:
            self.say(exc.message, "bold red")
            view = {"month": self.month, "published": False, "slots": [], "assignments": [],
                    "lawyers": [], "violations": [], "figures": {}, "plan": None}
        try:
            coverage: dict[str, Any] | None = await self.api.roster_coverage(self.month)
        except ApiError as exc:
            self.say(exc.message, "bold red")
            coverage = None
        try:
            self.pending = await self.api.swaps("pending")
        except ApiError as exc:
            self.say(exc.message, "bold red")
        if view.get("month") != self.month:
            return  # the month changed meanwhile: its own reload draws it
        self.view, self.coverage = view, coverage
        self.draw()

    def names(self) -> dict[str, str]:
        """``姓名(工号)`` by work id."""
        return {lw["work_id"]: who(lw) for lw in (self.view or {}).get("lawyers") or ()}

    def draw(self) -> None:
        """Every panel from the loaded data."""
        try:
            self._draw()
        except NoMatches:  # replies that arrive while the console closes draw nothing
            pass

    def _draw(self) -> None:
        view = self.view
        if view is None:
            return
        self.draw_bar()
        self.draw_grid(view)
        self.query_one("#heat", Static).update(
            heat_map(self.coverage) if self.coverage else Text("没有覆盖数据", style="dim"))
        self.query_one("#rules", Static).update(rules_panel(view, self.names()))
        self.draw_swaps()
        self.refresh_bindings()

    def draw_bar(self) -> None:
        """The month line (and the solver's progress)."""
        if self.view is None or not self.is_attached:
            return
        bar = plan_summary(self.view)
        if self.planning_since is not None:
            bar.append(f"   {month_title(self.planning_month)}排班中… "
                       f"{int(time.monotonic() - self.planning_since)} 秒", style="bold magenta")
        bar.append("\n表头红字为周末, 红底为法定节假日; [ ] 切换月份, 1-4 切换页面",
                   style="dim")
        try:
            self.query_one("#month_bar", Static).update(bar)
        except NoMatches:
            pass

    def tick(self) -> None:
        """Once a second: the solver's elapsed time."""
        if self.planning_since is not None:
            self.draw_bar()

    def draw_grid(self, view: dict[str, Any]) -> None:
        """Lawyers × days with the shift codes; cells of a broken rule in red."""
        table = self.query_one("#grid", DataTable)
        keep = table.cursor_coordinate
        table.clear(columns=True)
        days = month_dates(str(view["month"]))
        kinds = day_kinds(view)
        table.add_column("律师", key="lawyer")
        for d in days:
            table.add_column(day_header(d, kinds[d]), key=d.isoformat())
        table.add_column("合计", key="total")
        cells = grid_cells(view)
        slot_dates = {s["id"]: s["date"] for s in view.get("slots") or ()}
        broken = {(v.get("work_id"), slot_dates.get(str(v.get("slot_id")), "")):
                  str(v.get("message", "")) for v in view.get("violations") or ()}
        counts = Counter(a["work_id"] for a in view.get("assignments") or ())
        for lw in view.get("lawyers") or ():
            work_id = lw["work_id"]
            row: list[str | Text] = [who(lw)]
            for d in days:
                code = cells.get((work_id, d.isoformat()), "")
                if (work_id, d.isoformat()) in broken:
                    row.append(Text(code or "!", style="bold white on red"))
                else:
                    row.append(code or "·")
            row.append(str(counts.get(work_id, 0)))
            table.add_row(*row, key=work_id)
        if table.row_count:
            table.move_cursor(row=min(keep.row, table.row_count - 1), column=keep.column)

    def draw_swaps(self) -> None:
        """The pending swap requests."""
        table = self.query_one("#swaps", DataTable)
        keep = table.cursor_row
        table.clear()
        names = self.names()
        for s in self.pending:
            at = _local(str(s.get("requested_at") or ""))
            table.add_row(str(s["id"]), names.get(s["requested_by"], s["requested_by"]),
                          str(s.get("slot") or s.get("slot_id")),
                          names.get(s["to_work_id"], s["to_work_id"]),
                          str(s.get("take_slot") or "—"), str(s.get("note") or ""),
                          f"{at:%m-%d %H:%M}" if at else "", key=str(s["id"]))
        if self.pending:
            table.move_cursor(row=min(keep, len(self.pending) - 1))
        tabs = self.query_one("#tabs", TabbedContent)
        tabs.get_tab("tab_swaps").label = f"换班申请 (4) [{len(self.pending)}]" \
            if self.pending else "换班申请 (4)"

    # --- actions --------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Swap decisions need a pending request; plan and publish wait for the solver."""
        planning = self.planning_since is not None
        plan = (self.view or {}).get("plan") or {}
        allowed = {
            "decide": bool(self.pending),
            "plan": not planning,
            "publish": not planning and (plan.get("status") == "draft"
                                         or self.replan_preview == self.month),
        }
        if action in allowed:
            return True if allowed[action] else None
        return True

    async def action_month(self, delta: int) -> None:
        """Previous / next month."""
        self.month = shift_month(self.month, delta)
        self.notice(None)
        self.view = None
        self.query_one("#month_bar", Static).update(
            Text(f"{month_title(self.month)} 班表: 载入中…", style="bold"))
        await self.reload()

    def action_tab(self, tab: str) -> None:
        """Show one of the four pages."""
        self.query_one("#tabs", TabbedContent).active = tab

    async def action_reload(self) -> None:
        """Refresh now."""
        await self.reload()

    def selected_swap(self) -> dict[str, Any] | None:
        """The pending request under the cursor."""
        table = self.query_one("#swaps", DataTable)
        if not self.pending or table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((s for s in self.pending if str(s["id"]) == key), None)

    async def action_decide(self, approve: bool) -> None:
        """Approve (the server checks every hard rule first) or reject the selected swap."""
        tabs = self.query_one("#tabs", TabbedContent)
        if tabs.active != "tab_swaps":  # decide only on what is in view
            self.action_tab("tab_swaps")
            self.notice(Text("请在换班申请页选中一条申请, 再按 Y 批准或 N 驳回", style="bold"))
            return
        swap = self.selected_swap()
        if swap is None:
            return
        verb = "批准" if approve else "驳回"
        try:
            await self.api.decide_swap(int(swap["id"]), approve)
        except ApiError as exc:
            self.refused(f"无法{verb}换班申请 #{swap['id']}", exc)
            return
        names = self.names()
        text = (f"已{verb}换班申请 #{swap['id']}: {names.get(swap['requested_by'], '')} "
                f"{swap.get('slot') or ''} → {names.get(swap['to_work_id'], swap['to_work_id'])}")
        self.notice(Text(text, style="bold green" if approve else "bold"))
        self.say(text, "green")
        await self.reload()

    def action_plan(self) -> None:
        """Plan the month on the server (a published month: a re-plan preview)."""
        if self.planning_since is not None:
            return
        replan = bool((self.view or {}).get("published"))
        self.start_plan(publish=False, replan=replan)

    async def action_publish(self) -> None:
        """Publish the draft (or apply the previewed re-plan)."""
        if self.planning_since is not None:
            return
        if self.replan_preview == self.month:
            self.start_plan(publish=True, replan=True)
            return
        try:
            await self.api.publish_roster(self.month)
        except ApiError as exc:
            self.refused("无法发布", exc)
            return
        text = f"{month_title(self.month)} 班表已发布, 律师可在工作台查看自己的班次"
        self.notice(Text(text, style="bold green"))
        self.say(text, "green")
        await self.reload()

    def start_plan(self, *, publish: bool, replan: bool) -> None:
        """Run the solver on the server without blocking the screen."""
        self.planning_since = time.monotonic()
        self.planning_month = self.month
        what = f"{'重排' if replan else '排班'}中… {month_title(self.month)} (求解可能需要一分钟)"
        self.notice(Text(what, style="bold magenta"))
        self.say(what)
        self.draw_bar()
        self.refresh_bindings()
        self.run_worker(self.plan(self.month, publish, replan), group="plan", exclusive=True)

    async def plan(self, month: str, publish: bool, replan: bool) -> None:
        """POST the plan and show its outcome (or why no roster exists)."""
        try:
            result = await self.api.plan_roster(month, publish=publish, replan=replan)
        except ApiError as exc:
            title = "无法排出满足全部硬性规则的班表" if exc.code == "roster.infeasible" \
                else "排班失败"
            if exc.code == "roster.infeasible" and exc.reasons:
                self.notice(reasons_text(f"{title}, 原因:", exc.reasons))
            else:
                self.notice(reasons_text(f"{title}: {exc.message}", exc.reasons))
            self.say(f"{title}: {exc.message}", "bold red")
            return
        finally:
            self.planning_since = None
            self.draw_bar()
            self.refresh_bindings()
        status = SOLVER_STATUS.get(str(result.get("status")), str(result.get("status")))
        head = (f"{month_title(month)}: {status}, {result.get('assignments', 0)} 人次, "
                f"用时 {float(result.get('seconds') or 0):.1f} 秒")
        if replan and not publish:
            self.replan_preview = month
            text = (f"重排预览 {head}; 撤下 {len(result.get('removed') or [])} 处, "
                    f"排上 {len(result.get('added') or [])} 处 (尚未应用, 按 U 发布改动)")
        elif replan:
            self.replan_preview = None
            text = f"重排已发布 {head}"
        else:
            text = f"排班完成 {head}; 草稿已保存, 按 U 发布"
        self.notice(Text(text, style="bold green"))
        self.say(text, "green")
        if month == self.month:
            await self.reload()

    async def action_quit(self) -> None:
        """Leave."""
        await self.console.quit_console()


# --- the lawyer ----------------------------------------------------------------------------


class DutyStatus(Static):
    """The desk's one-line duty state (值班中 / 未到班次时间 / 班次已结束).

    Events change it at once; it also re-reads ``/roster/mine`` every ``REFRESH`` seconds,
    because the server sends ``duty`` only when a lawyer's eligibility changes (a roster
    coming into force while they are on duty changes nothing for them) and the current /
    next shift move on with the clock.
    """

    EVENTS = ("duty", "shift_start", "shift_end", "follow_up")
    REFRESH = 60.0

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__("", id=id)
        self.duty: dict[str, Any] | None = None
        self.shifts: list[dict[str, Any]] = []
        self.handover: list[dict[str, Any]] = []  # notes given at the last shift start
        self.known = False  # the server answered /roster/mine
        self.api: ApiClient | None = None

    def on_mount(self) -> None:
        """Keep the line current."""
        self.set_interval(self.REFRESH, self._refresh)

    async def _refresh(self) -> None:
        if self.api is not None:
            await self.reload(self.api)

    def show(self) -> None:
        """Redraw the line."""
        self.update(duty_line(self.duty, self.shifts, hint=True) if self.known else "")

    async def reload(self, api: ApiClient) -> None:
        """My shifts and duty from the server (quietly: an old server has no roster)."""
        self.api = api
        try:
            mine = await api.roster_mine()
        except ApiError:
            return
        self.known = True
        self.duty = mine.get("duty")
        self.shifts = list(mine.get("shifts") or [])
        self.show()

    def event(self, event: dict[str, Any], me: str) -> list[tuple[str, str]]:
        """Apply a roster event; the lines to say in the desk's log (text, style)."""
        kind = event.get("type")
        if event.get("work_id") not in (None, me):
            return []
        said: list[tuple[str, str]] = []
        if kind in ("duty", "shift_start"):
            self.known = True
            self.duty = {k: event.get(k) for k in ("in_force", "on_duty", "eligible",
                                                   "leaving", "lines", "shifts")}
            if event.get("shifts") is not None and not self.shifts:
                self.shifts = list(event["shifts"])
        if kind == "duty":
            state, style = duty_state(self.duty)
            said.append((f"值班状态: {state}", style or "yellow"))
        elif kind == "shift_start":
            self.handover = list(event.get("handover") or [])
            said.append(("班次开始, 现在可以接听来电", "bold green"))
            if self.handover:
                said.append((f"上一班的交接班记录 ({len(self.handover)} 条):", "bold"))
                said += [(line.plain, "cyan") for line in handover_lines(self.handover)]
            else:
                said.append(("上一班没有留下交接班记录", "dim"))
        elif kind == "shift_end":
            self.duty = {**(self.duty or {}), "leaving": False, "on_duty": False,
                         "ended": True}
            self.shifts = [s for s in self.shifts
                           if datetime.fromisoformat(str(s["end"])) > datetime.now(UTC)]
            said.append(("值班结束: 班次已结束, 您已被自动签出 (别忘了写交接班记录, 按 S)",
                         "bold yellow"))
        elif kind == "follow_up":
            said.append((follow_up_text(event), "bold yellow"))
        self.show()
        return said


class MyShifts(Vertical):
    """A lawyer's coming shifts, their swap requests, and the handover note form."""

    DEFAULT_CSS = """
    MyShifts { height: auto; }
    MyShifts #my_shifts { height: auto; max-height: 12; }
    MyShifts TextArea { height: 5; }
    MyShifts Label { margin-top: 1; }
    MyShifts .row { height: auto; }
    MyShifts .row Input { width: 1fr; }
    MyShifts #my_swaps, MyShifts #notes { height: auto; }
    """

    def __init__(self, api: ApiClient, work_id: str,
                 handover: list[dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.api = api
        self.work_id = work_id
        self.mine: dict[str, Any] = {}
        self.given = list(handover or [])

    def compose(self) -> ComposeResult:
        """Duty, shifts, the swap form, the handover form."""
        yield Static("", id="duty_state")
        yield Label("即将到来的班次 (选中一行后可申请换班)")
        yield DataTable(id="my_shifts", cursor_type="row")
        yield Label("申请换班: 把选中的班次让给同事 (可同时换来对方的一个班次)")
        with Horizontal(classes="row"):
            yield Input(id="swap_to", placeholder="接班律师工号")
            yield Input(id="swap_take", placeholder="换来对方的班次 (可不填), 如 2026-12-05/main/E")
        yield Input(id="swap_note", placeholder="备注 (原因)")
        with Horizontal(classes="buttons"):
            yield Button("申请换班", id="ask_swap", variant="primary")
        yield Static("", id="swap_result")
        yield Static("", id="my_swaps")
        yield Label("交接班记录 (写给下一班的同事)")
        yield TextArea(id="handover_text")
        with Horizontal(classes="buttons"):
            yield Button("提交交接班记录", id="send_handover")
        yield Static("", id="handover_result")
        yield Static("", id="notes")

    async def on_mount(self) -> None:
        """Columns, then the first load."""
        table = self.query_one("#my_shifts", DataTable)
        for key, name in (("date", "日期"), ("time", "时间"), ("shift", "班次"),
                          ("line", "线路"), ("remote", "方式")):
            table.add_column(name, key=key)
        await self.load()

    async def load(self) -> None:
        """My shifts, my swap requests and the last day's handover notes."""
        try:
            await self._load()
        except NoMatches:  # the form was closed before the replies came
            pass

    async def _load(self) -> None:
        try:
            self.mine = await self.api.roster_mine()
        except ApiError as exc:
            self.query_one("#duty_state", Static).update(Text(exc.message, style="bold red"))
            return
        shifts = list(self.mine.get("shifts") or [])
        self.query_one("#duty_state", Static).update(duty_line(self.mine.get("duty"), shifts))
        table = self.query_one("#my_shifts", DataTable)
        table.clear()
        for s in shifts:
            start = datetime.fromisoformat(str(s["start"]))
            end = datetime.fromisoformat(str(s["end"]))
            table.add_row(f"{start:%m-%d} {WEEKDAY_ZH[start.weekday()]}",
                          f"{start:%H:%M}–{end:%H:%M}", f"{s.get('name') or ''} {s['code']}",
                          str(s["line"]), "远程" if s.get("remote") else "到岗",
                          key=slot_id_of(s))
        if not shifts:
            self.query_one("#swap_result", Static).update(Text("近期没有排班", style="dim"))
        await self.load_swaps()
        try:
            notes = await self.api.handovers(hours=24)
        except ApiError:
            notes = []
        notes = self.given + [n for n in notes if n not in self.given]
        body = Text("最近的交接班记录:\n", style="bold") if notes else Text("")
        body.append(Text("\n").join(handover_lines(notes)))
        self.query_one("#notes", Static).update(body)

    async def load_swaps(self) -> None:
        """My swap requests and their decisions."""
        try:
            swaps = await self.api.swaps()
        except ApiError:
            return
        if not self.is_attached:
            return
        if not swaps:
            self.query_one("#my_swaps", Static).update("")
            return
        table = Table(title="我的换班申请", expand=True)
        for name in ("编号", "班次", "对方", "换来", "状态"):
            table.add_column(name, overflow="fold")
        for s in swaps[:8]:
            other = s["to_work_id"] if s["requested_by"] == self.work_id \
                else s["requested_by"]
            table.add_row(str(s["id"]), str(s.get("slot") or s.get("slot_id")), other,
                          str(s.get("take_slot") or "—"),
                          SWAP_STATUS.get(str(s["status"]), str(s["status"])))
        self.query_one("#my_swaps", Static).update(table)

    def selected(self) -> str | None:
        """The slot id of the shift under the cursor."""
        table = self.query_one("#my_shifts", DataTable)
        if table.row_count == 0:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    @on(Button.Pressed, "#ask_swap")
    async def ask_swap(self) -> None:
        """Send the swap request for the selected shift."""
        out = self.query_one("#swap_result", Static)
        slot_id = self.selected()
        to = self.query_one("#swap_to", Input).value.strip()
        take = self.query_one("#swap_take", Input).value.strip() or None
        if slot_id is None:
            out.update(Text("请先选中要让出的班次", style="bold red"))
            return
        if not to:
            out.update(Text("请填写接班律师工号", style="bold red"))
            return
        try:
            reply = await self.api.request_swap(slot_id, to, take,
                                                self.query_one("#swap_note", Input).value)
        except ApiError as exc:
            out.update(reasons_text("无法申请换班, 原因:" if exc.reasons else exc.message,
                                    exc.reasons))
            return
        out.update(Text(f"换班申请 #{reply.get('id')} 已提交, 等待排班员审批", style="bold green"))
        self.query_one("#swap_to", Input).value = ""
        self.query_one("#swap_take", Input).value = ""
        self.query_one("#swap_note", Input).value = ""
        await self.load_swaps()

    def handover_line(self) -> str:
        """The line my note is for: my current shift's, else my next one's, else main."""
        duty = self.mine.get("duty") or {}
        if duty.get("lines"):
            return str(duty["lines"][0])
        shifts = self.mine.get("shifts") or []
        return str(shifts[0]["line"]) if shifts else "main"

    @on(Button.Pressed, "#send_handover")
    async def send_handover(self) -> None:
        """Write the handover note."""
        out = self.query_one("#handover_result", Static)
        area = self.query_one("#handover_text", TextArea)
        text = area.text.strip()
        if not text:
            out.update(Text("请填写交接班记录", style="bold red"))
            return
        line = self.handover_line()
        try:
            await self.api.write_handover(text, line)
        except ApiError as exc:
            out.update(Text(exc.message, style="bold red"))
            return
        area.text = ""
        out.update(Text(f"交接班记录已保存 [{line}], 下一班开始时会看到", style="bold green"))
        await self.load()


class MyShiftsScreen(ModalScreen[None]):
    """我的班次: the lawyer's shifts, swap requests and handover notes (Esc closes)."""

    DEFAULT_CSS = """
    MyShiftsScreen { align: center middle; }
    MyShiftsScreen > VerticalScroll { width: 110; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "关闭"),
        Binding("f5", "reload", "刷新"),
    ]

    def __init__(self, api: ApiClient, work_id: str,
                 handover: list[dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.shifts = MyShifts(api, work_id, handover)
        self.work_id = work_id

    def compose(self) -> ComposeResult:
        """The panel in a scrolling form."""
        with VerticalScroll(classes="form"):
            yield Label(f"我的班次 — {self.work_id}", classes="title")
            yield self.shifts
        yield Footer()

    async def action_reload(self) -> None:
        """Refresh."""
        await self.shifts.load()

    def action_close(self) -> None:
        """Back to the desk."""
        self.dismiss(None)
