"""A genesis state plus a block applier for market tests (the pure state machine, no node)."""
from __future__ import annotations

from pocnet.ledger.genesis import Genesis, ValidatorInfo
from pocnet.ledger.keys import KeyPair
from pocnet.ledger.state_machine import get_account
from tests.chain_support import PureChain

OPENER = KeyPair.from_seed(b"\x71" * 32)
MRPS = [KeyPair.from_seed(bytes([0x72 + i]) * 32) for i in range(4)]
MSPS = [KeyPair.from_seed(bytes([0x80 + i]) * 32) for i in range(6)]
FUNDS = 10**12


class MarketChain(PureChain):
    def __init__(self, chain_id: str = "market-test", market: dict | None = None) -> None:
        balances = {k.address: FUNDS for k in [OPENER] + MRPS + MSPS}
        super().__init__(Genesis(chain_id, 0, (ValidatorInfo("v0", OPENER.address, "http://127.0.0.1:1"),),
                                 balances, market=market or {}), OPENER.address)

    def balance(self, key: KeyPair) -> int:
        return get_account(self.state, key.address)["balance"]

    def round(self, rid: int) -> dict:
        from pocnet.ledger.txtypes.market import NS_ROUND, round_key
        return self.state.get(NS_ROUND, round_key(rid))
