"""The console's built-in softphone on a real node: the lawyer logs in with ``softphone``,
accepts a real caller in the console, the server dials the softphone, which answers by
itself; audio flows both ways (the recording's two channels, and what reached the
headset); an INVITE from anywhere else is refused.
"""

import array
import asyncio
import math
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parent))
from phones import Ua, close_all, make_tone, read_channels, tones  # noqa: E402
from test_console import _add_user, _caller, _login, _text, _until  # noqa: E402

from agent_console.app import ConsoleApp, DeskScreen, WrapUpScreen
from agent_console.softphone import (
    FRAME_SAMPLES,
    SilentHeadset,
    Softphone,
    SoundDeviceHeadset,
)

CALLER_HZ, LAWYER_HZ = 1000, 600


class ToneHeadset:
    """A headset whose microphone hears a steady tone and whose speaker is recorded.

    It paces itself like a sound card (one 20 ms frame in each direction per 20 ms).
    """

    name = "tone"

    def __init__(self, hz):
        self.hz, self.heard = hz, array.array("h")
        self._stop = threading.Event()

    def start(self, to_speaker, from_mic):
        def run():
            n, tick = 0, time.monotonic()
            while not self._stop.is_set():
                frame = array.array("h", (int(6000 * math.sin(2 * math.pi * self.hz * (n + i)
                                                              / 8000))
                                          for i in range(FRAME_SAMPLES)))
                n += FRAME_SAMPLES
                from_mic.append(frame.tobytes())
                try:
                    self.heard.frombytes(to_speaker.popleft())
                except IndexError:
                    self.heard.extend([0] * FRAME_SAMPLES)
                tick += 0.02
                time.sleep(max(0.0, tick - time.monotonic()))

        threading.Thread(target=run, daemon=True).start()

    def stop(self):
        self._stop.set()


def _rows(node, sql):
    engine = create_engine(f"sqlite:///{node['db']}")
    try:
        with engine.connect() as c:
            return c.execute(text(sql)).all()
    finally:
        engine.dispose()


@pytest.fixture
def pulse(tmp_path):
    from pulse import Pulse

    server = Pulse(tmp_path / "pulse").start()
    yield server
    server.stop()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("device", ["tone", "pulseaudio"])
async def test_lawyer_talks_to_a_caller_through_the_console_softphone(start_node, tmp_path,
                                                                      device, request):
    node = start_node(1, legs_per_call=4, telephony_queue_wait=120)
    _add_user(node, "8001", "lawyer", "sip:8001@127.0.0.1:5999")
    server = f"http://127.0.0.1:{node['api']}"
    speaker = tmp_path / "speaker.raw"
    players = []
    if device == "tone":
        headset = ToneHeadset(LAWYER_HZ)
    else:  # sounddevice on a PulseAudio null sink: a tone into the mic, the speaker recorded
        pulse = request.getfixturevalue("pulse")
        headset = SoundDeviceHeadset("pulse", "pulse")
        players = [pulse.play(make_tone(tmp_path / "mic.wav", LAWYER_HZ)),
                   pulse.record(speaker)]
    app = ConsoleApp(server, "8001", softphone=True, softphone_host="127.0.0.1",
                     headset=headset, state_dir=tmp_path / "s")
    caller = None
    try:
        async with app.run_test(size=(140, 48)) as pilot:
            await _login(pilot, app)
            await _until(pilot, lambda: isinstance(app.screen, DeskScreen), 20, "desk")
            desk = app.screen
            await _until(pilot, lambda: (desk.agent or {}).get("phone", "").startswith(
                "sip:8001@127.0.0.1:") or (desk.agent or {}).get("status") == "available",
                10, "signed in with the softphone")
            assert app.softphone is not None and app.accept_in_console
            caller = _caller(tmp_path, node["uri"], hold=20)
            await _until(pilot, lambda: "按 A 接听" in _text(desk, "#card"), 40, "offer")
            await pilot.press("a")
            await _until(pilot, lambda: (desk.call or {}).get("state") == "talking", 20,
                         "talking")
            await _until(pilot, lambda: "软电话已接通" in str(
                [str(line) for line in desk.query_one("#log").lines]), 5, "answered note")
            await asyncio.sleep(4.0)
            await pilot.press("x")
            await _until(pilot, lambda: isinstance(app.screen, WrapUpScreen), 20, "wrap-up")
            await pilot.press("escape")  # later: the draft stays
            await pilot.press("ctrl+q")
        assert caller.wait(30) == 0
    finally:
        if caller is not None and caller.poll() is None:
            caller.kill()
        for proc in players:
            proc.terminate()
            proc.wait(5)
    # The headset heard the caller; the recording has the caller left, the lawyer right.
    if device == "tone":
        heard = headset.heard
    else:
        assert headset.name.startswith("sounddevice")
        raw = speaker.read_bytes()
        heard = array.array("h", raw[:len(raw) // 2 * 2])
    seconds = len(heard) / 8000
    windows = [tones(heard, t, t + 1.0, (CALLER_HZ,)) for t in range(int(seconds) - 1)]
    assert sum(CALLER_HZ in w for w in windows) >= 2, windows  # the caller reached the ear
    [(path,)] = _rows(node, "select r.path from recordings r")
    left, right = read_channels(Path(path))
    [(answered_at, agent_at)] = _rows(node, "select answered_at, agent_answered_at from calls")
    assert agent_at is not None
    end = len(left) / 8000
    assert CALLER_HZ in tones(left, end - 3.5, end - 1.0, (CALLER_HZ,))
    assert LAWYER_HZ in tones(right, end - 3.5, end - 1.0, (LAWYER_HZ,))


@pytest.mark.timeout(60)
def test_the_softphone_refuses_calls_not_from_the_hotline(tmp_path):
    events = []
    phone = Softphone("8001", "127.0.0.1", {"10.9.9.9"}, SilentHeadset(), events.append)
    phone.start()
    ua = Ua("intruder")
    try:
        ua.call("c1", phone.uri)
        ended = ua.wait("ended", timeout=15)
        assert ended["code"] == 486
    finally:
        close_all(ua)
        phone.stop()
    assert [e.kind for e in events][:2] == ["ready", "refused"]
