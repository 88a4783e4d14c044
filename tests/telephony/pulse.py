"""A private PulseAudio for the softphone tests: two null sinks as the lawyer's headset.

    headset_out           what the softphone plays (the "speaker"); record its monitor
    headset_in(.monitor)  the "microphone": play a tone into headset_in

PortAudio (sounddevice) reaches PulseAudio through ALSA's ``pulse`` PCM
(libasound2-plugins), which libpulse points at this server and these devices from
``PULSE_SERVER`` / ``PULSE_SINK`` / ``PULSE_SOURCE``; they must be set before PortAudio
scans its devices (``sounddevice`` is re-initialised here). An idle null sink renders in 2 s
blocks, so a new capture stream would wait up to 2 s for its first data and PortAudio's
duplex stream underruns: a permanent low-latency loopback ("keeper") reads each monitor.
Runs as root without systemd, X or D-Bus (``-n``, anonymous native protocol on a socket in
the test's folder).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


class Pulse:
    def __init__(self, run_dir: Path) -> None:
        self.run = run_dir
        self.env = {"PULSE_SERVER": f"unix:{run_dir}/native",
                    "PULSE_COOKIE": f"{run_dir}/state/cookie",
                    "PULSE_RUNTIME_PATH": str(run_dir),
                    "PULSE_STATE_PATH": f"{run_dir}/state",
                    "PULSE_SINK": "headset_out", "PULSE_SOURCE": "headset_in.monitor"}
        self.saved: dict[str, str | None] = {}

    def _pa(self, *args: str, **kw) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(list(args), env={**os.environ, **self.env}, capture_output=True,
                              timeout=10, **kw)

    def start(self) -> Pulse:
        (self.run / "state").mkdir(parents=True, exist_ok=True)
        os.chmod(self.run, 0o700)
        fmt = "format=s16le rate=8000 channels=1"
        loads = [f"module-native-protocol-unix auth-anonymous=1 socket={self.run}/native"]
        for sink in ("headset_out", "headset_in", "keeper"):
            loads.append(f"module-null-sink sink_name={sink} {fmt} "
                         f"sink_properties=device.description={sink}")
        for monitor in ("headset_in.monitor", "headset_out.monitor"):
            loads.append(f"module-loopback source={monitor} sink=keeper latency_msec=20 "
                         "source_dont_move=true sink_dont_move=true")
        done = self._pa("pulseaudio", "--daemonize=yes", "-n", "--exit-idle-time=-1",
                        "--disallow-exit=yes", "--use-pid-file=yes", "--disable-shm=yes",
                        f"--log-target=file:{self.run}/pulse.log", "--log-level=notice",
                        *[f"--load={load}" for load in loads])
        assert done.returncode == 0, done.stderr.decode()
        deadline = time.monotonic() + 10
        while self._pa("pactl", "info").returncode != 0:
            assert time.monotonic() < deadline, "pulseaudio did not start"
            time.sleep(0.1)
        self._pa("pactl", "set-default-sink", "headset_out")
        self._pa("pactl", "set-default-source", "headset_in.monitor")
        deadline = time.monotonic() + 8
        while not (self._prompt("headset_in.monitor") and self._prompt("headset_out.monitor")):
            assert time.monotonic() < deadline, "the null sinks never became prompt"
        for key, value in self.env.items():
            self.saved[key] = os.environ.get(key)
            os.environ[key] = value
        import sounddevice

        sounddevice._terminate()  # rescan: the ALSA "pulse" PCM exists only now
        sounddevice._initialize()
        return self

    def _prompt(self, source: str) -> bool:
        """20 ms of audio from ``source`` within 0.3 s."""
        proc = subprocess.Popen(["parec", "-d", source, "--latency-msec=10", "--raw"],
                                env={**os.environ, **self.env}, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        got = b""
        deadline = time.monotonic() + 0.3
        try:
            os.set_blocking(proc.stdout.fileno(), False)
            while len(got) < 320 and time.monotonic() < deadline:
                chunk = proc.stdout.read(320 - len(got))
                if chunk:
                    got += chunk
                else:
                    time.sleep(0.01)
        finally:
            proc.kill()
            proc.wait(5)
        return len(got) >= 320

    def play(self, wav: Path) -> subprocess.Popen[bytes]:
        """Play ``wav`` into the microphone."""
        return subprocess.Popen(["paplay", "-d", "headset_in", "--latency-msec=20", str(wav)],
                                env={**os.environ, **self.env}, stderr=subprocess.DEVNULL)

    def record(self, raw: Path) -> subprocess.Popen[bytes]:
        """Record what the speaker plays (8 kHz s16le mono, raw)."""
        return subprocess.Popen(["parec", "-d", "headset_out.monitor", "--rate=8000",
                                 "--channels=1", "--format=s16le", "--latency-msec=20",
                                 "--raw", str(raw)], env={**os.environ, **self.env},
                                stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        pid_file = self.run / "pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            self._pa("pulseaudio", "--kill")
            deadline = time.monotonic() + 5
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
