"""Console logins: bearer tokens of which only a SHA-256 is stored.

A token is 32 random bytes (URL-safe base64) handed to the client once; the ledger keeps its
hash, so a copy of the database cannot be used to log in. Tokens expire and can be revoked
(logout, disabled account).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hotline.errors import AuthError
from hotline.store.tables import ApiSession, User
from hotline.store.users import UserView, get_user

MAX_TOKEN_LENGTH = 256


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(session: Session, user: UserView, now: datetime, ttl: timedelta,
                 remote: str | None = None) -> tuple[str, datetime]:
    """A new token for ``user`` and when it expires."""
    token = secrets.token_urlsafe(32)
    expires = now + ttl
    session.add(ApiSession(user_id=user.id, token_hash=_hash(token), created_at=now,
                           expires_at=expires, remote_addr=(remote or "")[:64] or None))
    session.flush()
    return token, expires


def resolve(session: Session, token: str, now: datetime) -> UserView:
    """The active user a token belongs to; AuthError ``auth.invalid_token`` otherwise."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise AuthError("auth.invalid_token")
    row = session.execute(
        select(ApiSession.expires_at, ApiSession.revoked_at, User.work_id, User.active)
        .join(User, User.id == ApiSession.user_id)
        .where(ApiSession.token_hash == _hash(token))
    ).first()
    if row is None or row[1] is not None or row[0] <= now or not row[3]:
        raise AuthError("auth.invalid_token")
    return get_user(session, row[2])


def revoke(session: Session, token: str, now: datetime) -> bool:
    """End a login; False when the token was not active."""
    done = session.execute(
        update(ApiSession).where(ApiSession.token_hash == _hash(token),
                                 ApiSession.revoked_at.is_(None))
        .values(revoked_at=now))
    return bool(done.rowcount)  # type: ignore[attr-defined]
