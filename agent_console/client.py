"""The console's side of the agent API: REST calls and the event stream, nothing on screen.

:class:`ApiClient` wraps ``httpx`` (REST) and ``websockets`` (``/api/v1/events``). Every
failure becomes an :class:`ApiError` with the server's stable code and Chinese message, or
``console.offline`` when the server cannot be reached, so the screens only ever show a line
of text. :meth:`ApiClient.events` yields the server's events and, between them, connection
changes (``{"type": "_connection", "up": bool, "attempt": n}``); it reconnects by itself with
a growing pause until it is cancelled, and stops only when the token is refused.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import connect

# Pause between reconnection attempts: doubles from the first to the last value.
RETRY_FIRST = 0.5
RETRY_MAX = 5.0
TIMEOUT = 10.0


class ApiError(Exception):
    """What the server refused (its code and message), or that it cannot be reached."""

    def __init__(self, code: str, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    @property
    def offline(self) -> bool:
        """The server did not answer (network down, server stopped)."""
        return self.code == "console.offline"


class ApiClient:
    """One user's connection to one hotline server."""

    def __init__(self, server: str, *, transport: httpx.AsyncBaseTransport | None = None
                 ) -> None:
        self.server = server.rstrip("/")
        self.token = ""
        self.http = httpx.AsyncClient(base_url=self.server, timeout=TIMEOUT,
                                      transport=transport)

    async def close(self) -> None:
        """Release the HTTP connections."""
        await self.http.aclose()

    # --- REST ---------------------------------------------------------------------------

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One API call; the decoded JSON reply or :class:`ApiError`."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            reply = await self.http.request(method, f"/api/v1{path}", json=body,
                                            headers=headers)
        except httpx.HTTPError as exc:
            raise ApiError("console.offline",
                           f"无法连接服务器 {self.server} ({type(exc).__name__})") from None
        try:
            data = reply.json()
        except ValueError:
            data = None
        if reply.is_success:
            return data
        if isinstance(data, dict) and "code" in data:
            raise ApiError(str(data["code"]), str(data.get("message", "")), reply.status_code)
        raise ApiError("console.http", f"服务器返回 HTTP {reply.status_code}",
                       reply.status_code)

    async def login(self, work_id: str, password: str) -> dict[str, Any]:
        """Log in; keeps the token for later calls and returns the user."""
        data = await self.call("POST", "/login", {"work_id": work_id, "password": password})
        self.token = str(data["token"])
        user: dict[str, Any] = data["user"]
        return user

    async def logout(self) -> None:
        """Revoke the token (best effort when offline)."""
        if self.token:
            try:
                await self.call("POST", "/logout")
            finally:
                self.token = ""

    # --- events -------------------------------------------------------------------------

    def events_url(self) -> str:
        """The WebSocket address of the event stream."""
        base = self.server.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return f"{base}/api/v1/events"

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Events for this user, forever; see the module docstring."""
        attempt = 0
        pause = RETRY_FIRST
        up = False
        while True:
            try:
                async with connect(self.events_url(), open_timeout=TIMEOUT,
                                   additional_headers={"Authorization":
                                                       f"Bearer {self.token}"}) as ws:
                    async for raw in ws:
                        if not up:
                            up, attempt, pause = True, 0, RETRY_FIRST
                            yield {"type": "_connection", "up": True, "attempt": 0}
                        yield json.loads(raw)
                    close = ws.close_code, ws.close_reason or ""
            except websockets.InvalidStatus as exc:
                # The server refuses the token before accepting the WebSocket (HTTP 403).
                close = ((1008, "auth.invalid_token") if exc.response.status_code == 403
                         else (None, ""))
            except websockets.ConnectionClosed as exc:
                close = (exc.rcvd.code, exc.rcvd.reason or "") if exc.rcvd else (None, "")
            except (OSError, TimeoutError, websockets.InvalidHandshake,
                    websockets.InvalidURI):
                close = (None, "")
            code, reason = close
            if code == 1008 and reason.startswith("auth."):
                yield {"type": "_auth_lost", "code": reason}
                return
            attempt += 1
            if up or attempt == 1:
                up = False
            yield {"type": "_connection", "up": False, "attempt": attempt}
            await asyncio.sleep(pause)
            pause = min(RETRY_MAX, pause * 2)
