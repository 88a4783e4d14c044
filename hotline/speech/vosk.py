"""The one module that imports Vosk: models loaded once, recognisers that return dataclasses.

Measured with vosk 0.3.45 (docs: TELEPHONY_NOTES.md): a loaded small model takes ≈0.5 GB;
every recogniser adds ≈0.2 GB while active; recognisers sharing one ``vosk.Model`` are
thread-safe and as fast as separate processes, so the speech service loads each model once
and gives every leg its own recogniser. ``AcceptWaveform`` releases the GIL while it
decodes but may block for hundreds of ms: call it only on the speech service's decoding
threads, never on an event loop or a SIP thread.

Vosk resamples internally: a recogniser is created at the audio's own rate (8 kHz from the
bridge, whatever rate a recording has), so no resampling happens here.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vosk

log = logging.getLogger("hotline.speech")
vosk.SetLogLevel(-1)  # Kaldi's own logging goes to stderr line by line; ours suffices


@dataclass(frozen=True)
class Word:
    """One recognised word, times in seconds from the start of the fed audio."""

    word: str
    start: float
    end: float
    conf: float


@dataclass(frozen=True)
class Utterance:
    """A final result: the words of one utterance (the recogniser's endpointer decided).

    Attributes:
        text: The words as Vosk returns them (space-separated, no punctuation).
        start: Start of the first word (seconds from the start of the fed audio).
        end: End of the last word.
        confidence: Mean word confidence (0–1); not a reliable rejection signal alone.
        words: The words with their times.
    """

    text: str
    start: float
    end: float
    confidence: float
    words: tuple[Word, ...]

    @property
    def raw(self) -> dict[str, Any]:
        """The result in Vosk's own JSON shape (for the grammar rejection rule)."""
        return {"text": self.text, "result": [
            {"word": w.word, "start": w.start, "end": w.end, "conf": w.conf}
            for w in self.words]}


def parse_result(body: str) -> Utterance | None:
    """A Vosk final-result JSON → :class:`Utterance`, or None when nothing was said."""
    data = json.loads(body)
    words = tuple(Word(str(w["word"]), float(w["start"]), float(w["end"]),
                       float(w.get("conf", 1.0)))
                  for w in data.get("result", ()) if str(w.get("word", "")) != "[unk]")
    text = str(data.get("text", "")).strip()
    if not words or not text:
        return None
    confidence = sum(w.conf for w in words) / len(words)
    return Utterance(text, words[0].start, words[-1].end, round(confidence, 4), words)


class ModelHandle:
    """One loaded model, shared by every recogniser that uses it."""

    def __init__(self, name: str, path: Path) -> None:
        self.name, self.path = name, path
        self.model = vosk.Model(str(path))


class Models:
    """Load each model once, on first use, whatever thread asks."""

    def __init__(self, paths: dict[str, Path]) -> None:
        self.paths = dict(paths)
        self._loaded: dict[str, ModelHandle] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> ModelHandle:
        """The loaded model ``name`` (loading it now if needed; may take seconds)."""
        with self._lock:
            handle = self._loaded.get(name)
            if handle is None:
                path = self.paths[name]
                log.info("加载语音模型 %s (%s)", name, path)
                handle = self._loaded[name] = ModelHandle(name, path)
            return handle

    @property
    def loaded(self) -> list[str]:
        """Names of the models in memory."""
        with self._lock:
            return sorted(self._loaded)


class Recogniser:
    """One stream's recogniser: feed PCM, get partial text and final utterances.

    Not thread-safe by itself: one thread feeds one recogniser (different recognisers on
    one model may run on different threads at once).
    """

    def __init__(self, model: ModelHandle, rate: int, grammar: str | None = None) -> None:
        self.model = model
        if grammar is None:
            self._rec = vosk.KaldiRecognizer(model.model, float(rate))
        else:
            self._rec = vosk.KaldiRecognizer(model.model, float(rate), grammar)
        self._rec.SetWords(True)
        self._partial = ""

    def accept(self, pcm: bytes) -> Utterance | str | None:
        """Feed s16le mono samples; an utterance when one ended, new partial text, or None."""
        if self._rec.AcceptWaveform(pcm):
            self._partial = ""
            return parse_result(self._rec.Result())
        partial = str(json.loads(self._rec.PartialResult()).get("partial", "")).strip()
        if partial == self._partial:
            return None
        self._partial = partial
        return partial

    def finish(self) -> Utterance | None:
        """The last utterance when the audio ends (flushes the decoder)."""
        self._partial = ""
        return parse_result(self._rec.FinalResult())
