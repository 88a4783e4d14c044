"""Fixtures shared across test folders."""

import socket

import pytest


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
