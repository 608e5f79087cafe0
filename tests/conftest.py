"""Shared fixtures: temporary chain homes and free loopback ports."""
from __future__ import annotations

import os
import random
import socket
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _ephemeral_low() -> int:
    try:
        return int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port_block(n: int) -> int:
    """A base port such that base..base+n-1 are free on 127.0.0.1 right now.

    Drawn below the kernel's ephemeral range, so outgoing connections (httpx, gossip)
    cannot grab a port between this check and the peer binding it.
    """
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    hi = min(_ephemeral_low(), 65000) - n
    for _ in range(500):
        base = rng.randrange(20000, max(20001, hi))
        ok = True
        for p in range(base, base + n):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port block")


@pytest.fixture
def port_block():
    return free_port_block


@pytest.fixture
def cluster(tmp_path, port_block):
    """A started 4-peer cluster of real processes (tests.cluster_helpers.Cluster), stopped after the test.

    Modules that need other settings (consensus timeouts, byzantine peers) define their own ``cluster``.
    """
    from tests.cluster_helpers import Cluster

    c = Cluster(tmp_path / "net", port_block(4))
    try:
        yield c.start_all()
    finally:
        c.stop_all()
