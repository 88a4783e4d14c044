"""Logging set-up: one readable line per event, phone numbers masked before they are written.

Caller numbers reach log calls through many paths (SIP URIs, flow traces, errors); masking in
a filter on the handlers means no single forgotten call site can leak one.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from hotline.speech.text.masking import mask_numbers

# Any other 10+ digit run (caller numbers in SIP URIs, foreign or odd numbers, IDs with a bad
# check digit): in logs we would rather hide too much. A run glued to letters is part of a
# longer token (a hex call id like 9f3c1234567890ab) and stays; dates and times use separators.
_NUMBER = re.compile(r"(?<![0-9A-Za-z_])(\+?\d{3})(\d{3,})(\d{4})([Xx]?)(?![0-9A-Za-z_])")
# UUIDs (call and ticket ids) may end in a 12-digit group; they are ids, not phone numbers.
_UUID = re.compile(r"(?<![0-9A-Za-z_])[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}"
                   r"(?![0-9A-Za-z_])")


def mask_text(text: str) -> str:
    """Mask personal numbers, then the middle of every other long digit run.

    Resident IDs, mobiles, landlines written with separators (027-8765 4321), bank cards and
    numbers spoken as words (幺三八…, from transcripts) are masked the way transcripts are
    (:mod:`hotline.speech.text.masking`); any remaining 10+ digit run keeps its first 3 and
    last 4 digits.
    """
    pieces: list[str] = []
    pos = 0
    for uuid in _UUID.finditer(text):
        pieces += [_mask_piece(text[pos:uuid.start()]), uuid.group()]
        pos = uuid.end()
    pieces.append(_mask_piece(text[pos:]))
    return "".join(pieces)


def _mask_piece(text: str) -> str:
    masked, _ = mask_numbers(text)
    return _NUMBER.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3) + m.group(4),
                       masked)


class MaskNumbers(logging.Filter):
    """Mask long digit runs in the rendered message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, masked, and drop the args."""
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        return True


def setup(level: str, log_dir: Path | None) -> None:
    """Log to stderr and, when given, to ``log_dir/hotline.log``."""
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                            datefmt="%Y-%m-%d %H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_dir / "hotline.log", encoding="utf-8"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    for handler in handlers:
        handler.setFormatter(fmt)
        handler.addFilter(MaskNumbers())
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("uvicorn", "uvicorn.error", "uvicorn.access", "apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
