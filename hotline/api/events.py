"""The per-user event stream: ``/api/v1/events`` (WebSocket) and the hub that feeds it.

The coordinator publishes plain dicts with :meth:`EventHub.publish`, addressed to lawyers by
work id (offers, their calls' state, their own desk state) and/or to every supervisor
(everything, for the wallboard). Each connection has a bounded queue: a console that stops
reading is disconnected (close code 1008 "lagging") rather than slowing the coordinator,
and reconnects for a fresh ``hello``. Authentication is the bearer token, in the
``Authorization`` header or (browsers cannot set headers on a WebSocket) ``?token=``.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.security import HTTPAuthorizationCredentials

from hotline.api.auth import Auth
from hotline.domain import Role
from hotline.errors import HotlineError
from hotline.store.users import UserView

log = logging.getLogger("hotline.api.events")

QUEUE_SIZE = 1000
STAFF = (Role.SUPERVISOR, Role.ADMIN)


@dataclass(eq=False)
class Subscriber:
    """One open console connection."""

    user: UserView
    queue: asyncio.Queue[dict[str, Any]] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    lagging: bool = False


class EventHub:
    """Fans events out to the connected consoles (event loop only)."""

    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()

    def publish(self, event: dict[str, Any], to: Iterable[str] = (),
                staff: bool = True) -> None:
        """Send ``event`` to the lawyers in ``to`` and, when ``staff``, to supervisors."""
        wanted = set(to)
        for sub in list(self.subscribers):
            if sub.lagging:
                continue
            if sub.user.work_id in wanted or (staff and sub.user.role in STAFF):
                try:
                    sub.queue.put_nowait(event)
                except asyncio.QueueFull:
                    sub.lagging = True  # its sender closes the connection


def events_router(auth: Auth, hub: EventHub,
                  hello: Callable[[UserView], dict[str, Any]]) -> APIRouter:
    """The WebSocket route; ``hello`` is the first message (the user's current state)."""
    router = APIRouter(prefix="/api/v1")

    @router.websocket("/events")
    async def events(websocket: WebSocket) -> None:
        header = websocket.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token if scheme.lower() == "bearer" else websocket.query_params.get(
            "token", "")
        try:
            user = await asyncio.to_thread(
                auth.user, HTTPAuthorizationCredentials(scheme="Bearer", credentials=token))
        except HotlineError as exc:
            await websocket.close(code=1008, reason=exc.code)
            return
        await websocket.accept()
        sub = Subscriber(user)
        hub.subscribers.add(sub)
        reader = asyncio.create_task(_drain(websocket))
        try:
            await websocket.send_json(hello(user))
            while not reader.done():
                getter = asyncio.create_task(sub.queue.get())
                done, _ = await asyncio.wait({getter, reader},
                                             return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                if sub.lagging:
                    await websocket.close(code=1008, reason="lagging")
                    break
                await websocket.send_json(getter.result())
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            hub.subscribers.discard(sub)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    return router


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, so a close is noticed at once."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()
