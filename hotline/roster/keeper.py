"""The running server's side of the roster: shift edges applied to the duty desk.

Every node keeps its own logged-in lawyers, so every node runs a :class:`DutyKeeper`: it
reads the published shifts around now from the ledger, tells the desk who is on duty, and
schedules an APScheduler job (in the node's in-memory job store: nothing to persist, the
state is recomputed from the ledger at start, which is what makes a restart mid-shift
right) at the next shift edge. At an edge:

- lawyers of the starting shift become eligible for offers (those logged in early start
  getting calls; the console shows the handover notes of the last shift);
- lawyers of the ending shift get no new offers and are logged out once their current call
  and wrap-up are over;
- a refresh every few minutes picks up rosters published elsewhere (the CLI, another node).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from hotline.roster.duty import DutyBook, lines_of
from hotline.store import roster as store

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from hotline.callcenter import CallCenter

log = logging.getLogger("hotline.roster")
EDGE_JOB = "duty-edge"
REFRESH_JOB = "duty-refresh"
REFRESH_MINUTES = 5
WINDOW = timedelta(days=2)


class DutyKeeper:
    """Applies the published roster to one node's desk at shift edges."""

    def __init__(self, center: CallCenter, factory: Any, enforce: str,
                 scheduler: AsyncIOScheduler | None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.center = center
        self.factory = factory
        self.enforce = enforce
        self.scheduler = scheduler
        self.clock = clock or center.now
        self.book = DutyBook((), "off")
        self.applied_at: datetime | None = None
        center.desk.on_logout = self._logged_out
        center.desk.on_duty_change = self._duty_changed

    async def refresh(self) -> None:
        """Re-read the roster and apply it now (after a publish, a swap, at start)."""
        now = self.clock()
        spans = await self.center.ledger.run(
            lambda session: store.duty_spans(session, now - WINDOW, now + WINDOW))
        self.book = DutyBook(spans, self.enforce)  # type: ignore[arg-type]
        self.apply(now)

    async def edge(self) -> None:
        """A shift edge (the scheduled job): re-read and apply."""
        await self.refresh()

    def apply(self, now: datetime) -> None:
        """Tell the desk who is on duty at ``now`` and schedule the next edge."""
        before = self.applied_at or now
        change = self.book.edge(before, now) if before < now else None
        duty = self.book.on_duty(now)
        self.center.desk.set_duty(duty, now, ended=change.ending if change else frozenset())
        self.applied_at = now
        if change is not None and change.starting:
            log.info("交班: %s 开始值班", ", ".join(sorted(change.starting)))
            for work_id in change.starting:
                self._shift_started(work_id, now)
        if change is not None and change.ending:
            log.info("交班: %s 值班结束 (通话与整理结束后签出)", ", ".join(sorted(change.ending)))
        self.center.talk.route()
        self._schedule(now)

    def _schedule(self, now: datetime) -> None:
        if self.scheduler is None:
            return
        nxt = self.book.next_edge(now)
        if self.scheduler.get_job(REFRESH_JOB, jobstore="local") is None:
            self.scheduler.add_job(self.refresh, IntervalTrigger(minutes=REFRESH_MINUTES),
                                   id=REFRESH_JOB, jobstore="local", name="刷新值班表",
                                   replace_existing=True)
        if nxt is None:
            job = self.scheduler.get_job(EDGE_JOB, jobstore="local")
            if job is not None:
                job.remove()
            return
        # Misfire: an edge run late (a busy loop, a suspended machine) still runs; the edge
        # logic works from the time it runs, so late is only late, never wrong.
        self.scheduler.add_job(self.edge, DateTrigger(run_date=nxt), id=EDGE_JOB,
                               jobstore="local", name="交接班", replace_existing=True,
                               misfire_grace_time=None, coalesce=True)

    def status(self, work_id: str) -> dict[str, Any]:
        """The lawyer's duty: on duty now, the current and next shifts."""
        now = self.clock()
        agent = self.center.desk.agents.get(work_id)
        duty = self.book.on_duty(now)
        shifts = self.book.shifts_of(work_id, now)
        return {"in_force": duty is not None,
                "on_duty": duty is None or work_id in duty,
                "eligible": bool(agent and agent.on_duty),
                "leaving": work_id in self.center.desk.leaving,
                "lines": lines_of(self.book.spans, work_id, now),
                "shifts": [{"line": s.line, "code": s.code, "name": s.name,
                            "start": s.start.isoformat(), "end": s.end.isoformat(),
                            "remote": s.remote} for s in shifts[:3]]}

    def _duty_changed(self, work_id: str, agent: Any) -> None:
        self.center.publish({"type": "duty", "work_id": work_id, "on_duty": agent.on_duty,
                             **self.status(work_id)}, (work_id,), True)

    def _logged_out(self, work_id: str, why: str) -> None:
        log.info("律师 %s 值班结束, 已签出", work_id)
        self.center.publish({"type": "shift_end", "work_id": work_id, "why": why},
                            (work_id,), True)

    def _shift_started(self, work_id: str, now: datetime) -> None:
        lines = lines_of(self.book.spans, work_id, now)

        def notes(session: Any) -> list[dict[str, Any]]:
            out = []
            for line in lines or [None]:  # type: ignore[list-item]
                for n in store.handovers(session, since=now - timedelta(hours=24), line=line,
                                         limit=5):
                    out.append({"line": n.line, "author": n.author, "name": n.author_name,
                                "text": n.text, "at": n.created_at.isoformat()})
            return out

        async def send() -> None:
            try:
                handover = await self.center.ledger.run(notes)
            except Exception as exc:  # noqa: BLE001 - a note is not worth a failed edge
                log.warning("读取交接班记录失败: %s", exc)
                handover = []
            self.center.publish({"type": "shift_start", "work_id": work_id,
                                 "handover": handover, **self.status(work_id)},
                                (work_id,), False)

        asyncio.get_running_loop().create_task(send())
