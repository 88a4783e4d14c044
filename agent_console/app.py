"""The Textual console (``hotline console``): duty lawyers' desk and the supervisors' wallboard.

Simplified Chinese, keyboard only (every action has a key, shown in the footer). One
:class:`ConsoleApp` per user: a login screen, then by role the lawyer's
:class:`DeskScreen`, the supervisor's :class:`WallboardScreen` or the scheduler's
:class:`~agent_console.roster_view.SchedulerScreen`. The event stream runs in a
Textual worker and reconnects by itself; the screens say when the server is gone and
refresh when it is back. Modal forms: :class:`TransferScreen` and :class:`WrapUpScreen`
(kept on disk as a draft on every change, see :mod:`agent_console.drafts`).
"""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import date
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    RadioButton,
    RadioSet,
    RichLog,
    Select,
    Static,
    TextArea,
    Tree,
)

from agent_console.client import ApiClient, ApiError
from agent_console.drafts import DraftStore, default_state_dir
from agent_console.roster_view import (
    DutyStatus,
    MyShiftsScreen,
    SchedulerScreen,
    alert_text,
    follow_up_text,
)
from agent_console.screen import MainScreen
from agent_console.softphone import (
    Headset,
    SilentHeadset,
    Softphone,
    SoftphoneEvent,
    SoundDeviceHeadset,
    local_address_towards,
)
from agent_console.view import (
    OFFER_GONE,
    call_card,
    caption_line,
    captions_off_text,
    draft_note,
    draft_prefill,
    duration,
    history_table,
    label,
    partial_line,
    queue_summary,
    status_line,
    urgency_text,
)
from hotline.domain import AgentState, AgentStatus, Category, Disposition
from hotline.store.tickets import WrapUp, problems

CSS = """
#banner { background: $error; color: $text; padding: 0 1; display: none; }
#banner.shown { display: block; }
#banner.back { background: $success; }
#status, #queues, #duty { padding: 0 1; height: 1; }
#card { border: round $accent; padding: 0 1; height: auto; min-height: 8; }
#history { height: auto; max-height: 12; }
#phrases { width: 40%; border: round $secondary; display: none; }
#phrases.shown { display: block; }
#log { height: 7; border: round $panel; }
#captions { height: 8; border: round $success; }
#partial { height: auto; max-height: 2; padding: 0 1; }
.form { width: 90; height: auto; max-height: 95%; border: thick $accent;
        background: $surface; padding: 1 2; }
.form Label { margin-top: 1; }
.errors { color: $error; height: auto; }
.buttons { height: auto; margin-top: 1; }
.phone_choice { height: auto; }
#category_tree { height: 12; }
WrapUpScreen TextArea { height: 5; }
LoginScreen, TransferScreen, WrapUpScreen { align: center middle; }
"""

STATUS_LABEL = {"available": "示闲", "on_break": "小休"}


class LoginScreen(Screen[None]):
    """Work id and password; lawyers also give the phone and how they accept calls."""

    def __init__(self, work_id: str, phone: str, accept_in_console: bool,
                 softphone: bool = False) -> None:
        super().__init__()
        self.work_id, self.phone, self.accept = work_id, phone, accept_in_console
        self.softphone = softphone

    def compose(self) -> ComposeResult:
        with Vertical(classes="form"):
            yield Label("12348 公共法律服务热线 — 工作台登录", classes="title")
            yield Label("工号")
            yield Input(self.work_id, id="work_id")
            yield Label("密码")
            yield Input(password=True, id="password")
            with Vertical(classes="phone_choice") as choice:
                choice.display = not self.softphone
                yield Label("话机 SIP 地址 (律师; 留空使用账号中登记的话机)")
                yield Input(self.phone, id="phone", placeholder="sip:8001@192.168.1.20")
                yield Checkbox("在工作台接听 (按 A 接听后呼叫话机, 话机须自动应答)",
                               self.accept, id="accept")
            if self.softphone:
                yield Label("话机: 工作台内置软电话 (耳机)")
            yield Static("", id="login_error", classes="errors")
            with Horizontal(classes="buttons"):
                yield Button("登录", id="login", variant="primary")
                yield Button("退出", id="quit")

    def on_mount(self) -> None:
        self.query_one("#password" if self.work_id else "#work_id", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#login")
    async def submit(self) -> None:
        """Log in with what is typed."""
        work_id = self.query_one("#work_id", Input).value.strip()
        password = self.query_one("#password", Input).value
        error = self.query_one("#login_error", Static)
        if not work_id or not password:
            error.update("请输入工号和密码")
            return
        app = self.console
        try:
            await app.log_in(work_id, password, self.query_one("#phone", Input).value.strip(),
                             self.query_one("#accept", Checkbox).value)
        except ApiError as exc:
            error.update(exc.message)
            self.query_one("#password", Input).value = ""

    @on(Button.Pressed, "#quit")
    def quit_app(self) -> None:
        """Leave the console."""
        self.app.exit()

    @property
    def console(self) -> ConsoleApp:
        """The app, typed."""
        assert isinstance(self.app, ConsoleApp)
        return self.app


class DeskScreen(MainScreen):
    """The duty lawyer's desk."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "sign", "签入/签出"),
        Binding("f3", "pause", "示闲/小休"),
        Binding("a", "accept", "接听"),
        Binding("r", "reject", "拒接"),
        Binding("h", "hold", "保持/恢复"),
        Binding("t", "transfer", "转接"),
        Binding("o", "complete", "完成转接"),
        Binding("n", "cancel", "取消转接"),
        Binding("c", "conference", "三方"),
        Binding("x", "hangup", "挂断"),
        Binding("w", "wrapup", "话后整理"),
        Binding("p", "phrases", "服务用语"),
        Binding("s", "my_shifts", "我的班次"),
        Binding("ctrl+q", "quit", "退出"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.agent: dict[str, Any] | None = None
        self.agent_since = time.monotonic()
        self.offer: dict[str, Any] | None = None
        self.call: dict[str, Any] | None = None
        self.call_since = time.monotonic()
        self.facts: dict[str, dict[str, Any]] = {}  # offer facts by call key
        self.history: list[dict[str, Any]] | None = None
        self.stats: dict[str, Any] | None = None
        self.wrap_due: list[str] = []  # tickets of ended calls not yet wrapped up
        self.partials: dict[str, str] = {}  # live caption in progress, by speaker
        self.captions_note = ""

    def compose(self) -> ComposeResult:
        yield Header(show_clock=True)
        yield Static("", id="banner")
        yield Static("", id="status")
        yield DutyStatus(id="duty")
        yield Static("", id="queues")
        with Horizontal():
            with VerticalScroll():
                yield Static("", id="card")
                yield Static("", id="history")
            yield RichLog(id="phrases", wrap=True, markup=False)
        yield RichLog(id="captions", wrap=True, markup=False)
        yield Static("", id="partial")
        yield RichLog(id="log", wrap=True)
        yield Footer()

    async def on_mount(self) -> None:
        me = self.console.me
        self.title = "12348 值班律师工作台"
        self.sub_title = f"{me.get('name', '')} ({me.get('work_id', '')})"
        self.query_one("#captions", RichLog).border_title = "实时字幕"
        phrases = self.query_one("#phrases", RichLog)
        phrases.border_title = "服务用语"
        for item in self.console.catalog.get("phrases", []):
            phrases.write(Text.assemble((f"【{item['title']}】", "bold"), f"\n{item['text']}\n"))
        banned = self.console.catalog.get("banned", [])
        if banned:
            phrases.write(Text("禁语: " + "、".join(banned), style="red"))
        self.set_interval(1.0, self.refresh_panels)
        if self.console.softphone is not None:
            self.say(f"软电话: {self.console.softphone.uri} "
                     f"({self.console.softphone.headset.name})", "green")
        if self.console.softphone_note:
            self.say(self.console.softphone_note, "bold red")
        self.wrap_due = self.console.drafts.pending()
        if self.wrap_due:
            self.say(f"有 {len(self.wrap_due)} 张未提交的话后整理草稿, 按 W 继续", "yellow")
        await self.reload()
        if (self.agent or {}).get("status") in (None, "logged_out"):
            await self.action_sign()  # logging in to the console signs in to the desk

    # --- state from the server ----------------------------------------------------------

    async def reload(self) -> None:
        """Fetch the desk, my calls and the queues (after login and reconnection)."""
        agent = await self.run_api("GET", "/agent")
        if agent is not None:
            self.set_agent(agent)
        await self.reload_calls()
        stats = await self.run_api("GET", "/stats")
        if stats is not None:
            self.stats = stats
        await self.query_one(DutyStatus).reload(self.api)
        self.refresh_panels()

    async def reload_calls(self) -> None:
        """My live calls from the server (the truth after any call event)."""
        mine = await self.run_api("GET", "/calls/mine")
        if mine is None:
            return
        before = self.call
        self.call = mine[0] if mine else None
        if self.call is not None:
            key = self.call["call"]
            if before is None or before.get("call") != key:
                self.call_since = time.monotonic()
                if self.offer is not None and self.offer.get("call") == key:
                    self.offer = None
                if self.history is None:
                    await self.load_history(key)
        self.refresh_bindings()
        self.refresh_panels()

    async def load_history(self, key: str) -> None:
        """The caller's earlier tickets, shown under the card."""
        self.history = await self.run_api("GET", f"/calls/{key}/history") or []
        self.refresh_panels()

    def set_agent(self, agent: dict[str, Any]) -> None:
        """A new desk state."""
        if self.agent is None or self.agent.get("state") != agent.get("state") or \
                self.agent.get("status") != agent.get("status"):
            self.agent_since = time.monotonic()
        self.agent = {**(self.agent or {}), **agent}
        self.refresh_bindings()

    def refresh_panels(self) -> None:
        """Redraw status, queues, card (timers tick every second)."""
        now = time.monotonic()
        self.query_one("#status", Static).update(
            status_line(self.agent, now - self.agent_since, self.connected))
        self.query_one("#queues", Static).update(queue_summary(self.stats))
        facts = dict(self.facts.get(self.call["call"], {})) if self.call else {}
        shown_call = {**facts, **self.call} if self.call else None
        self.query_one("#card", Static).update(
            call_card(self.offer, shown_call, now - self.call_since))
        self.query_one("#history", Static).update(
            history_table(self.history) if (self.offer or self.call) else "")

    async def on_server_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        me = self.console.me.get("work_id")
        if kind == "hello":
            if event.get("agent"):
                self.set_agent(event["agent"])
            if event.get("offer"):
                await self.new_offer(event["offer"])
            await self.reload()
        elif kind == "agent" and event.get("work_id") == me:
            self.set_agent(event)
            if event.get("status") == "on_break" and event.get("break_reason") == \
                    "missed_offers":
                self.say("连续漏接来电, 已自动转为小休; 按 F3 恢复示闲", "bold red")
        elif kind == "offer":
            await self.new_offer(event)
        elif kind == "offer_gone":
            if self.offer is not None and self.offer.get("call") == event.get("call"):
                self.offer = None
                self.history = None if self.call is None else self.history
                reason = OFFER_GONE.get(str(event.get("reason")), str(event.get("reason")))
                self.say(f"来电 {event.get('call')} 不再分配给您: {reason}", "yellow")
        elif kind == "call":
            await self.reload_calls()
        elif kind == "call_ended":
            mine = self.call is not None and self.call.get("call") == event.get("call")
            await self.reload_calls()
            if mine:
                self.history = None
                self.say(f"通话结束 (工单 {event.get('ticket_no')})", "bold")
                ticket = str(event.get("ticket_no"))
                if ticket not in self.wrap_due:
                    self.wrap_due.append(ticket)
                if not isinstance(self.app.screen, ModalScreen):
                    self.open_wrapup(ticket)
        elif kind == "caller_history":
            current = self.offer or self.call
            if current is not None and current.get("call") == event.get("call"):
                self.history = list(event.get("tickets") or [])
        elif kind == "stats":
            self.stats = event
        elif kind in ("caption", "captions", "urgent", "draft"):
            self.speech_event(kind, event)
        elif kind in DutyStatus.EVENTS:
            for text, style in self.query_one(DutyStatus).event(event, me or ""):
                self.say(text, style)
        self.refresh_bindings()
        self.refresh_panels()

    def speech_event(self, kind: str, event: dict[str, Any]) -> None:
        """Live captions, captions on/off, an urgency alert, the transcript's draft."""
        captions = self.query_one("#captions", RichLog)
        if kind == "caption":
            speaker = str(event.get("speaker"))
            if event.get("final"):
                self.partials.pop(speaker, None)
                captions.write(caption_line(event))
            else:
                self.partials[speaker] = str(event.get("text") or "")
            self.query_one("#partial", Static).update(partial_line(self.partials))
        elif kind == "captions":
            self.partials.clear()
            self.query_one("#partial", Static).update("")
            if event.get("on"):
                captions.clear()
                captions.border_title = "实时字幕 (转写中)"
            else:
                captions.border_title = "实时字幕 (未开启)"
                self.say(captions_off_text(str(event.get("why") or "")), "yellow")
        elif kind == "urgent":
            self.app.bell()
            self.say(urgency_text(event), "bold red")
            captions.write(Text(urgency_text(event), style="bold red"))
        elif kind == "draft":
            ticket = str(event.get("ticket_no") or "")
            draft = event.get("draft") if isinstance(event.get("draft"), dict) else None
            self.console.suggestions[ticket] = draft or {}
            screen = self.app.screen
            if isinstance(screen, WrapUpScreen) and screen.ticket_no == ticket:
                screen.suggest(draft)

    async def new_offer(self, offer: dict[str, Any]) -> None:
        """An offer to me: show the card and the caller's history; ring the bell."""
        self.offer = offer
        self.facts[str(offer["call"])] = offer
        self.history = None
        self.app.bell()
        self.say(f"新来电 {offer.get('caller')} ({offer.get('queue')})", "bold yellow")
        await self.load_history(str(offer["call"]))

    # --- actions ------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Only what fits the moment is enabled (the rest shows dimmed in the footer)."""
        agent = self.agent or {}
        signed_in = agent.get("status") not in (None, "logged_out")
        state = self.call.get("state") if self.call else None
        allowed = {
            "sign": self.call is None,
            "pause": signed_in and self.call is None,
            "accept": self.offer is not None and self.offer.get("accept") == "console",
            "reject": self.offer is not None,
            "hold": state in ("talking", "held"),
            "transfer": state in ("talking", "held"),
            "complete": state == "consulting",
            "cancel": state == "consulting",
            "conference": state == "consulting",
            "hangup": state in ("talking", "held", "conference"),
            "wrapup": bool(self.wrap_due),
        }
        if action in allowed:
            return True if allowed[action] else None
        return True

    async def action_sign(self) -> None:
        """签入 / 签出."""
        if (self.agent or {}).get("status") in (None, "logged_out"):
            body: dict[str, Any] = {"accept_in_console": self.console.accept_in_console}
            if self.console.phone:
                body["phone"] = self.console.phone
            agent = await self.run_api("POST", "/agent/login", body, "已签入, 开始接听")
        else:
            agent = await self.run_api("POST", "/agent/logout", None, "已签出")
        if agent is not None:
            self.set_agent(agent)
        self.refresh_panels()

    async def action_pause(self) -> None:
        """示闲 ↔ 小休."""
        if (self.agent or {}).get("status") == "available":
            body = {"status": "on_break", "reason": "小休"}
        else:
            body = {"status": "available"}
        agent = await self.run_api("POST", "/agent/status", body,
                                   f"已{STATUS_LABEL[body['status']]}")
        if agent is not None:
            self.set_agent(agent)
        self.refresh_panels()

    async def action_accept(self) -> None:
        """Accept the offer: the server dials my phone."""
        if self.offer is not None:
            await self.run_api("POST", f"/offers/{self.offer['call']}/accept", None,
                               "已接听, 正在接通话机…")

    async def action_reject(self) -> None:
        """Decline the offer; the caller waits for another lawyer."""
        if self.offer is not None:
            key = self.offer["call"]
            if await self.run_api("POST", f"/offers/{key}/reject", None, "已拒接") is not None:
                self.offer = None
                self.refresh_panels()

    async def command(self, name: str, body: dict[str, Any] | None = None,
                      done: str = "") -> None:
        """A call control command for my current call."""
        if self.call is None:
            return
        reply = await self.run_api("POST", f"/calls/{self.call['call']}/{name}", body, done)
        if reply is not None:
            self.call = {**self.call, **reply}
            self.refresh_bindings()
            self.refresh_panels()

    async def action_hold(self) -> None:
        """Hold / unhold."""
        if self.call is not None and self.call.get("state") == "held":
            await self.command("unhold", done="已恢复通话")
        else:
            await self.command("hold", done="已保持, 来电人听等待音乐")

    def action_transfer(self) -> None:
        """Open the transfer form."""
        if self.call is None:
            return
        queues = list((self.stats or {}).get("queues", {}).items())
        self.app.push_screen(TransferScreen(queues), self._transfer_chosen)

    async def _transfer_chosen(self, body: dict[str, Any] | None) -> None:
        if body is not None:
            mode = "咨询转接" if body.get("attended") else "转接"
            await self.command("transfer", body, f"{mode}已发起")

    async def action_complete(self) -> None:
        """Attended transfer: hand the caller over."""
        await self.command("complete", done="转接完成")

    async def action_cancel(self) -> None:
        """Attended transfer: back to the caller."""
        await self.command("cancel", done="已取消转接, 恢复与来电人通话")

    async def action_conference(self) -> None:
        """Three-way conference."""
        await self.command("conference", done="三方通话已建立")

    async def action_hangup(self) -> None:
        """End the call."""
        await self.command("hangup", done="已挂断")

    def action_wrapup(self) -> None:
        """Open the wrap-up form for the oldest unfinished ticket."""
        if self.wrap_due:
            self.open_wrapup(self.wrap_due[0])

    def open_wrapup(self, ticket_no: str) -> None:
        """The wrap-up form of ``ticket_no``."""
        self.app.push_screen(WrapUpScreen(ticket_no), self._wrapped)

    def _wrapped(self, ticket_no: str | None) -> None:
        if ticket_no is not None and ticket_no in self.wrap_due:
            self.wrap_due.remove(ticket_no)
        self.refresh_bindings()

    def action_phrases(self) -> None:
        """Show / hide the standard phrases."""
        self.query_one("#phrases", RichLog).toggle_class("shown")

    def action_my_shifts(self) -> None:
        """我的班次: coming shifts, swap requests, handover notes."""
        self.app.push_screen(MyShiftsScreen(self.api, str(self.console.me.get("work_id", "")),
                                            self.query_one(DutyStatus).handover),
                             self._shifts_closed)

    async def _shifts_closed(self, _: None) -> None:
        await self.query_one(DutyStatus).reload(self.api)  # a swap or note may change it

    async def action_quit(self) -> None:
        """Leave (signing out of the desk first when no call is on)."""
        await self.console.quit_console()


class WallboardScreen(MainScreen):
    """The supervisor's wallboard: queues and every lawyer's desk."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "available", "设为示闲"),
        Binding("b", "pause", "设为小休"),
        Binding("f5", "reload", "刷新"),
        Binding("ctrl+q", "quit", "退出"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.stats: dict[str, Any] | None = None
        self._reload_pending = False

    def compose(self) -> ComposeResult:
        yield Header(show_clock=True)
        yield Static("", id="banner")
        yield Static("", id="board")
        yield DataTable(id="agents", cursor_type="row")
        yield RichLog(id="log", wrap=True)
        yield Footer()

    async def on_mount(self) -> None:
        me = self.console.me
        self.title = "12348 班长监控台"
        self.sub_title = f"{me.get('name', '')} ({me.get('work_id', '')})"
        table = self.query_one("#agents", DataTable)
        for name in ("工号", "签入状态", "坐席状态", "小休原因", "接听", "通话时长", "连续漏接",
                     "话机"):
            table.add_column(name, key=name)
        await self.reload()

    async def reload(self) -> None:
        """Fetch the queues and the lawyers."""
        self._reload_pending = False
        stats = await self.run_api("GET", "/stats")
        if stats is not None:
            self.stats = stats
            self.draw_board()
        agents = await self.run_api("GET", "/agents")
        if agents is None:
            return
        table = self.query_one("#agents", DataTable)
        keep = table.cursor_row
        table.clear()
        for a in agents:
            reason = a.get("break_reason") or ""
            table.add_row(a["work_id"], label(AgentStatus, a["status"]),
                          label(AgentState, a["state"]),
                          "连续漏接" if reason == "missed_offers" else reason,
                          str(a["calls"]), duration(a["talk_seconds"]), str(a["missed"]),
                          a["phone"], key=a["work_id"])
        if agents:
            table.move_cursor(row=min(keep, len(agents) - 1))

    def draw_board(self) -> None:
        """Queues: waiting callers and the longest wait."""
        board = Table(title=f"实时队列 (通话中 {(self.stats or {}).get('calls', 0)})",
                      expand=True)
        for name in ("队列", "排队人数", "最长等待"):
            board.add_column(name)
        for q in (self.stats or {}).get("queues", {}).values():
            board.add_row(str(q.get("name")), str(q.get("waiting", 0)),
                          duration(q.get("longest", 0)),
                          style="bold red" if q.get("waiting") else "")
        self.query_one("#board", Static).update(board)

    async def on_server_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "stats":
            self.stats = event
            self.draw_board()
        elif kind in ("agent", "hello") and not self._reload_pending:
            self._reload_pending = True
            self.set_timer(0.3, self.reload)
        elif kind == "urgent":  # heard in a caller's words: the supervisor is alerted at once
            self.app.bell()
            self.say(f"工单 {event.get('ticket_no')}: {urgency_text(event)}", "bold red")
        elif kind == "alert":  # the roster's watch: a shift nobody came to, an overdue ticket
            self.app.bell()
            self.say(alert_text(event), "bold red")
        elif kind == "follow_up":
            self.say(follow_up_text(event), "yellow")

    def selected(self) -> str | None:
        """The work id under the cursor."""
        table = self.query_one("#agents", DataTable)
        if table.row_count == 0:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    async def action_available(self) -> None:
        """Put the selected lawyer back to available (e.g. after missed offers)."""
        work_id = self.selected()
        if work_id:
            await self.run_api("POST", f"/agents/{work_id}/status", {"status": "available"},
                               f"已将 {work_id} 设为示闲")
            await self.reload()

    async def action_pause(self) -> None:
        """Put the selected lawyer on a break."""
        work_id = self.selected()
        if work_id:
            await self.run_api("POST", f"/agents/{work_id}/status",
                               {"status": "on_break", "reason": "班长设置"},
                               f"已将 {work_id} 设为小休")
            await self.reload()

    async def action_reload(self) -> None:
        """Refresh now."""
        await self.reload()

    async def action_quit(self) -> None:
        """Leave."""
        await self.console.quit_console()


class TransferScreen(ModalScreen[dict[str, Any] | None]):
    """Where to transfer: a lawyer by work id, a queue, or an outside number / SIP URI."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "取消")]

    def __init__(self, queues: list[tuple[str, dict[str, Any]]]) -> None:
        super().__init__()
        self.queues = queues

    def compose(self) -> ComposeResult:
        with Vertical(classes="form"):
            yield Label("转接来电")
            with RadioSet(id="kind"):
                yield RadioButton("值班律师 (工号)", value=True, id="lawyer")
                yield RadioButton("队列", id="queue")
                yield RadioButton("外线号码或 SIP 地址 (如 12345、110)", id="target")
            yield Label("律师工号 / 号码 / SIP 地址")
            yield Input(id="to", placeholder="8002 或 12345")
            yield Label("队列")
            yield Select([(str(q.get("name", code)), code) for code, q in self.queues],
                         prompt="选择队列", id="queue_choice")
            yield Checkbox("咨询转接 (先与对方通话, 再完成转接; 队列不适用)", id="attended")
            yield Static("", id="transfer_error", classes="errors")
            with Horizontal(classes="buttons"):
                yield Button("转接", id="go", variant="primary")
                yield Button("取消", id="cancel")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#to", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#go")
    def go(self) -> None:
        """Check the form and return the API body."""
        kind = self.query_one("#kind", RadioSet).pressed_button
        kind_id = kind.id if kind is not None else "lawyer"
        error = self.query_one("#transfer_error", Static)
        attended = self.query_one("#attended", Checkbox).value
        if kind_id == "queue":
            queue = self.query_one("#queue_choice", Select).value
            if queue is Select.NULL:
                error.update("请选择队列")
                return
            if attended:
                error.update("转到队列只能直接转接 (不能咨询转接)")
                return
            self.dismiss({"queue": str(queue)})
            return
        to = self.query_one("#to", Input).value.strip()
        if not to:
            error.update("请填写转接目标")
            return
        if kind_id == "lawyer" and not to.isalnum():
            error.update("律师工号只能包含字母和数字")
            return
        self.dismiss({"lawyer" if kind_id == "lawyer" else "target": to,
                      "attended": attended})

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Close without transferring."""
        self.dismiss(None)


class WrapUpScreen(ModalScreen[str | None]):
    """话后整理: the ticket's fields, checked before submitting, kept as a draft meanwhile."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "submit", "提交工单"),
        Binding("escape", "later", "稍后再填 (保留草稿)"),
    ]

    def __init__(self, ticket_no: str) -> None:
        super().__init__()
        self.ticket_no = ticket_no
        self.category: str | None = None
        self.subcategory: str | None = None
        self._loading = True
        self.edited = False

    @property
    def console(self) -> ConsoleApp:
        """The app, typed."""
        assert isinstance(self.app, ConsoleApp)
        return self.app

    def compose(self) -> ComposeResult:
        catalog = self.console.catalog
        with VerticalScroll(classes="form"):
            yield Label(f"话后整理 — 工单 {self.ticket_no}")
            yield Label("咨询类别 (回车选择)")
            tree: Tree[tuple[str, str | None]] = Tree("咨询类别", id="category_tree")
            tree.root.expand()
            for group in catalog.get("categories", []):
                branch = tree.root.add(group["group"], expand=True)
                for item in group["items"]:
                    node = branch.add(item["label"], data=(item["code"], None),
                                      expand=False, allow_expand=bool(item["subcategories"]))
                    for sub in item["subcategories"]:
                        node.add_leaf(sub, data=(item["code"], sub))
            yield tree
            yield Static("已选: 未选择", id="chosen")
            yield Label("处理结果")
            yield Select([(d.label, d.value) for d in Disposition], prompt="选择处理结果",
                         id="disposition")
            yield Label("事项 (来电人咨询的问题)")
            yield TextArea(id="summary")
            yield Label("答复意见")
            yield TextArea(id="answer")
            yield Label("转办 / 转介去向")
            yield Select([(r, r) for r in catalog.get("referrals", [])], prompt="无",
                         id="referral")
            yield Input(id="referral_ticket", placeholder="转办工单号 (例如 12345 工单号, 可不填)")
            yield Label("答复 / 回访日期 (YYYY-MM-DD, 约期答复默认 3 天内)")
            yield Input(id="follow_up", placeholder="2026-12-01")
            yield Label("来电人姓名 (可不填)")
            yield Input(id="caller_name")
            yield Checkbox("来电人不愿透露身份", id="declined")
            yield Checkbox("保密处理 (来电人要求保密)", id="confidential")
            yield Static("", id="wrap_errors", classes="errors")
            with Horizontal(classes="buttons"):
                yield Button("提交工单 (Ctrl+S)", id="submit", variant="primary")
                yield Button("稍后再填 (Esc)", id="later")
        yield Footer()

    def on_mount(self) -> None:
        draft = self.console.drafts.load(self.ticket_no)
        self.edited = bool(draft)
        if draft:
            self.fill(draft)
            self.query_one("#wrap_errors", Static).update("已恢复未提交的草稿")
        elif self.ticket_no in self.console.suggestions:
            self.suggest(self.console.suggestions[self.ticket_no])
        else:
            self.run_worker(self.fetch_draft(), group="draft")
        self._loading = False
        self.query_one("#category_tree", Tree).focus()

    async def fetch_draft(self) -> None:
        """The ticket's draft as the server holds it (transcribed live or in batch)."""
        try:
            body = await self.console.api.call("GET", f"/tickets/{self.ticket_no}/transcript")
        except ApiError:
            return  # no draft: the form stays empty, nothing else changes
        draft = body.get("draft") if isinstance(body, dict) else None
        if isinstance(draft, dict):
            self.console.suggestions.setdefault(self.ticket_no, draft)
            self.suggest(draft)

    def suggest(self, draft: dict[str, Any] | None) -> None:
        """Pre-fill from the transcript's draft, unless the lawyer has typed already."""
        fields = draft_prefill(draft, self.console.catalog)
        if self.edited or not fields:
            return
        self._loading = True
        try:
            self.fill({**self.fields(), **fields})
        finally:
            self._loading = False
        self.query_one("#wrap_errors", Static).update(draft_note(draft))

    # --- the form as a dict (the draft) ------------------------------------------------

    def fields(self) -> dict[str, Any]:
        """Everything typed so far."""
        disposition = self.query_one("#disposition", Select).value
        referral = self.query_one("#referral", Select).value
        return {
            "category": self.category, "subcategory": self.subcategory,
            "disposition": None if disposition is Select.NULL else disposition,
            "summary": self.query_one("#summary", TextArea).text,
            "answer": self.query_one("#answer", TextArea).text,
            "referral": None if referral is Select.NULL else referral,
            "referral_ticket": self.query_one("#referral_ticket", Input).value,
            "follow_up": self.query_one("#follow_up", Input).value,
            "caller_name": self.query_one("#caller_name", Input).value,
            "declined": self.query_one("#declined", Checkbox).value,
            "confidential": self.query_one("#confidential", Checkbox).value,
        }

    def fill(self, f: dict[str, Any]) -> None:
        """Put a draft back into the form."""
        self.choose(f.get("category"), f.get("subcategory"))
        if f.get("disposition") in {d.value for d in Disposition}:
            self.query_one("#disposition", Select).value = f["disposition"]
        self.query_one("#summary", TextArea).text = str(f.get("summary") or "")
        self.query_one("#answer", TextArea).text = str(f.get("answer") or "")
        referrals = set(self.console.catalog.get("referrals", []))
        if f.get("referral") in referrals:
            self.query_one("#referral", Select).value = f["referral"]
        for name in ("referral_ticket", "follow_up", "caller_name"):
            self.query_one(f"#{name}", Input).value = str(f.get(name) or "")
        self.query_one("#declined", Checkbox).value = bool(f.get("declined"))
        self.query_one("#confidential", Checkbox).value = bool(f.get("confidential"))

    def choose(self, category: str | None, subcategory: str | None) -> None:
        """Set the category (and subcategory) chosen in the tree."""
        self.category, self.subcategory = category, subcategory
        names = {i["code"]: (g["group"], i["label"])
                 for g in self.console.catalog.get("categories", []) for i in g["items"]}
        if category in names:
            group, name = names[category]
            shown = " › ".join(x for x in (group, name, subcategory) if x)
        else:
            shown = "未选择"
        self.query_one("#chosen", Static).update(f"已选: {shown}")

    @on(Tree.NodeSelected)
    def tree_choice(self, event: Tree.NodeSelected[tuple[str, str | None]]) -> None:
        """A category or subcategory picked in the tree."""
        if event.node.data is not None:
            self.choose(*event.node.data)
            self.keep()

    @on(Input.Changed)
    @on(TextArea.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    def keep(self) -> None:
        """Save the draft on every change."""
        if not self._loading:
            self.edited = True
            self.console.drafts.save(self.ticket_no, self.fields())

    # --- submit -------------------------------------------------------------------------

    def body(self) -> tuple[dict[str, Any] | None, list[str]]:
        """The API body, or the problems to fix first (the server's own rules)."""
        f = self.fields()
        errors: list[str] = []
        if f["disposition"] is None:
            return None, ["请选择处理结果"]
        follow_up = None
        if f["follow_up"].strip():
            try:
                follow_up = date.fromisoformat(f["follow_up"].strip())
            except ValueError:
                errors.append("日期格式应为 YYYY-MM-DD")
        referral = " ".join(x for x in (f["referral"] or "",
                                        f"工单号 {f['referral_ticket'].strip()}"
                                        if f["referral_ticket"].strip() else "") if x)
        body = {"disposition": f["disposition"], "category": f["category"],
                "subcategory": f["subcategory"], "summary": f["summary"].strip() or None,
                "answer": f["answer"].strip() or None, "referral_target": referral or None,
                "caller_name": f["caller_name"].strip() or None,
                "caller_declined_identity": f["declined"], "confidential": f["confidential"],
                "follow_up_on": follow_up.isoformat() if follow_up else None}
        wrap = WrapUp(disposition=Disposition(f["disposition"]),
                      category=None if f["category"] is None else Category(f["category"]),
                      summary=body["summary"], answer=body["answer"],
                      referral_target=body["referral_target"], follow_up_on=follow_up)
        errors += problems(wrap, date.today())
        return (None if errors else body), errors

    @on(Button.Pressed, "#submit")
    async def action_submit(self) -> None:
        """Validate, then send; a refusal or a dropped connection keeps the form."""
        out = self.query_one("#wrap_errors", Static)
        body, errors = self.body()
        if body is None:
            out.update("请先完善: " + "; ".join(errors))
            return
        self.console.drafts.save(self.ticket_no, self.fields())
        try:
            result = await self.console.api.call("PUT", f"/tickets/{self.ticket_no}/wrapup",
                                                 body)
        except ApiError as exc:
            if exc.offline:
                out.update("与服务器的连接中断: 表单已保存在本机, 连接恢复后请再次提交 (Ctrl+S)")
            else:
                out.update(exc.message)
            return
        self.console.drafts.drop(self.ticket_no)
        self.console.notify(f"工单 {self.ticket_no} 已提交 ({result.get('status_label', '')})")
        self.dismiss(self.ticket_no)

    @on(Button.Pressed, "#later")
    def action_later(self) -> None:
        """Close; the draft stays (W opens it again)."""
        self.console.drafts.save(self.ticket_no, self.fields())
        self.dismiss(None)


class ConsoleApp(App[None]):
    """One user's console against one server."""

    CSS = CSS
    TITLE = "12348 公共法律服务热线"

    def __init__(self, server: str, work_id: str = "", *, phone: str = "",
                 accept_in_console: bool = False, state_dir: Path | None = None,
                 api: ApiClient | None = None, softphone: bool = False,
                 softphone_host: str = "", headset: Headset | None = None,
                 audio_devices: tuple[str | int | None, str | int | None] = (None, None),
                 ) -> None:
        super().__init__()
        self.want_softphone = softphone
        self.softphone_host = softphone_host
        self.headset = headset
        self.audio_devices = audio_devices
        self.softphone: Softphone | None = None
        self.softphone_note = ""
        self.api = api or ApiClient(server)
        self.work_id = work_id
        self.phone = phone
        self.accept_in_console = accept_in_console
        self.state_dir = state_dir or default_state_dir()
        self.me: dict[str, Any] = {}
        self.catalog: dict[str, Any] = {}
        self.drafts = DraftStore(self.state_dir, work_id or "_")
        self.main: MainScreen | SchedulerScreen | None = None
        # Drafts of tickets from their transcripts (``draft`` events), by ticket number.
        self.suggestions: dict[str, dict[str, Any]] = {}

    def on_mount(self) -> None:
        self.push_screen(LoginScreen(self.work_id, self.phone, self.accept_in_console,
                                     self.want_softphone))

    async def log_in(self, work_id: str, password: str, phone: str, accept: bool) -> None:
        """Log in, load the catalogue, open the screen for the role, start the events."""
        self.me = await self.api.login(work_id, password)
        self.work_id, self.phone, self.accept_in_console = work_id, phone, accept
        self.drafts = DraftStore(self.state_dir, work_id)
        role = self.me.get("role")
        if role not in ("lawyer", "supervisor", "admin", "scheduler"):
            await self.api.logout()
            raise ApiError("console.role", f"{self.me.get('role_label', role)}没有坐席或监控界面")
        if role != "scheduler":
            self.catalog = await self.api.call("GET", "/desk/catalog")
        if role == "lawyer" and self.want_softphone and self.softphone is None:
            await self.start_softphone()
        self.main = DeskScreen() if role == "lawyer" else SchedulerScreen() \
            if role == "scheduler" else WallboardScreen()
        # Not awaited: this runs in a handler of the login screen being replaced.
        self.switch_screen(self.main)
        self.run_worker(self.pump_events(), group="events", exclusive=True)

    async def start_softphone(self) -> None:
        """Start the built-in softphone; the desk then dials it after each accept."""
        host = urlsplit(self.api.server).hostname or "127.0.0.1"
        server_ip = await asyncio.to_thread(_resolve, host)
        bind = self.softphone_host or await asyncio.to_thread(local_address_towards, host)
        headset = self.headset
        if headset is None:
            try:
                headset = SoundDeviceHeadset(*self.audio_devices)
            except (OSError, ImportError) as exc:  # no PortAudio / no sound device
                self.softphone_note = f"未找到声音设备 ({exc}), 软电话无声"
                headset = SilentHeadset()
        loop = asyncio.get_running_loop()
        phone = Softphone(self.work_id, bind, {server_ip, "127.0.0.1"} if server_ip in (
            "127.0.0.1", bind) else {server_ip}, headset,
            on_event=lambda e: loop.call_soon_threadsafe(self.softphone_event, e))
        try:
            await asyncio.to_thread(phone.start)
        except RuntimeError as exc:
            raise ApiError("console.softphone", str(exc)) from None
        self.softphone = phone
        self.phone, self.accept_in_console = phone.uri, True
        if phone.headset_error:
            self.softphone_note = f"声音设备无法打开 ({phone.headset_error}), 软电话无声"

    def softphone_event(self, event: SoftphoneEvent) -> None:
        """The softphone's news, on the app's loop."""
        main = self.main
        if main is None:
            return
        text = {"ready": f"软电话已就绪: {event.detail}",
                "answered": "软电话已接通, 请讲话",
                "ended": "软电话通话结束",
                "refused": f"软电话拒绝了一个非热线的呼叫 ({event.detail})"}.get(
                    event.kind, f"软电话: {event.kind} {event.detail}")
        main.say(text, "green" if event.kind in ("ready", "answered") else "")

    async def pump_events(self) -> None:
        """Feed the server's events to the main screen, forever."""
        async for event in self.api.events():
            main = self.main
            if main is None:
                return
            kind = event.get("type")
            if kind == "_connection":
                main.connection(bool(event["up"]), int(event["attempt"]))
            elif kind == "_auth_lost":
                main.say("登录已失效, 请退出后重新登录", "bold red")
                return
            else:
                try:
                    await main.on_server_event(event)
                except ApiError as exc:  # a follow-up REST call failed
                    main.say(exc.message, "bold red")

    async def quit_console(self) -> None:
        """Sign out of the desk (when no call is on) and the session, then leave."""
        main = self.main
        if isinstance(main, DeskScreen) and main.call is not None:
            main.say("通话进行中, 请先挂断或转接再退出", "bold red")
            return
        try:
            if isinstance(main, DeskScreen) and (main.agent or {}).get("status") not in (
                    None, "logged_out"):
                await self.api.call("POST", "/agent/logout")
            await self.api.logout()
        except ApiError:
            pass  # leaving anyway; the token expires by itself
        if self.softphone is not None:
            await asyncio.to_thread(self.softphone.stop)
            self.softphone = None
        self.exit()

    async def on_unmount(self) -> None:
        if self.softphone is not None:
            await asyncio.to_thread(self.softphone.stop)
            self.softphone = None
        await self.api.close()


def _resolve(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError:
        return host
