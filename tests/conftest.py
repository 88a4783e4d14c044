"""Fixtures shared across test folders."""

import socket
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hotline.callcenter import CallCenter
from hotline.config import load_settings
from hotline.ivr.registry import FlowRegistry
from hotline.ivr.tts import PromptAudio
from hotline.ledger import Ledger
from hotline.store.engine import make_engine, make_session_factory
from hotline.store.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]


def free_block(size: int) -> int:
    """A base port with ``size`` consecutive free UDP and TCP ports on loopback."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + size > 65000:
            continue
        held = []
        try:
            for port in range(base, base + size):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(socket.AF_INET, kind)
                    held.append(s)
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
        return base
    raise RuntimeError("no free port block on loopback")


@pytest.fixture
def port_block():
    """``port_block(n)`` → the first of n free consecutive ports."""
    return free_block


@pytest.fixture
def make_center(tmp_path):
    """``make_center(**env)`` → (CallCenter, sent commands, session factory, ledger).

    The coordinator with a scripted worker: real ledger (SQLite), real flows and prompt
    audio; what it sends to workers is appended to ``sent`` as (worker, message).
    """
    made = []

    def make(**env):
        url = f"sqlite:///{tmp_path / 'h.db'}"
        settings = load_settings(environ={
            "HOTLINE_DATABASE_URL": url, "HOTLINE_PATHS_FLOWS": str(ROOT / "ivr_flows"),
            "HOTLINE_PATHS_VAR": str(tmp_path / "var"),
            "HOTLINE_PATHS_RECORDINGS": str(tmp_path / "rec"),
            "HOTLINE_TELEPHONY_QUEUE_WAIT": "5", **env})
        upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        ledger = Ledger(factory)
        sent = []
        # Office hours (a Tuesday morning in Shanghai), advancing with real time for timers.
        base = datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
        t0 = time.monotonic()
        cc = CallCenter(settings, FlowRegistry(settings),
                        PromptAudio(tmp_path / "var" / "prompts"), ledger,
                        lambda worker, msg: sent.append((worker, msg)) or True,
                        now=lambda: base + timedelta(seconds=time.monotonic() - t0))
        made.append((ledger, engine))
        return cc, sent, factory, ledger

    yield make
    for ledger, engine in made:
        ledger.close()
        engine.dispose()
