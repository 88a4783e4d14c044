"""Batch transcription of recordings: ``hotline transcribe`` and the nightly job.

A call recording is stereo (left: caller, right: lawyer); each channel is recognised on
its own, so every segment knows its speaker, and times count from the recording's start
like live segments do. A call's segments are replaced in one transaction, so a run cut
short leaves every call either as it was or fully re-transcribed, and running again is
harmless (``--pending`` skips the calls already done). Calls are decoded on ``jobs``
threads sharing one loaded model (Vosk releases the GIL while decoding).
"""

from __future__ import annotations

import array
import logging
import sys
import threading
import wave
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from hotline.config import Settings
from hotline.errors import HotlineError
from hotline.speech.models import resolve
from hotline.speech.text.pipeline import TextPipeline
from hotline.speech.vosk import Models, Recogniser, Utterance
from hotline.store import transcripts as store
from hotline.store.session import session_scope

log = logging.getLogger("hotline.speech")
CHUNK_SECONDS = 1.0
SPEAKERS = ("caller", "lawyer")  # channel order of a call recording


@dataclass(frozen=True)
class ChosenModel:
    """The model a batch run uses, and why."""

    name: str
    path: Path


@dataclass(frozen=True)
class CallResult:
    """One call's outcome."""

    call_id: int
    ticket_no: str
    segments: int
    audio_seconds: float
    error: str = ""


def choose_model(settings: Settings, wanted: str | None) -> ChosenModel:
    """``wanted``, else the batch model when installed, else the live model.

    Raises:
        ModelError: The wanted (or, failing the batch model, the live) model is not usable;
            the message names the command that installs it.
    """
    models_dir, base = settings.path("models"), settings.base_dir
    if wanted:
        return ChosenModel(wanted, resolve(wanted, models_dir, base_dir=base))
    try:
        name = settings.speech.batch_model
        return ChosenModel(name, resolve(name, models_dir, base_dir=base))
    except HotlineError:
        name = settings.speech.live_model
        return ChosenModel(name, resolve(name, models_dir, base_dir=base))


def read_channels(path: Path) -> tuple[int, list[bytes]]:
    """(sample rate, s16le PCM per channel) of a WAV recording."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: {8 * w.getsampwidth()}-bit audio (want 16-bit)")
        rate, channels = w.getframerate(), w.getnchannels()
        frames = w.readframes(w.getnframes())
    samples = array.array("h")
    samples.frombytes(frames)
    if sys.byteorder == "big":
        samples.byteswap()
    out = []
    for ch in range(channels):
        part = samples[ch::channels]
        if sys.byteorder == "big":
            part.byteswap()
        out.append(part.tobytes())
    return rate, out


def transcribe_channel(rec: Recogniser, rate: int, pcm: bytes) -> Iterator[Utterance]:
    """Utterances of one channel (fed in 1 s pieces), in order."""
    step = int(CHUNK_SECONDS * rate) * 2
    for at in range(0, len(pcm), step):
        result = rec.accept(pcm[at:at + step])
        if isinstance(result, Utterance):
            yield result
    last = rec.finish()
    if last is not None:
        yield last


class BatchRun:
    """One ``hotline transcribe`` run: a model, a pipeline, a database."""

    def __init__(self, factory: sessionmaker[Session], model: ChosenModel,
                 pipeline: TextPipeline, jobs: int = 1, live_model: str = "") -> None:
        self.factory, self.model, self.pipeline = factory, model, pipeline
        self.live_model = live_model
        self.jobs = max(1, jobs)
        self.models = Models({model.name: model.path})
        self._db_lock = threading.Lock()  # SQLite: one writer at a time from this process

    def candidates(self, call_ids: Sequence[int] = (), since: datetime | None = None,
                   pending: bool = False) -> list[store.BatchItem]:
        """The calls to do (see :func:`hotline.store.transcripts.batch_candidates`).

        With ``pending``, calls transcribed live are done again when this run's model is
        not the one they were transcribed with live (a larger model was installed).
        """
        redo = pending and bool(self.live_model) and self.model.name != self.live_model
        with session_scope(self.factory) as session:
            return store.batch_candidates(session, call_ids=call_ids, since=since,
                                          pending=pending, redo_live=redo)

    def run(self, items: Sequence[store.BatchItem],
            on_done: Callable[[CallResult], None] = lambda r: None) -> list[CallResult]:
        """Transcribe ``items``; one failing call is reported and the others go on."""
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="transcribe") as pool:
            results = []
            for result in pool.map(self._one, items):
                on_done(result)
                results.append(result)
        return results

    def _one(self, item: store.BatchItem) -> CallResult:
        """One call; whatever fails is that call's failure, and the run goes on."""
        try:
            return self._transcribe(item)
        except (OSError, EOFError, ValueError, wave.Error, HotlineError) as exc:
            why = str(exc)
        except Exception as exc:  # a recogniser or driver error: this call only
            log.exception("转写失败: 工单 %s", item.ticket_no)
            why = f"{type(exc).__name__}: {exc}"
        self._save_failure(item, why)
        return CallResult(item.call_id, item.ticket_no, 0, 0.0, why[:200])

    def _transcribe(self, item: store.BatchItem) -> CallResult:
        handle = self.models.get(self.model.name)
        rate, channels = read_channels(Path(item.path))
        segments = []
        for speaker, pcm in zip(SPEAKERS, channels, strict=False):
            for u in transcribe_channel(Recogniser(handle, rate), rate, pcm):
                processed = self.pipeline.process(u.text)
                segments.append(store.NewSegment(speaker, round(u.start, 2), round(u.end, 2),
                                                 processed.text, processed.original_masked,
                                                 u.confidence))
        segments.sort(key=lambda s: (s.start_s, s.speaker))
        seconds = len(channels[0]) / 2 / rate if channels else 0.0
        with self._db_lock, session_scope(self.factory) as session:
            count = store.replace_segments(session, item.call_id, segments, source="batch",
                                           model=model_label(self.model.name))
            store.set_state(session, item.call_id, store.BATCH)
            store.refresh_draft(session, item.call_id, self.pipeline)
        return CallResult(item.call_id, item.ticket_no, count, seconds)

    def _save_failure(self, item: store.BatchItem, why: str) -> None:
        log.warning("转写失败: 工单 %s: %s", item.ticket_no, why)
        try:
            with self._db_lock, session_scope(self.factory) as session:
                store.set_state(session, item.call_id, store.FAILED)
        except HotlineError as exc:  # the database itself is failing: report, go on
            log.error("无法记录转写失败: 工单 %s: %s", item.ticket_no, exc)


def model_label(name: str) -> str:
    """What a segment records as its model: the name, or a model folder's own name."""
    return Path(name).name[:100] if "/" in name else name[:100]
