"""Shared test material for the on-chain FML round: keys, learner profiles, honest reports."""
from __future__ import annotations

import random

from pocnet.games.cost import completion_time, cycles_per_round
from pocnet.games.params import GameParams
from pocnet.games.profile import LearnerProfile
from pocnet.games.round import MemberReport, RoundPlan
from pocnet.ledger.keys import KeyPair

MSP = KeyPair.from_seed(b"\x51" * 32)
LEARNERS = [KeyPair.from_seed(bytes([0x60 + i]) * 32) for i in range(12)]
DIM = 6


def profiles(n: int = 8, seed: int = 3, dim: int = DIM) -> list[LearnerProfile]:
    """n learners with docs/model.md-range devices and two embedding clusters (so similarity matters)."""
    rng = random.Random(seed)
    out = []
    for i, k in enumerate(LEARNERS[:n]):
        base = [1.0 if d % 2 == i % 2 else 0.1 for d in range(dim)]
        f_min = rng.uniform(0.1e9, 0.5e9)
        out.append(LearnerProfile(
            address=k.address, data_size=float(rng.randint(200, 900)), kappa=1e-26,
            f_min=f_min, f_max=rng.uniform(1.0e9, 2.0e9), rate=rng.uniform(2e6, 10e6),
            tolerated_time=rng.uniform(5.0, 15.0),
            embedding=tuple(x + rng.uniform(-0.05, 0.05) for x in base), active=True))
    return out


def as_on_chain(p: LearnerProfile) -> LearnerProfile:
    """The profile the chain sees after register_payload/join_payload rounding."""
    from pocnet.fml.chain_client import join_payload, register_payload
    from pocnet.ledger.txtypes.fml_codec import profile_from_state
    return profile_from_state(p.address, register_payload(p), join_payload(1, p.embedding)["embedding"])


def honest_reports(plan: RoundPlan, params: GameParams, profs: list[LearnerProfile], head: str,
                   slow: float = 1.05) -> dict[str, MemberReport]:
    """A head's reports on its members: each finished a bit slower than its committed frequency allows."""
    by = {p.address: p for p in profs}
    out = {}
    for j, a in enumerate(plan.partition[head]):
        p = by[a]
        t = completion_time(cycles_per_round(p.data_size, params), plan.frequencies[a], p.rate, params)
        out[a] = MemberReport(loss_reduction=0.01 * (j + 1), grad_norm=1.5 + j, completion_time=t * slow,
                              work=1.0 + 0.01 * j)  # honest: every member within the full-pay band
    return out


def key_of(address: str) -> KeyPair:
    for k in LEARNERS + [MSP]:
        if k.address == address:
            return k
    raise KeyError(address)


class LocalChain:
    """A genesis state plus a block applier: the pure state machine with no node around it."""

    def __init__(self, chain_id: str = "fml-test", balance: int = 10**12, game_params: dict | None = None) -> None:
        from pocnet.ledger.genesis import Genesis, ValidatorInfo
        from pocnet.ledger.state_machine import genesis_state
        self.chain_id = chain_id
        self.genesis = Genesis(chain_id, 0, (ValidatorInfo("v0", MSP.address, "http://127.0.0.1:1"),),
                               {MSP.address: balance}, game_params=game_params or {})
        self.state = genesis_state(self.genesis)
        self.height = 0
        self.nonces: dict[str, int] = {}

    def tx(self, key: KeyPair, tx_type: str, payload: dict):
        """A signed tx with the sender's next nonce (the nonce is consumed even if the tx fails later)."""
        from pocnet.ledger.tx import sign_tx
        n = self.nonces.get(key.address, 0)
        self.nonces[key.address] = n + 1
        return sign_tx(key, self.chain_id, tx_type, n, payload)

    def ctx(self, height: int | None = None, prev_hash: str | None = None, beacon: str | None = None):
        from pocnet.ledger.state_machine import BlockContext
        h = self.height + 1 if height is None else height
        return BlockContext(self.chain_id, h, prev_hash or f"{h:064x}", 1000 * h, MSP.address,
                            beacon=beacon or f"{h:0128x}")

    def block(self, txs: list, prev_hash: str | None = None, beacon: str | None = None) -> None:
        from pocnet.ledger.state_machine import apply_block
        view = apply_block(self.state, txs, self.ctx(prev_hash=prev_hash, beacon=beacon))
        self.state.apply_writes(view.writes)
        self.height += 1

    def refuse(self, key: KeyPair, tx_type: str, payload: dict):
        """Apply one tx on a throwaway view; return the TxRejected (fails the test if it applies)."""
        from pocnet.ledger.errors import TxRejected
        from pocnet.ledger.state_machine import apply_tx
        from pocnet.ledger.tx import sign_tx
        n = self.nonces.get(key.address, 0)
        tx = sign_tx(key, self.chain_id, tx_type, n, payload)
        view = self.state.view()
        try:
            apply_tx(view, tx, self.ctx())
        except TxRejected as exc:
            return exc
        raise AssertionError(f"{tx_type} {payload} was accepted")
