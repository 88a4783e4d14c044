"""The console's pure parts: panel text from API JSON, and drafts kept on disk."""

import io
import json

from rich.console import Console

from agent_console.drafts import DraftStore
from agent_console.view import call_card, duration, history_table, queue_summary, status_line


def _plain(renderable):
    console = Console(width=160, file=io.StringIO(), record=True)
    console.print(renderable)
    return console.export_text()


def test_durations():
    assert duration(0) == "00:00" and duration(75) == "01:15"
    assert duration(3675) == "1:01:15" and duration(-3) == "00:00"


def test_status_line_in_chinese_with_break_reason_and_offline_mark():
    text = status_line({"status": "on_break", "state": "idle", "break_reason": "missed_offers",
                        "calls": 3, "missed": 3}, 65, connected=False).plain
    assert "小休 (连续漏接)" in text and "空闲 01:05" in text and "今日接听: 3" in text
    assert "[离线]" in text
    assert "按 F2 签入" in status_line(None, 0, True).plain


def test_queue_summary_counts_only():
    stats = {"queues": {"general": {"name": "综合咨询", "waiting": 2, "longest": 35},
                        "labor": {"name": "劳动争议", "waiting": 0, "longest": 0}},
             "agents": {"idle": 1, "in_call": 2, "on_break": 1}}
    text = queue_summary(stats).plain
    assert "综合咨询 2 人 (最长 00:35)" in text and "劳动争议 0 人" in text
    assert "空闲 1 · 忙 2 · 小休 1" in text


def test_call_card_shows_masked_facts_and_how_to_answer():
    offer = {"call": "k1", "ticket_no": "12348-20261201-000001", "caller": "138****8000",
             "line": "12348", "queue": "labor", "priority": "green",
             "green_reasons": ["migrant_wages"], "category": "labor",
             "ivr_path": ["main/welcome", "main/menu", "main/labor"], "waited": 42,
             "accept": "console", "kind": "call"}
    text = _plain(call_card(offer, None, None))
    assert "新来电 — 按 A 接听" in text and "138****8000" in text
    assert "绿色通道 (农民工讨薪" in text and "劳动争议" in text
    assert "welcome → menu → labor" in text and "00:42" in text
    callback = _plain(call_card({**offer, "kind": "callback", "accept": "phone"}, None, None))
    assert "回拨任务" in callback and "请在话机上接听" in callback
    talking = _plain(call_card(None, {**offer, "state": "held",
                                      "legs": {"caller": "up", "lawyer1": "up"}}, 125))
    assert "保持中" in talking and "02:05" in talking and "律师 (通话中)" in talking


def test_history_hides_confidential_tickets():
    text = _plain(history_table([
        {"ticket_no": "A", "created_at": "2026-11-01T10:00:00+00:00"},
        {"ticket_no": "B", "created_at": "2026-10-01T10:00:00+00:00", "summary": "欠薪",
         "answer": "申请仲裁", "category_label": "劳动争议", "lawyer_name": "王律师",
         "status_label": "办结"}]))
    assert "(保密工单)" in text and "申请仲裁" in text and "王律师" in text


def test_drafts_survive_and_are_listed_in_order(tmp_path):
    store = DraftStore(tmp_path, "8001")
    store.save("12348-1", {"summary": "工资"})
    store.save("12348-2", {"summary": "离婚"})
    store.save("12348-1", {"summary": "工资被拖欠"})  # replaced, not duplicated
    again = DraftStore(tmp_path, "8001")  # a new console
    assert again.load("12348-1") == {"summary": "工资被拖欠"}
    assert set(again.pending()) == {"12348-1", "12348-2"}
    again.drop("12348-1")
    assert again.pending() == ["12348-2"] and again.load("12348-1") is None
    assert DraftStore(tmp_path, "8002").pending() == []  # another lawyer's drafts are apart
    bad = again.folder / "broken.json"
    bad.write_text("{not json")
    assert again.pending() == ["12348-2"]  # a damaged file is skipped, not fatal
    assert not list(again.folder.glob("*.tmp"))
    assert json.loads((again.folder / "12348-2.json").read_text())["ticket_no"] == "12348-2"
