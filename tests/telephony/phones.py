"""Lawyers' phones and carriers for the telephony tests: ``sip_ua.py`` processes, and audio checks.

A :class:`Ua` is one pjsua2 user agent in its own process (like a real phone): it answers,
plays a tone and records what it hears. :func:`tone_level` tells which tones a stretch of a
recording holds, so a test can prove who heard whom, when.
"""

from __future__ import annotations

import array
import json
import math
import queue
import random
import socket
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path
from typing import Any

UA_SCRIPT = Path(__file__).with_name("sip_ua.py")
RATE = 8000


def _free(port: int, kinds: tuple[int, ...] = (socket.SOCK_DGRAM, socket.SOCK_STREAM)) -> bool:
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


_taken: set[int] = set()


def free_port(span: int = 1) -> int:
    """A port (and the ``span - 1`` after it) free on loopback for UDP and TCP."""
    rnd = random.Random()
    while True:
        base = rnd.randrange(20000, 60000, 2)
        ports = range(base, base + span)
        if not _taken.intersection(ports) and all(_free(p) for p in ports[:2]):
            _taken.update(ports)
            return base


class Ua:
    """One ``sip_ua.py`` process; events arrive on a reader thread."""

    def __init__(self, name: str, *extra: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.name = name
        self.uri = f"sip:{name}@127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, str(UA_SCRIPT), "--port", str(self.port),
             "--rtp-port", str(free_port(64)), "--name", name, *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.backlog: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.wait("ready", timeout=15)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("@@"):
                self.events.put(json.loads(line[2:]))

    def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def call(self, tag: str, uri: str) -> None:
        self.send(cmd="call", id=tag, uri=uri)

    def wait(self, kind: str, timeout: float = 8.0, **match: Any) -> dict[str, Any]:
        def hit(e: dict[str, Any]) -> bool:
            return e["ev"] == kind and all(e.get(k) == v for k, v in match.items())

        for e in self.backlog:
            if hit(e):
                self.backlog.remove(e)
                return e
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                e = self.events.get(timeout=left)
            except queue.Empty:
                break
            if hit(e):
                return e
            self.backlog.append(e)
        raise AssertionError(f"{self.name}: no {kind} {match} in {timeout}s; saw {self.backlog}")

    def drain(self) -> list[dict[str, Any]]:
        while True:
            try:
                self.backlog.append(self.events.get_nowait())
            except queue.Empty:
                out, self.backlog = self.backlog, []
                return out

    def close(self) -> None:
        close_all(self)


def close_all(*uas: Ua) -> None:
    """Quit several UAs at once (pjsua2 takes about a second to shut down)."""
    for ua in uas:
        try:
            ua.send(cmd="quit")
        except OSError:
            pass
    for ua in uas:
        try:
            ua.proc.wait(5)
        except subprocess.TimeoutExpired:
            ua.proc.kill()
            ua.proc.wait()


def make_tone(path: Path, hz: int, seconds: float = 60.0, volume: float = 0.4) -> Path:
    """A mono 8 kHz sine WAV (sox)."""
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth",
                    str(seconds), "sine", str(hz), "vol", str(volume)], check=True)
    return path


def read_channels(path: Path) -> list[array.array]:
    """Every channel of a 16-bit WAV as its own sample array."""
    with wave.open(str(path), "rb") as w:
        frames = array.array("h", w.readframes(w.getnframes()))
        n = w.getnchannels()
    if sys.byteorder == "big":
        frames.byteswap()
    return [frames[i::n] for i in range(n)]


def tone_level(samples: Any, hz: float, start: float, end: float) -> float:
    """The amplitude of ``hz`` in ``samples[start s:end s]`` (Goertzel), 0 when silent."""
    chunk = samples[int(start * RATE):int(end * RATE)]
    if not len(chunk):
        return 0.0
    k = 2 * math.cos(2 * math.pi * hz / RATE)
    s1 = s2 = 0.0
    for x in chunk:
        s1, s2 = x + k * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - k * s1 * s2
    return 2 * math.sqrt(max(power, 0.0)) / len(chunk)


def tones(samples: Any, start: float, end: float, candidates: tuple[int, ...],
          floor: float = 300.0) -> set[int]:
    """Which of ``candidates`` sound in ``samples[start:end]`` (amplitude above ``floor``)."""
    return {hz for hz in candidates if tone_level(samples, hz, start, end) > floor}
