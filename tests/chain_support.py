"""The pure state machine with no node around it: a genesis state plus a block applier, for tx-rule tests.

Subclasses (tests/fmlchain/fmlchain_support.LocalChain, tests/market/market_chain_support.MarketChain)
choose the genesis; blocks get height h, prev_hash h as 64 hex digits unless given, time 1000 h ms,
and default_beacon(h) as the parent beacon.
"""
from __future__ import annotations

from pocnet.ledger.errors import TxRejected
from pocnet.ledger.genesis import Genesis
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.state_machine import BlockContext, apply_block, apply_tx, genesis_state
from pocnet.ledger.tx import Tx, sign_tx


class PureChain:
    def __init__(self, genesis: Genesis, proposer: str) -> None:
        self.chain_id = genesis.chain_id
        self.genesis = genesis
        self.proposer = proposer
        self.state = genesis_state(genesis)
        self.height = 0
        self.nonces: dict[str, int] = {}

    def tx(self, key: KeyPair, tx_type: str, payload: dict) -> Tx:
        """A signed tx with the sender's next nonce (the nonce is consumed even if the tx fails later)."""
        n = self.nonces.get(key.address, 0)
        self.nonces[key.address] = n + 1
        return sign_tx(key, self.chain_id, tx_type, n, payload)

    def default_beacon(self, height: int) -> str:
        """The parent beacon a block at ``height`` gets unless one is given (BlockContext's default here)."""
        return ""

    def ctx(self, height: int | None = None, prev_hash: str | None = None, beacon: str | None = None
            ) -> BlockContext:
        h = self.height + 1 if height is None else height
        return BlockContext(self.chain_id, h, prev_hash or f"{h:064x}", 1000 * h, self.proposer,
                            beacon=beacon or self.default_beacon(h))

    def block(self, txs: list | None = None, prev_hash: str | None = None, beacon: str | None = None) -> None:
        view = apply_block(self.state, txs or [], self.ctx(prev_hash=prev_hash, beacon=beacon))
        self.state.apply_writes(view.writes)
        self.height += 1

    def refuse(self, key: KeyPair, tx_type: str, payload: dict) -> TxRejected:
        """Apply one tx on a throwaway view (its nonce not consumed); return the TxRejected, or fail the test."""
        n = self.nonces.get(key.address, 0)
        tx = sign_tx(key, self.chain_id, tx_type, n, payload)
        view = self.state.view()
        try:
            apply_tx(view, tx, self.ctx())
        except TxRejected as exc:
            return exc
        raise AssertionError(f"{tx_type} {payload} was accepted")
