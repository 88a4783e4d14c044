"""The pjsua2 endpoint of a media worker: set-up, the account, call legs, the leg limit.

Only this module, :mod:`hotline.telephony.media` and :mod:`hotline.telephony.caller` (the
``hotline call`` caller) import pjsua2. Everything here runs on the thread that called
:meth:`SipEndpoint.start` (``threadCnt = 0``, ``mainThreadOnly``): pjsua2 aborts the process
when an unregistered thread touches it, and its objects must be created, used and released
on one thread.

pjsua2 calls back into Python from C++. An exception escaping a callback turns into a C++
exception inside pjsip and ends the process, so every callback here catches everything,
logs it, and hands plain values to a :class:`LegListener`.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol

import pjsua2 as pj

log = logging.getLogger("hotline.pjsua")
pjlog = logging.getLogger("hotline.pjsip")

# What ``uaConfig.maxCalls`` asks for; pjsua silently clamps it to the compiled
# PJSUA_MAX_CALLS, so the effective value is read back with :func:`effective_max_calls`.
REQUESTED_LEGS = 32
# Used only when the wheel hides pjsua's C API: the limit measured for the PyPI wheel.
FALLBACK_LEGS = 4
# Conference slots: 1 per leg + players + 2 recorders per recording, with room to spare.
MAX_MEDIA_PORTS = 128
# G.711 first (A-law is the norm on Chinese trunks) in the offers we make; G.722 is in them
# too, so a phone that prefers wideband gets it (pjmedia answers in the offerer's order),
# but we never ask for it first: its 16 kHz audio costs resampling on our 8 kHz bridge.
# Other codecs stay out of the SDP.
CODEC_PRIORITIES = {"PCMA/8000/1": 250, "PCMU/8000/1": 240, "G722/16000/1": 100}
# Longest pjsip log line kept (it logs whole packets it cannot parse).
MAX_LOG_LINE = 400

# The user part of a sip:/sips: URI (before "@"), or a tel: number.
_USER = re.compile(r"(?:sips?:([^@;>\s:]+)(?::[^@;>\s]*)?@|tel:([^;>\s]+))", re.IGNORECASE)
_TO_HEADER = re.compile(r"^(?:To|t)[ \t]*:(.*)$", re.IGNORECASE | re.MULTILINE)
_ANGLE_URI = re.compile(r"<([^>]*)>")


@dataclass(frozen=True)
class Incoming:
    """Facts about an offered INVITE, read while pjsip still holds the message."""

    sip_call_id: str
    from_uri: str
    to_user: str
    remote: str


class LegListener(Protocol):
    """What the worker hears from its legs; called on the pjsua2 thread."""

    def leg_offered(self, leg: Leg, incoming: Incoming) -> None:
        """A new INVITE arrived; the listener must keep ``leg`` referenced."""

    def leg_media_active(self, leg: Leg) -> None:
        """The leg's audio is connected to the bridge (``leg.media`` is set)."""

    def leg_progress(self, leg: Leg, state: str) -> None:
        """An outbound leg rings (``"ringing"``) or is answered (``"confirmed"``)."""

    def leg_digit(self, leg: Leg, digit: str) -> None:
        """A DTMF digit arrived on the leg."""

    def leg_disconnected(self, leg: Leg, status: int, reason: str) -> None:
        """The leg is DISCONNECTED; release it later, outside this callback."""


class Leg(pj.Call):  # type: ignore[misc]  # pjsua2 has no stubs: its classes are Any
    """One SIP call leg; turns pjsua2 callbacks into :class:`LegListener` calls.

    Attributes:
        key: The call this leg belongs to (the coordinator's call id).
        name: The leg's name inside its call ("caller", "lawyer", ...).
        media: The leg's audio port in the conference bridge while media is active.
        disconnected: True once DISCONNECTED was seen (no more pjsua2 calls on it).
    """

    def __init__(self, account: pj.Account, call_id: int, listener: LegListener,
                 name: str = "caller") -> None:
        super().__init__(account, call_id)
        self.listener: LegListener | None = listener
        self.key = ""
        self.name = name
        self.media: Any = None
        self.disconnected = False
        self.rang = False
        self.confirmed = False

    def respond(self, status: int) -> None:
        """Answer the INVITE with ``status`` (180 ringing, 200 OK, ...)."""
        prm = pj.CallOpParam()
        prm.statusCode = status
        self.answer(prm)

    def codec(self) -> str:
        """The audio codec negotiated for the leg ("PCMA", "G722"...), or "" unknown."""
        try:
            info = self.getInfo()
            for media in info.media:
                if (media.type == pj.PJMEDIA_TYPE_AUDIO
                        and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE):
                    return str(self.getStreamInfo(media.index).codecName)
        except Exception as exc:
            log.debug("no stream info: %s", describe_error(exc))
        return ""

    def dial(self, uri: str) -> None:
        """Send the INVITE of an outbound leg (raises pjsua2's Error, e.g. no free leg)."""
        prm = pj.CallOpParam(True)
        prm.opt.audioCount = 1
        prm.opt.videoCount = 0
        self.makeCall(uri, prm)

    def end(self, status: int = 0) -> None:
        """Hang up: BYE when connected, CANCEL or ``status`` (default 603) before."""
        if self.disconnected:
            return
        prm = pj.CallOpParam()
        if status:
            prm.statusCode = status
        self.hangup(prm)

    def onCallState(self, prm: Any) -> None:
        """Report ringing and answer (outbound legs) once each, and DISCONNECTED once."""
        try:
            info = self.getInfo()
            if info.state == pj.PJSIP_INV_STATE_EARLY and not self.rang:
                self.rang = True
                if self.listener is not None:
                    self.listener.leg_progress(self, "ringing")
            elif info.state == pj.PJSIP_INV_STATE_CONFIRMED and not self.confirmed:
                self.confirmed = True
                if self.listener is not None:
                    self.listener.leg_progress(self, "confirmed")
            elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED and not self.disconnected:
                self.disconnected = True
                self.media = None
                if self.listener is not None:
                    self.listener.leg_disconnected(self, int(info.lastStatusCode),
                                                   str(info.lastReason))
        except Exception:
            log.exception("onCallState failed")

    def onCallMediaState(self, prm: Any) -> None:
        """Remember the leg's audio port when its media becomes active (again)."""
        try:
            info = self.getInfo()
            for media in info.media:
                if (media.type == pj.PJMEDIA_TYPE_AUDIO
                        and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE):
                    self.media = self.getAudioMedia(media.index)
                    if self.listener is not None:
                        self.listener.leg_media_active(self)
                    return
        except Exception:
            log.exception("onCallMediaState failed")

    def onDtmfDigit(self, prm: Any) -> None:
        """One call per digit, RFC 4733 or SIP INFO.

        ``onDtmfEvent`` is deliberately not used: for RFC 4733 pjsua2 calls it for every
        packet of a key press (start, updates, end), on top of this callback.
        """
        try:
            digit = str(prm.digit)
            if digit and self.listener is not None:
                self.listener.leg_digit(self, digit)
        except Exception:
            log.exception("onDtmfDigit failed")


class LogWriter(pj.LogWriter):  # type: ignore[misc]  # pjsua2 has no stubs
    """pjsip's log lines into Python logging: masked like every other line, and cut short.

    pjsip dumps a whole packet when it cannot parse it; a flood of garbage (or a 64 KB
    header) must not flood the log, and a SIP packet carries phone numbers that the
    handlers' masking filter has to see. Called from any pjsip thread; it only logs.
    """

    LEVELS = (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO)

    def write(self, entry: Any) -> None:
        """Forward one entry."""
        try:
            text = " | ".join(line.strip() for line in str(entry.msg).splitlines()
                              if line.strip())
            if len(text) > MAX_LOG_LINE:
                text = f"{text[:MAX_LOG_LINE]}... ({len(text)} chars)"
            level = int(entry.level)
            pjlog.log(self.LEVELS[level] if level < len(self.LEVELS) else logging.DEBUG,
                      "%s", text)
        except Exception:  # nothing may escape into pjsip
            return


class HotlineAccount(pj.Account):  # type: ignore[misc]  # pjsua2 has no stubs
    """The worker's one local account: it receives every INVITE sent to the worker."""

    def __init__(self, listener: LegListener) -> None:
        super().__init__()
        self.listener = listener

    def onIncomingCall(self, prm: Any) -> None:
        """Wrap the new call in a :class:`Leg` and hand it over with the INVITE's facts.

        The leg reaches the listener even when its facts cannot be read, so it is never
        dropped (destroyed) inside this callback.
        """
        try:
            leg = Leg(self, prm.callId, self.listener)
        except Exception:
            log.exception("onIncomingCall: cannot wrap the call")
            return
        try:
            info = leg.getInfo()
            incoming = incoming_facts(str(prm.rdata.wholeMsg), str(info.remoteUri),
                                      str(info.localUri), str(info.callIdString),
                                      str(prm.rdata.srcAddress))
        except Exception:
            log.exception("onIncomingCall: cannot read the INVITE")
            incoming = Incoming("", "", "", "")
        try:
            self.listener.leg_offered(leg, incoming)
        except Exception:
            log.exception("onIncomingCall failed")


def endpoint_config(*, max_calls: int, user_agent: str, max_media_ports: int,
                    writer: LogWriter, log_level: int, keep_clock: bool = True) -> Any:
    """The pjsua2 settings every process of ours uses (ARCHITECTURE.md, pjsua2 rules).

    One SIP thread of our own (``threadCnt = 0``, ``mainThreadOnly``), an 8 kHz mono bridge
    (G.711 needs no resampling), no VAD or echo canceller, pjsip's log into ``writer``.
    """
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.maxCalls = max_calls
    cfg.uaConfig.userAgent = user_agent
    cfg.medConfig.clockRate = 8000
    cfg.medConfig.sndClockRate = 8000
    cfg.medConfig.channelCount = 1
    cfg.medConfig.maxMediaPorts = max_media_ports
    cfg.medConfig.noVad = True
    cfg.medConfig.ecTailLen = 0
    # pjsua closes an idle null sound device after 1 s, and with it the bridge clock that
    # makes every call send audio and RFC 4733 digits: a call with nothing connected to the
    # bridge then goes silent and its keys are lost. The caller keeps the device open; a
    # worker lets it close (an idle worker then costs nothing) because each of its calls has
    # a recording on the bridge from the start, which opens the device again.
    cfg.medConfig.sndAutoCloseTime = -1 if keep_clock else 1
    cfg.logConfig.writer = writer
    cfg.logConfig.level = log_level
    cfg.logConfig.consoleLevel = log_level
    cfg.logConfig.msgLogging = 0
    return cfg


def incoming_facts(message: str, remote_uri: str, local_uri: str, sip_call_id: str,
                   source: str) -> Incoming:
    """Who called which number, from the raw INVITE (the request URI names the number).

    Through the SIP front the request URI is rewritten to this worker's address but keeps
    its user part, the dialled number; the To header, then pjsua's local URI, are the
    fallbacks when the request URI has no user.
    """
    head = message.split("\r\n\r\n", 1)[0]
    parts = head.split(None, 2)
    request_uri = parts[1] if len(parts) > 1 else ""
    to_header = _TO_HEADER.search(head)
    to_user = (_user_of(request_uri) or _user_of(to_header.group(1) if to_header else "")
               or _user_of(local_uri))
    return Incoming(sip_call_id=sip_call_id, from_uri=_strip_angle(remote_uri),
                    to_user=to_user, remote=source)


def _user_of(uri: str) -> str:
    match = _USER.search(uri)
    return (match.group(1) or match.group(2)) if match else ""


def _strip_angle(uri: str) -> str:
    match = _ANGLE_URI.search(uri)
    return match.group(1) if match else uri.strip()


def describe_error(exc: BaseException) -> str:
    """Readable text for any exception; pjsua2's Error keeps its message in ``info()``."""
    if isinstance(exc, pj.Error):
        try:
            return f"{exc.title}: {exc.reason} ({exc.status})"
        except Exception:
            return "pjsua2 error"
    return f"{type(exc).__name__}: {exc}"


def effective_max_calls() -> int:
    """The legs pjsua really allows after ``libInit`` (``uaConfig.maxCalls`` is clamped).

    pjsua2 does not expose the clamped value, but the wheel exports pjsua's C function
    ``pjsua_call_get_max_count``; read it through ctypes. When it is missing, fall back to
    the value measured for the PyPI wheel rather than trusting the configuration.
    """
    try:
        module = importlib.import_module("pjsua2._pjsua2")
        lib = ctypes.CDLL(module.__file__)
        func = lib.pjsua_call_get_max_count
        func.restype = ctypes.c_uint
        func.argtypes = []
        value = int(func())
    except (ImportError, OSError, AttributeError, TypeError):
        log.warning("pjsua_call_get_max_count unavailable; assuming %d legs", FALLBACK_LEGS)
        return FALLBACK_LEGS
    return value if value > 0 else FALLBACK_LEGS


class SipEndpoint:
    """The process's one pjsua2 endpoint with UDP+TCP on one port and a local account.

    Args:
        host: Address the SIP transports and RTP sockets bind to.
        sip_port: SIP port for both UDP and TCP.
        rtp_port: First RTP port; the worker uses 2 ports per leg from there.
        listener: Receives every leg's events.
        rtp_ports: Size of the RTP port range; 0 means 2 per leg.
        pj_log_level: pjsip's own log verbosity on stderr (0-6).
        proxy: Outbound proxy for the legs this endpoint originates (the SIP front,
            ``sip:127.0.0.1:5060``); empty sends them straight to their URI.
        user: The account's user part (``sip:<user>@host:port``).
        keep_clock: Keep the bridge clock running when idle (a softphone whose own audio
            port must tick; a worker lets it stop).
    """

    def __init__(self, host: str, sip_port: int, rtp_port: int, listener: LegListener,
                 rtp_ports: int = 0, pj_log_level: int = 1, proxy: str = "",
                 user: str = "worker", keep_clock: bool = False,
                 user_agent: str = "hotline12348-worker") -> None:
        self.host = host
        self.user = user
        self.keep_clock = keep_clock
        self.user_agent = user_agent
        self.proxy = proxy
        self.sip_port = sip_port
        self.rtp_port = rtp_port
        self.rtp_ports = rtp_ports
        self.listener = listener
        self.pj_log_level = pj_log_level
        self.max_legs = 0
        self.ep: Any = None
        self.account: HotlineAccount | None = None
        self._log_writer: LogWriter | None = None  # pjsip uses it until libDestroy returns

    def start(self) -> None:
        """Create, configure and start pjsua2 (raises pjsua2's Error on a busy port)."""
        ep = pj.Endpoint()
        ep.libCreate()
        self.ep = ep
        self._log_writer = LogWriter()
        cfg = endpoint_config(max_calls=REQUESTED_LEGS, user_agent=self.user_agent,
                              max_media_ports=MAX_MEDIA_PORTS, writer=self._log_writer,
                              log_level=self.pj_log_level, keep_clock=self.keep_clock)
        cfg.logConfig.decor = pj.PJ_LOG_HAS_SENDER | pj.PJ_LOG_HAS_SPACE
        ep.libInit(cfg)
        self.max_legs = effective_max_calls()
        ep.audDevManager().setNullDev()
        for kind in (pj.PJSIP_TRANSPORT_UDP, pj.PJSIP_TRANSPORT_TCP):
            tcfg = pj.TransportConfig()
            tcfg.port = self.sip_port
            tcfg.boundAddress = self.host
            ep.transportCreate(kind, tcfg)
        ep.libStart()
        for codec in ep.codecEnum2():
            ep.codecSetPriority(codec.codecId, CODEC_PRIORITIES.get(codec.codecId, 0))
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{self.user}@{self.host}:{self.sip_port}"
        acfg.mediaConfig.transportConfig.port = self.rtp_port
        acfg.mediaConfig.transportConfig.portRange = self.rtp_ports or 2 * self.max_legs
        acfg.mediaConfig.transportConfig.boundAddress = self.host
        if self.proxy:
            acfg.sipConfig.proxies.append(f"{self.proxy};lr")
        account = HotlineAccount(self.listener)
        account.create(acfg, True)
        self.account = account

    def new_leg(self, name: str) -> Leg:
        """A new outbound leg, not yet dialled (:meth:`Leg.dial`)."""
        return Leg(self.account, pj.PJSUA_INVALID_ID, self.listener, name)

    def silence(self) -> Any:
        """A bridge port that always carries silence: the null sound device's capture."""
        return self.ep.audDevManager().getCaptureDevMedia() if self.ep is not None else None

    def poll(self, timeout_ms: int) -> None:
        """Run pjsua2's timers and sockets for at most ``timeout_ms``."""
        self.ep.libHandleEvents(timeout_ms)

    def hangup_all(self) -> None:
        """End every leg; DISCONNECTED callbacks follow on later polls."""
        if self.ep is not None:
            self.ep.hangupAllCalls()

    def destroy(self) -> None:
        """Shut pjsua2 down; every Leg, player and recorder must be released before.

        pjsua would otherwise wait a full second for responses to its last requests; the
        worker has already let its BYEs complete, so it skips that wait.
        """
        if self.account is not None:
            try:
                self.account.shutdown()
            except Exception:
                log.exception("account shutdown failed")
            self.account = None
        if self.ep is not None:
            self.ep.libDestroy(pj.PJSUA_DESTROY_NO_RX_MSG)
            self.ep = None
        self._log_writer = None
