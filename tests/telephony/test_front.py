"""The SIP front: rendered Kamailio config, and a real Kamailio routing real pjsua2 UAs.

Workers, callers and lawyers' phones are ``sip_ua.py`` processes (pjsua2, loopback). The
registering upstream trunk is a small UDP peer in this file that challenges with digest auth;
an IP-authenticated trunk ("the carrier") is a ``sip_ua.py`` that answers what it is sent.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import random
import re
import shutil
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from phones import Ua, close_all, free_port

from hotline.config import Settings, load_settings
from hotline.errors import ConfigError, ExternalToolError, HotlineError
from hotline.telephony import front as front_mod
from hotline.telephony.front import (
    FrontConfig,
    FrontError,
    KamailioFront,
    Trunk,
    WorkerRoute,
    dispatcher_changes,
    first_error,
    render_config,
    render_dispatcher_list,
    with_config_line,
)

# --- helpers -------------------------------------------------------------------------------


def wait_until(predicate: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def short_var() -> Path:
    """A short var folder (unix socket paths must stay under 108 bytes), removed at exit."""
    path = Path(tempfile.mkdtemp(prefix="hlf-", dir="/tmp"))
    atexit.register(shutil.rmtree, path, True)
    return path


def make_front(var: Path, workers: tuple[WorkerRoute, ...], **kw: Any) -> KamailioFront:
    cfg = FrontConfig(var_dir=var, port=free_port(), workers=workers, children=2, **kw)
    front = KamailioFront(cfg)
    front.start()
    return front


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class FakeTrunk:
    """A UDP SIP peer: 401 to REGISTER, 407 to INVITE, then checks the digest answer."""

    realm, nonce = "trunk.test", "5eb2c1d0"

    def __init__(self, user: str, password: str, final: int = 486) -> None:
        self.user, self.password, self.final = user, password, final
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: list[tuple[str, str, bool | None]] = []
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(65535)
            except OSError:
                return
            self._handle(data.decode(), addr)

    def _handle(self, msg: str, addr: tuple[str, int]) -> None:
        head = msg.split("\r\n\r\n", 1)[0].split("\r\n")
        if head[0].startswith("SIP/2.0"):
            return
        method, ruri, _ = head[0].split(" ", 2)
        hdrs = [(k.strip().lower(), v.strip())
                for k, _, v in (line.partition(":") for line in head[1:])]

        def get(name: str) -> str:
            return next((v for k, v in hdrs if k == name), "")

        if method == "ACK":
            return
        auth = get("authorization") or get("proxy-authorization")
        ok: bool | None = None
        if auth:
            p = dict(re.findall(r'(\w+)="?([^",]*)"?', auth))
            ha1 = md5(f"{self.user}:{self.realm}:{self.password}")
            ha2 = md5(f"{method}:{p.get('uri', '')}")
            ok = p.get("username") == self.user and p.get("response") == md5(
                f"{ha1}:{p.get('nonce')}:{ha2}")
        self.requests.append((method, ruri, ok))
        challenge = f'Digest realm="{self.realm}", nonce="{self.nonce}", algorithm=MD5'
        if not auth:
            code, extra = ((401, f"WWW-Authenticate: {challenge}") if method == "REGISTER"
                           else (407, f"Proxy-Authenticate: {challenge}"))
        elif not ok:
            code, extra = 403, ""
        elif method == "REGISTER":
            code, extra = 200, f"Contact: {get('contact')};expires=300"
        else:
            code, extra = self.final, ""
        to = get("to") if ";tag=" in get("to") else get("to") + ";tag=trunk"
        lines = [f"SIP/2.0 {code} Fake", *(f"Via: {v}" for k, v in hdrs if k == "via"),
                 f"From: {get('from')}", f"To: {to}", f"Call-ID: {get('call-id')}",
                 f"CSeq: {get('cseq')}", *([extra] if extra else []), "Content-Length: 0"]
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), addr)

    def close(self) -> None:
        self.sock.close()


def invite(port: int, src: tuple[str, int], body: bytes = b"", extra: str = "",
           clen: int | None = None) -> bytes:
    tag = os.urandom(4).hex()
    head = (f"INVITE sip:12348@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {src[0]}:{src[1]};branch=z9hG4bK{tag};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:x@{src[0]}>;tag={tag}\r\n"
            f"To: <sip:12348@127.0.0.1>\r\nCall-ID: {tag}@flood\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:x@{src[0]}:{src[1]}>\r\n{extra}Content-Type: application/sdp\r\n"
            f"Content-Length: {len(body) if clen is None else clen}\r\n\r\n")
    return head.encode() + body


def junk(port: int, src: tuple[str, int], n: int) -> Iterator[bytes]:
    """Random bytes, truncated INVITEs, a 64 KB header, bad SDP, lying lengths..."""
    rnd = random.Random(12348)
    sdp = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
           b"m=audio 4000 RTP/AVP 0\r\n")
    good = invite(port, src, sdp)
    kinds = [
        lambda: rnd.randbytes(rnd.randint(1, 1400)),
        lambda: good[: rnd.randint(1, len(good) - 1)],
        lambda: invite(port, src, extra="X-Big: " + "A" * 65000 + "\r\n"),
        lambda: invite(port, src, b"v=0\r\nm=audio banana\r\nc=IN IP9 ???\r\n\x00\xff"),
        lambda: invite(port, src, b"v=0\r\n", clen=99999),
        lambda: b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx\r\n\r\n",
        lambda: b"INVITE \x00\x01 SIP/2.0\r\n\r\n",
        lambda: invite(port, src).replace(b"CSeq: 1 INVITE", b"CSeq: -1 BYE"),
        lambda: invite(port, src).replace(b"Max-Forwards: 70", b"Max-Forwards: 0"),
        lambda: b"\r\n\r\n",
    ]
    for i in range(n):
        yield kinds[i % len(kinds)]()


# --- the config, pure ------------------------------------------------------------------------

W1 = WorkerRoute("w1", "127.0.0.1", 5071, 2)
W2 = WorkerRoute("w2", "127.0.0.1", 5072, 3)


def test_render_config_listens_on_each_transport(tmp_path: Path) -> None:
    cfg = FrontConfig(var_dir=tmp_path, host="127.0.0.1", port=5099, workers=(W1, W2))
    text = render_config(cfg)
    assert "listen=udp:127.0.0.1:5099" in text
    assert "listen=tcp:127.0.0.1:5099" in text
    assert "disable_tcp" not in text
    assert f'"{tmp_path}/kamailio/dispatcher.list"' in text
    assert f'rundir="{tmp_path}/kamailio/run"' in text
    assert 'ds_select_dst("1", "10")' in text and "ds_load_update()" in text
    assert "%%" not in text and "#!define WITH_TRUNK" not in text

    udp_only = render_config(FrontConfig(var_dir=tmp_path, transports=("udp",)))
    assert "listen=tcp:" not in udp_only and "disable_tcp=yes" in udp_only


def test_dispatcher_list_names_each_worker_with_its_maxload() -> None:
    text = render_dispatcher_list((W1, W2))
    assert "1 sip:127.0.0.1:5071 0 0 duid=w1;maxload=2" in text
    assert "1 sip:127.0.0.1:5072 0 0 duid=w2;maxload=3" in text
    v6 = WorkerRoute("w6", "::1", 5080)
    assert v6.uri == "sip:[::1]:5080"


def test_trunk_proxy_and_trusted_sections_only_when_configured(tmp_path: Path) -> None:
    cfg = FrontConfig(var_dir=tmp_path, trunk=Trunk("sip:trunk.example.cn", "0271234", "pw!"),
                      outbound_proxy="sip:10.0.0.9:5060", trusted=("10.0.0.0/8",),
                      advertise="203.0.113.5")
    text = render_config(cfg)
    assert "#!define WITH_TRUNK" in text and "#!define WITH_OUTBOUND_PROXY" in text
    assert '$rd = "trunk.example.cn"' in text and '$du = "sip:10.0.0.9:5060"' in text
    assert '"$si", "10.0.0.0/8"' in text
    assert "advertise 203.0.113.5:5060" in text
    assert 'loadmodule "uac.so"' in text


def test_ip_trunk_neither_registers_nor_authenticates(tmp_path: Path) -> None:
    ip_trunk = Trunk("sip:10.1.2.3:5062")
    assert not ip_trunk.registers and ip_trunk.source_ips == ("10.1.2.3",)
    text = render_config(FrontConfig(var_dir=tmp_path, trunk=ip_trunk))
    assert "#!define WITH_TRUNK\n" in text and "#!define WITH_TRUNK_AUTH" not in text
    assert '$rd = "10.1.2.3"' in text and "$rp = 5062;" in text
    assert '$du = "sip:10.1.2.3:5062"' in text
    assert "enable_uac_fr" not in text
    # The carrier's address is exempt from the flood guard: it carries every caller.
    assert "#!define WITH_TRUSTED" in text and '"$si", "10.1.2.3"' in text

    registering = Trunk("sip:trunk.example.cn", "0271234", "pw", proxy="sip:10.0.0.8:5060")
    text = render_config(FrontConfig(var_dir=tmp_path, trunk=registering,
                                     trusted=("192.0.2.0/24",)))
    assert "#!define WITH_TRUNK_AUTH" in text and "enable_uac_fr" in text
    assert '"$si", "192.0.2.0/24,10.0.0.8"' in text

    with pytest.raises(ConfigError) as info:
        FrontConfig(var_dir=tmp_path, trunk=Trunk("sip:10.1.2.3", password="pw"))
    assert "trunk.password" in str(info.value) and "IP 认证" in str(info.value)
    with pytest.raises(ConfigError) as info:
        FrontConfig(var_dir=tmp_path, trunk=Trunk("sip:10.1.2.3", "0271234"))
    assert "trunk.password: 不能为空" in str(info.value)


def test_every_bad_value_is_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        FrontConfig(var_dir=tmp_path, host="bad host", port=70000,
                    transports=("sctp",),  # type: ignore[arg-type]
                    workers=(WorkerRoute("w 1", "127.0.0.1", 5071),
                             WorkerRoute("w2", "127.0.0.1", 5071, 0)),
                    trunk=Trunk("http://x", "u", 'pa"ss'))
    err = info.value
    assert err.code == "front.bad_value"
    text = str(err)
    for needle in ("host = 'bad host'", "port = 70000", "sctp", "workers[0].worker_id",
                   "workers[1] = 127.0.0.1:5071", "workers[1].maxload", "trunk.registrar",
                   "trunk.password"):
        assert needle in text
    assert err.params["count"] == 8


def test_deep_var_path_moves_the_sockets_to_a_short_folder(tmp_path: Path) -> None:
    deep = FrontConfig(var_dir=tmp_path / ("x" * 90))
    assert len(str(deep.rpc_path)) <= 107
    assert deep.run_dir.name.startswith("hotline-kamailio-")
    assert deep.cfg_path == tmp_path / ("x" * 90) / "kamailio" / "kamailio.cfg"
    other = FrontConfig(var_dir=tmp_path / ("y" * 90))
    assert other.run_dir != deep.run_dir  # one folder per instance
    shallow = FrontConfig(var_dir=tmp_path)
    assert shallow.run_dir == tmp_path / "kamailio" / "run"


def test_from_settings_uses_sip_section_and_var(tmp_path: Path) -> None:
    settings = Settings.model_validate({"sip": {"host": "127.0.0.1", "port": 5070,
                                                "transports": ["udp"]},
                                        "paths": {"var": str(tmp_path)}})
    cfg = FrontConfig.from_settings(settings, [W1])
    assert (cfg.port, cfg.transports, cfg.workers) == (5070, ("udp",), (W1,))
    assert cfg.cfg_path == tmp_path / "kamailio" / "kamailio.cfg"


def test_trunk_section_configures_the_front(tmp_path: Path) -> None:
    base = {"paths": {"var": str(tmp_path)}}
    assert FrontConfig.from_settings(Settings.model_validate(base)).trunk is None
    off = Settings.model_validate({**base, "trunk": {"registrar": "sip:10.1.2.3"}})
    assert FrontConfig.from_settings(off).trunk is None  # enabled = false

    ip = Settings.model_validate({**base, "trunk": {"enabled": True,
                                                    "registrar": "sip:10.1.2.3:5062"}})
    assert FrontConfig.from_settings(ip, [W1]).trunk == Trunk("sip:10.1.2.3:5062")

    reg = Settings.model_validate({**base, "trunk": {
        "enabled": True, "registrar": "sip:trunk.example.cn", "username": 862787654321,
        "password": "s3cret", "proxy": "sip:10.0.0.8:5060", "expires": 600}})
    assert FrontConfig.from_settings(reg).trunk == Trunk(
        "sip:trunk.example.cn", "862787654321", "s3cret", "sip:10.0.0.8:5060", 600)
    assert "s3cret" not in reg.model_dump_json()  # `hotline config show` hides it
    # An explicit override still wins over the section.
    assert FrontConfig.from_settings(reg, trunk=None).trunk is None


@pytest.mark.parametrize(("env", "message"), [
    ({"HOTLINE_TRUNK_ENABLED": "true"},
     "配置错误: trunk.registrar = '' (来自 默认值): 启用中继 (trunk.enabled = true) 时必须填写, "
     "例如 sip:trunk.example.cn 或 sip:10.1.2.3:5060"),
    ({"HOTLINE_TRUNK_REGISTRAR": "trunk.example.cn"},
     "配置错误: trunk.registrar = 'trunk.example.cn' (来自 HOTLINE_TRUNK_REGISTRAR): "
     "应为 SIP URI, 例如 sip:trunk.example.cn 或 sip:10.1.2.3:5060"),
    ({"HOTLINE_TRUNK_PROXY": "10.0.0.8"},
     "配置错误: trunk.proxy = '10.0.0.8' (来自 HOTLINE_TRUNK_PROXY): "
     "应为 SIP URI (例如 sip:10.1.2.4:5060), 或留空"),
    ({"HOTLINE_TRUNK_EXPIRES": "30"},
     "配置错误: trunk.expires = 30 (来自 HOTLINE_TRUNK_EXPIRES): 应 ≥ 60"),
    ({"HOTLINE_TRUNK_ENABLED": "true", "HOTLINE_TRUNK_REGISTRAR": "sip:10.1.2.3",
      "HOTLINE_TRUNK_USERNAME": "'0271234'"},
     "配置错误: trunk.username = '0271234' (来自 HOTLINE_TRUNK_USERNAME): "
     "需要注册的中继 (填写了 username) 必须同时填写 trunk.password"),
    ({"HOTLINE_TRUNK_ENABLED": "true", "HOTLINE_TRUNK_REGISTRAR": "sip:10.1.2.3",
      "HOTLINE_TRUNK_PASSWORD": "s3cret"},
     "配置错误: trunk.username = '' (来自 默认值): 填写了 trunk.password 却没有 username: "
     "需要注册的中继两者都要填写, IP 认证的中继两者都留空"),
    ({"HOTLINE_TRUNK_PASSWORD": 'pa"ss'},
     "配置错误: trunk = {…} (来自 默认值): trunk.password 不能包含引号、反斜杠、换行或 %%"),
])
def test_bad_trunk_settings_are_one_chinese_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ=env)
    assert str(info.value) == message
    assert "s3cret" not in str(info.value) and "pa\"ss" not in str(info.value)


def test_dispatcher_changes_leave_unchanged_workers_alone() -> None:
    current = {W1.uri: W1.attrs, W2.uri: W2.attrs}
    w3 = WorkerRoute("w3", "127.0.0.1", 5073)
    w2_bigger = WorkerRoute("w2", "127.0.0.1", 5072, 4)
    remove, add = dispatcher_changes(current, [W1, w2_bigger, w3])
    assert remove == [W2.uri]
    assert add == [w2_bigger, w3]
    assert dispatcher_changes(current, [W1, W2]) == ([], [])


def test_first_error_line_and_config_line() -> None:
    log = (" 0(17) INFO: <core> fine\n"
           " 0(17) CRITICAL: <core> [core/cfg.y:3787]: yyerror_at(): parse error in config "
           "file /x/kamailio.cfg, line 2, column 1-3: syntax error\n 0(17) ERROR: later\n")
    line = first_error(log)
    assert line is not None and line.startswith("CRITICAL: <core>")
    assert with_config_line(line, "a\nbogus line\n").endswith("(第 2 行: bogus line)")
    assert first_error("all good\n") is None


# --- a real Kamailio ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workers() -> Iterator[tuple[Ua, Ua]]:
    w1, w2 = Ua("w1"), Ua("w2")
    yield w1, w2
    close_all(w1, w2)


@pytest.fixture(scope="module")
def front(workers: tuple[Ua, Ua]) -> Iterator[KamailioFront]:
    w1, w2 = workers
    f = make_front(short_var(), (WorkerRoute("w1", "127.0.0.1", w1.port, 2),
                                 WorkerRoute("w2", "127.0.0.1", w2.port, 2)),
                   trusted=("127.0.0.1",))
    yield f
    f.stop()


@pytest.fixture(scope="module")
def callers() -> Iterator[tuple[Ua, Ua]]:
    a, b = Ua("caller-a"), Ua("caller-b")
    yield a, b
    close_all(a, b)


def dial(front: KamailioFront) -> str:
    return f"sip:12348@127.0.0.1:{front.config.port}"


def test_calls_spread_by_load_then_503_and_bye_frees_the_slots(
        front: KamailioFront, workers: tuple[Ua, Ua], callers: tuple[Ua, Ua]) -> None:
    w1, w2 = workers
    a, b = callers
    for i in range(4):
        a.call(f"c{i}", dial(front))
        a.wait("confirmed", id=f"c{i}")
    got = {w.name: [w.wait("incoming"), w.wait("incoming")] for w in workers}
    assert front.loads() == {"w1": 2, "w2": 2}
    rr = got["w1"][0]["record_route"]
    assert rr == [f"<sip:127.0.0.1:{front.config.port};lr;ds=1>"]

    b.call("fifth", dial(front))
    assert b.wait("ended", id="fifth")["code"] == 503
    assert not [e for w in workers for e in w.drain() if e["ev"] == "incoming"]

    # The caller hangs up two calls, the workers the other two: every BYE passes the front.
    a.send(cmd="hangup", id="c0")
    a.send(cmd="hangup", id="c1")
    a.wait("ended", id="c0")
    a.wait("ended", id="c1")
    w1.send(cmd="hangup_all")
    w2.send(cmd="hangup_all")
    for tag in ("c2", "c3"):
        assert a.wait("ended", id=tag)["code"] == 200
    assert wait_until(lambda: front.loads() == {"w1": 0, "w2": 0})
    for w in workers:
        w.drain()


def test_sequential_calls_leave_no_load_and_stay_fast(
        front: KamailioFront, workers: tuple[Ua, Ua], callers: tuple[Ua, Ua]) -> None:
    a, _ = callers
    setup_ms = []
    for i in range(30):
        a.call(f"s{i}", dial(front))
        setup_ms.append(a.wait("confirmed", id=f"s{i}")["ms_2xx"])
        a.send(cmd="hangup", id=f"s{i}")
        a.wait("ended", id=f"s{i}")
    assert wait_until(lambda: front.loads() == {"w1": 0, "w2": 0})
    p95 = statistics.quantiles(setup_ms, n=20)[-1]
    print(f"INVITE→200 through the front: p50 {statistics.median(setup_ms):.1f} ms, "
          f"p95 {p95:.1f} ms")
    assert p95 < 250
    for w in workers:
        w.drain()


def _ask(port: int, request: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.connect(("127.0.0.1", port))
        local = s.getsockname()
        s.send(request.replace(b"LOCAL", f"{local[0]}:{local[1]}".encode()))
        return s.recv(65535)


def test_options_answered_other_methods_refused(front: KamailioFront) -> None:
    port = front.config.port
    for method, status in ((b"OPTIONS", b"200"), (b"REGISTER", b"405"), (b"MESSAGE", b"405")):
        request = (method + b" sip:127.0.0.1:%d SIP/2.0\r\n" % port
                   + b"Via: SIP/2.0/UDP LOCAL;branch=z9hG4bK" + os.urandom(4).hex().encode()
                   + b";rport\r\nMax-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\n"
                   b"To: <sip:a@127.0.0.1>\r\nCall-ID: " + os.urandom(6).hex().encode()
                   + b"\r\nCSeq: 1 " + method + b"\r\nContent-Length: 0\r\n\r\n")
        assert _ask(port, request).split(b" ")[1] == status


def test_reload_dispatcher_before_start_only_writes_the_list(tmp_path: Path) -> None:
    f = KamailioFront(FrontConfig(var_dir=tmp_path, port=5099))
    f.reload_dispatcher([W1])
    assert "duid=w1;maxload=2" in f.config.list_path.read_text()
    assert f.config.workers == (W1,)


def test_reload_dispatcher_adds_and_removes_keeping_counts(
        front: KamailioFront, workers: tuple[Ua, Ua], callers: tuple[Ua, Ua]) -> None:
    w1, w2 = workers
    a, _ = callers
    original = front.config.workers
    a.call("r1", dial(front))
    a.wait("confirmed", id="r1")
    holder = "w1" if w1.drain() else "w2"
    w2.drain()
    assert front.loads()[holder] == 1

    w3 = WorkerRoute("w3", "127.0.0.1", free_port(), 2)
    kept = next(w for w in original if w.worker_id == holder)
    front.reload_dispatcher([kept, w3])
    assert front.loads() == {holder: 1, "w3": 0}
    assert "duid=w3;maxload=2" in front.config.list_path.read_text()
    assert front.config.workers == (kept, w3)

    front.reload_dispatcher(original)
    assert front.loads()[holder] == 1
    a.send(cmd="hangup", id="r1")
    a.wait("ended", id="r1")
    assert wait_until(lambda: front.loads() == {"w1": 0, "w2": 0})
    w1.drain()
    w2.drain()


def test_outbound_leg_from_a_worker_is_relayed_and_record_routed(front: KamailioFront) -> None:
    # A worker of this front places a call to a lawyer's phone through the front.
    lawyer = Ua("lawyer")
    worker = None
    try:
        # The module's w1 has no proxy set, so run a second UA on a spare worker slot.
        spare = WorkerRoute("w9", "127.0.0.1", free_port(), 1)
        front.reload_dispatcher([*front.config.workers, spare])
        worker = Ua("w9", "--proxy", f"sip:127.0.0.1:{front.config.port}", port=spare.sip_port)
        worker.call("out", f"sip:lawyer@127.0.0.1:{lawyer.port}")
        incoming = lawyer.wait("incoming")
        assert incoming["record_route"] == [f"<sip:127.0.0.1:{front.config.port};lr>"]
        assert incoming["src"] == f"127.0.0.1:{front.config.port}"
        worker.wait("confirmed", id="out")
        assert front.loads()["w9"] == 0  # outbound legs never count as inbound load
        worker.send(cmd="hangup", id="out")
        assert lawyer.wait("ended")["code"] == 200

        # An outside number (the front's own domain) needs a trunk; this front has none.
        worker.call("pstn", f"sip:13800138000@127.0.0.1:{front.config.port}")
        assert worker.wait("ended", id="pstn")["code"] == 404
    finally:
        close_all(lawyer, *([worker] if worker is not None else []))
        front.reload_dispatcher([w for w in front.config.workers if w.worker_id != "w9"])


def test_trunk_registration_and_outside_call_use_digest_auth(workers: tuple[Ua, Ua]) -> None:
    trunk = FakeTrunk("0271234", "s3cret pw!")
    worker_route = WorkerRoute("wt", "127.0.0.1", free_port(), 1)
    f = make_front(short_var(), (worker_route,), trusted=("127.0.0.1",),
                   trunk=Trunk(f"sip:127.0.0.1:{trunk.port}", "0271234", "s3cret pw!"))
    worker = Ua("wt", "--proxy", f"sip:127.0.0.1:{f.config.port}", port=worker_route.sip_port)
    try:
        assert wait_until(lambda: f.trunk_status() == 200, timeout=6)
        assert "uac" in f.rpc("core.modules")
        assert [r[0] for r in trunk.requests[:2]] == ["REGISTER", "REGISTER"]
        assert trunk.requests[1][2] is True

        worker.call("pstn", f"sip:13800138000@127.0.0.1:{f.config.port}")
        assert worker.wait("ended", id="pstn")["code"] == 486
        invites = [r for r in trunk.requests if r[0] == "INVITE"]
        assert invites[0] == ("INVITE", f"sip:13800138000@127.0.0.1:{trunk.port}", None)
        assert invites[1][2] is True
    finally:
        worker.close()
        f.stop()
        trunk.close()


def _outside(front: KamailioFront, number: str) -> str:
    return f"sip:{number}@127.0.0.1:{front.config.port}"


def test_ip_trunk_carries_outside_numbers_without_registering() -> None:
    carrier = Ua("carrier")
    route = WorkerRoute("wc", "127.0.0.1", free_port(), 1)
    # No `trusted`: the carrier's own address is exempt from the flood guard anyway.
    f = make_front(short_var(), (route,), trunk=Trunk(f"sip:127.0.0.1:{carrier.port}"))
    worker = Ua("wc", "--proxy", f"sip:127.0.0.1:{f.config.port}", port=route.sip_port)
    try:
        fport = f.config.port
        worker.call("out", _outside(f, "12345"))
        incoming = carrier.wait("incoming")
        assert incoming["request_line"] == f"INVITE sip:12345@127.0.0.1:{carrier.port} SIP/2.0"
        assert incoming["src"] == f"127.0.0.1:{fport}"
        assert incoming["record_route"] == [f"<sip:127.0.0.1:{fport};lr>"]
        worker.wait("confirmed", id="out")
        carrier.wait("confirmed", id=incoming["id"])  # the ACK reached the carrier
        assert f.loads() == {"wc": 0}  # outbound legs are not inbound load
        assert f.trunk_status() is None  # nothing to register with
        worker.send(cmd="hangup", id="out")
        assert carrier.wait("ended", id=incoming["id"])["code"] == 200
        worker.wait("ended", id="out")

        # 110 and a + number too; this time the carrier hangs up (BYE the other way).
        for tag, number in (("police", "110"), ("mobile", "+8613800138000")):
            worker.call(tag, _outside(f, number))
            incoming = carrier.wait("incoming")
            assert incoming["request_line"].startswith(f"INVITE sip:{number}@127.0.0.1:")
            worker.wait("confirmed", id=tag)
            carrier.send(cmd="hangup", id=incoming["id"])
            assert worker.wait("ended", id=tag)["code"] == 200
            carrier.wait("ended", id=incoming["id"])

        # Only digits (and a leading +) leave for the trunk.
        for tag, number in (("name", "lawyer"), ("dash", "027-8765"), ("mid", "12+34")):
            worker.call(tag, _outside(f, number))
            assert worker.wait("ended", id=tag)["code"] == 484, number
        assert not [e for e in carrier.drain() if e["ev"] == "incoming"]
        # No registration timer, no digest client: uac and rtimer are not even loaded.
        modules = f.rpc("core.modules")
        assert "dispatcher" in modules and "uac" not in modules and "rtimer" not in modules
    finally:
        close_all(worker, carrier)
        f.stop()


def test_outside_numbers_without_a_trunk_get_404() -> None:
    route = WorkerRoute("wn", "127.0.0.1", free_port(), 1)
    f = make_front(short_var(), (route,))
    worker = Ua("wn", "--proxy", f"sip:127.0.0.1:{f.config.port}", port=route.sip_port)
    try:
        worker.call("pstn", _outside(f, "12345"))
        assert worker.wait("ended", id="pstn")["code"] == 404
        worker.call("bad", _outside(f, "legal-aid"))
        assert worker.wait("ended", id="bad")["code"] == 484
    finally:
        worker.close()
        f.stop()


def test_dead_worker_is_skipped_and_calls_fail_over(workers: tuple[Ua, Ua]) -> None:
    w1, _ = workers
    dead = WorkerRoute("dead", "127.0.0.1", free_port(), 2)
    f = make_front(short_var(), (dead, WorkerRoute("w1", "127.0.0.1", w1.port, 2)),
                   trusted=("127.0.0.1",))
    caller = Ua("caller-d")
    try:
        # Two calls: whichever order the dispatcher tries, one meets the dead worker first.
        caller.call("d1", dial(f))
        caller.wait("confirmed", id="d1", timeout=8)
        caller.call("d2", dial(f))
        caller.wait("confirmed", id="d2", timeout=8)
        assert f.loads() == {"dead": 0, "w1": 2}
        targets = f.rpc("dispatcher.list")["RECORDS"][0]["SET"]["TARGETS"]
        flags = {t["DEST"]["URI"]: t["DEST"]["FLAGS"] for t in targets}
        assert flags[dead.uri] == "IP"  # inactive, probed with OPTIONS until it answers
        caller.send(cmd="hangup_all")
        caller.wait("ended", id="d1")
        caller.wait("ended", id="d2")
    finally:
        caller.close()
        f.stop()
        w1.drain()


def test_malformed_packets_and_floods_do_not_kill_it(workers: tuple[Ua, Ua]) -> None:
    w1, w2 = workers
    f = make_front(short_var(), (WorkerRoute("w1", "127.0.0.1", w1.port, 2),
                                 WorkerRoute("w2", "127.0.0.1", w2.port, 2)),
                   trusted=("127.0.0.3",))
    caller = Ua("caller-f")
    try:
        port = f.config.port
        # A trusted peer (never banned) sends every truncation of a good INVITE: mangled
        # requests must not leave a worker's slot taken.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.3", 0))
            good = invite(port, s.getsockname(), b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n")
            for cut in range(1, len(good)):
                s.sendto(good[:cut], ("127.0.0.1", port))
        # An untrusted one floods junk until it is banned.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.2", 0))
            for packet in junk(port, s.getsockname(), 3000):
                s.sendto(packet, ("127.0.0.1", port))
        for i in range(20):
            with socket.create_connection(("127.0.0.1", port), timeout=2,
                                          source_address=("127.0.0.2", 0)) as c:
                try:
                    c.sendall(b"INVITE sip:x SIP/2.0\r\nX: " + b"B" * 70000 + b"\r\n\r\n"
                              if i % 2 else os.urandom(3000))
                except OSError:
                    pass  # Kamailio may close first: that is the point
        assert f.alive()
        assert wait_until(f.probe)
        banned = json.dumps(f.rpc("htable.dump", "ipban"))
        assert "127.0.0.2" in banned
        assert wait_until(lambda: f.loads() == {"w1": 0, "w2": 0}), (
            f.loads(), w1.drain(), w2.drain())

        caller.call("good", dial(f))
        caller.wait("confirmed", id="good")
        caller.send(cmd="hangup", id="good")
        caller.wait("ended", id="good")
        assert f.alive()
    finally:
        caller.close()
        f.stop()
        w1.drain()
        w2.drain()


# --- failures, each with its own code ---------------------------------------------------------


def test_port_already_taken_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))
        f = KamailioFront(FrontConfig(var_dir=short_var(), port=port))
        with pytest.raises(FrontError) as info:
            f.start()
    assert info.value.code == "front.port_busy"
    assert info.value.params["port"] == port
    assert f"127.0.0.1:{port}" in str(info.value) and "占用" in str(info.value)
    assert not f.alive()


def test_missing_binary_names_the_package(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(front_mod, "SBIN_DIRS", ())
    with pytest.raises(ExternalToolError) as info:
        KamailioFront(FrontConfig(var_dir=short_var(), port=free_port())).start()
    assert info.value.code == "tool.missing"
    assert dict(info.value.params) == {"tool": "kamailio", "package": "kamailio"}


def test_broken_config_is_one_clear_line() -> None:
    f = KamailioFront(FrontConfig(var_dir=short_var(), port=free_port(),
                                  extra="children = banana"))
    with pytest.raises(FrontError) as info:
        f.start()
    err = info.value
    assert err.code == "front.bad_config"
    text = str(err)
    assert "\n" not in text and "Kamailio" in text and "children = banana" in text
    assert not f.alive()


def test_kamailio_exiting_at_start_reports_its_first_error() -> None:
    # 192.0.2.1 (TEST-NET-1) is not on this machine: the config is fine, binding is not.
    f = KamailioFront(FrontConfig(var_dir=short_var(), host="192.0.2.1", port=free_port()))
    with pytest.raises(FrontError) as info:
        f.start()
    assert info.value.code == "front.failed"
    assert "Cannot assign requested address" in info.value.params["detail"]
    assert "启动失败" in str(info.value)
    assert not f.alive()


def test_stop_frees_the_port_for_a_restart() -> None:
    f = make_front(short_var(), ())
    pid = f.pid
    assert pid is not None and f.probe()
    f.stop()
    assert not f.alive() and f.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    f.start()  # same port, no leftovers
    try:
        assert f.probe()
        # No workers at all: callers get 503, not silence.
        caller = Ua("caller-e")
        try:
            caller.call("e", dial(f))
            assert caller.wait("ended", id="e")["code"] == 503
        finally:
            caller.close()
    finally:
        f.stop()


def test_a_front_left_running_by_a_crashed_supervisor_is_replaced() -> None:
    orphan = make_front(short_var(), ())
    old_pid = orphan.pid
    assert old_pid is not None
    # The supervisor "crashed": nobody called stop(). A new one starts the same config.
    successor = KamailioFront(orphan.config)
    try:
        successor.start()
        assert successor.probe() and successor.pid != old_pid
        assert orphan._proc is not None and orphan._proc.wait(5) is not None
    finally:
        successor.stop()
        orphan.stop()


def test_errors_render_in_chinese() -> None:
    err: HotlineError = FrontError("front.port_busy", host="127.0.0.1", port=5060,
                                   transport="udp")
    assert str(err).startswith("SIP 前端无法监听 127.0.0.1:5060")
