"""Scheduled jobs inside ``hotline serve`` (APScheduler 3, job store in the ledger database).

Jobs live in the ``apscheduler_jobs`` table, so they survive a restart; a run missed while
the server was down is run once at the next start if it is less than ``MISFIRE_GRACE`` late
(``coalesce``: several missed runs count as one), else skipped until the next time.

Today: the nightly batch transcription (``hotline transcribe --pending``), run as a child
process so the large model's memory and CPU stay out of the coordinator.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from datetime import datetime
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from hotline.config import Settings

log = logging.getLogger("hotline.jobs")
MISFIRE_GRACE = 6 * 3600
NIGHTLY_TRANSCRIPTION = "nightly-transcription"


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


class Jobs:
    """The server's scheduler."""

    def __init__(self, settings: Settings, engine: Any, config: str | None) -> None:
        self.settings = settings
        self.config = config
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=engine,
                                                     tablename="apscheduler_jobs")},
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": MISFIRE_GRACE},
            timezone=settings.tz)

    def start(self) -> None:
        """Add (or update) the jobs, then start the scheduler on the running loop.

        The stored job is looked at before the scheduler runs: re-adding it with
        ``replace_existing`` would recompute its next run from now and silently drop a run
        missed while the server was down.
        """
        hour, minute = map(int, self.settings.speech.nightly_at.split(":"))
        trigger = CronTrigger(hour=hour, minute=minute, timezone=self.settings.tz)
        spec: dict[str, Any] = {
            "name": "夜间批量转写",
            "kwargs": {"command": transcribe_command(self.config), "cwd": os.getcwd()}}
        self.scheduler.start(paused=True)
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
        self.scheduler.resume()
        job = self.scheduler.get_job(NIGHTLY_TRANSCRIPTION)
        log.info("定时任务已启动: 夜间批量转写 (下次 %s)",
                 job.next_run_time.strftime("%Y-%m-%d %H:%M") if job else "?")

    def _stored(self, job_id: str) -> Any:
        """The job as stored by the last run, or None (also when it cannot be read back)."""
        try:
            return self.scheduler.get_job(job_id)
        except Exception as exc:  # noqa: BLE001 - unpickling an old job can fail any way
            log.warning("无法读取已保存的定时任务 %s, 将重新创建: %s", job_id, exc)
            return None

    def stop(self) -> None:
        """Stop without waiting for a running job (its child process finishes by itself)."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
