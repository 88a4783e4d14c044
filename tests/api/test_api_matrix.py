"""Every endpoint of the agent API × every role, enumerated from the app itself.

The routes come from the FastAPI app (included routers walked), so a new endpoint is tested
at once; :data:`TABLE` says which roles may call each (admins pass every role check) and
what an allowed role gets on a fresh desk with ids that do not exist. A route missing from
the table fails (classify it!), and so does a table row whose route is gone.

For every route: no token → 401 ``auth.missing_token``; bad, revoked, expired or disabled
tokens → 401; a role not allowed → 403 ``auth.denied``; an allowed role → the table's
answer. Every refused request (4xx) is checked to change nothing: the desk, the live calls
and the ledger's row counts are the same after it. Then wrong ids and wrong states on a
desk with a caller waiting and a call in progress, and the WebSocket refusing a missing or
bad token before it accepts.
"""

import asyncio
import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI, routing
from fastapi.routing import APIRoute, APIWebSocketRoute
from scripted import queue_caller, until
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from hotline.api.app import create_app
from hotline.domain import Language, Role
from hotline.store import api_sessions
from hotline.store import users as store_users
from hotline.store.engine import make_engine, make_session_factory
from hotline.store.migrate import upgrade
from hotline.store.session import session_scope
from hotline.store.tables import ApiSession, Base
from hotline.telephony import protocol as p

PASSWORD = "correct-horse-1"

LAWYER, SUPERVISOR, SCHEDULER, ADMIN = Role.LAWYER, Role.SUPERVISOR, Role.SCHEDULER, Role.ADMIN
ROLES = (LAWYER, SUPERVISOR, SCHEDULER, ADMIN)
# One account per role, a second lawyer, and a lawyer whose account gets disabled.
ACCOUNTS = {"8001": LAWYER, "9001": SUPERVISOR, "7001": SCHEDULER, "1001": ADMIN,
            "8002": LAWYER, "8009": LAWYER}
WORK_ID = {LAWYER: "8001", SUPERVISOR: "9001", SCHEDULER: "7001", ADMIN: "1001"}

ANYONE = frozenset(ROLES)
DESK = frozenset({LAWYER, SUPERVISOR, ADMIN})  # require(LAWYER, SUPERVISOR)
STAFF = frozenset({SUPERVISOR, SCHEDULER, ADMIN})  # require(SUPERVISOR, SCHEDULER)
SUPERVISORS = frozenset({SUPERVISOR, ADMIN})  # require(SUPERVISOR)

# Not part of the matrix: no token needed, or not an endpoint of ours.
PUBLIC = {"/health", "/api/v1/login"}
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
WEBSOCKET = "/api/v1/events"

# Path parameters: ids that name nothing.
UNKNOWN_IDS = {"key": "no-such-call", "work_id": "4040", "ticket_no": "12348-20261201-9999"}


@dataclass(frozen=True)
class Expect:
    """Who may call a route, and what an allowed role gets on a fresh, empty desk."""

    roles: frozenset[Role]
    status: int = 200
    code: str | None = None  # the error code when ``status`` is not 2xx
    body: Any = None  # a valid request body, so only the token, role, ids or state decide

    @property
    def error(self) -> bool:
        return self.status >= 400


NOT_A_CALL = Expect(DESK, 404, "call.not_found")

TABLE: dict[tuple[str, str], Expect] = {
    ("POST", "/api/v1/logout"): Expect(ANYONE),
    ("GET", "/api/v1/me"): Expect(ANYONE),
    ("GET", "/api/v1/users"): Expect(STAFF),
    ("GET", "/api/v1/agent"): Expect(DESK),
    ("POST", "/api/v1/agent/login"): Expect(DESK, body={}),
    ("POST", "/api/v1/agent/status"): Expect(DESK, 409, "agent.not_logged_in",
                                             {"status": "available"}),
    ("POST", "/api/v1/agent/logout"): Expect(DESK, 409, "agent.not_logged_in"),
    ("GET", "/api/v1/calls/mine"): Expect(DESK),
    ("GET", "/api/v1/calls/{key}/history"): NOT_A_CALL,
    ("GET", "/api/v1/agents"): Expect(SUPERVISORS),
    ("POST", "/api/v1/agents/{work_id}/status"): Expect(SUPERVISORS, 409, "agent.not_logged_in",
                                                         {"status": "available"}),
    ("GET", "/api/v1/stats"): Expect(DESK),
    ("POST", "/api/v1/offers/{key}/reject"): NOT_A_CALL,
    ("POST", "/api/v1/offers/{key}/accept"): Expect(DESK, 404, "offer.not_found"),
    ("POST", "/api/v1/calls/{key}/hold"): NOT_A_CALL,
    ("POST", "/api/v1/calls/{key}/unhold"): NOT_A_CALL,
    ("POST", "/api/v1/calls/{key}/transfer"): Expect(DESK, 404, "call.not_found",
                                                     {"target": "12345"}),
    ("POST", "/api/v1/calls/{key}/complete"): NOT_A_CALL,
    ("POST", "/api/v1/calls/{key}/cancel"): NOT_A_CALL,
    ("POST", "/api/v1/calls/{key}/conference"): NOT_A_CALL,
    ("POST", "/api/v1/calls/{key}/leave"): Expect(DESK, 404, "call.not_found",
                                                  {"leg": "lawyer"}),
    ("POST", "/api/v1/calls/{key}/hangup"): NOT_A_CALL,
    ("GET", "/api/v1/desk/catalog"): Expect(DESK),
    ("PUT", "/api/v1/tickets/{ticket_no}/wrapup"): Expect(DESK, 404, "ticket.not_found",
                                                          {"disposition": "dropped"}),
    ("GET", "/api/v1/tickets/{ticket_no}/transcript"): Expect(DESK, 404, "ticket.not_found"),
}

# The call commands, with a body each accepts (for the wrong-id / wrong-state tests).
CALL_COMMANDS = {path.rsplit("/", 1)[1]: spec.body for (method, path), spec in TABLE.items()
                 if method == "POST" and path.startswith("/api/v1/calls/{key}/")}


# --- the routes, from the app -------------------------------------------------------------

def _flat_routes(app: FastAPI) -> Iterator[tuple[Any, str, frozenset[str]]]:
    """(route, full path, methods) of every route, included routers walked.

    FastAPI ≥ 0.16x keeps included routers as lazy entries of ``app.routes`` and offers
    ``iter_route_contexts`` to flatten them; older versions list every route directly.
    """
    flatten = getattr(routing, "iter_route_contexts", None)
    for item in (flatten(app.routes) if flatten is not None else app.routes):
        route = getattr(item, "original_route", item)
        yield route, item.path, frozenset(getattr(item, "methods", None) or ())


@dataclass
class Found:
    """What the app serves: matrix endpoints, the WebSocket, and what nobody classified."""

    endpoints: set[tuple[str, str]] = field(default_factory=set)
    websockets: set[str] = field(default_factory=set)
    unknown: list[str] = field(default_factory=list)


def discover(app: FastAPI) -> Found:
    found = Found()
    for route, path, methods in _flat_routes(app):
        if isinstance(route, APIWebSocketRoute):
            found.websockets.add(path)
        elif isinstance(route, APIRoute):
            if path not in PUBLIC:
                found.endpoints |= {(m, path) for m in methods if m != "HEAD"}
        elif path not in DOCS:
            found.unknown.append(f"{type(route).__name__} {path}")
    return found


# Collection needs the routes before any fixture runs: an app that never opens its ledger.
_SHAPE = create_app(lambda: {}, sessionmaker(), center=lambda: None)
ROUTES = sorted(discover(_SHAPE).endpoints, key=lambda r: (r[1], r[0]))
ROUTE_IDS = [f"{m} {path}" for m, path in ROUTES]


def test_every_route_is_classified_and_every_row_is_a_route():
    found = discover(_SHAPE)
    unlisted = sorted(found.endpoints - set(TABLE))
    assert not unlisted, f"routes missing from TABLE (say which roles may call them): {unlisted}"
    stale = sorted(set(TABLE) - found.endpoints)
    assert not stale, f"TABLE rows for routes the app no longer serves: {stale}"
    assert not found.unknown, f"routes that are neither API nor docs: {found.unknown}"
    assert found.websockets == {WEBSOCKET}, found.websockets


def test_the_walk_sees_everything_openapi_documents_and_the_table_is_sane():
    # If FastAPI changes how it keeps included routers, the walk above must not go blind.
    schema = _SHAPE.openapi()
    documented = {(m.upper(), path) for path, ops in schema["paths"].items() for m in ops
                  if path not in PUBLIC}
    assert documented <= set(ROUTES), sorted(documented - set(ROUTES))
    assert all(spec.roles <= ANYONE and spec.roles for spec in TABLE.values())
    assert all(ADMIN in spec.roles for spec in TABLE.values())  # admins pass every check


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: UNKNOWN_IDS.get(m[1], "no-such-id"), path)


# --- the desk -------------------------------------------------------------------------------

@dataclass
class Template:
    """An upgraded ledger with the accounts and their tokens, copied for every test."""

    path: Any
    tokens: dict[str, str]  # work id → token
    bad: dict[str, str]  # kind → Authorization header value


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Template:
    path = tmp_path_factory.mktemp("matrix") / "template.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    now = datetime.now(UTC)
    tokens: dict[str, str] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(store_users, "_hasher",
                   PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        with session_scope(factory) as s:
            for work_id, role in ACCOUNTS.items():
                user = store_users.add_user(
                    s, work_id, name=f"用户{work_id}", role=role, password=PASSWORD,
                    skills=[("general", 4)], languages=[Language.MANDARIN],
                    sip_uri=f"sip:{work_id}@10.0.0.1")
                tokens[work_id], _ = api_sessions.open_session(s, user, now, timedelta(hours=12))
            lawyer = store_users.get_user(s, "8001")
            revoked, _ = api_sessions.open_session(s, lawyer, now, timedelta(hours=12))
            api_sessions.revoke(s, revoked, now)
            expired, _ = api_sessions.open_session(s, lawyer, now - timedelta(hours=13),
                                                   timedelta(hours=12))
            store_users.set_active(s, "8009", False)
    engine.dispose()
    bad = {"garbage": "Bearer nope", "revoked": f"Bearer {revoked}",
           "expired": f"Bearer {expired}", "disabled": f"Bearer {tokens.pop('8009')}",
           "overlong": "Bearer " + "x" * 5000, "lowercase scheme, garbage": "bearer nope"}
    return Template(path, tokens, bad)


@dataclass
class Api:
    app: FastAPI
    cc: Any
    sent: list[tuple[str, Any]]
    client: httpx.AsyncClient
    factory: sessionmaker
    ledger: Any
    tokens: dict[str, str]
    template: Template

    def auth(self, who: str | Role) -> dict[str, str]:
        work_id = WORK_ID[who] if isinstance(who, Role) else who
        return {"Authorization": f"Bearer {self.tokens[work_id]}"}

    async def call(self, method: str, url: str, who: str | Role | None = None,
                   body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
        headers = dict(headers or {})
        if who is not None:
            headers.update(self.auth(who))
        kwargs: dict[str, Any] = {"headers": headers}
        if body is not None:
            kwargs["json"] = body
        return await self.client.request(method, url, **kwargs)


@pytest.fixture
async def api(template, make_center, tmp_path) -> Any:
    # make_center opens tmp_path/h.db: start it from the template (upgrade is then a no-op).
    with closing(sqlite3.connect(template.path)) as src, \
            closing(sqlite3.connect(tmp_path / "h.db")) as dst:
        src.backup(dst)
    cc, sent, factory, ledger = make_center()
    app = create_app(lambda: {}, factory, center=lambda: cc)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://hotline") as client:
        yield Api(app, cc, sent, client, factory, ledger, dict(template.tokens), template)


def _call_state(call: Any) -> tuple[Any, ...]:
    return (call.ended, call.end_reason, call.lawyer, call.consult, call.held, call.conference,
            call.outside, call.queued, call.queue, call.priority, call.ticket_no,
            {n: (leg.state, leg.agent, leg.role, leg.uri) for n, leg in call.legs.items()})


def snapshot(api: Api) -> dict[str, Any]:
    """What a refused request must not change: the desk, the live calls, the ledger."""
    cc = api.cc
    api.ledger.flush()
    with api.factory() as s:
        rows = {t.name: s.scalar(select(func.count()).select_from(t))
                for t in Base.metadata.sorted_tables}
        rows["revoked sessions"] = s.scalar(select(func.count()).select_from(ApiSession)
                                            .where(ApiSession.revoked_at.is_not(None)))
    return {"agents": dict(cc.desk.agents), "phones": dict(cc.desk.phones),
            "console": set(cc.desk.accept_in_console),
            "waiting": {k: (w.queue, w.ringing) for k, w in cc.desk.waiting.items()},
            "calls": {k: _call_state(c) for k, c in cc.calls.items()},
            "offers": {w: o.call for w, o in cc.talk.console_offers.items()},
            "rows": rows}


CALL_COMMANDS_SENT = (p.Originate, p.Hangup, p.Connect)


def commands_since(api: Api, start: int) -> list[Any]:
    """Call-control commands the coordinator sent from ``start`` (music may go on)."""
    return [m for _, m in api.sent[start:] if isinstance(m, CALL_COMMANDS_SENT)]


def assert_error(reply: httpx.Response, status: int | tuple[int, ...], code: str) -> None:
    statuses = (status,) if isinstance(status, int) else status
    assert reply.status_code in statuses, (reply.status_code, reply.text)
    assert reply.headers["content-type"].startswith("application/json"), reply.headers
    body = reply.json()
    assert set(body) == {"code", "message"}, body
    assert body["code"] == code, body
    assert re.search(r"[\u4e00-\u9fff]", body["message"]), body  # a Chinese message
    assert "Traceback" not in reply.text


def _spec(method: str, path: str) -> Expect:
    spec = TABLE.get((method, path))
    if spec is None:
        pytest.fail(f"{method} {path} is not in TABLE: say which roles may call it")
    return spec


# --- the matrix -------------------------------------------------------------------------------
# One desk per route (a fresh desk per route × role would take too long): the roles are tried
# one after the other, refused ones first, and every cell that fails is reported at once.

@pytest.mark.parametrize(("method", "path"), ROUTES, ids=ROUTE_IDS)
async def test_without_a_valid_token_it_is_401(api, method, path):
    spec = _spec(method, path)
    url = _url(path)
    before = snapshot(api)
    # No token, with the right body, none, or a wrong one: the token is checked first.
    for body in (spec.body, None, {"unexpected": ["x"]}):
        reply = await api.call(method, url, body=body)
        assert_error(reply, 401, "auth.missing_token")
        assert reply.headers.get("www-authenticate") == "Bearer"
    # Another scheme is no bearer token at all.
    reply = await api.call(method, url, body=spec.body,
                           headers={"Authorization": "Basic ODAwMTpjb3JyZWN0LWhvcnNlLTE="})
    assert_error(reply, 401, "auth.missing_token")
    for kind, header in api.template.bad.items():
        reply = await api.call(method, url, body=spec.body, headers={"Authorization": header})
        assert reply.status_code == 401, (kind, reply.text)
        assert_error(reply, 401, "auth.invalid_token")
        assert reply.headers.get("www-authenticate") == "Bearer", kind
    assert snapshot(api) == before


async def _check_role(api: Api, method: str, path: str, spec: Expect, role: Role) -> None:
    url = _url(path)
    before = snapshot(api)
    reply = await api.call(method, url, role, body=spec.body)
    if role not in spec.roles:
        assert reply.json() == {"code": "auth.denied", "message": "无权执行此操作"}, reply.text
        assert_error(reply, 403, "auth.denied")
        # A wrong body or none tells a refused role nothing about the endpoint either.
        for wrong in ({"unexpected": ["x"]}, None):
            assert_error(await api.call(method, url, role, body=wrong), 403, "auth.denied")
        assert snapshot(api) == before
        return
    assert reply.status_code not in (401, 403), reply.text
    if spec.error:
        assert_error(reply, (404, 409, 422), spec.code)
        assert reply.status_code == spec.status, reply.text
        assert snapshot(api) == before  # wrong ids and wrong states change nothing
    else:
        assert reply.status_code == spec.status, reply.text
        assert reply.headers["content-type"].startswith("application/json")
        reply.json()


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=ROUTE_IDS)
async def test_every_role(api, method, path):
    spec = _spec(method, path)
    problems = []
    for role in sorted(ROLES, key=lambda r: r in spec.roles):  # refused roles first
        try:
            await _check_role(api, method, path, spec, role)
        except AssertionError as exc:
            allowed = "allowed" if role in spec.roles else "refused"
            problems.append(f"{role.value} ({allowed}): {exc}")
    assert not problems, f"{method} {path}\n" + "\n".join(problems)


# --- wrong ids and wrong states -------------------------------------------------------------

async def test_commands_on_calls_that_do_not_exist_are_404_and_change_nothing(api):
    await api.call("POST", "/api/v1/agent/login", LAWYER, body={})
    await queue_caller(api.cc, api.sent)  # a caller the lawyer is now being offered
    await until(api.sent, p.Originate, uri="sip:8001@10.0.0.1")
    before = snapshot(api)
    n = len(api.sent)
    for who in (LAWYER, SUPERVISOR, ADMIN):
        for key in ("nope", "k2", "中文", "x" * 300, "k1%20"):
            for command, body in CALL_COMMANDS.items():
                reply = await api.call("POST", f"/api/v1/calls/{key}/{command}", who, body)
                assert_error(reply, 404, "call.not_found")
            reply = await api.call("GET", f"/api/v1/calls/{key}/history", who)
            assert_error(reply, 404, "call.not_found")
            reply = await api.call("POST", f"/api/v1/offers/{key}/reject", who)
            assert_error(reply, 404, "call.not_found")
            reply = await api.call("POST", f"/api/v1/offers/{key}/accept", who)
            assert_error(reply, 404, "offer.not_found")
    assert snapshot(api) == before
    assert commands_since(api, n) == []
    assert api.cc.desk.agents["8001"].state.value == "ringing"  # the real offer is intact


async def test_commands_on_a_call_still_in_the_queue_are_409_and_change_nothing(api):
    await queue_caller(api.cc, api.sent)  # nobody signed in: the caller waits
    call = api.cc.calls["k1"]
    assert call.queued and call.lawyer is None and "k1" in api.cc.desk.waiting
    before = snapshot(api)
    n = len(api.sent)
    for who in (SUPERVISOR, ADMIN):  # they may command any call, but not this one yet
        for command, body in CALL_COMMANDS.items():
            reply = await api.call("POST", f"/api/v1/calls/k1/{command}", who, body)
            assert_error(reply, 409, "call.bad_state")
            assert "queued" in reply.json()["message"]
    # A lawyer it is not offered to does not even see it: the same 404 as for no call.
    for command, body in CALL_COMMANDS.items():
        reply = await api.call("POST", f"/api/v1/calls/k1/{command}", LAWYER, body)
        nothing = await api.call("POST", f"/api/v1/calls/k2/{command}", LAWYER, body)
        assert_error(reply, 404, "call.not_found")
        assert reply.json()["message"].replace("k1", "k2") == nothing.json()["message"]
    assert_error(await api.call("GET", "/api/v1/calls/k1/history", LAWYER), 404,
                 "call.not_found")
    assert_error(await api.call("POST", "/api/v1/offers/k1/reject", LAWYER), 404,
                 "call.not_found")
    assert_error(await api.call("POST", "/api/v1/offers/k1/accept", LAWYER), 404,
                 "offer.not_found")
    assert snapshot(api) == before
    assert commands_since(api, n) == []
    assert api.cc.talk.state_of(call) == "queued" and not call.held
    mine = await api.call("GET", "/api/v1/calls/mine", LAWYER)
    assert mine.status_code == 200 and mine.json() == []


async def test_offers_that_are_not_yours_change_nothing(api):
    for who in ("8001", "8002"):
        await api.call("POST", "/api/v1/agent/login", who, body={"accept_in_console": True})
    await queue_caller(api.cc, api.sent)
    for _ in range(100):
        if api.cc.talk.console_offers:
            break
        await asyncio.sleep(0.01)
    [offered] = list(api.cc.talk.console_offers)
    other = "8002" if offered == "8001" else "8001"
    before = snapshot(api)
    n = len(api.sent)
    for path, code in (("/api/v1/offers/k1/reject", "call.not_found"),
                       ("/api/v1/offers/k1/accept", "offer.not_found"),
                       ("/api/v1/offers/nope/reject", "call.not_found"),
                       ("/api/v1/offers/nope/accept", "offer.not_found")):
        assert_error(await api.call("POST", path, other), 404, code)
    for path, code in (("/api/v1/offers/nope/reject", "call.not_found"),
                       ("/api/v1/offers/nope/accept", "offer.not_found")):
        assert_error(await api.call("POST", path, offered), 404, code)
    assert snapshot(api) == before
    assert commands_since(api, n) == []
    assert api.cc.desk.agents[offered].state.value == "reserved"
    assert api.cc.desk.agents[other].state.value == "idle"


async def test_wrapup_of_a_ticket_that_does_not_exist_is_404(api):
    await api.call("POST", "/api/v1/agent/login", LAWYER, body={})
    before = snapshot(api)
    complete = {"disposition": "answered", "category": "labor", "summary": "工资被拖欠",
                "answer": "可申请劳动仲裁"}
    for who in (LAWYER, SUPERVISOR, ADMIN):
        for ticket in ("12348-20261201-9999", "nope", "工单"):
            for body in ({"disposition": "dropped"}, complete):
                reply = await api.call("PUT", f"/api/v1/tickets/{ticket}/wrapup", who, body)
                assert_error(reply, 404, "ticket.not_found")
            bad = await api.call("PUT", f"/api/v1/tickets/{ticket}/wrapup", who,
                                 {"disposition": "shrug"})
            assert_error(bad, 422, "api.bad_request")
    assert snapshot(api) == before


async def test_setting_the_status_of_a_lawyer_who_is_not_signed_in(api):
    before = snapshot(api)
    for who in (SUPERVISOR, ADMIN):
        # unknown work ids, a lawyer who exists but is not signed in, and the caller itself
        for work_id in ("4040", "8001", "9001", "x" * 200):
            for body in ({"status": "available"}, {"status": "on_break", "reason": "午休"}):
                reply = await api.call("POST", f"/api/v1/agents/{work_id}/status", who, body)
                assert 400 <= reply.status_code < 500
                assert_error(reply, reply.status_code, "agent.not_logged_in")
    assert snapshot(api) == before
    assert api.cc.desk.agents == {}  # no phantom lawyer appeared on the desk
    rows = await api.call("GET", "/api/v1/agents", SUPERVISOR)
    assert rows.status_code == 200 and rows.json() == []


async def test_a_lawyer_cannot_see_or_command_another_lawyers_call(api):
    await api.call("POST", "/api/v1/agent/login", "8001", body={})
    i = await queue_caller(api.cc, api.sent, number="13800138000")
    i, ring = await until(api.sent, p.Originate, i, uri="sip:8001@10.0.0.1")
    api.cc.on_worker_event("w1", p.LegAnswered("k1", ring.leg))
    await until(api.sent, p.Connect, i, legs=("caller", ring.leg))
    await api.call("POST", "/api/v1/agent/login", "8002", body={})
    api.ledger.flush()
    mine = await api.call("GET", "/api/v1/calls/k1/history", "8001")
    assert mine.status_code == 200 and mine.json() == []  # the caller's first call
    before = snapshot(api)
    n = len(api.sent)
    theirs = await api.call("GET", "/api/v1/calls/k1/history", "8002")
    nothing = await api.call("GET", "/api/v1/calls/k9/history", "8002")
    assert_error(theirs, 404, "call.not_found")
    assert theirs.json()["message"].replace("k1", "k9") == nothing.json()["message"]
    for command, body in CALL_COMMANDS.items():
        assert_error(await api.call("POST", f"/api/v1/calls/k1/{command}", "8002", body), 404,
                     "call.not_found")
    assert_error(await api.call("POST", "/api/v1/offers/k1/reject", "8002"), 404,
                 "call.not_found")
    assert_error(await api.call("POST", "/api/v1/offers/k1/accept", "8002"), 404,
                 "offer.not_found")
    assert (await api.call("GET", "/api/v1/calls/mine", "8002")).json() == []
    # The call's own lawyer in a wrong state: unhold a call that is not held, and so on.
    for command in ("unhold", "complete", "cancel", "conference", "leave"):
        reply = await api.call("POST", f"/api/v1/calls/k1/{command}", "8001",
                               CALL_COMMANDS[command])
        assert_error(reply, 409, "call.bad_state")
    assert snapshot(api) == before
    assert commands_since(api, n) == []
    assert api.cc.talk.state_of(api.cc.calls["k1"]) == "talking"
    staff = await api.call("GET", "/api/v1/calls/k1/history", SUPERVISOR)
    assert staff.status_code == 200


# --- the WebSocket ----------------------------------------------------------------------------

async def _websocket(app: FastAPI, query: str = "",
                     headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """What the app sends to a WebSocket client (raw ASGI) before the client leaves."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    inbox.put_nowait({"type": "websocket.connect"})
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return await inbox.get()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "websocket.send":  # the hello: enough, leave
            inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})

    scope = {"type": "websocket", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "scheme": "ws", "server": ("hotline", 80), "client": ("127.0.0.1", 50000),
             "root_path": "", "path": WEBSOCKET, "raw_path": WEBSOCKET.encode(),
             "query_string": query.encode(), "subprotocols": [],
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}
    await asyncio.wait_for(app(scope, receive, send), 5)
    return sent


async def test_the_event_stream_refuses_a_missing_or_bad_token_before_accepting(api):
    app = api.app
    refused = [("", None), ("token=", None), ("token=nope", None),
               ("", {"Authorization": "Basic eA=="}), ("", {"Authorization": "Bearer nope"})]
    refused += [("", {"Authorization": header}) for header in api.template.bad.values()]
    for query, headers in refused:
        sent = await _websocket(app, query, headers)
        assert [m["type"] for m in sent] == ["websocket.close"], (query, headers, sent)
        assert sent[0]["code"] == 1008
        assert sent[0]["reason"] in ("auth.missing_token", "auth.invalid_token"), sent
    # The same harness with a good token is accepted and greeted, for every role.
    for role in ROLES:
        sent = await _websocket(app, f"token={api.tokens[WORK_ID[role]]}")
        assert [m["type"] for m in sent][:2] == ["websocket.accept", "websocket.send"], sent
        hello = json.loads(sent[1]["text"])
        assert hello["type"] == "hello" and hello["user"]["work_id"] == WORK_ID[role]
