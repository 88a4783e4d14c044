"""The ledger writer: every database write of the coordinator, in order, off the event loop.

One thread executes the writes in submission order, so a call's events keep their sequence
and the asyncio loop (SIP events, timers, the API) never waits on disk. ``run`` awaits a
write whose result the caller needs (the call row before the first prompt); ``post`` queues
one whose result nobody waits for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from hotline.store.session import session_scope

log = logging.getLogger("hotline.ledger")
T = TypeVar("T")


class Ledger:
    """Ordered, single-threaded access to the database for the coordinator."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")
        self.failures = 0

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with session_scope(self.factory) as session:
            return fn(session, *args, **kwargs)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(session, ...)`` in its own transaction and return its result."""
        future = self._executor.submit(self._call, fn, *args, **kwargs)
        return await asyncio.wrap_future(future)

    def post(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue ``fn(session, ...)``; a failure is logged and counted, never raised."""
        future = self._executor.submit(self._call, fn, *args, **kwargs)
        future.add_done_callback(self._report)

    def _report(self, future: Future[Any]) -> None:
        exc = future.exception()
        if exc is not None:
            self.failures += 1
            log.error("账本写入失败: %s: %s", type(exc).__name__, exc)

    def flush(self) -> None:
        """Wait until everything queued so far is written (shutdown, tests)."""
        self._executor.submit(lambda: None).result()

    def close(self) -> None:
        """Finish queued writes and stop the thread."""
        self._executor.shutdown(wait=True)
