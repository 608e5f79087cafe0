"""Block sync: fetch committed blocks with their commit certificates and verify them.

A block is accepted only if its certificate holds ≥ quorum valid precommit
signatures from the validator set of its height over its hash (the driver reads that
set from committed state: joins, leaves and jail take effect two heights after commit), and
re-executing it on our
state reproduces its ``state_root``. Tx signatures are not re-verified: the
certificate proves ≥ f+1 honest validators executed and validated the block.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx

from pocnet.ledger.block import Block, Commit
from pocnet.p2p.blocks import parse_block
from pocnet.p2p.wire import BadMessage

log = logging.getLogger("pocnet.sync")


def check_certificate(block: Block, chain_id: str, validators: set[str], quorum: int) -> Commit:
    """The block's commit certificate, checked (quorum of valid precommit signatures); else BadMessage."""
    c = block.commit
    if c is None:
        raise BadMessage("sync:no_commit")
    if c.block_hash != block.hash or c.height != block.height:
        raise BadMessage("sync:commit_mismatch")
    reason = c.verify(chain_id, validators, quorum)
    if reason:
        raise BadMessage(f"sync:bad_commit:{reason}")
    return c


async def fetch_blocks(client: httpx.AsyncClient, url: str, start: int, limit: int,
                       chain_id: str) -> list[Block]:
    r = await client.get(url.rstrip("/") + "/blocks", params={"from": start, "limit": limit})
    r.raise_for_status()
    data: dict[str, Any] = r.json()
    return [parse_block(d, chain_id, lambda _h: None, verify_signatures=False) for d in data.get("blocks", [])]


async def peer_heights(client: httpx.AsyncClient, peers: dict[str, str],
                       blocked: Callable[[str], bool]) -> dict[str, int]:
    out: dict[str, int] = {}
    for pid, url in peers.items():
        if blocked(pid):
            continue
        try:
            r = await client.get(url.rstrip("/") + "/health", timeout=2.0)
            out[pid] = int(r.json()["height"])
        except (httpx.HTTPError, ValueError, KeyError):
            continue
    return out
