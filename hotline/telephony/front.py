"""The SIP front: Kamailio configuration (sans-IO) and its supervision (adapter).

Kamailio is the one address callers, trunks and lawyers' phones use. Each caller's new INVITE
goes to a media worker chosen by Kamailio's dispatcher, algorithm 10: the worker with the fewest
active calls among those under their ``maxload`` (inbound calls a worker may hold; a 4-leg
pjsua2 worker admits 2 so each caller's lawyer leg fits beside it). When every worker is full
the caller gets 503. Load is taken when the INVITE is routed, confirmed on its 2xx, and given
back on BYE (either side) or on failure; a worker that times out or refuses is rested until it
answers OPTIONS again and the call is offered to the next one.

Requests coming *from* a worker are outbound legs (the worker originates the lawyer leg): they
go to their request URI (through ``outbound_proxy`` when set), or to the upstream trunk when
the URI names the front itself (``sip:13800138000@front``, an outside number). An outside
number is digits with an optional leading ``+``; anything else gets 484, and with no trunk
configured every outside number gets 404. A trunk with a username is registered with and
answers digest challenges; one without (IP-authenticated) is simply relayed to. All dialogs
are record-routed, so BYE and re-INVITE pass the front and the load bookkeeping stays right.

Workers are registered by listing them in :class:`FrontConfig.workers` at start and later with
:meth:`KamailioFront.reload_dispatcher`, which rewrites the list file (for the next start) and
applies the difference over RPC (``dispatcher.add``/``dispatcher.remove``): unlike
``dispatcher.reload`` (refused with algorithm 10) this keeps the call counts of the workers
that stay.

The configuration and its rendering are pure (:mod:`hotline.telephony.front_config`,
re-exported here). :class:`KamailioFront` writes them under ``var/kamailio/``, checks the
config with ``kamailio -c``, runs Kamailio in the foreground (``-DD -E``) so a supervisor owns
it, and talks to it over a JSON-RPC unix datagram socket in the instance's own runtime folder,
so several fronts can coexist.
"""


from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from hotline.errors import ExternalToolError
from hotline.telephony.front_config import (
    DISPATCH_SET,
    FrontConfig,
    Transport,
    Trunk,
    WorkerRoute,
    dispatcher_changes,
    dispatcher_entries,
    dispatcher_loads,
    first_error,
    port_busy_in,
    render_config,
    render_dispatcher_list,
    uri_host,
    with_config_line,
)

__all__ = [
    "FrontConfig",
    "FrontError",
    "KamailioFront",
    "Transport",
    "Trunk",
    "WorkerRoute",
    "dispatcher_changes",
    "find_kamailio",
    "first_error",
    "render_config",
    "render_dispatcher_list",
    "with_config_line",
]

# Folders searched after $PATH: Debian installs kamailio in /usr/sbin, outside a user's PATH.
SBIN_DIRS: tuple[str, ...] = ("/usr/local/sbin", "/usr/sbin")


class FrontError(ExternalToolError):
    """The SIP front (Kamailio) could not be configured, started or controlled."""

    default_code = "front.failed"


def find_kamailio(path: str | None = None) -> str:
    """The kamailio binary on ``path`` ($PATH) or in the sbin folders, else tool.missing."""
    search = os.pathsep.join(
        p for p in ((os.environ.get("PATH", "") if path is None else path), *SBIN_DIRS) if p)
    found = shutil.which("kamailio", path=search)
    if found is None:
        raise ExternalToolError("tool.missing", tool="kamailio", package="kamailio")
    return found


@dataclass
class KamailioFront:
    """Runs and supervises one Kamailio front for a :class:`FrontConfig`.

    Not thread-safe: one owner (the supervisor in ``hotline serve``) calls it.
    """

    config: FrontConfig
    binary: str | None = None
    start_timeout: float = 15.0
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)
    _rpc_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1),
                                           init=False, repr=False)

    # lifecycle

    def start(self) -> None:
        """Write the config, check it, launch Kamailio and return once it answers SIP."""
        if self.alive():
            return
        cfg = self.config
        binary = self.binary or find_kamailio()
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(cfg.list_path, render_dispatcher_list(cfg.workers))
        _write_atomic(cfg.cfg_path, render_config(cfg), mode=0o600)
        self._check(binary)
        self._reap_stale()
        self._check_port()
        for stale in (cfg.rpc_path, cfg.pid_path):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        self._log = open(cfg.log_path, "wb")  # closed by stop(): lives as long as Kamailio
        self._proc = subprocess.Popen(
            [binary, "-DD", "-E", "-f", str(cfg.cfg_path), "-P", str(cfg.pid_path),
             "-m", str(cfg.shm_mb), "-M", "8"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            cwd=cfg.run_dir, start_new_session=True,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM Kamailio, wait, then SIGKILL its process group."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout)
            # Children that outlived the main process (it was killed) go with the group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None

    def alive(self) -> bool:
        """Whether the Kamailio main process is running."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The Kamailio main process id while it runs."""
        return self._proc.pid if self.alive() and self._proc is not None else None

    def __enter__(self) -> KamailioFront:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # runtime control

    def reload_dispatcher(self, workers: Iterable[WorkerRoute]) -> None:
        """Make ``workers`` the dispatch set now and for the next start.

        The list file is rewritten first; the running Kamailio then gets only the
        difference, so workers that stay keep their active call counts.
        """
        new = replace(self.config, workers=tuple(workers))  # validates
        _write_atomic(new.list_path, render_dispatcher_list(new.workers))
        self.config = new
        if not self.alive():
            return  # the next start() reads the list file
        current = dispatcher_entries(self.rpc("dispatcher.list"))
        remove, add = dispatcher_changes(current, new.workers)
        for uri in remove:
            self.rpc("dispatcher.remove", DISPATCH_SET, uri)
        for w in add:
            self.rpc("dispatcher.add", DISPATCH_SET, w.uri, 0, 0, w.attrs)
        after = dispatcher_entries(self.rpc("dispatcher.list"))
        wanted = {w.uri: w.attrs for w in new.workers}
        if after != wanted:
            raise FrontError("front.rpc", method="dispatcher.add/remove",
                             detail=f"期望 {wanted}, 实际 {after}")

    def loads(self) -> dict[str, int]:
        """Active inbound calls per worker id, as the front counts them."""
        return dispatcher_loads(self.rpc("dispatcher.list"))

    def rpc(self, method: str, *params: Any, timeout: float = 3.0) -> Any:
        """Call one JSON-RPC method over the front's unix datagram socket."""
        cfg = self.config
        request_id = next(self._rpc_ids)
        client = cfg.run_dir / f"rpc-client-{os.getpid()}-{request_id}.sock"
        payload = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params),
                              "id": request_id}).encode()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            with contextlib.suppress(FileNotFoundError):
                client.unlink()
            sock.bind(str(client))
            sock.settimeout(timeout)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.sendto(payload, str(cfg.rpc_path))
            data = sock.recv(1 << 20)
        except OSError as exc:
            raise FrontError("front.rpc", method=method, detail=str(exc)) from None
        finally:
            sock.close()
            with contextlib.suppress(FileNotFoundError):
                client.unlink()
        try:
            reply = json.loads(data)
        except ValueError:
            raise FrontError("front.rpc", method=method, detail=data[:200].decode(
                "utf-8", "replace")) from None
        if "error" in reply:
            error = reply["error"]
            detail = error.get("message", error) if isinstance(error, Mapping) else error
            raise FrontError("front.rpc", method=method, detail=str(detail))
        return reply.get("result")

    def trunk_status(self) -> int | None:
        """The SIP code of the last REGISTER with the trunk (200: registered), or None.

        None too for an IP-authenticated trunk (no username), which is never registered with.
        """
        if self.config.trunk is None or not self.config.trunk.registers:
            return None
        try:
            item = self.rpc("htable.get", "front", "reg_code")
        except FrontError:
            return None  # no reply from the trunk yet
        value = item.get("item", {}).get("value") if isinstance(item, Mapping) else None
        return int(value) if isinstance(value, int) else None

    def probe(self, timeout: float = 0.5) -> bool:
        """Whether the front answers an OPTIONS on its first transport."""
        cfg = self.config
        return _options_ok(cfg.probe_host, cfg.port, cfg.transports[0], timeout)

    def log_text(self) -> str:
        """Kamailio's stderr so far (its log)."""
        try:
            return self.config.log_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    # start-up steps

    def _check(self, binary: str) -> None:
        cfg = self.config
        try:
            done = subprocess.run([binary, "-c", "-f", str(cfg.cfg_path)], cwd=cfg.run_dir,
                                  capture_output=True, timeout=30, check=False)
        except OSError as exc:
            raise FrontError("front.failed", detail=str(exc), log=str(cfg.log_path)) from None
        if done.returncode != 0:
            out = (done.stderr + done.stdout).decode("utf-8", "replace")
            lines = out.strip().splitlines()
            detail = first_error(out) or (lines[-1] if lines else f"返回码 {done.returncode}")
            raise FrontError("front.bad_config", path=str(cfg.cfg_path),
                             detail=with_config_line(detail, render_config(cfg)))

    def _reap_stale(self) -> None:
        """Stop a Kamailio a crashed supervisor left running on this very config.

        Only the process named by our pid file whose command line carries our config path is
        touched, so another instance (or anything else) is never killed.
        """
        cfg = self.config
        try:
            pid = int(cfg.pid_path.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return
        if str(cfg.cfg_path).encode() not in cmdline or not any(
                part.endswith(b"kamailio") for part in cmdline):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)

    def _check_port(self) -> None:
        cfg = self.config
        family = socket.AF_INET6 if ":" in cfg.host.strip("[]") else socket.AF_INET
        host = "" if cfg.host in ("0.0.0.0", "*", "::") else cfg.host.strip("[]")
        for transport in cfg.transports:
            kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
            with socket.socket(family, kind) as s:
                if kind == socket.SOCK_STREAM:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((host, cfg.port))
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:
                        raise FrontError("front.port_busy", host=cfg.host, port=cfg.port,
                                         transport=transport) from None
                    # Anything else (address not local...) is Kamailio's to report.

    def _wait_ready(self) -> None:
        cfg = self.config
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                self._raise_exited()
            if all(_options_ok(cfg.probe_host, cfg.port, t, 0.2) for t in cfg.transports):
                with contextlib.suppress(FrontError):
                    self.rpc("core.version", timeout=0.5)
                    return
            time.sleep(0.05)
        raise FrontError("front.failed", log=str(cfg.log_path),
                         detail=f"{self.start_timeout:g} 秒内没有在 {cfg.host}:{cfg.port} 应答")

    def _raise_exited(self) -> None:
        cfg = self.config
        if self._log is not None:
            self._log.flush()
        log = self.log_text()
        if port_busy_in(log):
            raise FrontError("front.port_busy", host=cfg.host, port=cfg.port,
                             transport="/".join(cfg.transports))
        code = self._proc.returncode if self._proc is not None else None
        raise FrontError("front.failed", log=str(cfg.log_path),
                         detail=first_error(log) or f"Kamailio 退出, 返回码 {code}")


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def options_request(host: str, port: int, transport: str, local: tuple[str, int]) -> bytes:
    """A minimal, well-formed OPTIONS (readiness probe)."""
    tag = secrets.token_hex(6)
    lhost = uri_host(local[0])
    rhost = uri_host(host)
    return (
        f"OPTIONS sip:{rhost}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport.upper()} {lhost}:{local[1]};branch=z9hG4bK{tag};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{lhost}>;tag={tag}\r\n"
        f"To: <sip:{rhost}:{port}>\r\n"
        f"Call-ID: probe-{tag}@hotline\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def _options_ok(host: str, port: int, transport: str, timeout: float) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    try:
        with socket.socket(family, kind) as s:
            s.settimeout(timeout)
            s.connect((host, port))
            local = s.getsockname()
            s.sendall(options_request(host, port, transport, (local[0], local[1])))
            data = s.recv(65535)
    except OSError:
        return False
    return data.startswith(b"SIP/2.0 200")
