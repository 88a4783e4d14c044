"""How late the coordinator's event loop runs: the figure that says SIP and captions wait.

Everything the coordinator does (worker events, the ACD, the API, speech results) runs on
one asyncio loop; work that blocks it delays every call. A ticker asks to wake every
``interval`` seconds and records how late it woke. ``/health`` reports the worst lag of the
last minute, so an overload test (and an operator) can see it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

INTERVAL = 0.1
WINDOW = 60.0


class LoopLag:
    """The loop's lateness over the last ``WINDOW`` seconds."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self._samples: deque[tuple[float, float]] = deque()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Tick on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._tick())

    def stop(self) -> None:
        """Stop ticking."""
        if self._task is not None:
            self._task.cancel()

    async def _tick(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.interval)
            now = time.monotonic()
            self._samples.append((now, max(0.0, now - before - self.interval)))
            while self._samples and self._samples[0][0] < now - WINDOW:
                self._samples.popleft()

    def report(self) -> dict[str, float]:
        """Worst and mean lag of the window, in milliseconds."""
        lags = [lag for _, lag in self._samples]
        if not lags:
            return {"max_ms": 0.0, "mean_ms": 0.0}
        return {"max_ms": round(max(lags) * 1000, 1),
                "mean_ms": round(sum(lags) / len(lags) * 1000, 2)}
