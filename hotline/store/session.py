"""Units of work: one transaction per scope, database errors turned into StoreError.

Callers outside the store never see SQLAlchemy exceptions: a scope commits when the block
ends normally and rolls back otherwise, and driver errors arrive as coded
:class:`~hotline.errors.StoreError` the CLI and API know how to show.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hotline.errors import StoreError
from hotline.store.engine import make_engine, make_session_factory, mask_url
from hotline.store.migrate import ensure_current


def _first_line(exc: DBAPIError) -> str:
    text = str(exc.orig).strip()
    return text.splitlines()[0] if text else type(exc.orig).__name__


@contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Re-raise driver errors as StoreError (the original stays chained for crash logs)."""
    try:
        yield
    except IntegrityError as exc:
        raise StoreError("store.integrity", detail=_first_line(exc)) from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreError("store.unreachable", url=mask_url(url),
                             detail=_first_line(exc)) from exc
        raise StoreError("store.error", detail=_first_line(exc)) from exc


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one transaction: commit on success, roll back on any exception."""
    url = factory.kw["bind"].url.render_as_string(hide_password=True)
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
