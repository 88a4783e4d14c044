"""The FastAPI application served inside ``hotline serve``.

``/health`` (no token: it names no caller, lawyer or configuration detail) and the agent
API under ``/api/v1``: log in with work id and password for a bearer token, log out, who am
I, and the user list for supervisors. Every call but ``/health`` and ``login`` is
authenticated and role-checked (:mod:`hotline.api.auth`); logins are audited; repeated
failed logins from one address for one work id are refused for a while. Call control,
offers and the WebSocket event stream join with the ACD.
"""


import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker

from hotline import __version__
from hotline.api.auth import Auth, current_user_dependency, install_errors, require
from hotline.api.desk_routes import desk_router
from hotline.api.events import EventHub, events_router
from hotline.api.roster_routes import roster_router
from hotline.desk_catalog import DeskCatalog, load_catalog
from hotline.domain import Category, Disposition, Language, Role
from hotline.errors import AuthError
from hotline.store import api_sessions
from hotline.store.session import session_scope
from hotline.store.tables import AuditLog
from hotline.store.tickets import WrapUp, submit_wrapup
from hotline.store.transcripts import ticket_transcript
from hotline.store.users import UserView, list_users, verify_password

if TYPE_CHECKING:
    from hotline.callcenter import CallCenter
    from hotline.config import Settings
    from hotline.roster.keeper import DutyKeeper

# Failed logins per (work id, address) within the window before further tries are refused.
MAX_FAILURES = 5
FAILURE_WINDOW = 300.0


class LoginRequest(BaseModel):
    """Work id (工号) and password."""

    work_id: str = Field(min_length=1, max_length=32)
    password: str = Field(min_length=1, max_length=256)


class UserOut(BaseModel):
    """A user as the consoles see them."""

    work_id: str
    name: str
    role: Role
    role_label: str
    skills: dict[str, int]
    languages: list[str]
    active: bool


class WrapUpIn(BaseModel):
    """The ticket fields a lawyer fills after the call (话后整理)."""

    disposition: Disposition
    category: Category | None = None
    subcategory: str | None = Field(None, max_length=64)
    summary: str | None = Field(None, max_length=4000)
    answer: str | None = Field(None, max_length=8000)
    referral_target: str | None = Field(None, max_length=200)
    caller_name: str | None = Field(None, max_length=100)
    caller_declined_identity: bool = False
    callback_number: str | None = Field(None, max_length=40, pattern=r"^\+?[0-9-]{3,40}$")
    language: Language | None = None
    tags: tuple[str, ...] = Field((), max_length=20)
    legal_aid_hints: tuple[str, ...] = Field((), max_length=20)
    confidential: bool = False
    follow_up_on: date | None = None


class LoginResponse(BaseModel):
    """A bearer token for ``Authorization: Bearer …`` and when it expires."""

    token: str
    expires_at: datetime
    user: UserOut


def _out(user: UserView) -> UserOut:
    return UserOut(work_id=user.work_id, name=user.name, role=user.role,
                   role_label=user.role.label, skills=dict(user.skills),
                   languages=[lang.value for lang in user.languages], active=user.active)


class _Throttle:
    """Counts failed logins per (work id, address) in a sliding window."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    def blocked(self, key: tuple[str, str]) -> bool:
        window = self.failures[key]
        while window and self.clock() - window[0] > FAILURE_WINDOW:
            window.popleft()
        return len(window) >= MAX_FAILURES

    def failed(self, key: tuple[str, str]) -> None:
        self.failures[key].append(self.clock())

    def succeeded(self, key: tuple[str, str]) -> None:
        self.failures.pop(key, None)


def create_app(status: Callable[[], dict[str, Any]],
               factory: sessionmaker[Session] | None = None, token_hours: float = 12.0,
               now: Callable[[], datetime] = lambda: datetime.now(UTC),
               center: Callable[[], "CallCenter | None"] = lambda: None,
               hub: EventHub | None = None, catalog: DeskCatalog | None = None,
               tz: tzinfo = UTC, settings: "Settings | None" = None,
               keeper: Callable[[], "DutyKeeper | None"] = lambda: None) -> FastAPI:
    """Build the app.

    ``status`` reports the live components, ``factory`` opens the ledger, ``center`` gives
    the running coordinator (None when telephony is off), ``hub`` the event stream's
    fan-out (the coordinator publishes into it).
    """
    app = FastAPI(title="hotline12348", version=__version__,
                  description="12348 公共法律服务热线 API")
    install_errors(app)

    @app.get("/health", tags=["运维"], summary="健康检查")
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, **status()}

    if factory is None:
        return app
    auth = Auth(factory, now)
    current_user = current_user_dependency(auth)
    throttle = _Throttle()

    def audit(session: Session, user: UserView | None, action: str, request: Request,
              **detail: Any) -> None:
        session.add(AuditLog(at=now(), actor_id=user.id if user else None,
                             actor_role=user.role if user else None, action=action,
                             object_type="user", object_id=detail.pop("work_id", None),
                             detail=detail, remote_addr=_remote(request)))

    @app.post("/api/v1/login", tags=["登录"], summary="登录 (工号 + 密码)",
              response_model=LoginResponse)
    def login(body: LoginRequest, request: Request) -> LoginResponse:
        key = (body.work_id, _remote(request) or "")
        if throttle.blocked(key):
            raise AuthError("auth.too_many_attempts", minutes=int(FAILURE_WINDOW // 60))
        try:
            with session_scope(factory) as session:
                user = verify_password(session, body.work_id, body.password)
                token, expires = api_sessions.open_session(
                    session, user, now(), timedelta(hours=token_hours), _remote(request))
                audit(session, user, "login", request, work_id=user.work_id)
        except AuthError as exc:
            throttle.failed(key)
            with session_scope(factory) as session:
                audit(session, None, "login_failed", request, work_id=body.work_id[:64],
                      reason=exc.code)
            raise
        throttle.succeeded(key)
        return LoginResponse(token=token, expires_at=expires, user=_out(user))

    @app.post("/api/v1/logout", tags=["登录"], summary="退出登录")
    def logout(request: Request,
               user: Annotated[UserView, Depends(current_user)]) -> dict[str, bool]:
        token = request.headers.get("authorization", "").split(" ", 1)[-1]
        with session_scope(factory) as session:
            api_sessions.revoke(session, token, now())
            audit(session, user, "logout", request, work_id=user.work_id)
        return {"ok": True}

    @app.get("/api/v1/me", tags=["登录"], summary="当前用户", response_model=UserOut)
    def me(user: Annotated[UserView, Depends(current_user)]) -> UserOut:
        return _out(user)

    staff = require(current_user, Role.SUPERVISOR, Role.SCHEDULER)

    @app.get("/api/v1/users", tags=["管理"], summary="用户列表 (管理人员)",
             response_model=list[UserOut])
    def users(_user: Annotated[UserView, staff]) -> list[UserOut]:
        with session_scope(factory) as session:
            return [_out(u) for u in list_users(session)]

    app.include_router(desk_router(center, current_user))
    if settings is not None:
        app.include_router(roster_router(factory, current_user, settings, keeper, now))
    desk_user = require(current_user, Role.LAWYER, Role.SUPERVISOR)
    desk_catalog = (catalog or load_catalog(Path("/nonexistent"))).as_json()

    @app.get("/api/v1/desk/catalog", tags=["坐席"],
             summary="话后整理的类别树、转办去向、服务用语与禁语")
    def catalog_route(_user: Annotated[UserView, desk_user]) -> dict[str, Any]:
        return desk_catalog

    @app.put("/api/v1/tickets/{ticket_no}/wrapup", tags=["工单"], summary="话后整理 (提交工单)")
    async def wrapup(ticket_no: str, body: WrapUpIn,
                     user: Annotated[UserView, desk_user]) -> dict[str, Any]:
        wrap = WrapUp(**body.model_dump(exclude_none=False))

        def save() -> dict[str, object]:
            with session_scope(factory) as session:
                return submit_wrapup(session, ticket_no, user, wrap, now(), tz)

        result = await asyncio.to_thread(save)
        cc = center()
        lawyer = str(result.get("lawyer") or user.work_id)  # a supervisor may file it
        if cc is not None and lawyer in cc.desk.agents:
            cc.desk.wrap_done(lawyer, cc.now())  # the ticket's lawyer is ready again
            cc.talk.route()
        return result

    @app.get("/api/v1/tickets/{ticket_no}/transcript", tags=["工单"],
             summary="通话转写与工单草稿 (本人工单或管理人员; 访问记入审计日志)")
    async def transcript(ticket_no: str, request: Request,
                         user: Annotated[UserView, desk_user]) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            with session_scope(factory) as session:
                body = ticket_transcript(session, ticket_no, user.id,
                                         user.role in (Role.SUPERVISOR, Role.ADMIN))
                session.add(AuditLog(at=now(), actor_id=user.id, actor_role=user.role,
                                     action="transcript_read", object_type="ticket",
                                     object_id=ticket_no, detail={},
                                     remote_addr=_remote(request)))
                return body

        return await asyncio.to_thread(read)

    def hello(user: UserView) -> dict[str, Any]:
        cc = center()
        agent = cc.desk.agents.get(user.work_id) if cc is not None else None
        return {"type": "hello", "user": _out(user).model_dump(mode="json"),
                "agent": None if agent is None else {
                    "status": agent.status.value, "state": agent.state.value,
                    "break_reason": agent.break_reason},
                "offer": None if cc is None else cc.talk.offer_for(user.work_id)}

    app.include_router(events_router(auth, hub or EventHub(), hello))
    return app


def _remote(request: Request) -> str | None:
    return request.client.host if request.client else None
