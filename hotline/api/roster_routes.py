"""Roster API (``/api/v1/roster``): the month, coverage, swaps, handover notes, plans.

Schedulers (and supervisors, read-only except handover) see and change everything; a
lawyer sees their own shifts, asks for swaps of their own shifts and writes handover
notes. Every change is in the audit log. Solver runs happen in a thread: the event loop
(calls, audio) never waits for them.
"""

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker

from hotline.api.auth import require
from hotline.config import Settings
from hotline.domain import Role
from hotline.errors import AuthError
from hotline.roster import rules as roster_rules
from hotline.roster.model import Slot, hours_of
from hotline.roster.planning import decide_swap, month_problem, plan_month
from hotline.store import roster as store
from hotline.store.session import session_scope
from hotline.store.tables import AuditLog
from hotline.store.users import UserView

if TYPE_CHECKING:
    from hotline.roster.keeper import DutyKeeper

MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"  # a real month: 2026-13 is bad input (422), not 400


class SwapIn(BaseModel):
    """Hand ``slot_id`` (one of my shifts) to ``to_work_id``.

    With ``take_slot_id`` the requester takes one of the colleague's shifts in exchange.
    """

    slot_id: str = Field(max_length=80)
    to_work_id: str = Field(max_length=32)
    take_slot_id: str | None = Field(None, max_length=80)
    note: str = Field("", max_length=500)


class DecisionIn(BaseModel):
    """A scheduler's decision on a swap."""

    approve: bool


class PlanIn(BaseModel):
    """Plan a month (``replan``: a published month, changing as little as possible)."""

    month: str = Field(pattern=MONTH)
    publish: bool = False
    replan: bool = False


class PublishIn(BaseModel):
    """Publish a month's draft."""

    month: str = Field(pattern=MONTH)


class HandoverIn(BaseModel):
    """A handover note for the next shift of ``line``."""

    text: str = Field(min_length=1, max_length=4000)
    line: str = Field("main", max_length=40)


def _slot(s: Slot) -> dict[str, Any]:
    return {"id": s.id, "date": s.date.isoformat(), "line": s.line, "code": s.code,
            "name": s.name, "start": s.start.isoformat(), "end": s.end.isoformat(),
            "night": s.night, "remote": s.remote, "kind": s.kind,
            "need": {"lawyers": s.need.lawyers, "skills": dict(s.need.skills),
                     "languages": {str(k): v for k, v in s.need.languages.items()}}}


def roster_router(factory: sessionmaker[Session], current_user: Any, settings: Settings,
                  keeper: Callable[[], "DutyKeeper | None"],
                  now: Callable[[], datetime]) -> APIRouter:
    """The roster endpoints."""
    router = APIRouter(prefix="/api/v1/roster", tags=["排班"])
    anyone = require(current_user, Role.LAWYER, Role.SUPERVISOR, Role.SCHEDULER)
    planner = require(current_user, Role.SCHEDULER)
    tz = settings.tz

    def audit(session: Session, user: UserView, action: str, request: Request,
              obj: str, **detail: Any) -> None:
        session.add(AuditLog(at=now(), actor_id=user.id, actor_role=user.role, action=action,
                             object_type="roster", object_id=obj, detail=detail,
                             remote_addr=request.client.host if request.client else None))

    async def refreshed() -> None:
        k = keeper()
        if k is not None:
            await k.refresh()

    def month_view(month: str, user: UserView) -> dict[str, Any]:
        with session_scope(factory) as session:
            problem, roster = month_problem(session, settings, month,
                                            now=now().astimezone(tz))
            plan = store.latest_plan(session, month)
            lawyer_only = user.role is Role.LAWYER
            assignments = [a for a in roster.assignments
                           if not lawyer_only or a.work_id == user.work_id]
            violations = [] if lawyer_only else [
                {"code": v.code, "message": v.message, "slot_id": v.slot_id,
                 "work_id": v.work_id}
                for v in roster_rules.violations(problem, roster.assignments)]
            figures = {} if lawyer_only else roster_rules.figures(problem, roster.assignments)
            lawyers = [{"work_id": lw.work_id, "name": lw.name, "firm": lw.firm}
                       for lw in problem.lawyers
                       if not lawyer_only or lw.work_id == user.work_id]
            return {"month": month, "published": roster.published and bool(roster.slots),
                    "slots": [_slot(s) for s in roster.slots],
                    "assignments": [{"slot_id": a.slot_id, "work_id": a.work_id,
                                     "remote": a.remote} for a in assignments],
                    "lawyers": lawyers, "violations": violations, "figures": figures,
                    "plan": None if plan is None else {
                        "id": plan.id, "status": plan.status, "solver": plan.solver_status,
                        "objective": plan.objective, "seconds": plan.seconds,
                        "changes": plan.changes, "need": plan.need}}

    @router.get("", summary="一个月的班表 (律师只看到自己的班次)")
    async def month(user: Annotated[UserView, anyone],
                    month: Annotated[str, Query(pattern=MONTH)]) -> dict[str, Any]:
        return await asyncio.to_thread(month_view, month, user)

    @router.get("/coverage", summary="每小时在班人数与需求 (热力图)")
    async def coverage(user: Annotated[UserView, anyone],
                       month: Annotated[str, Query(pattern=MONTH)]) -> dict[str, Any]:
        if user.role is Role.LAWYER:
            raise AuthError("auth.denied")
        first, end = store.month_span(month)

        def read() -> tuple[store.Roster, dict[str, Any]]:
            # Shifts and assignments only: no rule check or fairness figures for a heat map.
            with session_scope(factory) as session:
                roster = store.load_roster(session, first, end, tz)
                if not roster.slots:
                    roster = store.load_roster(session, first, end, tz, published=False)
                plan = store.latest_plan(session, month)
                return roster, dict(plan.need) if plan is not None else {}

        roster, hourly = await asyncio.to_thread(read)
        days = (end - first).days
        staffed = [[0] * 24 for _ in range(days)]
        planned = [[0] * 24 for _ in range(days)]
        cells = {s.id: [((at.date() - first).days, at.hour) for at in hours_of(s)
                        if 0 <= (at.date() - first).days < days] for s in roster.slots}
        for slot in roster.slots:
            for d, h in cells[slot.id]:
                planned[d][h] += slot.need.lawyers
        for a in roster.assignments:
            for d, h in cells[a.slot_id]:
                staffed[d][h] += 1
        # The need: the staffing figure of the hour of the week, or the shifts' head-counts.
        need = [[max(planned[d][h],
                     int(hourly.get(f"{(first + timedelta(days=d)).weekday()}-{h}", 0)))
                 for h in range(24)] for d in range(days)]
        return {"month": month, "first": first.isoformat(), "staffed": staffed, "need": need}

    @router.get("/mine", summary="我的班次与值班状态")
    async def mine(user: Annotated[UserView, anyone]) -> dict[str, Any]:
        at = now()

        def read() -> list[dict[str, Any]]:
            with session_scope(factory) as session:
                spans = store.duty_spans(session, at - timedelta(hours=12),
                                         at + timedelta(days=45))
            return [{"line": s.line, "code": s.code, "name": s.name,
                     "start": s.start.astimezone(tz).isoformat(),
                     "end": s.end.astimezone(tz).isoformat(), "remote": s.remote}
                    for s in spans if s.work_id == user.work_id and s.end > at]

        shifts = await asyncio.to_thread(read)
        k = keeper()
        return {"work_id": user.work_id, "shifts": shifts,
                "duty": k.status(user.work_id) if k is not None else None}

    @router.get("/swaps", summary="换班申请 (律师只看到与自己有关的)")
    async def list_swaps(user: Annotated[UserView, anyone],
                         status: str | None = None) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            with session_scope(factory) as session:
                views = store.swaps(session, tz, status=status, work_id=user.work_id
                                    if user.role is Role.LAWYER else None)
            return [{"id": v.id, "status": v.status, "requested_by": v.requested_by,
                     "slot_id": v.give.slot_id, "slot": v.give_label,
                     "to_work_id": v.to_work_id,
                     "take_slot_id": v.take.slot_id if v.take else None,
                     "take_slot": v.take_label, "note": v.note,
                     "requested_at": v.requested_at.isoformat(),
                     "decided_by": v.decided_by} for v in views]

        return await asyncio.to_thread(read)

    @router.post("/swaps", summary="申请换班 (律师本人的班次)")
    async def ask_swap(body: SwapIn, request: Request,
                       user: Annotated[UserView, anyone]) -> dict[str, Any]:
        if user.role is not Role.LAWYER:
            raise AuthError("auth.denied")

        def write() -> int:
            with session_scope(factory) as session:
                swap_id = store.request_swap(session, user.work_id, body.slot_id,
                                             body.to_work_id, take_slot_id=body.take_slot_id,
                                             note=body.note, tz=tz)
                audit(session, user, "swap_requested", request, str(swap_id),
                      slot=body.slot_id, to=body.to_work_id, take=body.take_slot_id)
                return swap_id

        return {"id": await asyncio.to_thread(write), "status": "pending"}

    @router.post("/swaps/{swap_id}/decision",
                 summary="批准或驳回换班 (排班员; 批准前校验全部硬性规则)")
    async def decide(swap_id: int, body: DecisionIn, request: Request,
                     user: Annotated[UserView, planner]) -> dict[str, Any]:
        def write() -> dict[str, Any]:
            with session_scope(factory) as session:
                view = decide_swap(session, settings, swap_id, approve=body.approve,
                                   by=user.work_id)
                audit(session, user, "swap_approved" if body.approve else "swap_rejected",
                      request, str(swap_id))
                return {"id": view.id, "status": view.status}

        result = await asyncio.to_thread(write)
        if body.approve:
            await refreshed()
        return result

    @router.post("/plan", summary="排班 (求解一个月; replan: 已发布月份尽量少改动)")
    async def plan(body: PlanIn, request: Request,
                   user: Annotated[UserView, planner]) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            with session_scope(factory) as session:
                result = plan_month(session, settings, body.month, publish=body.publish,
                                    replan=body.replan, by=user.work_id,
                                    now=now().astimezone(tz))
                audit(session, user, "roster_planned", request, body.month,
                      publish=body.publish, replan=body.replan,
                      changes=result.solution.changes)
                return {"month": body.month, "status": result.solution.status,
                        "objective": result.solution.objective,
                        "seconds": round(result.solution.seconds, 2),
                        "assignments": len(result.solution.assignments),
                        "figures": dict(result.solution.figures),
                        "published": result.published,
                        "removed": [[a.slot_id, a.work_id] for a in result.removed],
                        "added": [[a.slot_id, a.work_id] for a in result.added]}

        result = await asyncio.to_thread(run)
        if body.publish:
            await refreshed()
        return result

    @router.post("/publish", summary="发布草稿班表")
    async def publish(body: PublishIn, request: Request,
                      user: Annotated[UserView, planner]) -> dict[str, Any]:
        def write() -> int:
            with session_scope(factory) as session:
                plan_id = store.publish(session, body.month, by=user.work_id)
                audit(session, user, "roster_published", request, body.month)
                return plan_id

        plan_id = await asyncio.to_thread(write)
        await refreshed()
        return {"month": body.month, "plan": plan_id, "published": True}

    @router.post("/handover", summary="写交接班记录")
    async def handover(body: HandoverIn, request: Request,
                       user: Annotated[UserView, anyone]) -> dict[str, Any]:
        def write() -> int:
            with session_scope(factory) as session:
                note = store.add_handover(session, user.work_id, body.line, body.text)
                audit(session, user, "handover_written", request, str(note), line=body.line)
                return note

        return {"id": await asyncio.to_thread(write)}

    @router.get("/handover", summary="最近的交接班记录")
    async def handovers(user: Annotated[UserView, anyone], line: str | None = None,
                        hours: Annotated[int, Query(ge=1, le=24 * 14)] = 24
                        ) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            with session_scope(factory) as session:
                notes = store.handovers(session, since=now() - timedelta(hours=hours),
                                        line=line)
            return [{"id": n.id, "line": n.line, "author": n.author, "name": n.author_name,
                     "text": n.text, "at": n.created_at.astimezone(tz).isoformat()}
                    for n in notes]

        return await asyncio.to_thread(read)

    return router
