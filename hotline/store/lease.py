"""A lease in the database: which server node holds a role (the scheduler) right now.

The holder renews it well before it expires; another node takes it over only once it has
expired, so after a holder dies the role moves within one lease period and two nodes never
hold it at once (the row is locked while it is read and written).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hotline.store.tables import SchedulerLease


def acquire(session: Session, name: str, holder: str, now: datetime, ttl: float) -> bool:
    """Take or renew the lease ``name`` for ``holder``; False when another node holds it."""
    row = session.scalar(select(SchedulerLease).where(SchedulerLease.name == name)
                         .with_for_update())
    expires = now + timedelta(seconds=ttl)
    if row is None:
        try:
            with session.begin_nested():
                session.add(SchedulerLease(name=name, holder=holder, expires_at=expires))
        except IntegrityError:
            return False  # another node inserted it first
        return True
    if row.holder != holder and row.expires_at > now:
        return False
    row.holder, row.expires_at = holder, expires
    session.flush()
    return True


def release(session: Session, name: str, holder: str) -> None:
    """Give the lease up (a clean stop), so another node takes over at once."""
    session.execute(delete(SchedulerLease).where(SchedulerLease.name == name,
                                                 SchedulerLease.holder == holder))


def holder_of(session: Session, name: str, now: datetime) -> str | None:
    """Who holds ``name`` now (None: nobody, or expired)."""
    row = session.get(SchedulerLease, name)
    return row.holder if row is not None and row.expires_at > now else None
