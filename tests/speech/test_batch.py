"""``hotline transcribe`` as operators run it: a child process, the real Korean Vosk model,
a real SQLite ledger and stereo call recordings (left caller, right lawyer).

espeak speech is not recognisable enough to assert words: these tests assert which calls are
done, speakers, sources, times, states, drafts, exit codes and messages. Each run that decodes
loads the model (a few seconds), so the recordings are short and the runs few.
"""

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from hotline.domain import EndReason
from hotline.recording import inspect
from hotline.speech.batch import BatchRun, ChosenModel, model_label
from hotline.speech.text.pipeline import TextPipeline
from hotline.store.calls import add_recording, close_call, close_recording, open_call
from hotline.store.engine import make_engine, make_session_factory
from hotline.store.migrate import upgrade
from hotline.store.session import session_scope
from hotline.store.tables import Call, Recording, Ticket, TranscriptSegment
from hotline.store.transcripts import set_state

sys.path.insert(0, str(Path(__file__).parent))
from audio import CALLER_SENTENCES, KO_MODEL, LAWYER_SENTENCES, speech_wav  # noqa: E402

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
LAWYER_LEAD = 1.8  # the lawyer speaks only after the caller has started: channels differ


@pytest.fixture(scope="module")
def stereo(tmp_path_factory):
    """A short call recording: the caller on the left channel, the lawyer on the right."""
    folder = tmp_path_factory.mktemp("audio")
    caller = speech_wav(folder / "caller.wav", CALLER_SENTENCES[2:], lead=0.3, gap=0.8)
    lawyer = speech_wav(folder / "lawyer.wav", LAWYER_SENTENCES[2:], lead=LAWYER_LEAD,
                        gap=0.3)
    out = folder / "call.wav"
    subprocess.run(["sox", "-M", str(caller), str(lawyer), str(out)], check=True,
                   capture_output=True)
    assert inspect(out).channels == 2
    return out


class Site:
    """A fresh upgraded ledger, folders under tmp, and ``hotline`` as a child process."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.url = f"sqlite:///{tmp / 'var' / 'ledger.db'}"
        upgrade(self.url)
        self.engine = make_engine(self.url)
        self.factory = make_session_factory(self.engine)
        self.models = tmp / "models"
        self.models.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
        self.env.update({"HOTLINE_DATABASE_URL": self.url,
                         "HOTLINE_PATHS_VAR": str(tmp / "var"),
                         "HOTLINE_PATHS_RECORDINGS": str(tmp / "rec"),
                         "HOTLINE_PATHS_MODELS": str(self.models)})

    def call(self, name: str, wav: Path | None, *, state: str | None = None) -> tuple[int, str]:
        """An ended call with a closed recording (``wav`` None: the file has gone since)."""
        path = self.tmp / "rec" / f"{name}.wav"
        path.parent.mkdir(exist_ok=True)
        with session_scope(self.factory) as s:
            opened = open_call(s, sip_call_id=name, line="12348", caller_number="13800138000",
                               flow="main", worker="w1", at=T0, local_day=T0.date())
            rec = add_recording(s, opened.call_id, str(path), T0)
            if wav is not None:
                shutil.copy(wav, path)
                facts = inspect(path)
                close_recording(s, rec, sha256=facts.sha256, seconds=facts.seconds,
                                size=facts.size, closed_at=T0 + timedelta(seconds=5),
                                flagged=None)
            else:
                close_recording(s, rec, sha256="ab" * 32, seconds=4.0, size=70000,
                                closed_at=T0 + timedelta(seconds=5), flagged=None)
            close_call(s, opened.call_id, at=T0 + timedelta(seconds=5),
                       reason=EndReason.CALLER_HANGUP, ivr_vars={}, ivr_path=None)
            set_state(s, opened.call_id, state)
        return opened.call_id, opened.ticket_no

    def hotline(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hotline", *args], cwd=self.tmp,
                              env={**self.env, **env}, capture_output=True, text=True,
                              timeout=240)

    def states(self) -> dict[int, str | None]:
        with session_scope(self.factory) as s:
            return {i: st for i, st in s.execute(select(Call.id, Call.transcript_state))}

    def segments(self, call_id: int) -> list[TranscriptSegment]:
        with session_scope(self.factory) as s:
            rows = s.scalars(select(TranscriptSegment).where(
                TranscriptSegment.call_id == call_id).order_by(TranscriptSegment.start_s)).all()
            s.expunge_all()
            return list(rows)


@pytest.fixture
def site(tmp_path):
    made = Site(tmp_path)
    yield made
    made.engine.dispose()


def _assert_transcribed(site: Site, call_id: int, model: str) -> None:
    segs = site.segments(call_id)
    assert {s.speaker.value for s in segs} == {"caller", "lawyer"}, segs
    assert {(s.source, s.model) for s in segs} == {("batch", model_label(model))}
    with session_scope(site.factory) as s:
        seconds = s.scalar(select(Recording.duration_s).where(Recording.call_id == call_id))
        rec_id = s.scalar(select(Recording.id).where(Recording.call_id == call_id))
        ticket = s.scalar(select(Ticket).where(Ticket.call_id == call_id))
        assert isinstance(ticket.draft, dict) and "summary" in ticket.draft
        assert ticket.draft["summary"]  # the caller said something, whatever it was
    for seg in segs:
        assert 0.0 <= seg.start_s < seg.end_s <= seconds + 0.05, (seg.start_s, seg.end_s)
        assert seg.recording_id == rec_id and seg.text and 0.0 <= seg.confidence <= 1.0
    # left channel: the caller speaks first; right channel: the lawyer only after his lead
    assert min(s.start_s for s in segs if s.speaker.value == "caller") < 1.0
    assert min(s.start_s for s in segs if s.speaker.value == "lawyer") > LAWYER_LEAD - 0.5
    assert site.states()[call_id] == "batch"


def test_transcribe_one_call_by_id(site, stereo):
    call_id, _ = site.call("a", stereo)
    other, _ = site.call("b", stereo)
    done = site.hotline("transcribe", str(call_id), "--model", str(KO_MODEL))
    assert done.returncode == 0, done.stderr
    assert f"转写 1 个通话, 模型 {KO_MODEL}, 并行 1" in done.stdout
    assert "完成: 1 个通话" in done.stdout and "Traceback" not in done.stderr
    _assert_transcribed(site, call_id, str(KO_MODEL))
    assert site.segments(other) == [] and site.states()[other] is None


def test_pending_with_two_jobs_and_a_recording_gone(site, stereo):
    """The nightly run: only pending calls, two at a time; one lost file fails only its call."""
    first, _ = site.call("first", stereo, state="pending")
    gone, gone_ticket = site.call("gone", None, state="pending")
    second, _ = site.call("second", stereo, state="pending")
    untouched = {site.call("none", stereo)[0]: None,
                 site.call("live", stereo, state="live")[0]: "live",
                 site.call("failed", None, state="failed")[0]: "failed"}
    configured = {"HOTLINE_SPEECH_LIVE_MODEL": str(KO_MODEL),
                  "HOTLINE_SPEECH_BATCH_MODEL": str(KO_MODEL)}
    done = site.hotline("transcribe", "--pending", "--quiet", "--jobs", "2", **configured)
    assert done.returncode == 1, done.stderr
    assert f"转写 3 个通话, 模型 {KO_MODEL}, 并行 2" in done.stdout
    assert "完成: 2 个通话" in done.stdout and "转写中" not in done.stdout
    assert f"失败: 工单 {gone_ticket}: " in done.stderr and "Traceback" not in done.stderr
    assert site.states()[gone] == "failed" and site.segments(gone) == []
    for call_id in (first, second):
        _assert_transcribed(site, call_id, str(KO_MODEL))
    assert {k: v for k, v in site.states().items() if k in untouched} == untouched
    assert all(site.segments(c) == [] for c in untouched)
    # resumable: what is done is not done again, and the failed call waits for an operator
    kept = [(s.id, s.start_s, s.text) for s in site.segments(first)]
    again = site.hotline("transcribe", "--pending", "--quiet", **configured)
    assert (again.returncode, again.stdout, again.stderr) == (
        0, f"没有需要转写的通话 (模型 {KO_MODEL})\n", "")
    assert [(s.id, s.start_s, s.text) for s in site.segments(first)] == kept


def test_pending_redoes_live_calls_only_with_another_model(site):
    pipeline = TextPipeline.from_files(None, None)
    ids = {state: site.call(state or "none", None, state=state)[0]
           for state in ("pending", "live", "batch", None)}

    def chosen(model, live_model):
        run = BatchRun(site.factory, ChosenModel(model, KO_MODEL), pipeline,
                       live_model=live_model)
        return [i.call_id for i in run.candidates(pending=True)]

    assert chosen("small", "small") == [ids["pending"]]
    assert chosen("large", "") == [ids["pending"]]
    assert chosen("large", "small") == [ids["pending"], ids["live"]]


@pytest.mark.parametrize("args", [(), ("1", "--pending"), ("--pending", "--since", "2026-12-01"),
                                  ("1", "--since", "2026-12-01")],
                         ids=["none", "ids+pending", "pending+since", "ids+since"])
def test_bad_usage_is_one_chinese_line(site, args):
    done = site.hotline("transcribe", *args, "--model", str(KO_MODEL))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "用法错误: 请指定且只指定一种范围: 通话编号、--pending 或 --since",
        "运行 'hotline transcribe --help' 查看用法"]


def test_an_uninstalled_model_names_the_download_command(site):
    site.call("a", None, state="pending")
    done = site.hotline("transcribe", "--pending", "--model", "vosk-model-cn-0.22")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("错误: ")
    assert "请运行 hotline models download vosk-model-cn-0.22" in done.stderr
    # nothing configured is installed: the live model is the last resort, and it is named
    done = site.hotline("transcribe", "--pending")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "hotline models download vosk-model-small-cn-0.22" in done.stderr
    assert site.states() == {1: "pending"}
