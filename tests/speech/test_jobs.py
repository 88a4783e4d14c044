"""The server's scheduler with its real job store (the SQLite ledger) on a running loop, and
the nightly job running the real ``hotline transcribe`` with the Korean Vosk model.

espeak speech is not recognisable enough to assert words: the transcription test asserts
which call was done, speakers and states.
"""

import asyncio
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED
from sqlalchemy import select, text

from hotline.config import load_settings
from hotline.domain import EndReason
from hotline.jobs import (
    MISFIRE_GRACE,
    NIGHTLY_TRANSCRIPTION,
    Jobs,
    nightly_transcription,
    transcribe_command,
)
from hotline.recording import inspect
from hotline.store.calls import add_recording, close_call, close_recording, open_call
from hotline.store.engine import make_engine, make_session_factory
from hotline.store.migrate import upgrade
from hotline.store.session import session_scope
from hotline.store.tables import Call, TranscriptSegment
from hotline.store.transcripts import set_state

sys.path.insert(0, str(Path(__file__).parent))
from audio import CALLER_SENTENCES, KO_MODEL, LAWYER_SENTENCES, speech_wav  # noqa: E402

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_hotline_env(monkeypatch):
    """The child ``hotline`` reads only the hotline.toml written here."""
    for name in list(os.environ):
        if name.startswith("HOTLINE_") and not name.startswith("HOTLINE_TEST_"):
            monkeypatch.delenv(name)


class Site:
    """A hotline.toml in tmp naming an upgraded SQLite ledger and the Korean model."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.url = f"sqlite:///{tmp / 'var' / 'ledger.db'}"
        upgrade(self.url)
        self.engine = make_engine(self.url)
        self.factory = make_session_factory(self.engine)
        self.config = tmp / "hotline.toml"
        self.write_config("02:30")

    def write_config(self, nightly_at: str) -> None:
        self.config.write_text(
            f'[database]\nurl = "{self.url}"\n'
            '[paths]\nvar = "var"\nrecordings = "rec"\nmodels = "models"\n'
            f'[speech]\nlive_model = "{KO_MODEL}"\nbatch_model = "{KO_MODEL}"\n'
            f'nightly_at = "{nightly_at}"\n', encoding="utf-8")

    def jobs(self) -> Jobs:
        return Jobs(load_settings(self.config, environ={}), self.engine, str(self.config))

    def rows(self) -> list[tuple[str, float]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(
                text("SELECT id, next_run_time FROM apscheduler_jobs WHERE id = :id"),
                {"id": NIGHTLY_TRANSCRIPTION})]


@pytest.fixture
def site(tmp_path):
    made = Site(tmp_path)
    yield made
    made.engine.dispose()


def _next_at(hour: int, minute: int) -> datetime:
    now = datetime.now(SHANGHAI)
    at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return at if at > now else at + timedelta(days=1)


async def _stop(jobs: Jobs) -> None:
    """Stop, and let the loop run the scheduler's shutdown (it is queued on the loop)."""
    scheduler = jobs.scheduler
    jobs.stop()
    assert jobs.scheduler is None  # the role is given up with the lease
    for _ in range(50):
        if not scheduler.running and not jobs.local.running:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("scheduler still running")


async def _until(condition, seconds: float) -> None:
    for _ in range(int(seconds * 10)):
        if condition():
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)  # and nothing more happens


def _recorded(events_of, jobs):
    """The role scheduler's events of the given kinds, as (kind, job id, return value)."""
    seen: list[tuple[int, str, object]] = []
    jobs.add_listener(lambda e: seen.append((e.code, e.job_id, getattr(e, "retval", None))),
                      events_of)
    return seen


async def test_start_stores_one_job_at_nightly_local_time(site):
    jobs = site.jobs()
    jobs.start()
    try:
        assert site.rows() == [(NIGHTLY_TRANSCRIPTION, _next_at(2, 30).timestamp())]
        job = jobs.scheduler.get_job(NIGHTLY_TRANSCRIPTION)
        assert job.next_run_time == _next_at(2, 30)
        assert job.next_run_time.utcoffset() == timedelta(hours=8)
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (
            True, 1, MISFIRE_GRACE)
        assert MISFIRE_GRACE == 6 * 3600
        assert job.kwargs == {"command": transcribe_command(str(site.config)),
                              "cwd": os.getcwd()}
        assert job.kwargs["command"][-3:] == ["transcribe", "--pending", "--quiet"]
        assert str(site.config.resolve()) in job.kwargs["command"]
    finally:
        await _stop(jobs)


async def test_a_restart_keeps_one_job_and_takes_a_new_time(site):
    for _ in range(2):
        jobs = site.jobs()
        jobs.start()
        await _stop(jobs)
    assert site.rows() == [(NIGHTLY_TRANSCRIPTION, _next_at(2, 30).timestamp())]
    site.write_config("03:15")
    jobs = site.jobs()
    jobs.start()
    try:
        assert site.rows() == [(NIGHTLY_TRANSCRIPTION, _next_at(3, 15).timestamp())]
        assert jobs.scheduler.get_job(NIGHTLY_TRANSCRIPTION).next_run_time == _next_at(3, 15)
    finally:
        await _stop(jobs)


def _stereo(folder: Path) -> Path:
    caller = speech_wav(folder / "caller.wav", CALLER_SENTENCES[2:], lead=0.3, gap=0.8)
    lawyer = speech_wav(folder / "lawyer.wav", LAWYER_SENTENCES[2:], lead=1.8, gap=0.3)
    out = folder / "call.wav"
    subprocess.run(["sox", "-M", str(caller), str(lawyer), str(out)], check=True,
                   capture_output=True)
    return out


def _call(site: Site, name: str, wav: Path, state: str | None) -> int:
    path = site.tmp / "rec" / f"{name}.wav"
    path.parent.mkdir(exist_ok=True)
    shutil.copy(wav, path)
    facts = inspect(path)
    with session_scope(site.factory) as s:
        opened = open_call(s, sip_call_id=name, line="12348", caller_number="13800138000",
                           flow="main", worker="w1", at=T0, local_day=T0.date())
        rec = add_recording(s, opened.call_id, str(path), T0)
        close_recording(s, rec, sha256=facts.sha256, seconds=facts.seconds, size=facts.size,
                        closed_at=T0 + timedelta(seconds=5), flagged=None)
        close_call(s, opened.call_id, at=T0 + timedelta(seconds=5),
                   reason=EndReason.CALLER_HANGUP, ivr_vars={}, ivr_path=None)
        set_state(s, opened.call_id, state)
    return opened.call_id


async def test_nightly_transcription_runs_hotline_transcribe(site, tmp_path):
    wav = _stereo(tmp_path)
    pending = _call(site, "pending", wav, "pending")
    done = _call(site, "done", wav, "batch")
    code = await nightly_transcription(transcribe_command(str(site.config)), str(tmp_path))
    assert code == 0
    with session_scope(site.factory) as s:
        states = dict(s.execute(select(Call.id, Call.transcript_state)).all())
        speakers = {(c, sp.value, src) for c, sp, src in s.execute(select(
            TranscriptSegment.call_id, TranscriptSegment.speaker, TranscriptSegment.source))}
    assert states == {pending: "batch", done: "batch"}
    assert speakers == {(pending, "caller", "batch"), (pending, "lawyer", "batch")}


async def test_nightly_transcription_reports_failure(site, tmp_path):
    site.config.write_text('[speech]\nnightly_at = "25:00"\n', encoding="utf-8")
    code = await nightly_transcription(transcribe_command(str(site.config)), str(tmp_path))
    assert code == 2  # a configuration error; the scheduler logs it and carries on


async def _miss(site: Site, late: timedelta) -> datetime:
    """Configure a nightly time ``late`` ago and leave a job store whose run was missed:
    as if the server had been down since just before it."""
    missed = (datetime.now(SHANGHAI) - late).replace(second=0, microsecond=0)
    site.write_config(missed.strftime("%H:%M"))
    jobs = site.jobs()
    jobs.start()
    jobs.scheduler.pause()
    # Three nights missed; only the last, ``late`` ago, may still run.
    jobs.scheduler.modify_job(NIGHTLY_TRANSCRIPTION, next_run_time=missed - timedelta(days=2))
    await _stop(jobs)
    assert site.rows()[0][1] == (missed - timedelta(days=2)).timestamp()
    return missed


async def test_a_missed_run_within_grace_runs_once_at_start(site):
    missed = await _miss(site, timedelta(hours=1))
    jobs = site.jobs()
    seen = _recorded(EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_MISSED,
                     jobs)
    jobs.start()
    try:
        await _until(lambda: any(code == EVENT_JOB_EXECUTED for code, _, _ in seen), 60)
        # coalesced: three missed nights make one run; the child found nothing pending
        assert seen == [(EVENT_JOB_SUBMITTED, NIGHTLY_TRANSCRIPTION, None),
                        (EVENT_JOB_EXECUTED, NIGHTLY_TRANSCRIPTION, 0)]
        assert site.rows() == [(NIGHTLY_TRANSCRIPTION, (missed + timedelta(days=1)).timestamp())]
    finally:
        await _stop(jobs)


async def test_a_run_missed_beyond_grace_is_skipped(site):
    missed = await _miss(site, timedelta(seconds=MISFIRE_GRACE + 3600))
    jobs = site.jobs()
    seen = _recorded(EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_MISSED,
                     jobs)
    jobs.start()
    try:
        await _until(lambda: any(code == EVENT_JOB_MISSED for code, _, _ in seen), 10)
        assert seen == [(EVENT_JOB_SUBMITTED, NIGHTLY_TRANSCRIPTION, None),
                        (EVENT_JOB_MISSED, NIGHTLY_TRANSCRIPTION, None)]
        assert site.rows() == [(NIGHTLY_TRANSCRIPTION, (missed + timedelta(days=1)).timestamp())]
    finally:
        await _stop(jobs)
