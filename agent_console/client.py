"""The console's side of the agent API: REST calls and the event stream, nothing on screen.

:class:`ApiClient` wraps ``httpx`` (REST) and ``websockets`` (``/api/v1/events``). Every
failure becomes an :class:`ApiError` with the server's stable code and Chinese message (and
the roster's ``reasons``, every why of a refused plan or swap), or ``console.offline`` when
the server cannot be reached, so the screens only ever show text.
:meth:`ApiClient.events` yields the server's events and, between them, connection
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
# Planning a month runs the solver on the server (``roster.solver_seconds``, 60 by default,
# plus explaining an infeasible month): the one call allowed to take minutes.
PLAN_TIMEOUT = 300.0


class ApiError(Exception):
    """What the server refused (its code and message), or that it cannot be reached."""

    def __init__(self, code: str, message: str, status: int = 0,
                 reasons: list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.reasons = list(reasons or [])

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

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None, *,
                   timeout: float | None = None) -> Any:
        """One API call; the decoded JSON reply or :class:`ApiError`."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            reply = await self.http.request(method, f"/api/v1{path}", json=body,
                                            headers=headers, timeout=timeout or TIMEOUT)
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
            reasons = data.get("reasons")
            raise ApiError(str(data["code"]), str(data.get("message", "")), reply.status_code,
                           [str(r) for r in reasons] if isinstance(reasons, list) else None)
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

    # --- roster -------------------------------------------------------------------------

    async def roster_month(self, month: str) -> dict[str, Any]:
        """A month's roster (``YYYY-MM``): slots, assignments, lawyers, violations, figures."""
        data: dict[str, Any] = await self.call("GET", f"/roster?month={month}")
        return data

    async def roster_coverage(self, month: str) -> dict[str, Any]:
        """Lawyers on duty and needed per day and hour (schedulers and supervisors)."""
        data: dict[str, Any] = await self.call("GET", f"/roster/coverage?month={month}")
        return data

    async def roster_mine(self) -> dict[str, Any]:
        """My coming shifts and my duty state."""
        data: dict[str, Any] = await self.call("GET", "/roster/mine")
        return data

    async def swaps(self, status: str | None = None) -> list[dict[str, Any]]:
        """Swap requests (a lawyer gets only those asked by or of them)."""
        data: list[dict[str, Any]] = await self.call(
            "GET", "/roster/swaps" + (f"?status={status}" if status else ""))
        return data

    async def request_swap(self, slot_id: str, to_work_id: str, take_slot_id: str | None = None,
                           note: str = "") -> dict[str, Any]:
        """Ask to hand one of my shifts to a colleague (or to exchange with theirs)."""
        data: dict[str, Any] = await self.call(
            "POST", "/roster/swaps", {"slot_id": slot_id, "to_work_id": to_work_id,
                                      "take_slot_id": take_slot_id, "note": note})
        return data

    async def decide_swap(self, swap_id: int, approve: bool) -> dict[str, Any]:
        """Approve (every hard rule checked) or reject a swap request."""
        data: dict[str, Any] = await self.call(
            "POST", f"/roster/swaps/{swap_id}/decision", {"approve": approve})
        return data

    async def plan_roster(self, month: str, *, publish: bool = False,
                          replan: bool = False) -> dict[str, Any]:
        """Solve a month on the server (may take a minute: see ``PLAN_TIMEOUT``)."""
        data: dict[str, Any] = await self.call(
            "POST", "/roster/plan", {"month": month, "publish": publish, "replan": replan},
            timeout=PLAN_TIMEOUT)
        return data

    async def publish_roster(self, month: str) -> dict[str, Any]:
        """Publish a month's draft."""
        data: dict[str, Any] = await self.call("POST", "/roster/publish", {"month": month})
        return data

    async def write_handover(self, text: str, line: str = "main") -> dict[str, Any]:
        """A handover note (交接班记录) for the next shift of ``line``."""
        data: dict[str, Any] = await self.call("POST", "/roster/handover",
                                               {"text": text, "line": line})
        return data

    async def handovers(self, line: str | None = None, hours: int = 24
                        ) -> list[dict[str, Any]]:
        """Handover notes of the last ``hours``, newest first."""
        query = f"?hours={hours}" + (f"&line={line}" if line else "")
        data: list[dict[str, Any]] = await self.call("GET", f"/roster/handover{query}")
        return data

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
