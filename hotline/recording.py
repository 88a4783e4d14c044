"""Recording files: where they live, what they hold, and repair after a crash.

A recording is a stereo 16-bit WAV, ``recordings/YYYY/MM/DD/<ticket-no>.wav`` by the call's
local date. A worker killed mid-call leaves a WAV whose header still says "0 bytes of
audio"; :func:`repair_wav` rewrites the RIFF and data sizes from the file's real size so the
audio is playable again. Pure file logic: no database, no pjsua2.
"""

from __future__ import annotations

import hashlib
import struct
import wave
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

# A recording shorter or longer than the call by more than this share is flagged: the
# conference bridge can silently drop clock ticks under overload.
MAX_DRIFT = 0.02


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
