"""Transcript segments and the ticket's draft in the ledger.

Live segments are added one by one as utterances end (a crash loses at most the utterance
in progress); a batch run replaces all of a call's segments in one transaction, so running
it again is harmless. The draft the wrap-up form opens with is recomputed from the stored
segments whenever they change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from hotline.domain import Category, Speaker
from hotline.errors import NotFoundError
from hotline.store.tables import Call, Recording, Ticket, TranscriptSegment

LIVE, PENDING, BATCH, FAILED = "live", "pending", "batch", "failed"


@dataclass(frozen=True)
class SegmentView:
    """One stored segment (text already masked)."""

    speaker: str
    start_s: float
    end_s: float
    text: str
    confidence: float | None
    source: str
    model: str | None


@dataclass(frozen=True)
class NewSegment:
    """A segment to store (batch)."""

    speaker: str
    start_s: float
    end_s: float
    text: str
    text_original: str
    confidence: float | None


class Drafter(Protocol):
    """What :func:`refresh_draft` needs of the text pipeline."""

    def draft(self, segments: Sequence[Any]) -> Any:
        """A draft ticket (with ``category`` and ``to_dict()``) from the segments."""


def add_segment(session: Session, call_id: int, speaker: str, start_s: float, end_s: float,
                text: str, text_original: str, confidence: float | None, *,
                source: str = LIVE, model: str | None = None) -> int:
    """Store one utterance; returns its id."""
    row = TranscriptSegment(call_id=call_id, recording_id=_recording_id(session, call_id),
                            speaker=Speaker(speaker), start_s=start_s, end_s=end_s,
                            text=text, text_original=text_original, confidence=confidence,
                            source=source, model=model)
    session.add(row)
    session.flush()
    return row.id


def replace_segments(session: Session, call_id: int, segments: Iterable[NewSegment], *,
                     source: str, model: str) -> int:
    """Replace every segment of the call (one transaction: a rerun is idempotent)."""
    session.execute(delete(TranscriptSegment).where(TranscriptSegment.call_id == call_id))
    recording_id = _recording_id(session, call_id)
    count = 0
    for s in segments:
        session.add(TranscriptSegment(
            call_id=call_id, recording_id=recording_id, speaker=Speaker(s.speaker),
            start_s=s.start_s, end_s=s.end_s, text=s.text, text_original=s.text_original,
            confidence=s.confidence, source=source, model=model))
        count += 1
    session.flush()
    return count


def segments_of(session: Session, call_id: int) -> list[SegmentView]:
    """The call's segments in time order (both speakers interleaved)."""
    rows = session.scalars(select(TranscriptSegment).where(
        TranscriptSegment.call_id == call_id).order_by(
        TranscriptSegment.start_s, TranscriptSegment.id))
    return [SegmentView(r.speaker.value, r.start_s, r.end_s, r.text, r.confidence, r.source,
                        r.model) for r in rows]


def refresh_draft(session: Session, call_id: int, pipeline: Drafter,
                  ) -> tuple[str | None, dict[str, Any]] | None:
    """Recompute the call's ticket draft from its segments: (suggested category, draft).

    None when the call has no ticket.

    A ticket the lawyer has already filed keeps its category; only the suggestion changes.
    """
    segments = segments_of(session, call_id)
    ticket = session.scalars(select(Ticket).where(Ticket.call_id == call_id)).first()
    if ticket is None:
        return None
    draft = pipeline.draft(segments)
    category = str(draft.category.value) if draft.category is not None else None
    ticket.suggested_category = Category(category) if category else None
    body: dict[str, Any] = draft.to_dict()
    ticket.draft = body
    return category, body


def set_state(session: Session, call_id: int, state: str | None) -> None:
    """Mark how the call is (to be) transcribed."""
    session.execute(update(Call).where(Call.id == call_id).values(transcript_state=state))


def requeue_live(session: Session, call_ids: Sequence[int]) -> None:
    """Calls whose live transcription was cut short go to batch."""
    if call_ids:
        session.execute(update(Call).where(Call.id.in_(call_ids),
                                           Call.transcript_state == LIVE)
                        .values(transcript_state=PENDING))


@dataclass(frozen=True)
class BatchItem:
    """A call whose recording is to be transcribed."""

    call_id: int
    ticket_no: str
    path: str
    started_at: datetime
    state: str | None


def batch_candidates(session: Session, *, call_ids: Sequence[int] = (),
                     since: datetime | None = None, pending: bool = False,
                     redo_live: bool = False) -> list[BatchItem]:
    """Ended calls with a closed recording, chosen by id, by date or by state.

    ``pending`` picks calls marked for batch; ``redo_live`` adds calls that only have a
    live transcript (a larger model is installed now).
    """
    q = (select(Call.id, Ticket.ticket_no, Recording.path, Call.started_at,
                Call.transcript_state)
         .join(Recording, Recording.call_id == Call.id)
         .outerjoin(Ticket, Ticket.call_id == Call.id)
         .where(Call.ended_at.is_not(None), Recording.closed_at.is_not(None),
                Recording.purged_at.is_(None))
         .order_by(Call.id))
    if call_ids:
        q = q.where(Call.id.in_(call_ids))
    if since is not None:
        q = q.where(Call.started_at >= since)
    if pending:
        states = [PENDING, LIVE] if redo_live else [PENDING]
        q = q.where(Call.transcript_state.in_(states))
    seen: set[int] = set()
    items = []
    for call_id, ticket_no, path, started_at, state in session.execute(q):
        if call_id not in seen:
            seen.add(call_id)
            items.append(BatchItem(call_id, ticket_no or "", path, started_at, state))
    return items


def _recording_id(session: Session, call_id: int) -> int | None:
    return session.scalars(select(Recording.id).where(Recording.call_id == call_id)
                           .order_by(Recording.id)).first()


def ticket_transcript(session: Session, ticket_no: str, user_id: int,
                      staff: bool) -> dict[str, Any]:
    """A ticket's transcript and draft, for its lawyer or for staff (others: not found).

    Raises:
        NotFoundError: ``ticket.not_found`` (also for someone else's ticket).
    """
    row = session.execute(select(Ticket, Call.transcript_state).outerjoin(
        Call, Call.id == Ticket.call_id).where(Ticket.ticket_no == ticket_no)).first()
    if row is None or (not staff and row[0].lawyer_id != user_id):
        raise NotFoundError("ticket.not_found", ticket=ticket_no)
    ticket, state = row
    segments = segments_of(session, ticket.call_id) if ticket.call_id is not None else []
    return {"ticket_no": ticket.ticket_no, "state": state,
            "suggested_category": ticket.suggested_category.value
            if ticket.suggested_category else None,
            "draft": ticket.draft,
            "segments": [{"speaker": s.speaker, "start": s.start_s, "end": s.end_s,
                          "text": s.text, "confidence": s.confidence, "source": s.source,
                          "model": s.model} for s in segments]}
