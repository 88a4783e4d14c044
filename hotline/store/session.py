"""Units of work: one transaction per scope, database errors turned into StoreError.

Callers outside the store never see SQLAlchemy exceptions: a scope commits when the block
ends normally and rolls back otherwise, and driver errors arrive as coded
:class:`~hotline.errors.StoreError` the CLI and API know how to show.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session, sessionmaker

from hotline.store.engine import make_engine, make_session_factory, mask_url, translate_errors
from hotline.store.migrate import ensure_current


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one transaction: commit on success, roll back on any exception."""
    bind = factory.kw.get("bind")
    url = mask_url(bind.url) if bind is not None else ""
    with factory() as session, translate_errors(url), session.begin():
        yield session


@contextmanager
def open_session(url: str, *, echo: bool = False, check_schema: bool = True) -> Iterator[Session]:
    """Connect, check the schema is current, and run one unit of work; for short-lived tools.

    Long-running processes keep one engine and use :func:`session_scope` instead.

    Raises:
        StoreError: ``store.unreachable``, ``store.outdated`` (run ``hotline db upgrade``),
            or a translated driver error from the block.
    """
    engine = make_engine(url, echo)
    try:
        if check_schema:
            ensure_current(engine)
        with session_scope(make_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()
