"""Helpers for tests that play the media worker to a real coordinator (``make_center``)."""

import asyncio
from typing import Any

from hotline.telephony import protocol as p


async def until(sent: list[tuple[str, Any]], kind: type, start: int = 0,
                timeout: float = 10.0, **fields: Any) -> tuple[int, Any]:
    """The first command of ``kind`` (fields matching) the coordinator sent from ``start``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for i in range(start, len(sent)):
            m = sent[i][1]
            if isinstance(m, kind) and all(getattr(m, k) == v for k, v in fields.items()):
                return i, m
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {kind.__name__} {fields} in {[m for _, m in sent[start:]]}")


async def queue_caller(cc: Any, sent: list[tuple[str, Any]], key: str = "k1",
                       number: str = "13800000000") -> int:
    """A caller who pressed 0 during the notice and now waits in the operator queue."""
    cc.on_worker_event("w1", p.CallOffered(key, f"sip-{key}", f"sip:{number}@h", "12348", "r"))
    cc.on_worker_event("w1", p.LegAnswered(key, "caller"))
    i, _ = await until(sent, p.PlayFiles, call=key)
    cc.on_worker_event("w1", p.Digit(key, "caller", "0"))
    i, play = await until(sent, p.PlayFiles, i + 1, call=key)  # "connecting you"
    cc.on_worker_event("w1", p.PlaybackDone(key, play.token))
    return i


async def wait_for(check: Any, timeout: float = 10.0) -> None:
    """Until ``check()`` is true (AssertionError after ``timeout`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")
