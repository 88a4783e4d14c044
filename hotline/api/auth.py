"""Who is calling the API: bearer tokens, roles, and the JSON error shape.

Every endpoint but ``/health`` and ``/api/v1/login`` depends on :func:`current_user`; those
that need a role depend on :func:`require`. Errors leave as JSON ``{"code", "message"}``
with the Chinese message of the error tree: 401 for a missing or bad token or wrong
credentials, 403 for a role that may not, 404 / 409 / 422 for wrong ids, wrong states and
bad input. Nothing is changed by a refused request.
"""


from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from hotline.domain import Role
from hotline.errors import AuthError, ConflictError, DomainError, HotlineError, NotFoundError
from hotline.store import api_sessions
from hotline.store.session import session_scope
from hotline.store.users import UserView

_bearer = HTTPBearer(auto_error=False)

STATUS = {"auth.denied": 403, "auth.bad_credentials": 401, "auth.invalid_token": 401,
          "auth.disabled": 401, "auth.missing_token": 401, "telephony.disabled": 503,
          "ticket.incomplete": 422, "roster.infeasible": 422, "roster.swap_invalid": 409,
          "roster.published": 409, "roster.not_published": 409}


def status_of(error: HotlineError) -> int:
    """The HTTP status for an error of the tree."""
    if error.code in STATUS:
        return STATUS[error.code]
    if isinstance(error, AuthError):
        return 403
    if isinstance(error, NotFoundError) or error.code.endswith("not_found"):
        return 404
    if isinstance(error, ConflictError | DomainError):
        return 409
    return 400


_HTTP = {404: ("api.not_found", "没有这个接口"),
         405: ("api.method_not_allowed", "此接口不支持该请求方法")}


def install_errors(app: FastAPI) -> None:
    """Every error leaves as ``{"code", "message"}``; never a traceback."""

    @app.exception_handler(HotlineError)
    async def hotline_error(_request: Request, exc: HotlineError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if status_of(exc) == 401 else None
        body: dict[str, Any] = {"code": exc.code, "message": str(exc)}
        if isinstance(exc.params.get("reasons"), list):
            body["reasons"] = [str(r) for r in exc.params["reasons"]]  # roster: every why
        return JSONResponse(body, status_code=status_of(exc), headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, message = _HTTP.get(exc.status_code, ("api.http", f"HTTP {exc.status_code}"))
        return JSONResponse({"code": code, "message": message}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                             for e in exc.errors())
        return JSONResponse({"code": "api.bad_request", "message": f"请求格式错误: {problems}"},
                            status_code=422)


class Auth:
    """Resolves tokens against the ledger; one per app."""

    def __init__(self, factory: sessionmaker[Session],
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.factory = factory
        self.now = now

    def user(self, credentials: HTTPAuthorizationCredentials | None) -> UserView:
        """The logged-in user, or AuthError."""
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise AuthError("auth.missing_token")
        with session_scope(self.factory) as session:
            return api_sessions.resolve(session, credentials.credentials, self.now())


def current_user_dependency(auth: Auth) -> Callable[..., UserView]:
    """A FastAPI dependency giving the logged-in user."""

    def current_user(credentials: Annotated[HTTPAuthorizationCredentials | None,
                                            Depends(_bearer)]) -> UserView:
        return auth.user(credentials)

    return current_user


def require(current_user: Callable[..., UserView], *roles: Role) -> Any:
    """A dependency that lets only ``roles`` (admins always) through, with 403 otherwise."""

    def check(user: Annotated[UserView, Depends(current_user)]) -> UserView:
        if user.role is not Role.ADMIN and user.role not in roles:
            raise AuthError("auth.denied")
        return user

    return Depends(check)
