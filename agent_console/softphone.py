"""The console's built-in softphone: a pjsua2 user agent whose audio goes to the headset.

The lawyer signs in to the desk with the softphone's address and ``accept_in_console``: the
server dials the softphone only after the lawyer pressed A, so the softphone answers by
itself, and only INVITEs from the hotline's own address (its SIP front); anything else gets
486. Audio: one ``pj.AudioMediaPort`` on the conference bridge, 8 kHz 16-bit mono, 20 ms
frames, is connected both ways to the answered call. What the caller says reaches
``onFrameReceived`` and goes to the speaker; the microphone's frames are handed to the bridge
in ``onFrameRequested``. The headset is a :class:`Headset`: ``sounddevice`` (PortAudio) for
a real one (:class:`SoundDeviceHeadset`), or silence when the machine has no sound device
(:class:`SilentHeadset`; the console says so).

Threads: pjsua2 lives on the softphone's own thread (created there, polled there, destroyed
there: ARCHITECTURE.md's pjsua2 rules); the port callbacks run on pjmedia's clock thread and
PortAudio's callbacks on its own, and they only move bytes through bounded deques. The
console hears about calls through ``on_event`` (called on the softphone thread; the app
hands it to its own loop).
"""

from __future__ import annotations

import collections
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pjsua2 as pj

from hotline.telephony.pjsua import Incoming, Leg, SipEndpoint, describe_error

log = logging.getLogger("agent_console.softphone")

RATE = 8000
FRAME_SAMPLES = 160  # 20 ms
FRAME_BYTES = FRAME_SAMPLES * 2
# Frames buffered each way (speaker, microphone): 200 ms; older frames are dropped.
BUFFER_FRAMES = 10
_SILENCE = bytes(FRAME_BYTES)


class Headset(Protocol):
    """Where the softphone's audio comes from and goes to."""

    name: str

    def start(self, to_speaker: collections.deque[bytes],
              from_mic: collections.deque[bytes]) -> None:
        """Start moving frames: pop ``to_speaker`` to the speaker, push mic frames."""

    def stop(self) -> None:
        """Stop the device."""


class SilentHeadset:
    """No sound device: the call hears silence and what it says is dropped."""

    name = "无声音设备"

    def start(self, to_speaker: collections.deque[bytes],
              from_mic: collections.deque[bytes]) -> None:
        """Nothing to start."""

    def stop(self) -> None:
        """Nothing to stop."""


class SoundDeviceHeadset:
    """A PortAudio full-duplex stream at 8 kHz (PulseAudio/ALSA resample as needed)."""

    def __init__(self, input_device: str | int | None = None,
                 output_device: str | int | None = None) -> None:
        import sounddevice

        self._sd = sounddevice
        self.devices = (input_device, output_device)
        self.stream: Any = None
        self.underruns = 0
        self.name = "sounddevice"

    def start(self, to_speaker: collections.deque[bytes],
              from_mic: collections.deque[bytes]) -> None:
        """Open the stream; its callback runs on PortAudio's thread."""

        def callback(indata: Any, outdata: Any, frames: int, _time: Any, status: Any) -> None:
            if status:
                self.underruns += 1
            from_mic.append(bytes(indata))
            want = frames * 2
            out = bytearray()
            while len(out) < want:
                try:
                    out += to_speaker.popleft()
                except IndexError:
                    out += bytes(want - len(out))
            outdata[:] = bytes(out[:want])

        ticks = [0]

        def counted(indata: Any, outdata: Any, frames: int, when: Any, status: Any) -> None:
            ticks[0] += 1
            callback(indata, outdata, frames, when, status)

        # PortAudio 19.6 through ALSA's pulse plugin: about one start in fifty the stream's
        # thread dies at once without an error (snd_pcm_delay → EIO); check the callback
        # runs, else open it again.
        for _attempt in range(3):
            stream = self._sd.RawStream(samplerate=RATE, blocksize=FRAME_SAMPLES,
                                        dtype="int16", channels=1, device=self.devices,
                                        callback=counted, latency="low")
            before = ticks[0]
            stream.start()
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and ticks[0] - before < 5:
                time.sleep(0.01)
            if stream.active and ticks[0] - before >= 5:
                self.stream = stream
                self.name = f"sounddevice ({stream.device})"
                return
            stream.close()
        raise OSError("声音设备打开后没有数据 (已重试 3 次)")

    def stop(self) -> None:
        """Close the stream."""
        if self.stream is not None:
            try:
                self.stream.stop()
                self.stream.close()
            finally:
                self.stream = None


class _HeadsetPort(pj.AudioMediaPort):  # type: ignore[misc]  # pjsua2 has no stubs
    """The bridge port between the call and the headset deques (clock thread)."""

    def __init__(self, to_speaker: collections.deque[bytes],
                 from_mic: collections.deque[bytes]) -> None:
        super().__init__()
        self.to_speaker = to_speaker
        self.from_mic = from_mic
        self.errors = 0

    def onFrameReceived(self, frame: Any) -> None:
        """What the call says → the speaker."""
        try:
            if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size == FRAME_BYTES:
                self.to_speaker.append(bytes(frame.buf))
        except BaseException:  # nothing may escape into pjmedia's clock thread
            self.errors += 1

    def onFrameRequested(self, frame: Any) -> None:
        """The microphone → the call (silence when it has nothing yet)."""
        try:
            try:
                data = self.from_mic.popleft()
            except IndexError:
                data = _SILENCE
            if len(data) != FRAME_BYTES:
                data = (data + _SILENCE)[:FRAME_BYTES]
            frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
            frame.buf = pj.ByteVector(data)
            frame.size = FRAME_BYTES
        except BaseException:
            self.errors += 1


@dataclass(frozen=True)
class SoftphoneEvent:
    """What the console hears: ``kind`` is ready, ringing, answered, ended, refused or error."""

    kind: str
    detail: str = ""


def local_address_towards(host: str) -> str:
    """This machine's address on the route to ``host`` (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((socket.gethostbyname(host), 5060))
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def _free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


class Softphone:
    """One lawyer's softphone; see the module docstring.

    Args:
        user: The SIP user part (the lawyer's work id).
        host: Address to bind and to give the server (reachable from the SIP front).
        allowed: Source addresses whose INVITEs are answered (the hotline's front).
        headset: The audio device.
        on_event: Told of calls, on the softphone thread; must not block.
    """

    def __init__(self, user: str, host: str, allowed: set[str], headset: Headset,
                 on_event: Callable[[SoftphoneEvent], object] = lambda e: None,
                 sip_port: int = 0, rtp_port: int = 0) -> None:
        self.user, self.host, self.allowed = user, host, allowed
        self.headset = headset
        self.on_event = on_event
        self.sip_port = sip_port or _free_port()
        self.rtp_port = rtp_port or _free_port()
        self.to_speaker: collections.deque[bytes] = collections.deque(maxlen=BUFFER_FRAMES)
        self.from_mic: collections.deque[bytes] = collections.deque(maxlen=BUFFER_FRAMES)
        self._inbox: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._error = ""
        self._thread: threading.Thread | None = None
        self.legs: dict[int, Leg] = {}
        self.in_call = False
        self.active = 0  # id() of the answered leg
        self.headset_error = ""

    @property
    def uri(self) -> str:
        """The address the desk dials."""
        return f"sip:{self.user}@{self.host}:{self.sip_port}"

    def start(self, timeout: float = 15.0) -> None:
        """Start the pjsua2 thread; raises RuntimeError when it cannot start."""
        self._thread = threading.Thread(target=self._run, name="softphone", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error:
            raise RuntimeError(self._error or "软电话启动超时")

    def hangup(self) -> None:
        """Hang up the current call (from any thread)."""
        self._inbox.put("hangup")

    def stop(self, timeout: float = 10.0) -> None:
        """Hang up, release everything, stop the thread (from any thread)."""
        self._inbox.put("stop")
        if self._thread is not None:
            self._thread.join(timeout)

    # --- the softphone thread ------------------------------------------------------------

    def _run(self) -> None:
        endpoint = SipEndpoint(self.host, self.sip_port, self.rtp_port, self,
                               rtp_ports=8, user=self.user, keep_clock=True,
                               user_agent="hotline12348-console")
        port: _HeadsetPort | None = None
        try:
            endpoint.start()
            fmt = pj.MediaFormatAudio()
            fmt.type = pj.PJMEDIA_TYPE_AUDIO
            fmt.init(pj.PJMEDIA_FORMAT_PCM, RATE, 1, 20000, 16)
            port = _HeadsetPort(self.to_speaker, self.from_mic)
            port.createPort("headset", fmt)
            self.port = port
            try:
                self.headset.start(self.to_speaker, self.from_mic)
            except Exception as exc:  # no usable sound device: the call still connects
                self.headset_error = str(exc) or type(exc).__name__
                log.warning("headset failed, softphone without sound: %s", self.headset_error)
                self.headset = SilentHeadset()
        except Exception as exc:
            self._error = f"软电话无法启动: {describe_error(exc)}"
            log.exception("softphone start failed")
            self._ready.set()
            self._shutdown(endpoint, port)
            return
        self._ready.set()
        self.on_event(SoftphoneEvent("ready", self.uri))
        stopping = False
        while True:
            endpoint.poll(20)
            while True:
                try:
                    command = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if command in ("hangup", "stop"):
                    for leg in list(self.legs.values()):
                        leg.end()
                stopping = stopping or command == "stop"
            self._release_ended()
            if stopping and not self.legs:
                break
        self._shutdown(endpoint, port)

    def _shutdown(self, endpoint: SipEndpoint, port: _HeadsetPort | None) -> None:
        try:
            self.headset.stop()
        except Exception:
            log.exception("headset stop failed")
        if port is not None:
            pj.AudioMediaPort.__swig_destroy__(port)
        self.port = None
        try:
            endpoint.destroy()
        except Exception:
            log.exception("softphone destroy failed")

    def _release_ended(self) -> None:
        for key, leg in list(self.legs.items()):
            if leg.disconnected:
                leg.listener = None
                del self.legs[key]

    # --- LegListener (softphone thread) ------------------------------------------------------

    def leg_offered(self, leg: Leg, incoming: Incoming) -> None:
        """Answer the hotline's INVITE at once; refuse anyone else's and a second call."""
        self.legs[id(leg)] = leg
        source = incoming.remote.rsplit(":", 1)[0].strip("[]")
        if source not in self.allowed:
            leg.respond(486)
            self.on_event(SoftphoneEvent("refused", source))
            return
        if self.in_call:
            leg.respond(486)
            self.on_event(SoftphoneEvent("refused", "busy"))
            return
        self.in_call, self.active = True, id(leg)
        leg.respond(200)
        self.on_event(SoftphoneEvent("answered", incoming.from_uri))

    def leg_media_active(self, leg: Leg) -> None:
        """The call's audio ↔ the headset port."""
        if leg.media is not None and self.port is not None:
            leg.media.startTransmit(self.port)
            self.port.startTransmit(leg.media)

    def leg_progress(self, leg: Leg, state: str) -> None:
        """Inbound only: nothing to do."""

    def leg_digit(self, leg: Leg, digit: str) -> None:
        """Digits from the hotline are ignored."""

    def leg_disconnected(self, leg: Leg, status: int, reason: str) -> None:
        """The call ended (either side)."""
        if id(leg) == self.active:
            self.in_call, self.active = False, 0
            self.on_event(SoftphoneEvent("ended", f"{status} {reason}"))
        self.to_speaker.clear()
        self.from_mic.clear()

    port: _HeadsetPort | None = None
