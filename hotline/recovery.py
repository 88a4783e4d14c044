"""Start-up recovery: close what a crash left open, repair recordings a crash cut off.

Runs once when ``hotline serve`` starts, before any new call: every call without an end is
closed as ``system_restart`` and every recording never closed is repaired (WAV header from
the file size), hashed and closed, or flagged when its file is gone. Calls a media worker
carried through the restart (bridged conversations, ``keep``) are left open: the
coordinator adopts them and closes them when they end.
"""

from __future__ import annotations

import logging
import wave
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from hotline.domain import EndReason
from hotline.recording import inspect, recover_parts, repair_wav
from hotline.store import calls as ledger_calls
from hotline.store import transcripts

log = logging.getLogger("hotline.recovery")


@dataclass(frozen=True)
class Recovered:
    """What recovery did."""

    calls_closed: int
    recordings_closed: int
    recordings_repaired: int


def recover(session: Session, now: datetime, keep: Iterable[str] = ()) -> Recovered:
    """Close open calls and recordings except ``keep``'s (SIP Call-IDs); idempotent."""
    kept = ledger_calls.open_call_ids(session, keep)
    open_now = ledger_calls.open_calls(session)
    # A live transcript of a call still open at start-up was cut (the speech service went
    # with the coordinator): the whole call is transcribed again in batch after it ends.
    transcripts.requeue_live(session, [c.call_id for c in open_now])
    calls = [c for c in open_now if c.call_id not in kept]
    for call in calls:
        ledger_calls.close_call(session, call.call_id, at=now, reason=EndReason.SYSTEM_RESTART,
                                ivr_vars={}, ivr_path=None, data={"recovered": True})
    repaired = 0
    recordings = ledger_calls.open_recordings(session, skip_calls=kept)
    for rec_id, raw_path in recordings:
        path = Path(raw_path)
        try:
            if recover_parts(path) is not None:  # a worker killed mid-recording
                repaired += 1
            if not path.exists():
                raise FileNotFoundError(raw_path)
            if repair_wav(path):
                repaired += 1
            facts = inspect(path)
            ledger_calls.close_recording(session, rec_id, sha256=facts.sha256,
                                         seconds=facts.seconds, size=facts.size,
                                         closed_at=now, flagged="系统重启后修复")
        except (OSError, wave.Error, EOFError) as exc:
            log.warning("录音无法恢复 %s: %s", raw_path, exc)
            ledger_calls.close_recording(session, rec_id, sha256="", seconds=0.0, size=0,
                                         closed_at=now, flagged=f"录音文件缺失或损坏: {exc}")
    return Recovered(len(calls), len(recordings), repaired)
