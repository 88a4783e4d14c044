"""A third-party SIP phone for the tests: Debian's baresip 1.0, headless, driven over ctrl_tcp.

    with Baresip(tmp_path / "bs", sip_port=..., ctrl_port=..., rtp_ports=(a, b),
                 source=tone_wav, dump_dir=tmp_path / "dump") as phone:
        phone.dial("sip:12348@127.0.0.1:5070")
        phone.wait_event("CALL_ESTABLISHED", timeout=10)
        phone.send_dtmf("0")
        phone.hangup()

baresip sends its audio source (``aufile``: an 8 kHz mono S16 WAV, played once, not
looped, so make it longer than the call) and plays what it hears nowhere (``aubridge`` with
no source on its device). With ``dump_dir`` its ``sndfile`` filter writes, per call,
``dump-<date-time>-enc.wav`` (what it sent) and ``dump-<date-time>-dec.wav`` (what it heard),
finalised when the call's audio is torn down. DTMF goes out as RFC 4733 events; baresip 1.0
has no setting to send SIP INFO DTMF.

``sip_port`` is taken for UDP and TCP and ``sip_port + 1`` for TLS (baresip always listens on
TLS too); keep ``ctrl_port`` off both.

Commands and events are netstring-framed JSON on the ctrl_tcp socket; every event is kept
with the monotonic time it arrived. The process is started with ``-t`` as a last-resort
timer and is always quit, then killed, on ``close()``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODULES = Path("/usr/lib/baresip/modules")


@dataclass
class Event:
    at: float
    type: str
    data: dict[str, Any] = field(default_factory=dict)


class BaresipError(RuntimeError):
    pass


class Baresip:
    def __init__(self, directory: Path, *, sip_port: int, ctrl_port: int,
                 rtp_ports: tuple[int, int], source: Path, dump_dir: Path | None = None,
                 user: str = "caller", lifetime: int = 120, auto_answer: bool = False):
        self.dir = Path(directory)
        self.sip_port, self.ctrl_port = sip_port, ctrl_port
        self.rtp_ports, self.source, self.dump_dir = rtp_ports, Path(source), dump_dir
        self.user, self.lifetime, self.auto_answer = user, lifetime, auto_answer
        self.log_path = self.dir / "baresip.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.events: list[Event] = []
        self.responses: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None
        self._token = 0

    # -- set-up ---------------------------------------------------------------------------

    def write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        modules = ["g711.so", "aufile.so", "aubridge.so"]
        if self.dump_dir is not None:
            self.dump_dir.mkdir(parents=True, exist_ok=True)
            modules.append("sndfile.so")
        lines = [
            "poll_method\t\tepoll",
            "net_interface\t\t127.0.0.1",  # SDP and media on 127.0.0.1, not the host's address
            f"sip_listen\t\t127.0.0.1:{self.sip_port}",
            "call_local_timeout\t30",
            "call_max_calls\t\t4",
            f"audio_source\t\taufile,{self.source}",
            "audio_player\t\taubridge,null",
            "audio_alert\t\taubridge,null",
            "ausrc_srate\t\t8000",
            "auplay_srate\t\t8000",
            "ausrc_channels\t\t1",
            "auplay_channels\t\t1",
            "audio_level\t\tno",
            "ausrc_format\t\ts16",
            "auplay_format\t\ts16",
            "auenc_format\t\ts16",
            "audec_format\t\ts16",
            "audio_buffer\t\t20-160",
            f"rtp_ports\t\t{self.rtp_ports[0]}-{self.rtp_ports[1]}",
            "rtcp_mux\t\tno",
            "jitter_buffer_delay\t1-10",
            "rtp_stats\t\tno",
            f"module_path\t\t{MODULES}",
            *(f"module\t\t\t{m}" for m in modules),
            "module_tmp\t\taccount.so",
            "module_app\t\tmenu.so",
            "module_app\t\tctrl_tcp.so",
            f"ctrl_tcp_listen\t\t127.0.0.1:{self.ctrl_port}",
            "statmode_default\toff",
            "ringback_disabled\tyes",
            "redial_attempts\t\t0",
        ]
        if self.dump_dir is not None:
            lines.append(f"snd_path\t\t{self.dump_dir}")
        (self.dir / "config").write_text("\n".join(lines) + "\n")
        # A local account that never registers; G.711 µ-law only, like the hotline's trunk.
        answer = ";answermode=auto" if self.auto_answer else ""
        (self.dir / "accounts").write_text(
            f"<sip:{self.user}@127.0.0.1:{self.sip_port}>;regint=0;audio_codecs=PCMU/8000/1"
            f"{answer}\n")
        (self.dir / "contacts").write_text("")

    def start(self, timeout: float = 10.0) -> Baresip:
        self.write_config()
        log = self.log_path.open("wb")
        try:
            self.proc = subprocess.Popen(
                ["baresip", "-4", "-f", str(self.dir), "-t", str(self.lifetime)],
                cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise BaresipError(f"baresip exited {self.proc.returncode}: {self.log()}")
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.close()
                    raise BaresipError(f"ctrl_tcp not listening: {self.log()}") from None
                time.sleep(0.1)
        self.sock.settimeout(None)
        self._reader = threading.Thread(target=self._read, name="baresip-ctrl", daemon=True)
        self._reader.start()
        try:
            self.command("reginfo")  # it is ctrl_tcp answering, and the UA exists
        except BaseException:
            self.close()
            raise
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    # -- ctrl_tcp -------------------------------------------------------------------------

    def _read(self) -> None:
        buf = b""
        sock = self.sock
        assert sock is not None
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while True:
                head, colon, rest = buf.partition(b":")
                if not colon:
                    break
                size = int(head)
                if len(rest) < size + 1:
                    break
                payload, buf = rest[:size], rest[size + 1:]
                self._dispatch(json.loads(payload))
        with self._cond:
            self.events.append(Event(time.monotonic(), "CTRL_CLOSED"))
            self._cond.notify_all()

    def _dispatch(self, message: dict[str, Any]) -> None:
        with self._cond:
            if message.get("event"):
                self.events.append(Event(time.monotonic(), str(message.get("type")), message))
            else:
                self.responses.append(message)
            self._cond.notify_all()

    def command(self, name: str, params: str | None = None, timeout: float = 5.0) -> str:
        """Run a menu command; returns the response data, raises if baresip says not ok."""
        if self.sock is None:
            raise BaresipError("not started")
        self._token += 1
        token = f"t{self._token}"
        body: dict[str, Any] = {"command": name, "token": token}
        if params is not None:
            body["params"] = params
        raw = json.dumps(body).encode()
        self.sock.sendall(b"%d:%s," % (len(raw), raw))
        with self._cond:
            ok = self._cond.wait_for(
                lambda: any(r.get("token") == token for r in self.responses), timeout)
            if not ok:
                raise BaresipError(f"no response to {name}: {self.log()}")
            response = next(r for r in self.responses if r.get("token") == token)
        if not response.get("ok"):
            raise BaresipError(f"{name} failed: {response}")
        return str(response.get("data", ""))

    def dial(self, uri: str) -> str:
        return self.command("dial", uri)

    def send_dtmf(self, digits: str) -> str:
        # menu's "sndcode" presses each key, then releases: RFC 4733 start/end packets.
        return self.command("sndcode", digits)

    def hangup(self) -> str:
        return self.command("hangup")

    def quit(self) -> None:
        try:
            self.command("quit", timeout=2)
        except (BaresipError, OSError):
            pass

    def wait_event(self, kind: str, timeout: float) -> Event:
        """The first event of ``kind``; raises on timeout or if the call closed first."""
        def found() -> Event | None:
            for e in self.events:
                if e.type == kind:
                    return e
                if e.type in ("CALL_CLOSED", "CTRL_CLOSED") and kind != e.type:
                    raise BaresipError(f"{e.type} before {kind}: {e.data} {self.log()}")
            return None

        with self._cond:
            if not self._cond.wait_for(lambda: found() is not None, timeout):
                raise BaresipError(f"no {kind} in {timeout} s: "
                                   f"{[e.type for e in self.events]} {self.log()}")
            event = found()
            assert event is not None
            return event

    def event_types(self) -> list[str]:
        with self._cond:
            return [e.type for e in self.events]

    # -- tear-down ------------------------------------------------------------------------

    def close(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None and self.sock is not None:
            self.quit()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        if self._reader is not None:
            self._reader.join(2)

    def __enter__(self) -> Baresip:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
