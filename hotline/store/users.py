"""Users of the hotline: accounts, passwords, skills and languages.

Functions take an open :class:`~sqlalchemy.orm.Session` (the caller owns the transaction) and
return frozen :class:`UserView` values, so no ORM object, lazy load or session leaks out of
the store. Passwords are hashed with Argon2id; the hash is never part of a view.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hotline.domain import Category, Language, Role
from hotline.errors import AuthError, ConflictError, DomainError, NotFoundError
from hotline.store.tables import Firm, Skill, User, UserLanguage, UserSkill, utcnow

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256  # Argon2 copes, but megabyte "passwords" are a denial of service.
MAX_WORK_ID_LENGTH = 32

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    # Verified against when the work id is unknown, so a miss costs as long as a wrong
    # password and response time does not reveal which work ids exist.
    return _hasher.hash(secrets.token_urlsafe(16))

SKILL_NAMES = {"general": "综合咨询"}


@dataclass(frozen=True)
class UserView:
    """A user as the rest of the hotline sees them (no password hash)."""

    id: int
    work_id: str
    name: str
    role: Role
    active: bool
    firm: str | None = None
    skills: tuple[tuple[str, int], ...] = ()
    languages: tuple[Language, ...] = ()
    remote_phone: str | None = None
    sip_uri: str | None = None
    max_shifts_per_month: int | None = None
    max_consecutive_nights: int | None = None
    remote_night_allowed: bool = False
    created_at: datetime | None = None

    def proficiency(self, skill: str) -> int:
        """The user's proficiency in ``skill`` (0 when they lack it)."""
        return dict(self.skills).get(skill, 0)


def _view(user: User) -> UserView:
    return UserView(
        id=user.id,
        work_id=user.work_id,
        name=user.name,
        role=user.role,
        active=user.active,
        firm=user.firm.name if user.firm is not None else None,
        skills=tuple((s.skill_code, s.proficiency) for s in user.skills),
        languages=tuple(lang.language for lang in user.languages),
        remote_phone=user.remote_phone,
        sip_uri=user.sip_uri,
        max_shifts_per_month=user.max_shifts_per_month,
        max_consecutive_nights=user.max_consecutive_nights,
        remote_night_allowed=user.remote_night_allowed,
        created_at=user.created_at,
    )


def check_password(password: str, work_id: str = "") -> None:
    """Apply the password policy.

    Raises:
        AuthError: ``auth.bad_password`` with the reason in Chinese.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError("auth.bad_password", reason=f"至少 {MIN_PASSWORD_LENGTH} 个字符")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AuthError("auth.bad_password", reason=f"最多 {MAX_PASSWORD_LENGTH} 个字符")
    if password.strip() != password:
        raise AuthError("auth.bad_password", reason="首尾不能有空白字符")
    if work_id and password.casefold() == work_id.casefold():
        raise AuthError("auth.bad_password", reason="不能与工号相同")


def _check_work_id(work_id: str) -> None:
    if not work_id or len(work_id) > MAX_WORK_ID_LENGTH or not work_id.isprintable() \
            or any(ch.isspace() for ch in work_id):
        raise DomainError("domain.bad_value", field="工号", value=work_id,
                          expected=f"1-{MAX_WORK_ID_LENGTH} 个字符, 不含空白")


def _check_skills(skills: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    checked: dict[str, int] = {}
    for code, level in skills:
        if not code or not 1 <= level <= 5:
            raise AuthError("auth.bad_skill", value=f"{code}:{level}")
        checked[code] = level
    return sorted(checked.items())


def skill_name(code: str) -> str:
    """A display name for a skill code: the category's Chinese term when it is one."""
    if code in SKILL_NAMES:
        return SKILL_NAMES[code]
    try:
        return Category(code).label
    except ValueError:
        return code


def ensure_skills(session: Session, codes: Iterable[str]) -> None:
    """Create rows for skill codes not yet known, so a user or queue may name them."""
    wanted = set(codes)
    if not wanted:
        return
    known = set(session.scalars(select(Skill.code).where(Skill.code.in_(wanted))))
    for code in sorted(wanted - known):
        session.add(Skill(code=code, name=skill_name(code)))
    session.flush()


def _firm(session: Session, name: str | None) -> Firm | None:
    if not name:
        return None
    firm = session.scalar(select(Firm).where(Firm.name == name))
    if firm is None:
        firm = Firm(name=name)
        session.add(firm)
    return firm


def _load(session: Session, work_id: str) -> User:
    user = session.scalar(select(User).where(User.work_id == work_id))
    if user is None:
        raise NotFoundError("store.not_found", what="工号", key=work_id)
    return user


def add_user(
    session: Session,
    work_id: str,
    *,
    name: str,
    role: Role,
    password: str,
    firm: str | None = None,
    skills: Sequence[tuple[str, int]] = (),
    languages: Sequence[Language] = (Language.MANDARIN,),
    remote_phone: str | None = None,
    sip_uri: str | None = None,
    max_shifts_per_month: int | None = None,
    max_consecutive_nights: int | None = None,
    remote_night_allowed: bool = False,
) -> UserView:
    """Create an account; skills are ``(code, proficiency 1-5)`` pairs.

    Raises:
        ConflictError: ``store.conflict`` when the work id is taken.
        AuthError: ``auth.bad_password`` / ``auth.bad_skill`` for a weak password or bad skill.
        DomainError: ``domain.bad_value`` for an unusable work id or empty name.
    """
    _check_work_id(work_id)
    if not name.strip():
        raise DomainError("domain.bad_value", field="姓名", value=name, expected="不能为空")
    check_password(password, work_id)
    checked_skills = _check_skills(skills)
    if session.scalar(select(User.id).where(User.work_id == work_id)) is not None:
        raise ConflictError("store.conflict", what="工号", key=work_id)
    ensure_skills(session, (code for code, _ in checked_skills))
    user = User(
        work_id=work_id,
        name=name.strip(),
        role=Role(role),
        password_hash=_hasher.hash(password),
        firm=_firm(session, firm),
        remote_phone=remote_phone or None,
        sip_uri=sip_uri or None,
        max_shifts_per_month=max_shifts_per_month,
        max_consecutive_nights=max_consecutive_nights,
        remote_night_allowed=remote_night_allowed,
        password_changed_at=utcnow(),
    )
    user.skills = [UserSkill(skill_code=c, proficiency=p) for c, p in checked_skills]
    user.languages = [UserLanguage(language=Language(lang), position=i)
                      for i, lang in enumerate(dict.fromkeys(languages))]
    session.add(user)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # Another writer took the work id between our check and our insert.
        raise ConflictError("store.conflict", what="工号", key=work_id) from None
    return _view(user)


def get_user(session: Session, work_id: str) -> UserView:
    """One user by work id.

    Raises:
        NotFoundError: ``store.not_found`` when there is no such work id.
    """
    return _view(_load(session, work_id))


def list_users(session: Session, role: Role | None = None,
               *, include_inactive: bool = True) -> list[UserView]:
    """Users ordered by work id, optionally of one role and/or only active ones."""
    query = select(User).order_by(User.work_id)
    if role is not None:
        query = query.where(User.role == Role(role))
    if not include_inactive:
        query = query.where(User.active.is_(True))
    return [_view(u) for u in session.scalars(query)]


def verify_password(session: Session, work_id: str, password: str) -> UserView:
    """Check a login; rehash transparently when the hashing parameters have been raised.

    Raises:
        AuthError: ``auth.bad_credentials`` for an unknown work id or wrong password (the
            same code for both, so callers cannot probe for work ids); ``auth.disabled``
            for a correct password on a disabled account.
    """
    user = session.scalar(select(User).where(User.work_id == work_id))
    try:
        _hasher.verify(user.password_hash if user is not None else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        raise AuthError("auth.bad_credentials") from None
    if user is None:  # pragma: no cover - the dummy hash never matches a real password
        raise AuthError("auth.bad_credentials")
    if not user.active:
        raise AuthError("auth.disabled", work_id=work_id)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return _view(user)


def set_password(session: Session, work_id: str, password: str) -> UserView:
    """Replace a user's password (policy applies).

    Raises:
        NotFoundError: no such work id.
        AuthError: ``auth.bad_password``.
    """
    user = _load(session, work_id)
    check_password(password, work_id)
    user.password_hash = _hasher.hash(password)
    user.password_changed_at = utcnow()
    session.flush()
    return _view(user)


def set_active(session: Session, work_id: str, active: bool) -> UserView:
    """Enable or disable an account; disabled users keep their history but cannot log in.

    Raises:
        NotFoundError: no such work id.
    """
    user = _load(session, work_id)
    user.active = active
    session.flush()
    return _view(user)
