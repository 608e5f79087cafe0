"""Client side of the on-chain market: float prices/demands <-> chain quanta, post, wait, read.

Off-chain only (agents, tests, experiments). Conversions round half to even on the
exact binary value of the float (``games.quantize``), so a given float always gives
the same integer on every machine.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

from pocnet.games.quantize import quantize
from pocnet.ledger.keys import KeyPair
from pocnet.node.client import PeerClient


def price_quanta(price: float, params: dict[str, int]) -> int:
    return max(1, min(params["p_max"], quantize(price, params["price_scale"])))


def demand_quanta(demands: Sequence[float], params: dict[str, int]) -> list[int]:
    return [max(0, quantize(float(b), params["demand_scale"])) for b in demands]


class MarketClient:
    """One peer's view of the market; each sender should always use the same peer (nonce order)."""

    def __init__(self, url: str) -> None:
        self.peer = PeerClient(url)
        self._params: dict[str, int] | None = None

    def close(self) -> None:
        self.peer.close()

    @property
    def params(self) -> dict[str, int]:
        if self._params is None:
            self._params = self.peer._get("/market/params")
        return self._params

    def open(self, key: KeyPair, leaders: Sequence[str], followers: Sequence[str], price_blocks: int,
             demand_blocks: int) -> str:
        tx = self.peer.sign_and_submit(key, "market_open", {
            "leaders": list(leaders), "followers": list(followers), "price_blocks": price_blocks,
            "demand_blocks": demand_blocks})
        return tx.hash

    def round_id_of(self, open_tx: str, timeout_s: float = 60) -> int:
        self.peer.wait_committed(open_tx, timeout_s)
        for r in self.peer._get("/market/rounds?limit=1000")["rounds"]:
            if r["open_tx"] == open_tx:
                return int(r["id"])
        raise RuntimeError(f"no market round opened by {open_tx}")

    def post_price(self, key: KeyPair, rid: int, price: float) -> str:
        return self.peer.sign_and_submit(key, "market_price",
                                         {"round": rid, "price": price_quanta(price, self.params)}).hash

    def post_demands(self, key: KeyPair, rid: int, demands: Sequence[float]) -> str:
        return self.peer.sign_and_submit(key, "market_demand",
                                         {"round": rid, "demands": demand_quanta(demands, self.params)}).hash

    def round(self, rid: int) -> dict[str, Any]:
        return self.peer._get(f"/market/rounds/{rid}")

    def wait_phase(self, rid: int, phases: Sequence[str], timeout_s: float = 60) -> dict[str, Any]:
        end = time.monotonic() + timeout_s
        while True:
            rec = self.round(rid)
            if rec["phase"] in phases:
                return rec
            if time.monotonic() > end:
                raise TimeoutError(f"market round {rid} still {rec['phase']!r} after {timeout_s} s")
            time.sleep(0.1)


def posted_point(rec: dict[str, Any]) -> tuple[list[float], list[list[float]]]:
    """Prices (M,) and demands (N x M) of a round record, as floats (missing entries -> 0)."""
    ps, ds = rec["params"]["price_scale"], rec["params"]["demand_scale"]
    prices = [rec["prices"].get(a, 0) / ps for a in rec["leaders"]]
    demands = [[x / ds for x in rec["demands"].get(f, [0] * len(rec["leaders"]))] for f in rec["followers"]]
    return prices, demands
