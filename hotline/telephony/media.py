"""Prompts and recordings on the conference bridge: playlists, stereo recordings.

A :class:`Playback` is one pjsua2 playlist feeding a leg. A :class:`StereoRecording` is two
mono recorders on the bridge — one hears the caller (left), one hears everything the caller
hears (right: prompts now, the lawyer later) — merged into one stereo WAV when it closes.
The bridge mixes for us, so no audio passes through Python while a call runs; the merge is
plain file work (:func:`merge_stereo`) done once, at close.

Like :mod:`hotline.telephony.pjsua`, everything that touches pjsua2 here runs on the
worker's pjsua2 thread. End-of-file callbacks may come from a media thread, so they only
call the ``on_eof`` function they were given (the worker queues the token).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pjsua2 as pj

from hotline.recording import RecordingResult, merge_stereo, part_paths, repair_wav, sha256_of

log = logging.getLogger("hotline.media")

RATE = 8000
# Frames per merge step: 10 s of audio keeps the merge's memory flat for hour-long calls.
MERGE_CHUNK = RATE * 10
# The bridge finalises a destroyed recorder on its next tick (20 ms); allow for a busy box.
FINALISE_TIMEOUT = 2.0


class _Player(pj.AudioMediaPlayer):  # type: ignore[misc]  # pjsua2 has no stubs
    """A playlist whose end-of-file only signals; stopping happens on the pjsua2 thread."""

    def __init__(self, on_eof: Callable[[], None]) -> None:
        super().__init__()
        self._on_eof = on_eof

    def onEof2(self) -> None:
        """Tell the owner; never destroy the player inside its own callback."""
        try:
            self._on_eof()
        except Exception:
            log.exception("onEof2 failed")


class Playback:
    """WAV files played in order to one leg and to the recordings of its call.

    Args:
        token: The coordinator's token, echoed in ``PlaybackDone``.
        paths: 8 kHz (any rate works, 8 kHz costs nothing) 16-bit mono WAVs.
        loop: Start again after the last file (hold music) instead of ending.
        on_eof: Called, possibly from a media thread, when the last file ended.
    """

    def __init__(self, token: int, paths: Iterable[str], loop: bool,
                 on_eof: Callable[[int], None]) -> None:
        self.token = token
        self.paths = tuple(paths)
        self.loop = loop
        self._on_eof = on_eof
        self._player: Any = None
        self._sinks: list[Any] = []

    @property
    def started(self) -> bool:
        """True once the playlist exists on the bridge."""
        return self._player is not None

    @property
    def source(self) -> Any:
        """The player's bridge port (recordings connect it to their right channel)."""
        return self._player

    def start(self, sinks: Iterable[Any]) -> None:
        """Create the playlist and connect it to ``sinks`` (raises on a bad file)."""
        missing = [p for p in self.paths if not Path(p).is_file()]
        if missing:
            raise FileNotFoundError(missing[0])
        if not self.paths:
            raise ValueError("no files to play")
        # A partial, not a lambda over self: no reference cycle through a pjsua2 object.
        player = _Player(functools.partial(self._on_eof, self.token))
        files = pj.StringVector()
        for path in self.paths:
            files.append(path)
        player.createPlaylist(files, f"play-{self.token}",
                              0 if self.loop else pj.PJMEDIA_FILE_NO_LOOP)
        self._player = player
        for sink in sinks:
            self.connect(sink)

    def connect(self, sink: Any) -> None:
        """Also feed ``sink`` (a leg, or a recording's right channel)."""
        if self._player is None:
            return
        port = sink.getPortId()
        if any(s.getPortId() == port for s in self._sinks):
            return
        self._player.startTransmit(sink)
        self._sinks.append(sink)

    def stop(self) -> None:
        """Destroy the playlist; safe to call twice.

        Removing a port from the bridge drops its connections, so nothing is disconnected
        one by one (a leg that has ended is already off the bridge, and pjsua2 would log
        an error for it).
        """
        self._sinks = []
        self._player = None  # the last reference: pjsua2 destroys the playlist here


class StereoRecording:
    """Left = the caller, right = what the caller hears; one WAV at ``path`` when closed.

    Two mono recorders write ``<stem>.left.part.wav`` and ``<stem>.right.part.wav`` beside
    the target (pjsua2 picks the format from the extension; the final rename stays on one
    file system). A recorder with no source gets no frames at all, so both also hear the
    bridge's silent master port: they then grow on every clock tick and stay aligned with
    the wall clock whatever the caller or the prompts do.

    Closing has two halves: :meth:`detach` (pjsua2 thread) drops the recorders, and
    :meth:`finish` (any thread: plain file work) waits until the bridge has finalised both
    files — pjmedia 2.15 removes ports asynchronously, on its next clock tick — then merges
    and hashes them.

    Args:
        token: The coordinator's token, echoed in ``RecordingDone``.
        path: The final stereo WAV.
        silence: A bridge port that always produces silence (the null sound device).
    """

    def __init__(self, token: int, path: str, silence: Any = None) -> None:
        self.token = token
        self.path = Path(path)
        self._silence = silence
        self.left_path, self.right_path = part_paths(self.path)
        self._left: Any = None
        self._right: Any = None
        self._feeds: list[tuple[Any, Any]] = []

    @property
    def started(self) -> bool:
        """True while the two recorders exist."""
        return self._left is not None

    def start(self, caller: Any, heard: Iterable[Any]) -> None:
        """Create both recorders; ``caller`` feeds the left, each of ``heard`` the right."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        left = pj.AudioMediaRecorder()
        left.createRecorder(str(self.left_path))
        right = pj.AudioMediaRecorder()
        try:
            right.createRecorder(str(self.right_path))
        except Exception:
            del left
            self._unlink_parts()
            raise
        self._left, self._right = left, right
        if self._silence is not None:
            self._feed(self._silence, left)
            self._feed(self._silence, right)
        self._feed(caller, left)
        for source in heard:
            self.hear(source)

    def listen(self, caller: Any) -> None:
        """Feed the left channel from ``caller`` (again, after the leg's media changed)."""
        if self._left is not None:
            self._feed(caller, self._left)

    def hear(self, source: Any) -> None:
        """Add a source to the right channel (a new prompt, later the lawyer's leg)."""
        if self._right is not None:
            self._feed(source, self._right)

    def unhear(self, source: Any) -> None:
        """Take a source off the right channel (a prompt that stops), dropping our reference.

        Without this the recording would keep the player alive and go on recording a
        prompt the caller no longer hears.
        """
        port = source.getPortId()
        keep = [(s, r) for s, r in self._feeds if s.getPortId() != port]
        gone = [(s, r) for s, r in self._feeds if s.getPortId() == port]
        self._feeds = keep
        for feed_source, recorder in gone:
            with contextlib.suppress(Exception):  # already off the bridge: nothing to undo
                feed_source.stopTransmit(recorder)

    def forget(self, source: Any) -> None:
        """Drop a source whose port has left the bridge (an ended leg): nothing to undo.

        Disconnecting it would be wrong: its port number may already belong to a new port.
        """
        port = source.getPortId()
        self._feeds = [(s, r) for s, r in self._feeds if s.getPortId() != port]

    def _feed(self, source: Any, recorder: Any) -> None:
        port = source.getPortId()
        if any(s.getPortId() == port and r is recorder for s, r in self._feeds):
            return
        source.startTransmit(recorder)
        self._feeds.append((source, recorder))

    def detach(self) -> None:
        """Drop both recorders (pjsua2 thread); :meth:`finish` follows.

        Destroying a recorder removes it, with its connections, from the bridge.
        """
        self._feeds = []
        self._left = self._right = None  # the last references: pjsua2 destroys them

    def finish(self, timeout: float = FINALISE_TIMEOUT) -> RecordingResult:
        """Merge the finalised mono files into ``path`` atomically and hash the result.

        A part the bridge has not finalised within ``timeout`` has its header repaired
        from its real size, so the audio is kept either way.
        """
        try:
            deadline = time.monotonic() + timeout
            parts = (self.left_path, self.right_path)
            while not all(_finalised(p) for p in parts) and time.monotonic() < deadline:
                time.sleep(0.01)
            for part in parts:
                if not _finalised(part):
                    log.warning("%s not finalised in %.1f s; repairing its header", part,
                                timeout)
                    with contextlib.suppress(OSError):
                        repair_wav(part)
            seconds = merge_stereo(self.left_path, self.right_path, self.path)
        finally:
            self._unlink_parts()
        return RecordingResult(str(self.path), seconds, sha256_of(self.path))

    def close(self) -> RecordingResult:
        """:meth:`detach` then :meth:`finish`, for callers on the pjsua2 thread."""
        self.detach()
        return self.finish()

    def _unlink_parts(self) -> None:
        """Remove the mono part files (after a merge, or when start failed)."""
        for part in (self.left_path, self.right_path):
            with contextlib.suppress(FileNotFoundError):
                part.unlink()


def _finalised(path: Path) -> bool:
    """True when a WAV's data size says what the file holds (or it was never created).

    pjmedia's writer buffers everything, header included, and fixes the sizes only when
    the port is destroyed: until then the file is empty or its data size is 0.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(44)
    except FileNotFoundError:
        return True
    if len(head) < 44 or head[:4] != b"RIFF" or head[36:40] != b"data":
        return False
    return int.from_bytes(head[40:44], "little") == size - 44
