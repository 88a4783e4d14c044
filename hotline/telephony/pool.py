"""The supervised pool of media worker processes (asyncio adapter).

The pool listens on a unix control socket under ``var/run``; each worker process connects,
says ``WorkerReady`` and from then on exchanges protocol lines. A worker that dies is
reported (``on_lost``, so its calls are closed in the ledger) and started again on the same
ports.

The socket's path and each worker's pid file stay the same across restarts of the
coordinator: a worker that outlived a crashed coordinator (it keeps bridged conversations
going) reconnects on its own, and a starting pool adopts it instead of starting a new one
on its ports. Its ``WorkerReady.held`` names the calls it carried meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotline.config import Settings
from hotline.errors import HotlineError
from hotline.telephony import protocol as p

log = logging.getLogger("hotline.pool")
# "2026-11-25 20:40:04 ERROR hotline.worker: " in front of a worker's log line
_LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \w+ [\w.]+: ")
READY_TIMEOUT = 30.0
# An orphaned worker retries every second; give it a little more before replacing it.
ADOPT_TIMEOUT = 5.0
RESTART_DELAY = 1.0
PID_POLL = 0.5
# sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107


def control_path(var_dir: Path) -> Path:
    """The control socket: ``var/run/workers.sock``, or a short temp path when var is deep."""
    local = var_dir / "run" / "workers.sock"
    if len(str(local)) <= MAX_SOCKET_PATH:
        return local
    digest = hashlib.sha256(str(var_dir.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"hotline-{digest}" / "workers.sock"


def _alive_worker(pid_file: Path, worker_id: str) -> int | None:
    """The pid in ``pid_file`` when that process is still our worker ``worker_id``."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    wanted = [b"hotline.telephony.worker", b"--id", worker_id.encode()]
    return pid if all(part in cmdline for part in wanted) else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); /proc tells it is gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return False


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
    adopted_pid: int | None = None  # a worker that outlived the previous coordinator
    held: tuple[str, ...] = ()  # SIP Call-IDs it carried while no coordinator was there


class WorkerPool:
    """Starts, feeds and restarts the media workers."""

    def __init__(self, settings: Settings, on_event: Callable[[str, Any], None],
                 on_lost: Callable[[str], None], lost_prompt: str = "") -> None:
        t = settings.telephony
        self.settings = settings
        self.host = t.worker_host
        self.on_event = on_event
        self.on_lost = on_lost
        self.lost_prompt = lost_prompt
        self.proxy = f"sip:{settings.sip.host}:{settings.sip.port}"
        self.control_path = control_path(settings.path("var"))
        self.pid_dir = settings.path("var") / "run"
        self.slots = {
            f"w{i + 1}": WorkerSlot(f"w{i + 1}", t.worker_sip_port_base + i,
                                    t.rtp_port_base + i * t.rtp_ports_per_worker)
            for i in range(t.workers)
        }
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._starting = True

    @property
    def max_legs(self) -> int:
        """Legs per worker reported by the installed pjsua2 (0 before start)."""
        return min((s.max_legs for s in self.slots.values() if s.max_legs), default=0)

    @property
    def held(self) -> set[str]:
        """SIP Call-IDs of the calls adopted workers carried through a coordinator restart."""
        return {call for slot in self.slots.values() for call in slot.held}

    async def start(self) -> None:
        """Adopt surviving workers, start the others, wait until all are ready (or raise)."""
        self.control_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.control_path.unlink()
        self._server = await asyncio.start_unix_server(self._accept, str(self.control_path))
        os.chmod(self.control_path, 0o600)
        for slot in self.slots.values():
            slot.adopted_pid = _alive_worker(self._pid_file(slot), slot.worker_id)
        adopting = [s for s in self.slots.values() if s.adopted_pid is not None]
        if adopting:
            log.warning("发现上次运行留下的媒体进程 %d 个, 等待其重新连接",
                        len(adopting))
            await self._wait_ready(adopting, ADOPT_TIMEOUT)
            for slot in adopting:
                if slot.ready.is_set():
                    assert slot.adopted_pid is not None
                    self._task(self._watch_pid(slot, slot.adopted_pid))
                else:  # alive but silent: replace it
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(slot.adopted_pid or 0, signal.SIGKILL)
                    slot.adopted_pid = None
        for slot in self.slots.values():
            if not slot.ready.is_set():
                await self._spawn(slot)
        await self._wait_ready(list(self.slots.values()), READY_TIMEOUT)
        for slot in self.slots.values():
            if not slot.ready.is_set():
                # A worker that exits at start (port taken) fails fast with its own words.
                detail = next((_LOG_PREFIX.sub("", line) for line in reversed(slot.stderr_tail)
                               if line.strip()), "无输出")
                await self.stop()
                raise HotlineError("telephony.worker_failed", worker=slot.worker_id,
                                   port=slot.sip_port, detail=detail)
        self._starting = False

    async def _wait_ready(self, slots: list[WorkerSlot], timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for slot in slots:
            ready = asyncio.ensure_future(slot.ready.wait())
            exited = asyncio.ensure_future(slot.exited.wait())
            await asyncio.wait({ready, exited}, timeout=max(0.0, deadline - loop.time()),
                               return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            exited.cancel()

    def _pid_file(self, slot: WorkerSlot) -> Path:
        return self.pid_dir / f"worker-{slot.worker_id}.pid"

    def connected(self) -> list[str]:
        """Workers ready for commands now."""
        return [w for w, slot in self.slots.items()
                if slot.ready.is_set() and slot.writer is not None
                and not slot.writer.is_closing()]

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
                await self._stop_adopted(slot)
                continue
            try:
                await asyncio.wait_for(slot.process.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    slot.process.kill()
                await slot.process.wait()
            with contextlib.suppress(FileNotFoundError):
                self._pid_file(slot).unlink()
        for task in list(self._tasks):
            task.cancel()
        for slot in self.slots.values():
            if slot.writer is not None:
                slot.writer.close()
                slot.writer = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.control_path.unlink()

    async def _stop_adopted(self, slot: WorkerSlot) -> None:
        pid = slot.adopted_pid
        if pid is None:
            return
        for _ in range(int(10 / 0.1)):
            if not _pid_alive(pid):
                break
            await asyncio.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            self._pid_file(slot).unlink()

    def kill(self, worker_id: str) -> None:
        """SIGKILL a worker (tests and operators' fault drills)."""
        slot = self.slots[worker_id]
        if slot.process is not None and slot.process.returncode is None:
            slot.process.send_signal(signal.SIGKILL)
        elif slot.adopted_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(slot.adopted_pid, signal.SIGKILL)

    # --- internals ------------------------------------------------------------------------

    def _task(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _spawn(self, slot: WorkerSlot) -> None:
        slot.ready.clear()
        slot.exited.clear()
        slot.stderr_tail = []
        slot.adopted_pid = None
        slot.held = ()
        cmd = [sys.executable, "-m", "hotline.telephony.worker", "--id", slot.worker_id,
               "--host", self.host, "--sip-port", str(slot.sip_port),
               "--rtp-port", str(slot.rtp_port), "--rtp-ports",
               str(self.settings.telephony.rtp_ports_per_worker),
               "--control", str(self.control_path), "--proxy", self.proxy]
        if self.lost_prompt:
            cmd += ["--lost-prompt", self.lost_prompt]
        slot.process = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._pid_file(slot).write_text(f"{slot.process.pid}\n")
        self._task(self._watch(slot, slot.process))

    async def _watch_pid(self, slot: WorkerSlot, pid: int) -> None:
        """Supervise an adopted worker (not our child): poll until it is gone."""
        while _pid_alive(pid):
            await asyncio.sleep(PID_POLL)
        slot.exited.set()
        if self._stopping or slot.adopted_pid != pid:
            return
        log.error("媒体进程 %s (端口 %d, 接管的进程 %d) 已退出, 正在重启", slot.worker_id,
                  slot.sip_port, pid)
        await self._replace(slot)

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
        await self._replace(slot)

    async def _replace(self, slot: WorkerSlot) -> None:
        """A worker died: its calls are closed (``on_lost``), a new one takes its ports."""
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
                        slot.held = message.held
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
