"""Logging set-up: one readable line per event, phone numbers masked before they are written.

Caller numbers reach log calls through many paths (SIP URIs, flow traces, errors); masking in
a filter on the handlers means no single forgotten call site can leak one.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

# 7+ digit runs: mobile (11), landline with area code, ID-like numbers. Dates and times use
# separators and are left alone.
_NUMBER = re.compile(r"(?<![\d])(\+?\d{3})(\d{3,})(\d{4})(?![\d])")


def mask_text(text: str) -> str:
    """Replace the middle of every long digit run with asterisks."""
    return _NUMBER.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)


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
