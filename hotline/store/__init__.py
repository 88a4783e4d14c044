"""The ledger: engine and sessions, ORM tables, repositories, and packaged migrations.

This is the only package that imports SQLAlchemy or Alembic. Others call the repository
functions (``hotline.store.users``, ``hotline.store.callers``...) with a session from
:func:`hotline.store.session.open_session` or :func:`~hotline.store.session.session_scope`
and get frozen dataclasses back, never ORM objects.
"""
