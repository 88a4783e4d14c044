"""The supervised pool of media worker processes (asyncio adapter).

The pool listens on a loopback control port; each worker process connects, says
``WorkerReady`` and from then on exchanges protocol lines. A worker that dies is reported
(``on_lost``, so its calls are closed in the ledger) and started again on the same ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hotline.config import Settings
from hotline.errors import HotlineError
from hotline.telephony import protocol as p

log = logging.getLogger("hotline.pool")
# "2026-11-25 20:40:04 ERROR hotline.worker: " in front of a worker's log line
_LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \w+ [\w.]+: ")
READY_TIMEOUT = 30.0
RESTART_DELAY = 1.0


@dataclass
class WorkerSlot:
    """One worker position: fixed ports, the current process and connection."""

    worker_id: str
    sip_port: int
    rtp_port: int
    process: asyncio.subprocess.Process | None = None
    writer: asyncio.StreamWriter | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    max_legs: int = 0
    restarts: int = 0
    stderr_tail: list[str] = field(default_factory=list)


class WorkerPool:
    """Starts, feeds and restarts the media workers."""

    def __init__(self, settings: Settings, on_event: Callable[[str, Any], None],
                 on_lost: Callable[[str], None]) -> None:
        t = settings.telephony
        self.settings = settings
        self.host = t.worker_host
        self.on_event = on_event
        self.on_lost = on_lost
        self.slots = {
            f"w{i + 1}": WorkerSlot(f"w{i + 1}", t.worker_sip_port_base + i,
                                    t.rtp_port_base + i * t.rtp_ports_per_worker)
            for i in range(t.workers)
        }
        self._server: asyncio.Server | None = None
        self._control_port = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._starting = True

    @property
    def max_legs(self) -> int:
        """Legs per worker reported by the installed pjsua2 (0 before start)."""
        return min((s.max_legs for s in self.slots.values() if s.max_legs), default=0)

    async def start(self) -> None:
        """Start every worker and wait until all are ready (or raise with the reason)."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self._control_port = self._server.sockets[0].getsockname()[1]
        for slot in self.slots.values():
            await self._spawn(slot)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT
        for slot in self.slots.values():
            ready = asyncio.ensure_future(slot.ready.wait())
            exited = asyncio.ensure_future(slot.exited.wait())
            await asyncio.wait({ready, exited}, timeout=max(0.0, deadline - loop.time()),
                               return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            exited.cancel()
            if not slot.ready.is_set():
                # A worker that exits at start (port taken) fails fast with its own words.
                detail = next((_LOG_PREFIX.sub("", line) for line in reversed(slot.stderr_tail)
                               if line.strip()), "无输出")
                await self.stop()
                raise HotlineError("telephony.worker_failed", worker=slot.worker_id,
                                   port=slot.sip_port, detail=detail)
        self._starting = False

    def send(self, worker_id: str, message: Any) -> bool:
        """Send a command; False when that worker is not connected."""
        slot = self.slots.get(worker_id)
        if slot is None or slot.writer is None or slot.writer.is_closing():
            return False
        slot.writer.write(p.encode(message))
        return True

    async def stop(self) -> None:
        """Ask every worker to shut down (hang up, close recordings), then make sure."""
        self._stopping = True
        for worker_id in self.slots:
            self.send(worker_id, p.Shutdown())
        for slot in self.slots.values():
            if slot.process is None:
                continue
            try:
                await asyncio.wait_for(slot.process.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    slot.process.kill()
                await slot.process.wait()
        for task in list(self._tasks):
            task.cancel()
        for slot in self.slots.values():
            if slot.writer is not None:
                slot.writer.close()
                slot.writer = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def kill(self, worker_id: str) -> None:
        """SIGKILL a worker (tests and operators' fault drills)."""
        slot = self.slots[worker_id]
        if slot.process is not None and slot.process.returncode is None:
            slot.process.send_signal(signal.SIGKILL)

    # --- internals ------------------------------------------------------------------------

    def _task(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _spawn(self, slot: WorkerSlot) -> None:
        slot.ready.clear()
        slot.exited.clear()
        slot.stderr_tail = []
        cmd = [sys.executable, "-m", "hotline.telephony.worker", "--id", slot.worker_id,
               "--host", self.host, "--sip-port", str(slot.sip_port),
               "--rtp-port", str(slot.rtp_port),
               "--control", f"127.0.0.1:{self._control_port}"]
        slot.process = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._task(self._watch(slot, slot.process))

    async def _watch(self, slot: WorkerSlot, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            slot.stderr_tail = [*slot.stderr_tail[-19:], line]
            log.debug("%s: %s", slot.worker_id, line)
        code = await process.wait()
        slot.exited.set()
        if self._stopping or self._starting or slot.process is not process:
            return
        log.error("媒体进程 %s (端口 %d) 意外退出 (退出码 %s), 正在重启", slot.worker_id,
                  slot.sip_port, code)
        slot.writer = None
        self.on_lost(slot.worker_id)
        slot.restarts += 1
        await asyncio.sleep(RESTART_DELAY)
        if not self._stopping:
            await self._spawn(slot)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = p.Decoder()
        slot: WorkerSlot | None = None
        try:
            while data := await reader.read(65536):
                for message in decoder.feed(data):
                    if isinstance(message, p.ProtocolError):
                        log.warning("媒体进程消息无效: %s", message)
                    elif isinstance(message, p.WorkerReady):
                        slot = self.slots.get(message.worker)
                        if slot is None:
                            writer.close()
                            return
                        slot.writer, slot.max_legs = writer, message.max_legs
                        slot.ready.set()
                    elif slot is not None:
                        self.on_event(slot.worker_id, message)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Shutdown cancels the connection handlers; the worker is told to stop anyway.
            return
        finally:
            if slot is not None and slot.writer is writer:
                slot.writer = None
            writer.close()
