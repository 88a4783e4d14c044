"""Pure text for the console's panels: labels, durations, the call card, the queue summary.

No Textual here, so each piece is tested on plain dicts (the API's JSON).
"""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from hotline.domain import AgentState, AgentStatus, Category, GreenReason, Priority

CALL_STATES = {"ivr": "语音导航", "queued": "排队中", "talking": "通话中", "held": "保持中",
               "consulting": "咨询转接中", "conference": "三方通话"}
OFFER_GONE = {"rejected": "已拒接", "no_answer": "超时未接", "caller_gone": "来电人已挂机",
              "answered_elsewhere": "已由其他律师接听", "overflow": "来电已转出队列",
              "caller_hangup": "来电人已挂机"}


LEG_STATES = {"up": "通话中", "ringing": "振铃中"}
_PARTIES = (("consult", "咨询方"), ("transfer", "转接方"), ("lawyer", "律师"),
            ("caller", "来电人"))


def _party(leg: str) -> str:
    """A leg's name as the lawyer reads it (``lawyer1`` → 律师)."""
    return next((name for prefix, name in _PARTIES if leg.startswith(prefix)), leg)


def label(enum: Any, value: str | None, default: str = "—") -> str:
    """The Chinese label of an enum value from the API (the value itself if unknown)."""
    if not value:
        return default
    try:
        return str(enum(value).label)
    except ValueError:
        return value


def duration(seconds: float) -> str:
    """``75`` → ``01:15``; an hour or more → ``1:01:15``."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def status_line(agent: dict[str, Any] | None, in_state: float, connected: bool) -> Text:
    """签入状态 | 坐席状态 and time in it | calls today | missed."""
    if agent is None or agent.get("status") == "logged_out":
        line = Text("未签入 — 按 F2 签入开始接听", style="bold yellow")
    else:
        status = label(AgentStatus, agent.get("status"))
        if agent.get("status") == "on_break" and agent.get("break_reason"):
            reason = agent["break_reason"]
            status += f" ({'连续漏接' if reason == 'missed_offers' else reason})"
        line = Text.assemble(
            ("签入: ", "dim"), (status, "bold green" if agent.get("status") == "available"
                                else "bold yellow"),
            ("  坐席: ", "dim"), (label(AgentState, agent.get("state")), "bold"),
            f" {duration(in_state)}",
            ("  今日接听: ", "dim"), str(agent.get("calls", 0)),
            ("  连续漏接: ", "dim"), str(agent.get("missed", 0)))
    if not connected:
        line.append("  [离线]", style="bold red")
    return line


def queue_summary(stats: dict[str, Any] | None) -> Text:
    """One line: callers waiting per queue (longest wait) and lawyers free / busy."""
    if not stats:
        return Text("排队情况: 暂无数据", style="dim")
    parts = Text("排队: ", style="dim")
    for i, q in enumerate(stats.get("queues", {}).values()):
        if i:
            parts.append(" · ", style="dim")
        waiting = int(q.get("waiting", 0))
        parts.append(f"{q.get('name')} {waiting} 人", style="bold red" if waiting else "")
        if waiting:
            parts.append(f" (最长 {duration(q.get('longest', 0))})")
    agents = stats.get("agents", {})
    free = agents.get("idle", 0)
    busy = sum(v for k, v in agents.items() if k in ("in_call", "ringing", "reserved",
                                                     "wrap_up"))
    parts.append(f"   律师: 空闲 {free} · 忙 {busy} · 小休 {agents.get('on_break', 0)}",
                 style="dim")
    return parts


def call_card(offer: dict[str, Any] | None, call: dict[str, Any] | None,
              talk_seconds: float | None) -> RenderableType:
    """The incoming call card (an offer) or the call in progress, with the caller's facts."""
    facts = offer or call
    if facts is None:
        return Text("当前没有来电。", style="dim")
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim", no_wrap=True)
    table.add_column()
    if call is not None:
        state = CALL_STATES.get(str(call.get("state")), str(call.get("state")))
        title = Text.assemble(("当前通话  ", "bold green"), state,
                              f"  {duration(talk_seconds or 0)}")
    else:
        what = "回拨任务 (接通您后再呼叫来电人)" if facts.get("kind") == "callback" else "新来电"
        how = "按 A 接听, R 拒接" if offer is not None and offer.get("accept") == "console" \
            else "请在话机上接听 (R 拒接)"
        title = Text(f"{what} — {how}", style="bold reverse yellow")
    table.add_row("来电号码", str(facts.get("caller", "")))
    table.add_row("工单号", str(facts.get("ticket_no", "")))
    if facts.get("region"):
        table.add_row("地区", str(facts["region"]))
    table.add_row("热线/队列", f"{facts.get('line', '')} / {facts.get('queue', '')}")
    if facts.get("repeat"):
        table.add_row("来电记录", Text("近期来电过 (首问负责)", style="bold"))
    priority = label(Priority, facts.get("priority"))
    reasons = facts.get("green_reasons") or []
    if isinstance(reasons, str):
        reasons = [reasons]
    if reasons:
        priority += " (" + "、".join(label(GreenReason, r) for r in reasons) + ")"
    table.add_row("优先级", Text(priority, style="bold red" if facts.get("priority") not in
                                (None, "normal") else ""))
    if facts.get("category"):
        table.add_row("所选类别", label(Category, facts.get("category")))
    if facts.get("ivr_path"):
        table.add_row("语音导航", " → ".join(str(p).split("/")[-1]
                                         for p in facts["ivr_path"][-6:]))
    if facts.get("waited") is not None and call is None:
        table.add_row("已等待", duration(facts.get("waited", 0)))
    if call is not None and call.get("legs"):
        legs = "、".join(f"{_party(n)} ({LEG_STATES.get(s, s)})"
                        for n, s in call["legs"].items() if s != "ended")
        if legs:
            table.add_row("通话方", legs)
    return Group(title, table)


def history_table(history: list[dict[str, Any]] | None) -> RenderableType:
    """The caller's earlier tickets with the answers they were given."""
    if not history:
        return Text("来电人历史工单: 无", style="dim")
    table = Table(title="来电人历史工单", expand=True, show_lines=False)
    for name in ("日期", "类别", "事项", "答复意见", "律师", "状态"):
        table.add_column(name, overflow="fold")
    for item in history[:5]:
        if "summary" not in item:
            table.add_row(str(item.get("created_at", ""))[:10], "(保密工单)", "", "", "", "")
            continue
        table.add_row(str(item.get("created_at", ""))[:10],
                      str(item.get("category_label") or "—"),
                      str(item.get("summary") or "—"), str(item.get("answer") or "—"),
                      str(item.get("lawyer_name") or item.get("lawyer") or "—"),
                      str(item.get("status_label") or ""))
    return table


# --- speech: captions, urgency, the draft ticket ----------------------------------------

SPEAKERS = {"caller": "来电人", "lawyer": "律师"}
URGENCY = {"self_harm": "自伤/自杀风险", "violence": "暴力", "threat": "人身威胁",
           "domestic_violence": "家庭暴力", "child_danger": "儿童处于危险",
           "medical": "伤病急救"}
CAPTIONS_OFF = {"at capacity": "实时转写已满负荷", "speech service": "语音服务未连接",
                "no model": "本线路未配置语音模型", "语音模型": "未安装语音模型",
                "关闭": "实时转写已关闭"}


def caption_line(event: dict[str, Any]) -> Text:
    """One finished utterance: ``[来电人 01:23] text``."""
    who = SPEAKERS.get(str(event.get("speaker")), str(event.get("speaker")))
    start = float(event.get("start") or 0.0)
    style = "cyan" if event.get("speaker") == "caller" else "green"
    return Text.assemble((f"[{who} {duration(start)}] ", style), str(event.get("text", "")))


def partial_line(partials: dict[str, str]) -> Text:
    """The utterances in progress, one line per speaker (dim)."""
    lines = [Text.assemble((f"{SPEAKERS.get(s, s)}: ", "bold"), (t, "dim"))
             for s, t in partials.items() if t]
    return Text("\n").join(lines) if lines else Text("")


def captions_off_text(why: str) -> str:
    """Why this call has no live captions, for the lawyer."""
    reason = next((text for key, text in CAPTIONS_OFF.items() if key in why), "实时转写不可用")
    return f"本通话未开启实时字幕 ({reason}); 通话结束后将批量转写"


def urgency_text(event: dict[str, Any]) -> str:
    """An urgency alert with the suggested transfer."""
    flags = "、".join(URGENCY.get(str(f), str(f)) for f in event.get("flags") or ())
    transfers = "/".join(str(t) for t in event.get("transfers") or ())
    hint = f", 建议转接 {transfers} (按 T 转接外线)" if transfers else ""
    return f"紧急情况提示: {flags}{hint} — 已通知管理人员"


def draft_prefill(draft: dict[str, Any] | None, catalog: dict[str, Any]) -> dict[str, Any]:
    """Wrap-up fields from the transcript's draft (only what the catalogue knows)."""
    if not draft:
        return {}
    items = {i["code"]: i for g in catalog.get("categories", []) for i in g["items"]}
    out: dict[str, Any] = {}
    category = draft.get("category")
    if category in items:
        out["category"] = category
        sub = draft.get("subcategory")
        if sub in (items[category].get("subcategories") or ()):
            out["subcategory"] = sub
    summary = str(draft.get("summary") or "").strip()
    if summary:
        out["summary"] = summary
    return out


def draft_note(draft: dict[str, Any] | None) -> str:
    """What the form was pre-filled from, and the flags, for the lawyer to check."""
    if not draft:
        return ""
    parts = ["已按通话转写预填类别和事项, 请核对修改后提交"]
    category = draft.get("category")
    if category:
        parts.append(f"建议类别: {label(Category, str(category))}")
    flags = [URGENCY.get(str(f.get("kind") if isinstance(f, dict) else f), str(f))
             for f in draft.get("urgency") or ()]
    if flags:
        parts.append("紧急提示: " + "、".join(flags))
    return "; ".join(parts)
