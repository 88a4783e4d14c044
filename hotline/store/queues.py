"""The ledger's copy of the configured ACD queues.

Queues are defined in ``hotline.toml``; the ledger mirrors them so reports can name a queue
after it has been renamed or removed. Removed queues are deactivated, never deleted, because
calls and tickets keep referring to their codes.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.config import QueueSettings
from hotline.store.tables import Queue, utcnow
from hotline.store.users import ensure_skills


def sync_queues(session: Session, queues: Mapping[str, QueueSettings]) -> int:
    """Make the ``queues`` table match the configuration; return how many are active.

    Skills the queues route on are created too, so lawyers can be given them at once.
    """
    now = utcnow()
    ensure_skills(session, {skill for q in queues.values() for skill in q.skills})
    existing = {q.code: q for q in session.scalars(select(Queue))}
    for code, conf in queues.items():
        row = existing.get(code)
        if row is None:
            row = Queue(code=code)
            session.add(row)
        row.name = conf.name
        row.strategy = conf.strategy
        row.skills = list(conf.skills)
        row.languages = [lang.value for lang in conf.languages]
        row.max_wait = conf.max_wait
        row.wrap_up = conf.wrap_up
        row.overflow_code = conf.overflow
        row.active = True
        row.synced_at = now
    for code, row in existing.items():
        if code not in queues and row.active:
            row.active = False
            row.synced_at = now
    session.flush()
    return len(queues)


def active_queue_codes(session: Session) -> list[str]:
    """Codes of the queues currently in the configuration, sorted."""
    return list(session.scalars(select(Queue.code).where(Queue.active.is_(True))
                                .order_by(Queue.code)))
