"""A genesis state plus a block applier for market tests (the pure state machine, no node)."""
from __future__ import annotations

from pocnet.ledger.errors import TxRejected
from pocnet.ledger.genesis import Genesis, ValidatorInfo
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.state_machine import BlockContext, apply_block, apply_tx, genesis_state, get_account
from pocnet.ledger.tx import sign_tx

OPENER = KeyPair.from_seed(b"\x71" * 32)
MRPS = [KeyPair.from_seed(bytes([0x72 + i]) * 32) for i in range(4)]
MSPS = [KeyPair.from_seed(bytes([0x80 + i]) * 32) for i in range(6)]
FUNDS = 10**12


class MarketChain:
    def __init__(self, chain_id: str = "market-test", market: dict | None = None) -> None:
        self.chain_id = chain_id
        balances = {k.address: FUNDS for k in [OPENER] + MRPS + MSPS}
        self.genesis = Genesis(chain_id, 0, (ValidatorInfo("v0", OPENER.address, "http://127.0.0.1:1"),),
                               balances, market=market or {})
        self.state = genesis_state(self.genesis)
        self.height = 0
        self.nonces: dict[str, int] = {}

    def tx(self, key: KeyPair, tx_type: str, payload: dict):
        n = self.nonces.get(key.address, 0)
        self.nonces[key.address] = n + 1
        return sign_tx(key, self.chain_id, tx_type, n, payload)

    def ctx(self) -> BlockContext:
        h = self.height + 1
        return BlockContext(self.chain_id, h, f"{h:064x}", 1000 * h, OPENER.address)

    def block(self, txs: list | None = None) -> None:
        view = apply_block(self.state, txs or [], self.ctx())
        self.state.apply_writes(view.writes)
        self.height += 1

    def refuse(self, key: KeyPair, tx_type: str, payload: dict) -> TxRejected:
        n = self.nonces.get(key.address, 0)
        tx = sign_tx(key, self.chain_id, tx_type, n, payload)
        view = self.state.view()
        try:
            apply_tx(view, tx, self.ctx())
        except TxRejected as exc:
            return exc
        raise AssertionError(f"{tx_type} {payload} was accepted")

    def balance(self, key: KeyPair) -> int:
        return get_account(self.state, key.address)["balance"]

    def round(self, rid: int) -> dict:
        from pocnet.ledger.txtypes.market import NS_ROUND, round_key
        return self.state.get(NS_ROUND, round_key(rid))
