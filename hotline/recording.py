"""Recording files: where they live, what they hold, and repair after a crash.

A recording is a stereo 16-bit WAV, ``recordings/YYYY/MM/DD/<ticket-no>.wav`` by the call's
local date. A worker killed mid-call leaves a WAV whose header still says "0 bytes of
audio"; :func:`repair_wav` rewrites the RIFF and data sizes from the file's real size so the
audio is playable again. Pure file logic: no database, no pjsua2.
"""

from __future__ import annotations

import array
import contextlib
import hashlib
import os
import struct
import sys
import wave
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

# A recording shorter or longer than the call by more than this share is flagged: the
# conference bridge can silently drop clock ticks under overload.
MAX_DRIFT = 0.02
RATE = 8000
MERGE_CHUNK = RATE * 10  # frames per write while merging: bounded memory for long calls


@dataclass(frozen=True)
class RecordingFacts:
    """What the ledger stores about a closed recording."""

    seconds: float
    sha256: str
    size: int
    channels: int
    sample_rate: int


def recording_path(root: Path, ticket_no: str, local_start: datetime) -> Path:
    """``root/YYYY/MM/DD/<ticket-no>.wav`` by the call's local start date."""
    return root / f"{local_start:%Y}" / f"{local_start:%m}" / f"{local_start:%d}" / (
        f"{ticket_no}.wav")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def inspect(path: Path) -> RecordingFacts:
    """Length, hash and format of a WAV (wave.Error / OSError when unreadable)."""
    with wave.open(str(path), "rb") as wav:
        frames, rate, channels = wav.getnframes(), wav.getframerate(), wav.getnchannels()
    return RecordingFacts(frames / rate if rate else 0.0, sha256_of(path), path.stat().st_size,
                          channels, rate)


def flag_reason(seconds: float, wall_seconds: float) -> str | None:
    """Why a recording should be reviewed, or None when its length matches the call."""
    if wall_seconds <= 0:
        return None
    drift = abs(seconds - wall_seconds) / wall_seconds
    if drift > MAX_DRIFT:
        return f"录音时长 {seconds:.1f} 秒与通话时长 {wall_seconds:.1f} 秒相差 {drift:.1%}"
    return None


def repair_wav(path: Path) -> bool:
    """Fix the RIFF and data chunk sizes of a WAV cut off by a crash; True when changed.

    Only canonical PCM files (``fmt `` then ``data``, possibly with other chunks between)
    are touched; the data chunk is taken to run to the end of the file, trimmed to whole
    frames.
    """
    size = path.stat().st_size
    with path.open("r+b") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return False
        offset = 12
        block_align = 0
        while offset + 8 <= size:
            fh.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
            if chunk_id == b"fmt ":
                fmt = fh.read(16)
                block_align = struct.unpack("<H", fmt[12:14])[0] if len(fmt) == 16 else 0
            if chunk_id == b"data":
                if block_align <= 0:
                    return False
                available = size - (offset + 8)
                data_size = available - available % block_align
                changed = data_size != chunk_size or bool(struct.unpack(
                    "<I", head[4:8])[0] != offset + data_size)
                if changed:
                    fh.seek(offset + 4)
                    fh.write(struct.pack("<I", data_size))
                    fh.seek(4)
                    fh.write(struct.pack("<I", offset + data_size))
                    fh.truncate(offset + 8 + data_size)
                return changed
            offset += 8 + chunk_size + (chunk_size & 1)
    return False


@dataclass(frozen=True)
class RecordingResult:
    """A closed stereo recording."""

    path: str
    seconds: float
    sha256: str


def part_paths(path: Path) -> tuple[Path, Path]:
    """The mono part files a recording to ``path`` writes while it runs."""
    return (path.with_name(path.stem + ".left.part.wav"),
            path.with_name(path.stem + ".right.part.wav"))


def recover_parts(path: Path) -> RecordingResult | None:
    """Turn the part files of a worker killed mid-recording into the stereo ``path``.

    The killed worker never fixed the parts' WAV headers; they are repaired from the files'
    real sizes, then merged as usual. None when no part exists (nothing to recover).
    """
    left, right = part_paths(path)
    if not left.exists() and not right.exists():
        return None
    for part in (left, right):
        with contextlib.suppress(OSError):
            if part.exists() and part.stat().st_size >= 44:
                repair_wav(part)
    try:
        seconds = merge_stereo(left, right, path)
    finally:
        for part in (left, right):
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
    return RecordingResult(str(path), seconds, sha256_of(path))


def _read_mono(path: Path) -> tuple[wave.Wave_read | None, int]:
    """Open a mono 16-bit WAV; a missing or empty file counts as silence."""
    try:
        reader = wave.open(str(path), "rb")
    except (FileNotFoundError, EOFError, wave.Error):
        return None, 0
    if reader.getnchannels() != 1 or reader.getsampwidth() != 2:
        reader.close()
        raise wave.Error(f"{path}: not 16-bit mono")
    return reader, reader.getnframes()


def merge_stereo(left: Path, right: Path, out: Path) -> float:
    """Interleave two mono 16-bit WAVs into a stereo WAV; the shorter is padded with silence.

    The output is written beside ``out`` and renamed over it only when complete, so a
    reader never sees half a recording. Returns the seconds of audio written.
    """
    left_reader, left_frames = _read_mono(left)
    right_reader, right_frames = _read_mono(right)
    rate = next((r.getframerate() for r in (left_reader, right_reader) if r is not None), RATE)
    total = max(left_frames, right_frames)
    partial = out.with_name(out.name + ".part")
    try:
        with open(partial, "wb") as raw:
            writer = wave.open(raw, "wb")
            writer.setnchannels(2)
            writer.setsampwidth(2)
            writer.setframerate(rate)
            writer.setnframes(total)
            done = 0
            while done < total:
                step = min(MERGE_CHUNK, total - done)
                frames = array.array("h", bytes(4 * step))
                frames[0::2] = _chunk(left_reader, step)
                frames[1::2] = _chunk(right_reader, step)
                if sys.byteorder == "big":
                    frames.byteswap()
                writer.writeframes(frames.tobytes())
                done += step
            writer.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, out)
    finally:
        for reader in (left_reader, right_reader):
            if reader is not None:
                reader.close()
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return total / rate


def _chunk(reader: wave.Wave_read | None, frames: int) -> array.array[int]:
    """``frames`` samples from ``reader``, zero-padded past its end."""
    samples = array.array("h")
    if reader is not None:
        samples.frombytes(reader.readframes(frames))
        if sys.byteorder == "big":
            samples.byteswap()
    if len(samples) < frames:
        samples.extend(array.array("h", bytes(2 * (frames - len(samples)))))
    return samples
