"""The roster API (``/api/v1/roster``) on a real ledger (SQLite and PostgreSQL) with the real
solver: a scheduler plans and publishes a small month, lawyers see their own shifts and ask
for swaps, the scheduler approves or rejects them after every hard rule is checked; wrong
roles, wrong ids and bad input are refused without changing anything; every change is in
the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from hotline.api.app import create_app
from hotline.config import Settings, load_settings
from hotline.domain import Role
from hotline.store import roster as store_roster
from hotline.store.session import session_scope
from hotline.store.tables import AuditLog, RosterAssignment, RosterPlan, Shift
from hotline.store.users import add_user

PASSWORD = "correct-horse-1"
MONTH = "2026-12"  # 31 days from Tuesday 1 December: 62 shifts of one lawyer each
LAWYERS = ("L001", "L002", "L003", "L004", "L005")
REST = timedelta(hours=11)  # roster.min_rest_hours' default

# One line, two shifts a day, one lawyer each. A lawyer can never work both shifts of a day
# (no rest between them) nor B then the next day's A (8 hours of rest).
TEMPLATES = """\
lines:
  main: {name: 主线}
shifts:
  - {code: A, name: 白班, line: main, start: "08:00", end: "16:00", need: {lawyers: 1}}
  - {code: B, name: 晚班, line: main, start: "16:00", end: "24:00", need: {lawyers: 1}}
"""

# The day shift needs a criminal-law lawyer, and nobody has that skill.
CRIMINAL = TEMPLATES.replace("need: {lawyers: 1}}\n  - {code: B",
                             "need: {lawyers: 1, skills: {criminal: 1}}}\n  - {code: B")


def site_settings(folder: Path, templates: str) -> Settings:
    """A hotline.toml whose [roster] names a small templates file (and a short solve)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "shifts.yaml").write_text(templates, encoding="utf-8")
    config = folder / "hotline.toml"
    config.write_text('[roster]\ntemplates = "shifts.yaml"\nsolver_seconds = 2\n',
                      encoding="utf-8")
    return load_settings(config, environ={})


@dataclass
class Api:
    client: TestClient
    factory: sessionmaker[Session]
    settings: Settings
    tokens: dict[str, dict[str, str]]

    def get(self, path: str, who: str | None, **params: Any) -> Any:
        return self.client.get(f"/api/v1/roster{path}", params=params,
                               headers=self.tokens[who] if who else {})

    def post(self, path: str, who: str | None, body: dict[str, Any]) -> Any:
        return self.client.post(f"/api/v1/roster{path}", json=body,
                                headers=self.tokens[who] if who else {})


def make_api(factory: sessionmaker[Session], settings: Settings) -> Iterator[Api]:
    with session_scope(factory) as s:
        for work_id in LAWYERS:
            add_user(s, work_id, name=f"律师{work_id[-1]}", role=Role.LAWYER,
                     password=PASSWORD, skills=[("labor", 3), ("general", 3)])
        add_user(s, "S01", name="排班员", role=Role.SCHEDULER, password=PASSWORD)
        add_user(s, "G01", name="班长", role=Role.SUPERVISOR, password=PASSWORD)
    app = create_app(lambda: {}, factory, tz=settings.tz, settings=settings,
                     keeper=lambda: None)
    with TestClient(app) as client:
        tokens = {}
        for work_id in (*LAWYERS, "S01", "G01"):
            reply = client.post("/api/v1/login", json={"work_id": work_id,
                                                       "password": PASSWORD})
            assert reply.status_code == 200, reply.text
            tokens[work_id] = {"Authorization": f"Bearer {reply.json()['token']}"}
        yield Api(client, factory, settings, tokens)


@pytest.fixture
def api(factory: sessionmaker[Session], tmp_path: Path) -> Iterator[Api]:
    yield from make_api(factory, site_settings(tmp_path / "site", TEMPLATES))


def refused(reply: Any, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    body: dict[str, Any] = reply.json()
    assert body["code"] == code and isinstance(body["message"], str) and body["message"]
    return body


def grid(view: dict[str, Any]) -> set[tuple[str, str]]:
    return {(a["slot_id"], a["work_id"]) for a in view["assignments"]}


def too_close(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Independent of the product's checker: overlap or less than 11 h between two shifts."""
    first, second = sorted((a, b), key=lambda s: s["start"])
    return (datetime.fromisoformat(second["start"])
            < datetime.fromisoformat(first["end"]) + REST)


def free_colleagues(view: dict[str, Any], slot_id: str, giver: str) -> list[str]:
    """Lawyers with no shift within 11 h of ``slot_id`` (those who may take it over)."""
    slots = {s["id"]: s for s in view["slots"]}
    out = []
    for lawyer in LAWYERS:
        mine = [slots[a["slot_id"]] for a in view["assignments"] if a["work_id"] == lawyer]
        if lawyer != giver and not any(too_close(slots[slot_id], s) for s in mine):
            out.append(lawyer)
    return out


def audit_actions(factory: sessionmaker[Session]) -> list[str]:
    with session_scope(factory) as s:
        return list(s.scalars(select(AuditLog.action).where(AuditLog.object_type == "roster")
                              .order_by(AuditLog.id)))


def test_plan_publish_views_swaps_handover_and_audit(api: Api) -> None:
    # Planning is the scheduler's: a lawyer is refused, a malformed month is bad input.
    refused(api.post("/plan", "L001", {"month": MONTH}), 403, "auth.denied")
    refused(api.post("/plan", "S01", {"month": "2026/12"}), 422, "api.bad_request")
    refused(api.post("/plan", None, {"month": MONTH}), 401, "auth.missing_token")

    planned = api.post("/plan", "S01", {"month": MONTH})
    assert planned.status_code == 200, planned.text
    body = planned.json()
    assert (body["month"], body["published"], body["assignments"]) == (MONTH, False, 62)
    assert body["status"] in ("optimal", "feasible")
    assert body["figures"]["assignments"] == 62.0
    draft = api.get("", "S01", month=MONTH).json()
    assert draft["published"] is False and draft["plan"]["status"] == "draft"

    published = api.post("/publish", "S01", {"month": MONTH})
    assert published.status_code == 200, published.text
    assert published.json() == {"month": MONTH, "plan": draft["plan"]["id"], "published": True}
    # Planning a published month again is refused unless it is a re-plan.
    again = refused(api.post("/plan", "S01", {"month": MONTH}), 409, "roster.published")
    assert "--replan" in again["message"]
    refused(api.post("/publish", "S01", {"month": MONTH}), 409, "roster.published")

    # The scheduler sees the whole month: every shift staffed once, no broken rule.
    view = api.get("", "S01", month=MONTH).json()
    assert view["published"] is True and view["plan"]["status"] == "published"
    assert len(view["slots"]) == 62
    assert [s["id"] for s in view["slots"][:3]] == [
        "2026-12-01/main/A", "2026-12-01/main/B", "2026-12-02/main/A"]
    assert sorted(a["slot_id"] for a in view["assignments"]) == sorted(
        s["id"] for s in view["slots"])
    assert {a["work_id"] for a in view["assignments"]} == set(LAWYERS)
    assert view["violations"] == []
    assert view["figures"]["assignments"] == 62.0
    assert view["figures"]["shifts_min"] + view["figures"]["shifts_spread"] == \
        view["figures"]["shifts_max"]
    assert {lw["work_id"] for lw in view["lawyers"]} == set(LAWYERS)
    # The supervisor reads it too.
    assert grid(api.get("", "G01", month=MONTH).json()) == grid(view)

    # A lawyer sees only their own shifts, no figures and no other lawyer.
    own = api.get("", "L001", month=MONTH).json()
    assert grid(own) == {p for p in grid(view) if p[1] == "L001"} and grid(own)
    assert (own["figures"], own["violations"]) == ({}, [])
    assert [lw["work_id"] for lw in own["lawyers"]] == ["L001"]

    # Coverage: for staff only; every hour a shift runs is staffed exactly as needed.
    refused(api.get("/coverage", "L001", month=MONTH), 403, "auth.denied")
    cover = api.get("/coverage", "S01", month=MONTH).json()
    assert cover["first"] == "2026-12-01" and len(cover["staffed"]) == 31
    expected = [[1 if 8 <= h < 24 else 0 for h in range(24)] for _ in range(31)]
    assert cover["need"] == expected and cover["staffed"] == expected

    # Malformed months are bad input, never a server error.
    for month in ("2026-1", "202612", "2026-13", "2026-00"):
        refused(api.get("", "S01", month=month), 422, "api.bad_request")
    refused(api.get("/coverage", "S01", month="12-2026"), 422, "api.bad_request")

    # --- swaps ------------------------------------------------------------------------
    slots = {s["id"]: s for s in view["slots"]}
    holder = {a["slot_id"]: a["work_id"] for a in view["assignments"]}
    give = next(sid for sid in sorted(holder) if sid >= "2026-12-10"
                and len(free_colleagues(view, sid, holder[sid])) >= 2)
    giver = holder[give]
    taker, on_leave = free_colleagues(view, give, giver)[:2]
    other_code = "B" if give.endswith("/A") else "A"
    tired = holder[f"{give[:10]}/main/{other_code}"]  # works the day's other shift
    assert len({giver, taker, on_leave, tired}) == 4

    # A lawyer cannot hand over someone else's shift, nor decide swaps.
    refused(api.post("/swaps", giver, {"slot_id": f"{give[:10]}/main/{other_code}",
                                       "to_work_id": taker}), 404, "roster.not_found")
    refused(api.post("/swaps", "S01", {"slot_id": give, "to_work_id": taker}), 403,
            "auth.denied")
    refused(api.post("/swaps/999/decision", "S01", {"approve": True}), 404, "roster.not_found")
    refused(api.post("/swaps/999/decision", "S01", {"approve": False}), 404,
            "roster.not_found")

    # 1. To the colleague on the day's other shift: no rest between the two.
    first = api.post("/swaps", giver, {"slot_id": give, "to_work_id": tired, "note": "有事"})
    assert first.status_code == 200 and first.json()["status"] == "pending"
    first_id = first.json()["id"]
    refused(api.post(f"/swaps/{first_id}/decision", giver, {"approve": True}), 403,
            "auth.denied")
    bad = refused(api.post(f"/swaps/{first_id}/decision", "S01", {"approve": True}), 409,
                  "roster.swap_invalid")
    assert any("休息不足" in r and tired in r and slots[give]["name"] in r
               for r in bad["reasons"]), bad["reasons"]
    assert grid(api.get("", "S01", month=MONTH).json()) == grid(view)
    # Still pending: one request per shift at a time.
    refused(api.post("/swaps", giver, {"slot_id": give, "to_work_id": taker}), 409,
            "roster.swap_invalid")
    rejected = api.post(f"/swaps/{first_id}/decision", "S01", {"approve": False})
    assert rejected.json() == {"id": first_id, "status": "rejected"}
    decided = refused(api.post(f"/swaps/{first_id}/decision", "S01", {"approve": True}),
                      409, "roster.swap_invalid")
    assert decided["reasons"] == [f"换班申请 {first_id} 已处理 (rejected)"]

    # 2. To a colleague on leave that day (free otherwise).
    start = datetime.fromisoformat(slots[give]["start"])
    with session_scope(api.factory) as s:
        store_roster.add_leave(s, on_leave, start - timedelta(hours=1),
                               start + timedelta(hours=9), "开庭")
    second = api.post("/swaps", giver, {"slot_id": give, "to_work_id": on_leave}).json()
    bad = refused(api.post(f"/swaps/{second['id']}/decision", "S01", {"approve": True}), 409,
                  "roster.swap_invalid")
    assert bad["reasons"] == [
        f"律师{on_leave[-1]}({on_leave}) 不能值 {_label(slots[give])}: 请假(开庭)"]
    assert grid(api.get("", "S01", month=MONTH).json()) == grid(view)
    api.post(f"/swaps/{second['id']}/decision", "S01", {"approve": False})

    # 3. To a free colleague: approved, the colleague now holds the shift.
    third = api.post("/swaps", giver, {"slot_id": give, "to_work_id": taker}).json()
    mine = api.get("/swaps", taker).json()
    assert [(w["id"], w["status"], w["slot_id"]) for w in mine] == [
        (third["id"], "pending", give)]
    assert [w["id"] for w in api.get("/swaps", "S01").json()] == [
        third["id"], second["id"], first_id]
    approved = api.post(f"/swaps/{third['id']}/decision", "S01", {"approve": True})
    assert approved.status_code == 200, approved.text
    assert approved.json() == {"id": third["id"], "status": "approved"}
    after = api.get("", "S01", month=MONTH).json()
    assert grid(after) == (grid(view) - {(give, giver)}) | {(give, taker)}
    assert after["violations"] == []
    assert (give, taker) in grid(api.get("", taker, month=MONTH).json())
    assert give not in {sid for sid, _ in grid(api.get("", giver, month=MONTH).json())}

    # --- handover notes -----------------------------------------------------------------
    refused(api.post("/handover", None, {"text": "x"}), 401, "auth.missing_token")
    refused(api.post("/handover", "L001", {"text": ""}), 422, "api.bad_request")
    note = api.post("/handover", "L001", {"text": "3 号来电人下午回电, 已约期答复",
                                          "line": "main"})
    assert note.status_code == 200, note.text
    notes = api.get("/handover", "L002", line="main").json()
    assert [(n["id"], n["author"], n["name"], n["line"], n["text"]) for n in notes] == [
        (note.json()["id"], "L001", "律师1", "main", "3 号来电人下午回电, 已约期答复")]
    assert api.get("/handover", "L002", line="dialect").json() == []

    # Without a token nothing is shown.
    for path in ("", "/coverage", "/mine", "/swaps", "/handover"):
        refused(api.get(path, None, month=MONTH), 401, "auth.missing_token")

    # Every change is audited, refused ones never.
    assert audit_actions(api.factory) == [
        "roster_planned", "roster_published", "swap_requested", "swap_rejected",
        "swap_requested", "swap_rejected", "swap_requested", "swap_approved",
        "handover_written"]
    with session_scope(api.factory) as s:
        planned_row = s.scalar(select(AuditLog).where(AuditLog.action == "roster_planned"))
        assert planned_row is not None and planned_row.object_id == MONTH
        assert planned_row.actor_role is Role.SCHEDULER
        assert planned_row.detail == {"publish": False, "replan": False, "changes": 0}


def _label(slot: dict[str, Any]) -> str:
    d = date.fromisoformat(slot["date"])
    weekday = "一二三四五六日"[d.weekday()]
    return f"{d.month}月{d.day}日(周{weekday}) {slot['name']} {slot['code']} [{slot['line']}]"


def test_an_infeasible_month_names_the_skill_and_the_shift(factory: sessionmaker[Session],
                                                           tmp_path: Path) -> None:
    for api in make_api(factory, site_settings(tmp_path / "site", CRIMINAL)):
        bad = refused(api.post("/plan", "S01", {"month": MONTH}), 422, "roster.infeasible")
        assert bad["reasons"], bad
        assert bad["reasons"][0] == ("12月1日(周二) 白班 A [main] 需要 刑事 技能 1 人, "
                                     "律师名单中没有符合条件的律师")
        assert all("刑事" in r and "白班 A [main]" in r for r in bad["reasons"])
        assert "刑事" in bad["message"]
        # Nothing was stored, nothing audited.
        with session_scope(factory) as s:
            assert s.scalar(select(func.count()).select_from(Shift)) == 0
            assert s.scalar(select(func.count()).select_from(RosterPlan)) == 0
            assert s.scalar(select(func.count()).select_from(RosterAssignment)) == 0
        assert audit_actions(factory) == []
        view = api.get("", "S01", month=MONTH).json()
        assert (view["published"], view["slots"], view["plan"]) == (False, [], None)
