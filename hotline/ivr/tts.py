"""Prompt audio: Chinese text and operators' WAV files turned into one uniform format, cached.

The media side only ever plays mono 16-bit signed PCM at the telephony rate (8 kHz by
default), so both synthesised prompts (``say:``) and recorded ones (``file:``) pass through
here once and land in a content-addressed cache. Rendering is slow (a subprocess each) and
happens when flows are loaded, never in the middle of a call; a cache hit costs one ``stat``.

espeak-ng and sox are Debian packages we shell out to, with arguments as a list (no shell,
so prompt text cannot inject anything). Files appear in the cache only via ``os.replace`` of a
finished temporary file, so a crash or a failing tool never leaves a truncated WAV that a
later call would mistake for a cached prompt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hotline.errors import ExternalToolError

# Seconds a single espeak-ng or sox run may take; prompts are a sentence or two.
TIMEOUT_SECONDS = 30.0

# (program, Debian package) pairs the server checks at start.
TOOLS = (("espeak-ng", "espeak-ng"), ("sox", "sox"))

# Speaking-rate model for estimate_seconds(): a Mandarin syllable is one Han character; a
# fluent announcer reads about 4.5 per second, which espeak-ng's 150 wpm is meant to match.
_SYLLABLES_PER_SECOND_AT_150 = 4.5
_SHORT_PAUSE = frozenset("，、；：,;:")  # comma-like: a breath
_LONG_PAUSE = frozenset("。！？.!?…\n")  # sentence end
_SHORT_PAUSE_SECONDS = 0.3
_LONG_PAUSE_SECONDS = 0.5


class PromptAudio:
    """Renders and converts prompts into ``cache_dir``; safe to share between processes.

    Args:
        cache_dir: Where rendered WAVs live (``var/prompts`` in the default layout); created
            on first use. Files are named by content hash, so stale ones are harmless and the
            folder can be wiped at any time.
        voice: espeak-ng voice; ``cmn`` is Mandarin (``ivr.tts_voice``).
        words_per_minute: espeak-ng speed (``ivr.tts_words_per_minute``).
        sample_rate: Output rate in Hz, 8000 for narrowband telephony
            (``ivr.prompt_sample_rate``).
    """

    def __init__(self, cache_dir: Path, voice: str = "cmn", words_per_minute: int = 150,
                 sample_rate: int = 8000) -> None:
        self.cache_dir = Path(cache_dir)
        self.voice = voice
        self.words_per_minute = words_per_minute
        self.sample_rate = sample_rate

    @staticmethod
    def check_tools() -> None:
        """Fail fast at server start, with the package to install, if a program is missing.

        Raises:
            ExternalToolError: ``tool.missing`` naming the first missing program.
        """
        for tool, package in TOOLS:
            _which(tool, package)

    def for_text(self, text: str) -> Path:
        """The cached WAV of espeak-ng saying ``text``; rendered on the first request only.

        The cache key covers voice, speed and rate as well as the text, so changing any
        setting re-renders instead of playing stale audio.

        Raises:
            ValueError: ``text`` is blank (a flow bug the validator should have caught).
            ExternalToolError: espeak-ng or sox is missing (``tool.missing``) or failed.
        """
        if not text.strip():
            raise ValueError("提示音文本不能为空")
        key = json.dumps([self.voice, self.words_per_minute, self.sample_rate, text],
                         ensure_ascii=False)
        target = self.cache_dir / f"tts-{_sha256(key.encode('utf-8'))}.wav"
        if target.is_file():
            return target
        espeak = _which("espeak-ng", "espeak-ng")
        sox = _which("sox", "sox")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="hotline-tts-") as work:
            raw = Path(work) / "espeak.wav"
            # "--" ends options so text starting with "-" is spoken, not parsed.
            _run("espeak-ng", [espeak, "-v", self.voice, "-s", str(self.words_per_minute),
                               "-w", str(raw), "--", text])
            with self._atomic(target) as tmp:
                self._convert(sox, raw, tmp)
        return target

    def for_file(self, path: Path) -> Path:
        """The cached, uniform-format copy of an operator's WAV (any rate or channels).

        Even a file already in the target format is copied, so players only ever read the
        cache and an operator overwriting the original mid-call cannot tear a prompt.

        Raises:
            OSError: ``path`` cannot be read.
            ExternalToolError: sox is missing (``tool.missing``) or cannot convert the file.
        """
        source = Path(path)
        content = source.read_bytes()
        target = self.cache_dir / f"wav-{_sha256(content)}-{self.sample_rate}.wav"
        if target.is_file():
            return target
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        if self._is_target_format(source):
            with self._atomic(target) as tmp:
                tmp.write_bytes(content)
            return target
        sox = _which("sox", "sox")
        with self._atomic(target) as tmp:
            self._convert(sox, source, tmp)
        return target

    @staticmethod
    def duration(path: Path) -> float:
        """Seconds of audio in a PCM WAV, for timers that start when a prompt ends.

        Raises:
            wave.Error: ``path`` is not a PCM WAV (cached prompts always are).
        """
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes() / wav.getframerate()

    @staticmethod
    def estimate_seconds(text: str, words_per_minute: int = 150) -> float:
        """How long ``text`` would take to say, for the simulator when nothing is rendered.

        One Han character or digit is one syllable (phone numbers are read digit by digit),
        a Latin word about two; comma-like marks add a breath and sentence ends a longer
        pause. Only roughly right, but it keeps simulated timers in the right order of
        magnitude without running espeak-ng.
        """
        syllables = 0.0
        pauses = 0.0
        in_word = False
        for char in text:
            if char.isascii() and char.isalpha():
                if not in_word:
                    syllables += 2
                in_word = True
                continue
            in_word = False
            if char in _LONG_PAUSE:
                pauses += _LONG_PAUSE_SECONDS
            elif char in _SHORT_PAUSE:
                pauses += _SHORT_PAUSE_SECONDS
            elif char.isdigit() or _is_han(char):
                syllables += 1
        rate = _SYLLABLES_PER_SECOND_AT_150 * words_per_minute / 150
        return syllables / rate + pauses

    def _convert(self, sox: str, source: Path, out: Path) -> None:
        # -G guards against clipping when resampling, -R makes dither repeatable (same input,
        # same bytes), -V1 keeps warnings out of stderr so a failure's first line is the cause.
        _run("sox", [sox, "-V1", "-G", "-R", str(source), "-t", "wav", "-c", "1", "-b", "16",
                     "-e", "signed-integer", "-r", str(self.sample_rate), str(out)])

    def _is_target_format(self, path: Path) -> bool:
        try:
            with wave.open(str(path), "rb") as wav:
                return (wav.getnchannels() == 1 and wav.getsampwidth() == 2
                        and wav.getframerate() == self.sample_rate
                        and wav.getcomptype() == "NONE")
        except (wave.Error, EOFError):
            # Not a plain PCM WAV (e.g. WAVE_FORMAT_EXTENSIBLE, A-law): let sox read it.
            return False

    @contextmanager
    def _atomic(self, target: Path) -> Iterator[Path]:
        """A temporary path beside ``target`` that replaces it only if the block succeeds."""
        fd, name = tempfile.mkstemp(dir=self.cache_dir, prefix=".part-", suffix=".wav")
        os.close(fd)
        tmp = Path(name)
        try:
            yield tmp
            # mkstemp makes 0600 files; the media process may run as another user.
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)


def estimate_seconds(text: str, words_per_minute: int = 150) -> float:
    """Module-level alias of :meth:`PromptAudio.estimate_seconds` for the simulator."""
    return PromptAudio.estimate_seconds(text, words_per_minute)


def _which(tool: str, package: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise ExternalToolError("tool.missing", tool=tool, package=package)
    return found


def _run(tool: str, argv: list[str]) -> None:
    """Run one tool, turning every way it can fail into ``tool.failed`` with its first words."""
    try:
        done = subprocess.run(argv, capture_output=True, timeout=TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise ExternalToolError("tool.failed", tool=tool,
                                detail=f"超过 {TIMEOUT_SECONDS:g} 秒未完成") from None
    except FileNotFoundError:
        raise ExternalToolError("tool.missing", tool=tool, package=tool) from None
    except OSError as exc:
        raise ExternalToolError("tool.failed", tool=tool, detail=str(exc)) from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = lines[0].strip() if lines else f"退出码 {done.returncode}"
        raise ExternalToolError("tool.failed", tool=tool, detail=detail)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_han(char: str) -> bool:
    code = ord(char)
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF
            or 0x20000 <= code <= 0x2FFFF or 0xF900 <= code <= 0xFAFF)
