"""The speech service process: sockets, the database thread and the command line.

    python -m hotline.speech.server --tap PATH --control PATH --model NAME=DIR \
        [--model NAME=DIR ...] --preload NAME --capacity K --db URL [--lexicon F] [--rules F]

Started and supervised by ``hotline serve``; see :mod:`hotline.speech.service` for what it
does. Stops on SIGTERM/SIGINT or when its parent (the coordinator) is gone.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import queue
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from hotline.speech import control as c
from hotline.speech.service import SpeechService
from hotline.speech.text.pipeline import TextPipeline
from hotline.speech.vosk import Models

log = logging.getLogger("hotline.speech")


class Database:
    """One thread writes everything the service stores, in order (SQLite has one writer)."""

    def __init__(self, url: str) -> None:
        from hotline.store.engine import make_engine, make_session_factory

        self.engine = make_engine(url)
        self.factory = make_session_factory(self.engine)
        self._jobs: queue.SimpleQueue[Callable[[Any], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="speech-db", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[Any], None]) -> None:
        """Run ``job(session)`` in its own transaction on the database thread."""
        self._jobs.put(job)

    def _run(self) -> None:
        from hotline.store.session import session_scope

        while (job := self._jobs.get()) is not None:
            try:
                with session_scope(self.factory) as session:
                    job(session)
            except Exception:  # one failed write must not stop the others
                log.exception("写入转写结果失败")

    def close(self) -> None:
        """Finish the queued writes, then close the engine."""
        self._jobs.put(None)
        self._thread.join(timeout=30)
        self.engine.dispose()


def _listen(path: Path) -> socket.socket:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(64)
    return sock


def _accept_taps(server: socket.socket, service: SpeechService) -> None:
    while not service.stopping.is_set():
        try:
            conn, _ = server.accept()
        except OSError:
            return
        threading.Thread(target=service.serve_tap, args=(conn,), name="tap-reader",
                         daemon=True).start()


def _accept_control(server: socket.socket, service: SpeechService,
                    ready: c.Ready) -> None:
    """One coordinator at a time; a new connection replaces the old one."""
    while not service.stopping.is_set():
        try:
            conn, _ = server.accept()
        except OSError:
            return
        service.outbox.attach(conn)
        service.outbox.send(ready)
        threading.Thread(target=_read_control, args=(conn, service), name="control",
                         daemon=True).start()


def _read_control(conn: socket.socket, service: SpeechService) -> None:
    with contextlib.suppress(OSError), conn.makefile("rb") as lines:
        for line in lines:
            try:
                service.on_control(c.decode(line))
            except c.ControlError as exc:
                log.warning("忽略无效的控制消息: %s", exc)


def _watch_parent(parent: int, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        if os.getppid() != parent:
            log.warning("主进程已退出, 语音服务停止")
            stop.set()


def main(argv: list[str] | None = None) -> int:
    """Run the service until told to stop."""
    parser = argparse.ArgumentParser(prog="python -m hotline.speech.server")
    parser.add_argument("--tap", required=True, type=Path)
    parser.add_argument("--control", required=True, type=Path)
    parser.add_argument("--model", action="append", default=[], metavar="NAME=DIR")
    parser.add_argument("--preload", action="append", default=[], metavar="NAME")
    parser.add_argument("--capacity", type=int, default=4)
    parser.add_argument("--db", default="")
    parser.add_argument("--lexicon", default="")
    parser.add_argument("--rules", default="")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%Y-%m-%d %H:%M:%S")
    from hotline.logs import MaskNumbers

    for handler in logging.getLogger().handlers:
        handler.addFilter(MaskNumbers())
    for noisy in ("alembic", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    paths = dict(item.split("=", 1) for item in args.model)
    models = Models({name: Path(path) for name, path in paths.items()})
    for name in args.preload:
        models.get(name)  # fail now, not on the first call
    pipeline = TextPipeline.from_files(Path(args.lexicon) if args.lexicon else None,
                                       Path(args.rules) if args.rules else None)
    database = Database(args.db) if args.db else None
    service = SpeechService(models, args.capacity, pipeline,
                            database.submit if database is not None else None)
    tap, ctl = _listen(args.tap), _listen(args.control)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        service.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ready = c.Ready(args.capacity, tuple(sorted(paths)))
    for target, sock, extra in ((_accept_taps, tap, ()), (_accept_control, ctl, (ready,))):
        threading.Thread(target=target, args=(sock, service, *extra), daemon=True).start()
    threading.Thread(target=_watch_parent, args=(os.getppid(), service.stopping),
                     daemon=True).start()
    log.info("语音服务已启动: 模型 %s, 最多 %d 路实时转写",
             ", ".join(models.loaded) or "(按需加载)", args.capacity)
    service.stopping.wait()
    for sock in (tap, ctl):
        sock.close()
    for stream in list(service.streams.values()):
        stream.done.wait(timeout=5)
    service.outbox.attach(None)
    if database is not None:
        database.close()
    log.info("语音服务已停止")
    return 0


if __name__ == "__main__":
    sys.exit(main())
