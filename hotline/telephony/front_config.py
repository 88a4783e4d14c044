"""The SIP front's Kamailio configuration, sans-IO: what to run, rendered as text.

:class:`FrontConfig` holds everything the generated ``kamailio.cfg`` depends on and validates
it on creation, naming every bad field at once. :func:`render_config` fills the template
shipped beside this module (``kamailio.cfg.tmpl``) and :func:`render_dispatcher_list` writes
the dispatch set. The helpers at the end read what Kamailio says back (its log, its
``dispatcher.list`` RPC result) so the adapter in :mod:`hotline.telephony.front` stays thin.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import string
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hotline.errors import ConfigError

if TYPE_CHECKING:
    from hotline.config import Settings, TrunkSettings

Transport = Literal["udp", "tcp"]

DISPATCH_SET = 1
# sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107

_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_USER_RE = re.compile(r"^[A-Za-z0-9_.!~*'()&=+$,;?/%-]{1,64}$")
_SIP_URI_RE = re.compile(
    r"^sips?:(?:(?P<user>[^@\s\"]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)"
    r"(?::(?P<port>\d{1,5}))?(?P<params>(?:;[A-Za-z0-9_.=-]+)*)$"
)
# Kamailio strings are double-quoted; these would end or corrupt them.
_UNSAFE_CHARS = set('"\\\r\n\t\x00')


# --- configuration (pure) --------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerRoute:
    """One media worker as the front sees it: where to send INVITEs and how many to admit.

    ``maxload`` is the number of inbound calls the front hands the worker at once; a worker
    also originates each caller's lawyer leg, so with the PyPI pjsua2 build (4 legs) use 2.
    Workers must talk to the front over UDP from ``sip_port``: that source address is how the
    front tells a worker's outbound leg from a caller.
    """

    worker_id: str
    host: str
    sip_port: int
    maxload: int = 2

    @property
    def uri(self) -> str:
        """The worker's SIP URI in the dispatcher list."""
        return f"sip:{uri_host(self.host)}:{self.sip_port}"

    @property
    def attrs(self) -> str:
        """Dispatcher attributes: ``duid`` keys the call counts, ``maxload`` caps them."""
        return f"duid={self.worker_id};maxload={self.maxload}"


@dataclass(frozen=True)
class Trunk:
    """The upstream SIP trunk for outside numbers (12345, 110, any PSTN number).

    ``registrar`` is the trunk's SIP URI (``sip:trunk.example.cn`` or ``sip:10.1.2.3:5060``);
    calls and REGISTERs go to ``proxy`` when given, else to the registrar's host and port.

    With a ``username`` the front registers with the trunk and answers its digest challenges.
    With ``username`` empty the trunk is IP-authenticated (common with Chinese carriers): the
    front neither registers nor authenticates, it just relays outside numbers to the trunk.
    """

    registrar: str
    username: str = ""
    password: str = ""
    proxy: str | None = None
    expires: int = 300

    @classmethod
    def from_settings(cls, section: TrunkSettings) -> Trunk | None:
        """The trunk a ``[trunk]`` section describes; None when it is not enabled."""
        if not section.enabled:
            return None
        return cls(registrar=section.registrar, username=section.username,
                   password=section.password.get_secret_value(),
                   proxy=section.proxy or None, expires=section.expires)

    @property
    def registers(self) -> bool:
        """Whether the front registers (and answers digest challenges): a username is set."""
        return bool(self.username)

    @property
    def domain(self) -> str:
        """The registrar's host (the trunk's SIP domain)."""
        m = _SIP_URI_RE.match(self.registrar)
        return m.group("host") if m else ""

    @property
    def port(self) -> int:
        """The registrar's port (5060 when the URI names none)."""
        m = _SIP_URI_RE.match(self.registrar)
        return int(m.group("port")) if m and m.group("port") else 5060

    @property
    def next_hop(self) -> str:
        """Where requests for the trunk are sent."""
        return self.proxy or f"sip:{self.domain}:{self.port}"

    @property
    def source_ips(self) -> tuple[str, ...]:
        """The trunk's IP-literal addresses (registrar, proxy), exempt from the flood guard."""
        out: list[str] = []
        for uri in (self.registrar, self.proxy or ""):
            m = _SIP_URI_RE.match(uri)
            host = m.group("host").strip("[]") if m else ""
            try:
                ipaddress.ip_address(host)
            except ValueError:
                continue
            if host not in out:
                out.append(host)
        return tuple(out)


@dataclass(frozen=True)
class FrontConfig:
    """Everything the front's Kamailio configuration depends on; validated on creation.

    Raises :class:`~hotline.errors.ConfigError` (``front.bad_value``) naming every bad field
    at once. Paths default to folders under ``var_dir/kamailio``.
    """

    var_dir: Path
    host: str = "127.0.0.1"
    port: int = 5060
    transports: tuple[Transport, ...] = ("udp", "tcp")
    workers: tuple[WorkerRoute, ...] = ()
    trunk: Trunk | None = None
    outbound_proxy: str | None = None
    # Address put in Via/Record-Route when listening on a wildcard or behind NAT ("1.2.3.4").
    advertise: str | None = None
    rpc_socket: Path | None = None
    # Sources exempt from the flood guard ("10.0.0.0/8", "192.0.2.7"); workers and the
    # trunk's IP addresses always are.
    trusted: tuple[str, ...] = ()
    flood_limit: int = 64
    flood_ban_seconds: int = 300
    # A call whose BYE never came stops counting against its worker after this long.
    max_call_seconds: int = 4 * 3600
    ring_seconds: int = 60
    # Larger requests get 513: real INVITEs are 1-4 KB.
    max_message_bytes: int = 16384
    children: int = 4
    shm_mb: int = 64
    log_level: int = 1
    # Raw Kamailio global-section lines appended as they are: an operator's escape hatch.
    extra: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "var_dir", Path(self.var_dir).absolute())
        object.__setattr__(self, "transports", tuple(self.transports))
        object.__setattr__(self, "workers", tuple(self.workers))
        object.__setattr__(self, "trusted", tuple(self.trusted))
        problems = list(_problems(self))
        if problems:
            raise ConfigError("front.bad_value", problems="; ".join(problems),
                              count=len(problems))

    @classmethod
    def from_settings(cls, settings: Settings, workers: Iterable[WorkerRoute] = (),
                      **overrides: Any) -> FrontConfig:
        """The front for ``settings.sip`` and ``settings.trunk``, files under ``var``."""
        values: dict[str, Any] = {
            "var_dir": settings.path("var"), "host": settings.sip.host,
            "port": settings.sip.port, "transports": tuple(settings.sip.transports),
            "workers": tuple(workers), "trunk": Trunk.from_settings(settings.trunk),
            "trusted": tuple(settings.sip.trusted), "flood_limit": settings.sip.flood_limit,
            "flood_ban_seconds": settings.sip.flood_ban_seconds}
        return cls(**{**values, **overrides})

    @property
    def folder(self) -> Path:
        """``var/kamailio``: the generated config and the dispatcher list."""
        return self.var_dir / "kamailio"

    @property
    def run_dir(self) -> Path:
        """Kamailio's runtime folder (instead of /run/kamailio): pid file, RPC sockets.

        Unix socket paths are limited to 107 bytes; when ``var`` is deep, the folder moves
        to a short per-instance path in the temp directory.
        """
        local = self.folder / "run"
        if len(str(local / "rpc-client-4194304-999999.sock")) <= MAX_SOCKET_PATH:
            return local
        digest = hashlib.sha256(str(self.var_dir.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"hotline-kamailio-{digest}"

    @property
    def cfg_path(self) -> Path:
        """The generated kamailio.cfg."""
        return self.folder / "kamailio.cfg"

    @property
    def list_path(self) -> Path:
        """The dispatcher list file."""
        return self.folder / "dispatcher.list"

    @property
    def log_path(self) -> Path:
        """Kamailio's stderr."""
        return self.folder / "kamailio.log"

    @property
    def pid_path(self) -> Path:
        """The pid file Kamailio writes (``-P``)."""
        return self.run_dir / "kamailio.pid"

    @property
    def rpc_path(self) -> Path:
        """The JSON-RPC unix datagram socket."""
        return self.rpc_socket or self.run_dir / "rpc.sock"

    @property
    def advertised_host(self) -> str:
        """The host other parties see in Via and Record-Route."""
        if self.advertise:
            return self.advertise.rsplit(":", 1)[0] if _is_hostport(self.advertise) \
                else self.advertise
        return self.host

    @property
    def trusted_sources(self) -> tuple[str, ...]:
        """Sources exempt from the flood guard: ``trusted`` plus the trunk's IP addresses.

        The trunk carries every caller a carrier sends, far above one caller's rate.
        """
        extra = self.trunk.source_ips if self.trunk is not None else ()
        return (*self.trusted, *(ip for ip in extra if ip not in self.trusted))

    @property
    def probe_host(self) -> str:
        """Where a local readiness probe reaches the front."""
        if self.host in ("0.0.0.0", "*"):
            return "127.0.0.1"
        if self.host in ("::", "[::]"):
            return "::1"
        return self.host.strip("[]")


def _is_hostport(value: str) -> bool:
    host, sep, port = value.rpartition(":")
    return bool(sep) and port.isdigit() and ":" not in host


def uri_host(host: str) -> str:
    """A host as it goes in a SIP URI (IPv6 in brackets)."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return bool(_HOST_RE.match(host))


def _valid_uri(uri: str) -> bool:
    m = _SIP_URI_RE.match(uri)
    if m is None:
        return False
    return not m.group("port") or 1 <= int(m.group("port")) <= 65535


def _safe(value: str) -> bool:
    return not (set(value) & _UNSAFE_CHARS)


def sip_uri_ok(uri: str) -> bool:
    """Whether ``uri`` is a SIP URI the front can route to (``sip:host[:port][;params]``)."""
    m = _SIP_URI_RE.match(uri)
    return m is not None and _valid_uri(uri) and _valid_host(m.group("host"))


def trunk_user_ok(user: str) -> bool:
    """Whether ``user`` can be the trunk account's user part (empty: an IP trunk)."""
    return not user or bool(_USER_RE.match(user))


def trunk_password_ok(password: str) -> bool:
    """Whether ``password`` fits in a Kamailio string literal."""
    return _safe(password) and "%%" not in password


def trunk_problems(t: Trunk) -> Iterable[str]:
    """Every problem in the trunk, as "trunk.field = value: expected" phrases."""
    if not sip_uri_ok(t.registrar):
        yield f"trunk.registrar = {t.registrar!r}: 应为 SIP URI, 例如 sip:trunk.example.cn"
    if not trunk_user_ok(t.username):
        yield f"trunk.username = {t.username!r}: 含不允许的字符"
    if t.registers:
        if not t.password or not trunk_password_ok(t.password):
            yield "trunk.password: 不能为空, 也不能包含引号、反斜杠、换行或 %%"
    elif t.password:
        yield "trunk.password: 没有 username 的中继按 IP 认证, 不用密码; 需要注册请填写 username"
    if t.proxy is not None and not sip_uri_ok(t.proxy):
        yield f"trunk.proxy = {t.proxy!r}: 应为 SIP URI"
    if not 60 <= t.expires <= 86400:
        yield f"trunk.expires = {t.expires!r}: 应在 60-86400 秒之间"


def _problems(cfg: FrontConfig) -> Iterable[str]:
    """Every problem in ``cfg``, as "field = value: expected" phrases."""
    if not _valid_host(cfg.host):
        yield f"host = {cfg.host!r}: 应为 IP 地址或主机名"
    if not 1 <= cfg.port <= 65535:
        yield f"port = {cfg.port!r}: 应在 1-65535 之间"
    if not cfg.transports or any(t not in ("udp", "tcp") for t in cfg.transports):
        yield f"transports = {list(cfg.transports)!r}: 应为 udp、tcp 的非空组合"
    elif len(set(cfg.transports)) != len(cfg.transports):
        yield f"transports = {list(cfg.transports)!r}: 有重复项"
    ids: set[str] = set()
    addrs: set[tuple[str, int]] = set()
    for i, w in enumerate(cfg.workers):
        where = f"workers[{i}]"
        if not _ID_RE.match(w.worker_id):
            yield f"{where}.worker_id = {w.worker_id!r}: 只能包含字母、数字、_ . - (1-64 个)"
        elif w.worker_id in ids:
            yield f"{where}.worker_id = {w.worker_id!r}: 重复"
        ids.add(w.worker_id)
        if not _valid_host(w.host):
            yield f"{where}.host = {w.host!r}: 应为 IP 地址或主机名"
        if not 1 <= w.sip_port <= 65535:
            yield f"{where}.sip_port = {w.sip_port!r}: 应在 1-65535 之间"
        elif (w.host, w.sip_port) in addrs:
            yield f"{where} = {w.host}:{w.sip_port}: 地址重复"
        elif w.host in (cfg.host, cfg.probe_host) and w.sip_port == cfg.port:
            yield f"{where} = {w.host}:{w.sip_port}: 与前端自身地址相同"
        addrs.add((w.host, w.sip_port))
        if not 1 <= w.maxload <= 1000:
            yield f"{where}.maxload = {w.maxload!r}: 应在 1-1000 之间"
    if cfg.trunk is not None:
        yield from trunk_problems(cfg.trunk)
    if cfg.outbound_proxy is not None and not _valid_uri(cfg.outbound_proxy):
        yield f"outbound_proxy = {cfg.outbound_proxy!r}: 应为 SIP URI"
    if cfg.advertise is not None:
        host = cfg.advertise.rsplit(":", 1)[0] if _is_hostport(cfg.advertise) \
            else cfg.advertise
        if not _valid_host(host):
            yield f"advertise = {cfg.advertise!r}: 应为 IP 地址或 主机[:端口]"
    for net in cfg.trusted:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            yield f"trusted = {net!r}: 应为 IP 地址或网段 (10.0.0.0/8)"
    for name, value, low, high in (
        ("flood_limit", cfg.flood_limit, 4, 100_000),
        ("flood_ban_seconds", cfg.flood_ban_seconds, 1, 86_400),
        ("max_call_seconds", cfg.max_call_seconds, 60, 7 * 86_400),
        ("ring_seconds", cfg.ring_seconds, 5, 600),
        ("max_message_bytes", cfg.max_message_bytes, 2048, 65535),
        ("children", cfg.children, 1, 64),
        ("shm_mb", cfg.shm_mb, 16, 4096),
        ("log_level", cfg.log_level, -5, 3),
    ):
        if not low <= value <= high:
            yield f"{name} = {value!r}: 应在 {low}-{high} 之间"
    for name, path in (("var_dir", cfg.var_dir), ("rpc_socket", cfg.rpc_path)):
        if not _safe(str(path)):
            yield f"{name} = {str(path)!r}: 路径不能包含引号、反斜杠或换行"
    # The RPC client binds a reply socket beside the server socket, with a longer name.
    longest = len(str(cfg.run_dir / "rpc-client-4194304-999999.sock"))
    if len(str(cfg.rpc_path)) > MAX_SOCKET_PATH or longest > MAX_SOCKET_PATH:
        yield (f"var_dir = {str(cfg.var_dir)!r}: 路径太长, 控制套接字路径不能超过 "
               f"{MAX_SOCKET_PATH} 个字符; 请把 var 目录放在较短的路径下")
    if "%%" in cfg.extra:
        yield "extra: 不能包含 %%"


class _Cfg(string.Template):
    # Kamailio uses $ for its own variables; %%NAME never occurs in a Kamailio config.
    delimiter = "%%"
    idpattern = r"[A-Z][A-Z0-9_]*"


def _template() -> str:
    return (resources.files("hotline.telephony") / "kamailio.cfg.tmpl").read_text("utf-8")


def render_dispatcher_list(workers: Sequence[WorkerRoute]) -> str:
    """The dispatcher list file: set 1, one line per worker (flags 0, priority 0)."""
    lines = ["# setid destination flags priority attrs -- generated by hotline"]
    lines += [f"{DISPATCH_SET} {w.uri} 0 0 {w.attrs}" for w in workers]
    return "\n".join(lines) + "\n"


def render_config(cfg: FrontConfig) -> str:
    """The complete kamailio.cfg for ``cfg`` (the dispatcher list is a separate file)."""
    defines = ["#!define FLT_FROM_WORKER 1", "#!define FLT_DISPATCHED 2"]
    if cfg.trunk is not None:
        defines.append("#!define WITH_TRUNK")
        if cfg.trunk.registers:
            defines.append("#!define WITH_TRUNK_AUTH")
    if cfg.outbound_proxy is not None:
        defines.append("#!define WITH_OUTBOUND_PROXY")
    if cfg.trusted_sources:
        defines.append("#!define WITH_TRUSTED")
    advertise = ""
    if cfg.advertise:
        advertise = f" advertise {uri_host(cfg.advertised_host)}:" + (
            cfg.advertise.rsplit(":", 1)[1] if _is_hostport(cfg.advertise) else str(cfg.port))
    listen = "\n".join(
        f"listen={t}:{uri_host(cfg.host)}:{cfg.port}{advertise}" for t in cfg.transports)
    switches = [] if "tcp" in cfg.transports else ["disable_tcp=yes"]
    trunk = cfg.trunk
    tm_trunk = 'modparam("tm", "enable_uac_fr", 1)' if trunk and trunk.registers else ""
    hostport = f"{uri_host(cfg.advertised_host)}:{cfg.port}"
    values = {
        "DEFINES": "\n".join(defines) + "\n",
        "DEBUG": str(cfg.log_level),
        "CHILDREN": str(cfg.children),
        "TCP_CHILDREN": str(max(1, cfg.children // 2)),
        "TRANSPORT_SWITCHES": "\n".join(switches),
        "LISTEN": listen,
        "RUN_DIR": str(cfg.run_dir),
        "EXTRA": cfg.extra.strip() + "\n" if cfg.extra.strip() else "",
        "RPC_SOCKET": str(cfg.rpc_path),
        "RING_MS": str(cfg.ring_seconds * 1000),
        "WORKER_INV_MS": str(cfg.ring_seconds * 1000),
        "TRUNK_TM": tm_trunk,
        "LIST_FILE": str(cfg.list_path),
        "CALL_EXPIRE": str(cfg.max_call_seconds),
        "INIT_EXPIRE": str(cfg.ring_seconds + 30),
        "ADVERTISED_HOST": uri_host(cfg.advertised_host),
        "ADVERTISED_HOSTPORT": hostport,
        "FLOOD_LIMIT": str(cfg.flood_limit),
        "MAX_MESSAGE": str(cfg.max_message_bytes),
        "BAN_SECONDS": str(cfg.flood_ban_seconds),
        "TRUSTED": ",".join(cfg.trusted_sources),
        "MAX_TRIES": "3",
        "OUTBOUND_PROXY": cfg.outbound_proxy or "",
        "TRUNK_DOMAIN": trunk.domain if trunk else "",
        "TRUNK_PORT": str(trunk.port) if trunk else "5060",
        "TRUNK_DOMAIN_PORT": f"{trunk.domain}:{trunk.port}" if trunk else "",
        "TRUNK_PROXY": trunk.next_hop if trunk else "",
        "TRUNK_USER": trunk.username if trunk else "",
        "TRUNK_PASSWORD": trunk.password if trunk else "",
        "TRUNK_EXPIRES": str(trunk.expires) if trunk else "0",
        "TRUNK_REFRESH": str(max(30, trunk.expires * 3 // 4)) if trunk else "0",
    }
    return _Cfg(_template()).substitute(values)


# --- reading Kamailio's output (pure) --------------------------------------------------------

_LOG_PREFIX = re.compile(r"^\s*\d+\(\d+\)\s+")
_LEVEL_RE = re.compile(r"\b(CRITICAL|ALERT|ERROR|BUG):\s*")


def first_error(log: str) -> str | None:
    """Kamailio's first error line, without the process prefix; None when there is none."""
    for raw in log.splitlines():
        m = _LEVEL_RE.search(raw)
        if m:
            line = _LOG_PREFIX.sub("", raw).strip()
            return line if len(line) <= 400 else line[:397] + "..."
    return None


_CFG_LINE_RE = re.compile(r"config file \S+, line (\d+)")


def with_config_line(detail: str, cfg_text: str) -> str:
    """Append the config line a Kamailio parse error points at, so the one line says it all."""
    m = _CFG_LINE_RE.search(detail)
    lines = cfg_text.splitlines()
    if m and 1 <= int(m.group(1)) <= len(lines):
        return f"{detail} (第 {m.group(1)} 行: {lines[int(m.group(1)) - 1].strip()[:120]})"
    return detail


def port_busy_in(log: str) -> bool:
    """Whether Kamailio's log says its listening address was taken."""
    return "Address already in use" in log


def dispatcher_entries(listing: Mapping[str, Any]) -> dict[str, str]:
    """``uri → attrs`` of set 1 from a ``dispatcher.list`` RPC result."""
    out: dict[str, str] = {}
    for record in listing.get("RECORDS") or []:
        sets = record.get("SET") if isinstance(record, Mapping) else None
        if not isinstance(sets, Mapping) or sets.get("ID") != DISPATCH_SET:
            continue
        for target in sets.get("TARGETS") or []:
            dest = target.get("DEST") if isinstance(target, Mapping) else None
            if isinstance(dest, Mapping):
                attrs = dest.get("ATTRS") or {}
                out[str(dest.get("URI"))] = str(attrs.get("BODY", ""))
    return out


def dispatcher_loads(listing: Mapping[str, Any]) -> dict[str, int]:
    """``duid → active calls`` of set 1 from a ``dispatcher.list`` RPC result."""
    out: dict[str, int] = {}
    for record in listing.get("RECORDS") or []:
        sets = record.get("SET") if isinstance(record, Mapping) else None
        if not isinstance(sets, Mapping) or sets.get("ID") != DISPATCH_SET:
            continue
        for target in sets.get("TARGETS") or []:
            dest = target.get("DEST") if isinstance(target, Mapping) else None
            if not isinstance(dest, Mapping):
                continue
            attrs = dest.get("ATTRS") or {}
            duid = str(attrs.get("DUID", "")) or str(dest.get("URI"))
            runtime = dest.get("RUNTIME") or {}
            out[duid] = int(runtime.get("DLGLOAD", 0))
    return out


def dispatcher_changes(current: Mapping[str, str], workers: Sequence[WorkerRoute]
                       ) -> tuple[list[str], list[WorkerRoute]]:
    """The URIs to remove and the workers to add to turn ``current`` into ``workers``.

    Workers whose URI and attributes are unchanged are left alone, which keeps their call
    counts; a changed ``maxload`` means remove and add, so that worker's count restarts at 0.
    """
    wanted = {w.uri: w for w in workers}
    remove = [uri for uri, attrs in current.items()
              if uri not in wanted or attrs != wanted[uri].attrs]
    add = [w for w in workers if w.uri in remove or w.uri not in current]
    return remove, add
