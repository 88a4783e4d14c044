"""Commands: what the IVR and the coordinator ask a media worker or the ACD to do.

Frozen dataclasses, serialisable as plain data; the worker executes them for the call they
belong to and answers with :mod:`hotline.events`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hotline.domain import Priority


class PromptKind(StrEnum):
    """Where a prompt's audio comes from."""

    CATALOGUE = "catalogue"  # a prompts.yaml id (WAV or cached TTS)
    FILE = "file"  # a WAV path relative to ivr_flows/
    SAY = "say"  # free text synthesised by espeak-ng


@dataclass(frozen=True)
class PromptItem:
    """One piece of audio to play, with its text for timelines and transcripts."""

    kind: PromptKind
    ref: str
    text: str


@dataclass(frozen=True)
class Play:
    """Play prompts in order; ``PlaybackFinished(token)`` follows."""

    token: int
    items: tuple[PromptItem, ...]
    barge_in: bool


@dataclass(frozen=True)
class StopPlayback:
    """Stop the prompt with this token (a key was pressed)."""

    token: int


@dataclass(frozen=True)
class RecordMessage:
    """Record the caller (voicemail); ``RecordingFinished(token, seconds)`` follows."""

    token: int
    max_seconds: int
    beep: bool
    silence_timeout: int


@dataclass(frozen=True)
class Enqueue:
    """Hand the call to the ACD."""

    queue: str | None
    skills: tuple[str, ...]
    priority: Priority
    max_wait: int | None
    announce_position: bool
    announce_expected_wait: bool
    announce_interval: int
    hold_music: str | None
    offer_callback: bool
    language: str | None
    category: str | None


@dataclass(frozen=True)
class TransferOut:
    """Blind-transfer the caller to an outside number (12345, 110...)."""

    number: str


@dataclass(frozen=True)
class TransferToLawyer:
    """Ring a named lawyer (点名式); ``QueueAnswered`` or ``TransferFailed`` follows."""

    work_id: str
    timeout: int


@dataclass(frozen=True)
class Listen:
    """Recognise a spoken menu choice; ``SpeechHeard(token, ...)`` follows, at most once.

    ``phrases`` pairs each phrase of the menu's grammar with the route key it stands for, in
    the flow's order. The worker runs Vosk in grammar mode on these phrases (plus a free-text
    pass for the rejection rule, :mod:`hotline.speech.grammar`) until ``StopListening`` with
    the same token. A worker that cannot listen may ignore this: the menu still works by key,
    because the engine's no-input deadline runs whether speech is heard or not.
    """

    token: int
    phrases: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class StopListening:
    """Stop the recogniser started by ``Listen(token)`` (the menu ended: key, timeout...)."""

    token: int


@dataclass(frozen=True)
class Hangup:
    """End the call."""

    reason: str


IvrCommand = (Play | StopPlayback | RecordMessage | Enqueue | TransferOut | TransferToLawyer
              | Listen | StopListening | Hangup)
