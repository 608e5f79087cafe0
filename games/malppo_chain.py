"""MALPPO agents trading through a pocnet cluster: every slot is one on-chain market round.

Leaders post prices (``market_price``), followers read the posted prices back from
state and post demands (``market_demand``, payments escrowed), the round settles at
end-block, and the next observations are the last L settled rounds read from
``GET /market/rounds`` — public data only. Rewards are each agent's own utility of
the posted point (its private type never leaves it).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from pocnet.games import market as mk
from pocnet.games.malppo import LearnConfig, MarketEnv
from pocnet.games.market_chain import MarketClient, posted_point
from pocnet.ledger.keys import KeyPair


class ChainMarketEnv(MarketEnv):
    def __init__(self, inst: mk.MarketInstance, cfg: LearnConfig, rng: np.random.Generator, urls: Sequence[str],
                 opener: KeyPair, leaders: Sequence[KeyPair], followers: Sequence[KeyPair],
                 price_blocks: int = 50, demand_blocks: int = 50, timeout_s: float = 60) -> None:
        super().__init__(inst, cfg, rng)
        if len(leaders) != inst.m or len(followers) != inst.n:
            raise ValueError("one key per MRP and per MSP")
        self.clients = [MarketClient(u) for u in urls]
        self.opener, self.leaders, self.followers = opener, list(leaders), list(followers)
        self.price_blocks, self.demand_blocks, self.timeout_s = price_blocks, demand_blocks, timeout_s
        self.rid: int | None = None
        self.rounds: list[int] = []

    def _client(self, k: int) -> MarketClient:
        return self.clients[k % len(self.clients)]  # each agent always talks to the same peer

    def reset(self) -> None:
        """History = the last L settled rounds of these participants on chain (random before there are L)."""
        super().reset()
        recs = [self.clients[0].round(r) for r in self.rounds[-self.cfg.history:]]
        for rec in recs:
            p, b = posted_point(rec)
            self.hist.append((np.array(p), np.array(b)))

    def post_prices(self, prices: np.ndarray) -> np.ndarray:
        c0 = self.clients[0]
        open_tx = c0.open(self.opener, [k.address for k in self.leaders], [k.address for k in self.followers],
                          self.price_blocks, self.demand_blocks)
        self.rid = c0.round_id_of(open_tx, self.timeout_s)
        for j, k in enumerate(self.leaders):
            self._client(j).post_price(k, self.rid, float(prices[j]))
        rec = c0.wait_phase(self.rid, ["demand"], self.timeout_s)
        return np.array(posted_point(rec)[0])

    def step(self, prices: np.ndarray, demands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.rid is not None
        for i, k in enumerate(self.followers):
            self._client(self.inst.m + i).post_demands(k, self.rid, demands[i].tolist())
        rec = self.clients[-1].wait_phase(self.rid, ["settled"], self.timeout_s)
        self.rounds.append(self.rid)
        p, b = posted_point(rec)
        return super().step(np.array(p), np.array(b))

    def close(self) -> None:
        for c in self.clients:
            c.close()
