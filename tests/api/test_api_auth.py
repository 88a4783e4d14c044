"""The agent API's front door on a real ledger (SQLite and PostgreSQL): log in, tokens,
roles, audit, throttling, and JSON errors that change nothing.
"""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hotline.api.app import MAX_FAILURES, create_app
from hotline.domain import Role
from hotline.store import users as store_users
from hotline.store.engine import make_engine, make_session_factory
from hotline.store.migrate import upgrade
from hotline.store.session import session_scope
from hotline.store.tables import ApiSession, AuditLog

PASSWORD = "correct-horse-1"


@pytest.fixture
def api(db_url):
    upgrade(db_url)
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        for work_id, role in (("8001", Role.LAWYER), ("9001", Role.SUPERVISOR),
                              ("7001", Role.SCHEDULER), ("1001", Role.ADMIN)):
            store_users.add_user(s, work_id=work_id, name=f"用户{work_id}", role=role,
                                 password=PASSWORD)
    clock = {"now": datetime(2026, 12, 1, 2, 0, tzinfo=UTC)}
    app = create_app(lambda: {}, factory, token_hours=12, now=lambda: clock["now"])
    with TestClient(app) as client:
        yield client, factory, clock
    engine.dispose()


def _login(client, work_id="8001", password=PASSWORD):
    return client.post("/api/v1/login", json={"work_id": work_id, "password": password})


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


def test_login_me_logout(api):
    client, factory, clock = api
    reply = _login(client)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["user"]["work_id"] == "8001" and body["user"]["role"] == "lawyer"
    assert body["user"]["role_label"] == "值班律师"
    token = body["token"]
    me = client.get("/api/v1/me", headers=_auth(token))
    assert me.status_code == 200 and me.json()["name"] == "用户8001"
    with factory() as s:  # only a hash of the token is stored
        hashes = s.scalars(select(ApiSession.token_hash)).all()
        assert token not in hashes and len(hashes) == 1
    assert client.post("/api/v1/logout", headers=_auth(token)).json() == {"ok": True}
    gone = client.get("/api/v1/me", headers=_auth(token))
    assert gone.status_code == 401 and gone.json()["code"] == "auth.invalid_token"
    assert gone.json()["message"] == "登录已失效, 请重新登录"
    with factory() as s:
        actions = s.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions == ["login", "logout"]


def test_tokens_expire(api):
    client, _, clock = api
    token = _login(client).json()["token"]
    clock["now"] += timedelta(hours=12, seconds=1)
    assert client.get("/api/v1/me", headers=_auth(token)).status_code == 401


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"},
                                     {"Authorization": "Basic ODAwMTp4"},
                                     {"Authorization": "Bearer " + "x" * 5000}])
def test_no_or_bad_token_is_401_with_a_chinese_message(api, headers):
    client, _, _ = api
    reply = client.get("/api/v1/me", headers=headers)
    assert reply.status_code == 401
    assert reply.json()["code"] in ("auth.missing_token", "auth.invalid_token")
    assert "登录" in reply.json()["message"]


@pytest.mark.parametrize(("work_id", "allowed"), [("8001", False), ("9001", True),
                                                  ("7001", True), ("1001", True)])
def test_roles(api, work_id, allowed):
    client, _, _ = api
    token = _login(client, work_id).json()["token"]
    reply = client.get("/api/v1/users", headers=_auth(token))
    if allowed:
        assert reply.status_code == 200 and len(reply.json()) == 4
    else:
        assert reply.status_code == 403 and reply.json() == {"code": "auth.denied",
                                                             "message": "无权执行此操作"}


def test_wrong_password_unknown_user_and_disabled_look_alike_and_are_audited(api):
    client, factory, _ = api
    for work_id, password in (("8001", "wrong-password"), ("nobody", PASSWORD)):
        reply = _login(client, work_id, password)
        assert reply.status_code == 401
        assert reply.json() == {"code": "auth.bad_credentials", "message": "工号或密码错误"}
    with session_scope(factory) as s:
        store_users.set_active(s, "8001", False)
    assert _login(client).json()["code"] == "auth.disabled"
    with factory() as s:
        rows = s.execute(select(AuditLog.action, AuditLog.object_id)).all()
        assert rows == [("login_failed", "8001"), ("login_failed", "nobody"),
                        ("login_failed", "8001")]
        assert s.scalar(select(func.count()).select_from(ApiSession)) == 0


def test_a_disabled_account_loses_its_tokens(api):
    client, factory, _ = api
    token = _login(client).json()["token"]
    with session_scope(factory) as s:
        store_users.set_active(s, "8001", False)
    assert client.get("/api/v1/me", headers=_auth(token)).status_code == 401


def test_repeated_failures_are_throttled(api):
    client, _, _ = api
    for _ in range(MAX_FAILURES):
        assert _login(client, password="wrong-password").status_code == 401
    blocked = _login(client)  # even the right password, for a while
    assert blocked.status_code == 403 and blocked.json()["code"] == "auth.too_many_attempts"
    assert _login(client, "9001").status_code == 200  # others are not affected


@pytest.mark.parametrize("body", [{}, {"work_id": "8001"}, {"work_id": "", "password": "x"},
                                  {"work_id": "8" * 40, "password": "x"}, [1, 2]])
def test_bad_login_bodies_are_422(api, body):
    client, _, _ = api
    reply = client.post("/api/v1/login", json=body)
    assert reply.status_code == 422
    assert reply.json()["code"] == "api.bad_request" and "请求格式错误" in reply.json()["message"]


def test_openapi_is_served(api):
    client, _, _ = api
    spec = client.get("/openapi.json").json()
    assert {"/api/v1/login", "/api/v1/logout", "/api/v1/me", "/api/v1/users"} <= set(
        spec["paths"])
