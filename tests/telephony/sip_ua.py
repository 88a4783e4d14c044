"""A pjsua2 user agent for the SIP front tests, driven by JSON lines on stdin.

    python tests/telephony/sip_ua.py --port 5071 --rtp-port 21000 [--proxy sip:127.0.0.1:5099]

Incoming calls are answered 200 at once (``--hangup-after S`` hangs them up S seconds
later; ``--answer-after S`` rings S seconds first; ``--busy`` refuses them with 486). Every
connected call hears ``--wav`` (looped) and is recorded to ``--record-dir/<id>.wav``.
Commands, one JSON object per line on stdin:

    {"cmd": "call", "id": "c1", "uri": "sip:12348@127.0.0.1:5099"}
    {"cmd": "hangup", "id": "c1"}      {"cmd": "hangup_all"}      {"cmd": "quit"}

Events go to stdout as ``@@`` + JSON (pjsua2 prints start-up chatter to stdout too):
``ready``, ``incoming`` (sip_call_id, record_route), ``confirmed`` (ms from makeCall to the
2xx and to CONFIRMED), ``ended`` (code, reason), ``error``. pjsua2 stays on the main thread;
a reader thread only queues stdin lines.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time

import pjsua2 as pj

EVENTS = sys.stdout


def emit(kind: str, **data: object) -> None:
    EVENTS.write("@@" + json.dumps({"ev": kind, **data}) + "\n")
    EVENTS.flush()


class UaCall(pj.Call):
    def __init__(self, ua: Ua, acc: pj.Account, tag: str, call_id: int = pj.PJSUA_INVALID_ID):
        super().__init__(acc, call_id)
        self.ua = ua
        self.tag = tag
        self.started = time.monotonic()
        self.hangup_at: float | None = None
        self.got_2xx: float | None = None
        self.answer_at: float | None = None
        self.done = False
        self.media = None
        self.player = None
        self.recorder = None

    def onCallMediaState(self, prm) -> None:
        try:
            ci = self.getInfo()
            for mi in ci.media:
                if (mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE
                        and self.media is None):
                    self.media = self.getAudioMedia(mi.index)
                    if self.ua.wav:
                        self.player = pj.AudioMediaPlayer()
                        self.player.createPlayer(self.ua.wav, 0)
                        self.player.startTransmit(self.media)
                    if self.ua.record_dir:
                        self.recorder = pj.AudioMediaRecorder()
                        self.recorder.createRecorder(f"{self.ua.record_dir}/{self.tag}.wav")
                        self.media.startTransmit(self.recorder)
        except Exception as exc:  # never let an exception reach C++
            emit("error", where="onCallMediaState", detail=str(exc))

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        try:
            ci = self.getInfo()
            now = time.monotonic()
            if ci.state == pj.PJSIP_INV_STATE_CONNECTING and self.got_2xx is None:
                self.got_2xx = now
            elif ci.state == pj.PJSIP_INV_STATE_CONFIRMED:
                got = self.got_2xx or now
                emit("confirmed", id=self.tag, sip_call_id=ci.callIdString,
                     ms_2xx=round((got - self.started) * 1000, 3),
                     ms_confirmed=round((now - self.started) * 1000, 3))
                if self.ua.hangup_after > 0 and self.hangup_at is None:
                    self.hangup_at = now + self.ua.hangup_after
            elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                emit("ended", id=self.tag, sip_call_id=ci.callIdString,
                     code=ci.lastStatusCode, reason=ci.lastReason)
                self.done = True
                self.media = None
        except Exception as exc:  # never let an exception reach C++
            emit("error", where="onCallState", detail=str(exc))


class UaAccount(pj.Account):
    def __init__(self, ua: Ua):
        super().__init__()
        self.ua = ua

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        try:
            self.ua.seq += 1
            call = UaCall(self.ua, self, f"in{self.ua.seq}", prm.callId)
            self.ua.calls[call.tag] = call
            msg = prm.rdata.wholeMsg
            rr = [line.split(":", 1)[1].strip() for line in msg.splitlines()
                  if line.lower().startswith(("record-route:",))]
            ci = call.getInfo()
            emit("incoming", id=call.tag, sip_call_id=ci.callIdString, record_route=rr,
                 src=prm.rdata.srcAddress, request_line=msg.splitlines()[0])
            answer = pj.CallOpParam()
            if self.ua.busy:
                answer.statusCode = 486
            elif self.ua.answer_after > 0:
                answer.statusCode = 180
                call.answer_at = time.monotonic() + self.ua.answer_after
            else:
                answer.statusCode = 200
            call.answer(answer)
        except Exception as exc:
            emit("error", where="onIncomingCall", detail=str(exc))


class Ua:
    def __init__(self, args: argparse.Namespace):
        self.hangup_after: float = args.hangup_after
        self.answer_after: float = args.answer_after
        self.busy: bool = args.busy
        self.wav: str = args.wav
        self.record_dir: str = args.record_dir
        self.calls: dict[str, UaCall] = {}
        self.seq = 0
        self.commands: queue.Queue[str | None] = queue.Queue()
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = 32
        cfg.logConfig.level = 1
        cfg.logConfig.consoleLevel = 1
        cfg.medConfig.clockRate = 8000
        cfg.medConfig.sndClockRate = 8000
        cfg.medConfig.noVad = True
        self.ep.libInit(cfg)
        tcfg = pj.TransportConfig()
        tcfg.port = args.port
        tcfg.boundAddress = args.host
        tcfg.publicAddress = args.host
        self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        self.ep.libStart()
        self.ep.audDevManager().setNullDev()
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{args.name}@{args.host}:{args.port}"
        acfg.mediaConfig.transportConfig.port = args.rtp_port
        acfg.mediaConfig.transportConfig.portRange = 64
        acfg.mediaConfig.transportConfig.boundAddress = args.host
        acfg.natConfig.iceEnabled = False
        acfg.natConfig.sdpNatRewriteUse = 0
        acfg.natConfig.viaRewriteUse = 0
        acfg.natConfig.contactRewriteUse = 0
        if args.proxy:
            acfg.sipConfig.proxies.append(args.proxy + ";lr")
        self.acc = UaAccount(self)
        self.acc.create(acfg)

    def read_stdin(self) -> None:
        for line in sys.stdin:
            self.commands.put(line)
        self.commands.put(None)

    def command(self, line: str) -> bool:
        try:
            cmd = json.loads(line)
        except ValueError:
            emit("error", where="command", detail=line.strip())
            return True
        kind = cmd.get("cmd")
        if kind == "quit":
            return False
        if kind == "call":
            call = UaCall(self, self.acc, cmd["id"])
            self.calls[call.tag] = call
            try:
                call.started = time.monotonic()
                call.makeCall(cmd["uri"], pj.CallOpParam(True))
            except pj.Error as exc:
                emit("ended", id=call.tag, code=-1, reason=exc.info())
                call.done = True
        elif kind == "hangup":
            self.hangup(self.calls.get(cmd["id"]))
        elif kind == "hangup_all":
            for call in list(self.calls.values()):
                self.hangup(call)
        return True

    def hangup(self, call: UaCall | None) -> None:
        if call is None or call.done:
            return
        try:
            call.hangup(pj.CallOpParam(True))
        except pj.Error as exc:
            emit("error", where="hangup", detail=exc.info())

    def run(self) -> None:
        threading.Thread(target=self.read_stdin, daemon=True).start()
        emit("ready")
        running = True
        while running:
            self.ep.libHandleEvents(20)
            while True:
                try:
                    line = self.commands.get_nowait()
                except queue.Empty:
                    break
                if line is None or not self.command(line):
                    running = False
                    break
            self.tick()
        self.shutdown()

    def tick(self) -> None:
        # A method of its own so no loop variable keeps a Call alive past libDestroy().
        now = time.monotonic()
        for tag, call in list(self.calls.items()):
            if call.answer_at is not None and now >= call.answer_at and not call.done:
                call.answer_at = None
                answer = pj.CallOpParam()
                answer.statusCode = 200
                call.answer(answer)
            if call.hangup_at is not None and now >= call.hangup_at and not call.done:
                call.hangup_at = None
                self.hangup(call)
            if call.done:
                call.player = call.recorder = None
                del self.calls[tag]

    def shutdown(self) -> None:
        self.ep.hangupAllCalls()
        deadline = time.monotonic() + 2
        while self.calls and time.monotonic() < deadline:
            self.ep.libHandleEvents(20)
            for tag in [t for t, c in self.calls.items() if c.done]:
                del self.calls[tag]
        self.calls.clear()
        self.acc.shutdown()
        del self.acc
        self.ep.libDestroy()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rtp-port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--name", default="ua")
    parser.add_argument("--proxy", default="")
    parser.add_argument("--hangup-after", type=float, default=0.0)
    parser.add_argument("--answer-after", type=float, default=0.0)
    parser.add_argument("--busy", action="store_true")
    parser.add_argument("--wav", default="")
    parser.add_argument("--record-dir", default="")
    Ua(parser.parse_args()).run()


if __name__ == "__main__":
    main()
