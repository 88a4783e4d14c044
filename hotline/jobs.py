"""Scheduled jobs inside ``hotline serve`` (APScheduler 3).

Two schedulers:

- **node-local** (every node, in-memory store): the shift edges of the duty desk
  (:mod:`hotline.roster.keeper`) and the renewal of the scheduler lease. Nothing to keep
  across a restart: a node recomputes its duty state from the ledger when it starts.
- **the scheduler role** (one node at a time: whoever holds the ``scheduler`` lease in the
  database, :mod:`hotline.store.lease`; ``roster.scheduler = "auto"``): jobs stored in the
  ledger's ``apscheduler_jobs`` table, so they survive a restart. Misfire policy: a nightly
  run missed while the server was down runs once at the next start if less than
  ``MISFIRE_GRACE`` late (``coalesce``: several missed runs count as one), else it waits for
  the next time; the roster watch (every minute) is coalesced with a one-minute grace, and
  a late run catches up by itself because it asks the ledger what fell due since.

Role jobs: the nightly batch transcription (``hotline transcribe --pending``, a child
process so the large model stays out of the coordinator), the roster watch (follow-ups
due → offers, overdue tickets → escalation, shifts with nobody logged in → alert) and the
daily call report (``var/reports/daily-DATE.json``, 00:10).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from hotline.config import Settings
from hotline.store import lease
from hotline.store.session import session_scope

log = logging.getLogger("hotline.jobs")
MISFIRE_GRACE = 6 * 3600
NIGHTLY_TRANSCRIPTION = "nightly-transcription"
ROSTER_WATCH = "roster-watch"
DAILY_REPORT = "daily-report"
LEASE = "scheduler"
LEASE_JOB = "scheduler-lease"
# The running server's parts the stored role jobs use (a stored job names a function, so
# it reaches the live objects through here).
_RUNTIME: Runtime | None = None


def transcribe_command(config: str | None) -> list[str]:
    """The nightly job's command line (the same ``hotline`` and configuration as the server)."""
    cmd = [sys.executable, "-m", "hotline"]
    if config:
        cmd += ["--config", os.path.abspath(config)]
    return [*cmd, "transcribe", "--pending", "--quiet"]


async def nightly_transcription(command: list[str], cwd: str) -> int:
    """Transcribe what live transcription missed; returns the command's exit code."""
    log.info("夜间批量转写开始")
    process = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    for line in out.decode("utf-8", "replace").splitlines()[-5:]:
        log.info("夜间批量转写: %s", line)
    if process.returncode:
        log.error("夜间批量转写未全部成功 (退出码 %s)", process.returncode)
    return process.returncode or 0


class Runtime:
    """What the role jobs act on: the ledger and, when serving, the call centre."""

    def __init__(self, settings: Settings, factory: Any, center: Any = None,
                 keeper: Any = None) -> None:
        self.settings = settings
        self.factory = factory
        self.center = center
        self.keeper = keeper
        self.alerted: set[tuple[str, str, str]] = set()

    def _publish(self, event: dict[str, Any], to: tuple[str, ...] = ()) -> None:
        if self.center is not None:
            self.center.publish(event, to, True)

    async def watch(self) -> dict[str, int]:
        """Follow-ups due, overdue tickets, unstaffed shifts (the roster watch job)."""
        from hotline.roster import watch

        now = datetime.now(UTC)

        def work() -> tuple[list[Any], list[Any], set[str]]:
            with session_scope(self.factory) as session:
                return (watch.due_follow_ups(session, now), watch.escalate_overdue(session, now),
                        watch.logged_in(session))

        due, overdue, present = await asyncio.to_thread(work)
        for f in due:
            log.info("回访到期: 工单 %s -> %s", f.ticket_no, f.work_id or "班长")
            self._publish({"type": "follow_up", "ticket_no": f.ticket_no,
                           "due_at": f.due_at.isoformat(), "reason": f.reason,
                           "work_id": f.work_id}, (f.work_id,) if f.work_id else ())
        for t in overdue:
            log.warning("工单逾期未办结, 已上报: %s", t.ticket_no)
            self._publish({"type": "alert", "kind": "overdue", "ticket_no": t.ticket_no,
                           "due_at": t.due_at.isoformat(), "work_id": t.work_id,
                           "text": f"工单 {t.ticket_no} 已逾期未办结"})
        unstaffed = 0
        if self.keeper is not None:
            if self.center is not None:
                present |= set(self.center.desk.agents)
            after = timedelta(minutes=self.settings.roster.unstaffed_alert_minutes)
            local = now.astimezone(self.settings.tz)
            for line, code, start, people in self.keeper.book.unstaffed(local, present, after):
                start = start.astimezone(self.settings.tz)  # the ledger's spans are in UTC
                key = (line, code, start.isoformat())
                if key in self.alerted:
                    continue
                self.alerted.add(key)
                unstaffed += 1
                text = (f"{start:%m月%d日 %H:%M} 开始的 {code} 班 [{line}] 已过 "
                        f"{self.settings.roster.unstaffed_alert_minutes} 分钟仍无人签入 "
                        f"(排班: {', '.join(people)})")
                log.error("无人值班: %s", text)
                self._publish({"type": "alert", "kind": "unstaffed", "line": line,
                               "code": code, "start": start.isoformat(),
                               "lawyers": list(people), "text": text})
        return {"follow_ups": len(due), "overdue": len(overdue), "unstaffed": unstaffed}

    async def report(self, day: date | None = None) -> dict[str, Any]:
        """A day's call figures (default yesterday, local time) → ``var/reports/``.

        Offered to lawyers, answered, abandoned, answer rate (接通率), mean wait and handle
        time, from the same ledger reading as staffing; written as JSON and logged.
        """
        from hotline.roster.staffing import history

        tz = self.settings.tz
        day = day or (datetime.now(tz) - timedelta(days=1)).date()
        since = datetime.combine(day, time(0), tz)

        def work() -> Any:
            with session_scope(self.factory) as session:
                return history(session, since, since + timedelta(days=1), tz)

        seen = await asyncio.to_thread(work)
        offered = seen.offered
        body = {"date": day.isoformat(), "offered": offered, "answered": seen.answered,
                "abandoned": seen.abandoned,
                "answer_rate": round(seen.answered / offered, 4) if offered else None,
                "mean_wait_s": round(seen.waited / offered, 1) if offered else None,
                "aht_s": round(seen.aht, 1)}
        folder = self.settings.path("var") / "reports"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"daily-{day.isoformat()}.json").write_text(
            json.dumps(body, ensure_ascii=False, indent=2), encoding="utf-8")
        log.info("日报 %s: 转人工 %d, 接起 %d, 放弃 %d, 接通率 %s", day, offered, seen.answered,
                 seen.abandoned, f"{body['answer_rate']:.1%}" if offered else "-")
        return body


async def daily_report() -> dict[str, Any]:
    """The stored role job: yesterday's call figures (see :meth:`Runtime.report`)."""
    if _RUNTIME is None:
        return {}
    return await _RUNTIME.report()


async def roster_watch() -> dict[str, int]:
    """The stored role job: runs :meth:`Runtime.watch` on this node's runtime."""
    if _RUNTIME is None:
        return {}
    return await _RUNTIME.watch()


class Jobs:
    """The server's schedulers: node-local, and the role scheduler while holding the lease."""

    def __init__(self, settings: Settings, engine: Any, config: str | None, *,
                 runtime: Runtime | None = None, node: str | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.config = config
        self.runtime = runtime
        self.node = node or f"{socket.gethostname()}:{os.getpid()}"
        self.local = AsyncIOScheduler(jobstores={"local": MemoryJobStore()},
                                      job_defaults={"coalesce": True, "max_instances": 1,
                                                    "misfire_grace_time": 60},
                                      timezone=settings.tz)
        self.scheduler: AsyncIOScheduler | None = None  # the role's, while held
        self.on_role: Callable[[bool], None] = lambda held: None
        self._listeners: list[tuple[Callable[[Any], None], int]] = []

    def add_listener(self, callback: Callable[[Any], None], mask: int) -> None:
        """Listen to the role scheduler's events (now and whenever the role is taken)."""
        self._listeners.append((callback, mask))
        if self.scheduler is not None:
            self.scheduler.add_listener(callback, mask)

    @property
    def holds_role(self) -> bool:
        """Whether this node runs the scheduler role now."""
        return self.scheduler is not None

    def start(self) -> None:
        """Start the node-local scheduler and take the role (per ``roster.scheduler``)."""
        global _RUNTIME
        _RUNTIME = self.runtime
        self.local.start()
        mode = self.settings.roster.scheduler
        if mode == "on":
            self._start_role()
        elif mode == "auto":
            if self._acquire():
                log.info("本节点 (%s) 承担调度角色", self.node)
                self._start_role()
            every = max(1.0, self.settings.roster.lease_seconds / 3)
            self.local.add_job(self.renew, IntervalTrigger(seconds=every), id=LEASE_JOB,
                               jobstore="local", name="调度租约", replace_existing=True)
        else:
            log.info("本节点不运行调度角色 (roster.scheduler = off)")

    async def renew(self) -> bool:
        """Take or renew the lease; start or stop the role to match."""
        try:
            held = await asyncio.to_thread(self._acquire)
        except Exception as exc:  # noqa: BLE001 - a database hiccup: try again next time
            log.warning("调度租约续期失败: %s", exc)
            held = False
        if held and self.scheduler is None:
            log.info("本节点 (%s) 承担调度角色", self.node)
            self._start_role()
            self.on_role(True)
        elif not held and self.scheduler is not None:
            log.warning("调度角色已由其他节点接管, 本节点停止定时任务")
            self._stop_role()
            self.on_role(False)
        return held

    def _acquire(self) -> bool:
        from hotline.store.engine import make_session_factory

        with session_scope(make_session_factory(self.engine)) as session:
            return lease.acquire(session, LEASE, self.node, datetime.now(UTC),
                                 self.settings.roster.lease_seconds)

    def _start_role(self) -> None:
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self.engine,
                                                     tablename="apscheduler_jobs")},
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": MISFIRE_GRACE},
            timezone=self.settings.tz)
        for callback, mask in self._listeners:
            self.scheduler.add_listener(callback, mask)
        self.scheduler.start(paused=True)
        if self.settings.speech.enabled:
            self._nightly()
        self.scheduler.add_job(roster_watch, IntervalTrigger(minutes=1), id=ROSTER_WATCH,
                               name="排班与工单巡检", replace_existing=True,
                               misfire_grace_time=60, coalesce=True)
        if self._stored(DAILY_REPORT) is None:  # keep a stored (possibly missed) next run
            self.scheduler.add_job(daily_report, CronTrigger(hour=0, minute=10,
                                                             timezone=self.settings.tz),
                                   id=DAILY_REPORT, name="话务日报",
                                   misfire_grace_time=MISFIRE_GRACE, coalesce=True)
        self.scheduler.resume()

    def _nightly(self) -> None:
        """Add (or update) the nightly transcription without losing a missed run.

        The stored job is looked at before the scheduler runs: re-adding it with
        ``replace_existing`` would recompute its next run from now and silently drop a run
        missed while the server was down.
        """
        assert self.scheduler is not None
        hour, minute = map(int, self.settings.speech.nightly_at.split(":"))
        trigger = CronTrigger(hour=hour, minute=minute, timezone=self.settings.tz)
        spec: dict[str, Any] = {
            "name": "夜间批量转写",
            "kwargs": {"command": transcribe_command(self.config), "cwd": os.getcwd()}}
        stored = self._stored(NIGHTLY_TRANSCRIPTION)
        now = datetime.now(self.settings.tz)
        if stored is not None and stored.next_run_time is not None and (
                repr(stored.trigger) == repr(trigger) or stored.next_run_time <= now):
            # Same time of day, or a run was missed: keep the stored next run (a missed one
            # runs now, coalesced, if within the grace time); the new trigger takes over
            # after it.
            self.scheduler.modify_job(NIGHTLY_TRANSCRIPTION, trigger=trigger,
                                      misfire_grace_time=MISFIRE_GRACE, coalesce=True,
                                      max_instances=1, **spec)
        else:
            self.scheduler.add_job(nightly_transcription, trigger, id=NIGHTLY_TRANSCRIPTION,
                                   replace_existing=True, **spec)
        job = self.scheduler.get_job(NIGHTLY_TRANSCRIPTION)
        log.info("定时任务已启动: 夜间批量转写 (下次 %s)",
                 job.next_run_time.strftime("%Y-%m-%d %H:%M") if job else "?")

    def _stored(self, job_id: str) -> Any:
        """The job as stored by the last run, or None (also when it cannot be read back)."""
        assert self.scheduler is not None
        try:
            return self.scheduler.get_job(job_id)
        except Exception as exc:  # noqa: BLE001 - unpickling an old job can fail any way
            log.warning("无法读取已保存的定时任务 %s, 将重新创建: %s", job_id, exc)
            return None

    def _stop_role(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.scheduler = None

    def stop(self) -> None:
        """Stop without waiting for a running job (its child finishes by itself).

        The lease is given up so that another node takes the role at once.
        """
        global _RUNTIME
        held = self.scheduler is not None
        self._stop_role()
        if self.local.running:
            self.local.shutdown(wait=False)
        if held and self.settings.roster.scheduler == "auto":
            from hotline.store.engine import make_session_factory

            try:
                with session_scope(make_session_factory(self.engine)) as session:
                    lease.release(session, LEASE, self.node)
            except Exception as exc:  # noqa: BLE001 - stopping anyway; it expires by itself
                log.warning("释放调度租约失败: %s", exc)
        _RUNTIME = None
