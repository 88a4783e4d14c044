"""A debugging consumer for tap streams: every stream it accepts becomes a WAV file.

    python -m hotline.telephony.tap_sink --listen 127.0.0.1:7100 --dir /tmp/taps

Point a worker's taps at the sink and listen to what a recogniser would hear. Each
connection (one call leg, see :mod:`hotline.telephony.tap_stream`) is written as it arrives
to ``DIR/<call>-<leg>.wav`` (8 kHz 16-bit mono; ``-2``, ``-3``... when the name is taken),
with ``<same stem>.json`` beside it when the stream ends: the header, the sender's end
record (absent when the stream was cut short) and the gaps. Frames the sender dropped are
filled with silence (unless ``--no-fill``), so the file stays aligned with the call's
recording. It also serves the tests, through :class:`TapSink`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import socket
import stat
import sys
import threading
import time
import wave
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

from hotline.telephony.tap_stream import (
    SAMPLE_BYTES,
    Audio,
    End,
    Header,
    StreamParser,
    TapStreamError,
    parse_address,
)

log = logging.getLogger("hotline.tap_sink")

# A gap longer than this is taken for a corrupt position, not for dropped frames.
MAX_GAP_SECONDS = 3600
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class SinkResult:
    """One finished stream.

    Attributes:
        path: The WAV file (empty when the header never arrived).
        header: The stream's header, if it arrived.
        end: The sender's end record; None when the stream was cut short.
        samples: Samples in the WAV file, filled gaps included.
        gaps: Jumps in ``pos`` (frames the sender dropped).
        gap_samples: Samples missing in those gaps.
        error: Why the stream was rejected, or "".
    """

    path: str
    header: Header | None
    end: End | None
    samples: int
    gaps: int
    gap_samples: int
    error: str


class _Writer:
    """One stream into one WAV file, as the records arrive."""

    def __init__(self, directory: Path, fill_gaps: bool) -> None:
        self.directory = directory
        self.fill_gaps = fill_gaps
        self.parser = StreamParser()
        self.wav: wave.Wave_write | None = None
        self.path: Path | None = None
        self.samples = 0
        self.gaps = 0
        self.gap_samples = 0
        self.end: End | None = None

    def feed(self, data: bytes) -> None:
        for event in self.parser.feed(data):
            if isinstance(event, Header):
                self._open(event)
            elif isinstance(event, Audio):
                self._audio(event)
            else:
                self.end = event

    def _open(self, header: Header) -> None:
        stem = f"{_safe(header.call)}-{_safe(header.leg)}"
        self.directory.mkdir(parents=True, exist_ok=True)
        for n in range(1, 1000):
            name = stem if n == 1 else f"{stem}-{n}"
            try:
                fh = (self.directory / f"{name}.wav").open("xb")
            except FileExistsError:
                continue
            break
        else:
            raise TapStreamError(detail=f"too many streams named {stem}")
        self.path = self.directory / f"{name}.wav"
        wav = wave.open(fh, "wb")
        wav.setnchannels(header.channels)
        wav.setsampwidth(SAMPLE_BYTES)
        wav.setframerate(header.rate)
        self.wav = wav

    def _audio(self, audio: Audio) -> None:
        assert self.wav is not None and self.parser.header is not None
        if audio.pos > self.samples:
            missing = audio.pos - self.samples
            if missing > MAX_GAP_SECONDS * self.parser.header.rate:
                raise TapStreamError(detail=f"position jumps by {missing} samples")
            self.gaps += 1
            self.gap_samples += missing
            if self.fill_gaps:
                self.wav.writeframes(bytes(missing * SAMPLE_BYTES))
                self.samples += missing
        elif audio.pos < self.samples and self.fill_gaps:
            raise TapStreamError(detail=f"position goes back to {audio.pos}")
        self.wav.writeframes(audio.pcm)
        self.samples += audio.samples

    def close(self, error: str) -> SinkResult:
        if self.wav is not None:
            with contextlib.suppress(OSError, wave.Error):
                self.wav.close()
        result = SinkResult(path=str(self.path or ""), header=self.parser.header,
                            end=self.end, samples=self.samples, gaps=self.gaps,
                            gap_samples=self.gap_samples, error=error)
        if self.path is not None:
            side = {"header": asdict(result.header) if result.header else None,
                    "end": asdict(result.end) if result.end else None,
                    "samples": result.samples, "gaps": result.gaps,
                    "gap_samples": result.gap_samples, "error": error}
            with contextlib.suppress(OSError):
                self.path.with_name(self.path.stem + ".json").write_text(
                    json.dumps(side, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return result


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name)[:80] or "_"


class TapSink:
    """Accepts tap connections and writes each stream to a WAV file in ``directory``.

    Args:
        directory: Where the WAV and JSON files go.
        listen: ``host:port`` (port 0 picks a free one) or ``unix:/path``.
        fill_gaps: Write silence where the sender dropped frames.
    """

    def __init__(self, directory: str | Path, listen: str = "127.0.0.1:0",
                 fill_gaps: bool = True) -> None:
        self.directory = Path(directory)
        self.fill_gaps = fill_gaps
        self.results: list[SinkResult] = []
        self._done = threading.Condition()
        self._closing = threading.Event()
        self._conns: set[socket.socket] = set()
        address = parse_address(listen)
        self._unix_path = address.target if isinstance(address.target, str) else ""
        server = socket.socket(address.family, socket.SOCK_STREAM)
        try:
            if self._unix_path:
                _unlink_socket(self._unix_path)
            else:
                server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(address.target)
            server.listen(16)
        except BaseException:
            server.close()
            raise
        self._server = server
        self._thread = threading.Thread(target=self._accept, name="tap-sink", daemon=True)

    @property
    def address(self) -> str:
        """The address taps should use (with the real port when 0 was asked for)."""
        if self._unix_path:
            return f"unix:{self._unix_path}"
        host, port = self._server.getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def start(self) -> TapSink:
        """Start accepting on a background thread."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop accepting and cut open streams (they are finished as cut short)."""
        self._closing.set()
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._unix_path:
            _unlink_socket(self._unix_path)

    def wait(self, count: int, timeout: float) -> list[SinkResult]:
        """Wait until ``count`` streams have finished (or ``timeout``); all results so far."""
        deadline = time.monotonic() + timeout
        with self._done:
            while len(self.results) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._done.wait(left)
            return list(self.results)

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _peer = self._server.accept()
            except OSError:
                if self._closing.is_set():
                    return
                time.sleep(0.1)  # e.g. out of file descriptors: do not spin
                continue
            self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True,
                             name="tap-sink-conn").start()

    def _serve(self, conn: socket.socket) -> None:
        writer = _Writer(self.directory, self.fill_gaps)
        error = ""
        try:
            with conn:
                while data := conn.recv(65536):
                    writer.feed(data)
                if not writer.parser.eof():
                    error = "stream cut short (no end record)"
        except TapStreamError as exc:
            error = f"bad stream: {exc.params.get('detail', exc.code)}"
        except OSError as exc:
            error = f"connection error: {exc}"
        finally:
            self._conns.discard(conn)
        result = writer.close(error)
        header = result.header
        who = f"{header.call}/{header.leg}" if header else "?"
        if error:
            log.warning("tap %s: %s (%d samples in %s)", who, error, result.samples,
                        result.path or "no file")
        else:
            log.info("tap %s: %.1f s in %s, %d gaps (%d frames dropped by the sender)", who,
                     result.samples / (header.rate if header else 8000), result.path,
                     result.gaps, result.end.dropped if result.end else 0)
        with self._done:
            self.results.append(result)
            self._done.notify_all()


def _unlink_socket(path: str) -> None:
    """Remove a stale Unix socket file (never any other kind of file)."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)


def main(argv: list[str] | None = None) -> int:
    """Run a sink until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m hotline.telephony.tap_sink",
                                     description="write tap streams to WAV files")
    parser.add_argument("--listen", required=True, help="HOST:PORT or unix:/path")
    parser.add_argument("--dir", required=True, type=Path, help="directory for the files")
    parser.add_argument("--no-fill", action="store_true",
                        help="do not fill dropped frames with silence")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        sink = TapSink(args.dir, args.listen, fill_gaps=not args.no_fill)
    except (OSError, TapStreamError) as exc:
        log.error("cannot listen on %s: %s", args.listen, exc)
        return 2
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    sink.start()
    log.info("listening on %s, writing to %s", sink.address, args.dir)
    while not stop.wait(0.5):
        pass
    sink.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
