"""Single-validator block production: propose, self-sign the commit, persist.

Used when genesis has one validator; it drives the same Chain interface the BFT
driver uses (build_block → commit), so the REST API and storage behave the same.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from pocnet.ledger.block import Commit, sign_precommit
from pocnet.ledger.tx import Tx

if TYPE_CHECKING:
    from pocnet.node.node import Node

log = logging.getLogger("pocnet.solo")


class SoloDriver:
    def __init__(self, node: "Node") -> None:
        self.node = node
        self._wake = asyncio.Event()
        self.blocks_made = 0

    def on_new_tx(self, tx: Tx) -> None:
        self._wake.set()

    def status(self) -> dict[str, Any]:
        return {"engine": "solo", "validators": 1, "blocks_made": self.blocks_made}

    async def run(self) -> None:
        from pocnet.node.node import now_ms
        node = self.node
        if node.key.address != node.genesis.validators[0].address:
            return
        params = node.chain.params
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=params.empty_block_interval_ms / 1000)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            self.make_block(now_ms())
            if len(node.mempool):
                self._wake.set()
            await asyncio.sleep(params.block_interval_ms / 1000)

    def make_block(self, now: int) -> None:
        node = self.node
        chain = node.chain
        with chain.lock:
            proposal, rejected = chain.build_block(0, node.key.address, now,
                                                   node.mempool.reap(chain.params.max_block_txs))
            block = proposal.block
            sig = sign_precommit(node.key, chain.chain_id, block.height, 0, block.hash)
            chain.commit(block, proposal.result, Commit(block.height, 0, block.hash, (sig,)))
            node.on_block_committed([t.hash for t in block.txs] + [t.hash for t, _ in rejected])
        self.blocks_made += 1
        log.info("committed height %d with %d txs (hash %s)", block.height, len(block.txs), block.hash[:16])
