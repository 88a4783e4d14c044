"""A scripted SIP caller for the worker tests: a separate pjsua2 process, like a real phone.

    python tests/telephony/sip_caller.py --target sip:12348@127.0.0.1:5071 --calls 1 \
        --wav tone.wav --dtmf 1:2.0,0:2.6,i#:3.0 --hold 5 --result out.json

Each call plays ``--wav`` (looped) once confirmed, sends the ``--dtmf`` digits (RFC 2833;
``i``-prefixed ones as SIP INFO)
at the given seconds after CONFIRMED, and hangs up ``--hold`` seconds after CONFIRMED
(``--hold 0``: never, wait for the far end). The outcome of every call is written as JSON
to ``--result`` when all calls are over (stdout belongs to pjsua2's start-up chatter).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

import pjsua2 as pj


class Caller(pj.Call):
    def __init__(self, acc, index, script):
        super().__init__(acc)
        self.index = index
        self.script = script
        self.confirmed_at = None
        self.ended_at = None
        self.status = 0
        self.reason = ""
        self.media = None
        self.player = None
        self.events = []

    def onCallState(self, prm):
        try:
            ci = self.getInfo()
            if ci.state == pj.PJSIP_INV_STATE_CONFIRMED and self.confirmed_at is None:
                self.confirmed_at = time.monotonic()
            elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                self.ended_at = time.monotonic()
                self.status, self.reason = ci.lastStatusCode, ci.lastReason
        except Exception as exc:  # never let an exception reach C++
            print("onCallState:", exc, file=sys.stderr)

    def onCallMediaState(self, prm):
        try:
            ci = self.getInfo()
            for mi in ci.media:
                if (mi.type == pj.PJMEDIA_TYPE_AUDIO
                        and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE and self.media is None):
                    self.media = self.getAudioMedia(mi.index)
                    if self.script.wav:
                        self.player = pj.AudioMediaPlayer()
                        self.player.createPlayer(self.script.wav, 0)
                        self.player.startTransmit(self.media)
        except Exception as exc:
            print("onCallMediaState:", exc, file=sys.stderr)


def send_digit(call, spec):
    """``"5"`` goes as RFC 2833 (dialDtmf), ``"i5"`` as SIP INFO."""
    if spec.startswith("i"):
        prm = pj.CallSendDtmfParam()
        prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
        prm.digits = spec[1:]
        call.sendDtmf(prm)
    else:
        call.dialDtmf(spec)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--wav", default="")
    parser.add_argument("--dtmf", default="")
    parser.add_argument("--hold", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--result", required=True)
    parser.add_argument("--codecs", default="PCMA/8000/1,PCMU/8000/1",
                        help="codecs to offer, most wanted first")
    args = parser.parse_args()
    os.dup2(2, 1)  # pjsua2 prints to stdout; keep it out of any pipe the test reads

    digits = []
    for item in filter(None, args.dtmf.split(",")):
        digit, delay = item.split(":")
        digits.append((float(delay), digit))

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.maxCalls = 4
    cfg.medConfig.clockRate = 8000
    cfg.medConfig.sndClockRate = 8000
    cfg.medConfig.noVad = True
    cfg.medConfig.ecTailLen = 0
    cfg.logConfig.level = 1
    cfg.logConfig.consoleLevel = 1
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()
    tcfg = pj.TransportConfig()
    tcfg.port = 0
    tcfg.boundAddress = "127.0.0.1"
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.libStart()
    order = args.codecs.split(",")
    for codec in ep.codecEnum2():
        wanted = 250 - order.index(codec.codecId) if codec.codecId in order else 0
        ep.codecSetPriority(codec.codecId, wanted)
    acfg = pj.AccountConfig()
    acfg.idUri = "sip:13800138000@127.0.0.1"
    acfg.mediaConfig.transportConfig.port = random.randrange(30000, 39000, 2)
    acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    acc = pj.Account()
    acc.create(acfg, True)

    calls = []
    for i in range(args.calls):
        call = Caller(acc, i, args)
        prm = pj.CallOpParam(True)
        try:
            call.makeCall(args.target, prm)
        except Exception as exc:
            print("makeCall:", exc, file=sys.stderr)
            call.ended_at = time.monotonic()
            call.reason = f"makeCall failed: {exc}"
        calls.append(call)

    sent = {id(c): 0 for c in calls}
    hung = set()
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline and any(c.ended_at is None for c in calls):
        ep.libHandleEvents(20)
        now = time.monotonic()
        for c in calls:
            if c.confirmed_at is None or c.ended_at is not None:
                continue
            while sent[id(c)] < len(digits) and now - c.confirmed_at >= digits[sent[id(c)]][0]:
                try:
                    send_digit(c, digits[sent[id(c)]][1])
                except Exception as exc:
                    print("dialDtmf:", exc, file=sys.stderr)
                sent[id(c)] += 1
            if args.hold > 0 and now - c.confirmed_at >= args.hold and id(c) not in hung:
                hung.add(id(c))
                try:
                    c.hangup(pj.CallOpParam(True))
                except Exception as exc:
                    print("hangup:", exc, file=sys.stderr)
    ep.hangupAllCalls()
    end = time.monotonic() + 2
    while time.monotonic() < end and any(c.ended_at is None for c in calls):
        ep.libHandleEvents(20)
    settle = time.monotonic() + 0.2  # let the last BYE be answered; libDestroy won't wait
    while time.monotonic() < settle:
        ep.libHandleEvents(20)
    result = [{"confirmed": c.confirmed_at is not None, "status": c.status,
               "reason": c.reason,
               "seconds": (c.ended_at - c.confirmed_at)
               if c.confirmed_at is not None and c.ended_at is not None else None}
              for c in calls]
    with open(args.result, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    for c in calls:
        c.player = None
        c.media = None
    c = call = None
    calls.clear()
    acc.shutdown()
    del acc
    ep.libDestroy(pj.PJSUA_DESTROY_NO_RX_MSG)
    return 0


if __name__ == "__main__":
    sys.exit(main())
