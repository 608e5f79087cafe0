"""[VTM]'s bandwidth market on chain: rounds that clear and settle posted prices and demands.

Lifecycle (docs/market.md § On chain):

* ``market_open`` ``{"leaders": [addr], "followers": [addr], "price_blocks": int, "demand_blocks": int}``
  — anyone opens a round; prices may be posted up to height ``opened + price_blocks``
  (the price deadline), demands up to ``price_deadline + demand_blocks``.
* ``market_price`` ``{"round": id, "price": int}`` — a leader (MRP) posts its price once,
  in price quanta, 1 <= price <= p_max.
* End-block: a round in ``pricing`` whose leaders have all posted, or whose price
  deadline is reached, moves to ``demand`` (``cancelled`` when nobody posted).
* ``market_demand`` ``{"round": id, "demands": [int per leader]}`` — a follower (MSP)
  posts its demand vector once, in demand quanta (0 for a leader without a price);
  its payment to every MRP is computed from the posted prices and **escrowed** now.
* End-block: a round in ``demand`` whose followers have all posted, or whose
  demand deadline is reached, settles: each MRP is credited what every MSP escrowed for it.

Payments (the expected payment of eq. 1, theta_j kappa p_j b_ij) in exact integer
arithmetic: theta_j p_j = 1 / sum_l (1/p_l), so with integer prices P_l (quanta),

    pay_ij = floor(token_scale * kappa_milli * B_ij * prod(P) / (1000 * demand_scale * price_scale * sum_l prod_{m!=l} P_m))

No float, no libm: every peer computes the same integers. The chain never sees
private types (costs, satisfaction, delay bounds) and never solves the game.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from pocnet.ledger.errors import Code, TxRejected
from pocnet.ledger.genesis import Genesis
from pocnet.ledger.state import StateView
from pocnet.ledger.state_machine import (BlockContext, get_account, register_end_block, register_genesis,
                                         register_handler, set_account)
from pocnet.ledger.tx import Tx
from pocnet.ledger.txtypes.common import MAX_INT, address_field, exact_fields, int_field

NS = "mkt"              # keys: "params", "round_seq", "open" (ids of rounds not yet settled)
NS_ROUND = "mkt_round"  # round key -> the round record

PHASE_PRICING = "pricing"
PHASE_DEMAND = "demand"
PHASE_SETTLED = "settled"
PHASE_CANCELLED = "cancelled"
PHASES = (PHASE_PRICING, PHASE_DEMAND, PHASE_SETTLED, PHASE_CANCELLED)

MAX_PARTICIPANTS = 16
MAX_PHASE_BLOCKS = 100_000
MAX_DEMAND_UNITS = 10**6  # a follower buys at most 10^6 bandwidth units (B0 each) per MRP

# Genesis "market" object: integer quanta only.
DEFAULT_PARAMS: dict[str, int] = {
    "price_scale": 1_000_000,   # price quanta per unit price (tokens per B0 of bandwidth)
    "demand_scale": 1_000_000,  # demand quanta per unit of bandwidth (B0 = 10^7 Hz)
    "token_scale": 1_000_000,   # balance units per token
    "kappa_milli": 15_500,      # kappa x 1000 (payment scale, docs/market.md)
    "p_max": 1_500_000,         # price cap in price quanta (1.5)
}
_PARAM_RANGES = {"price_scale": (1, 10**9), "demand_scale": (1, 10**9), "token_scale": (1, 10**9),
                 "kappa_milli": (1, 10**9), "p_max": (1, 10**12)}


def params_from_genesis(raw: Mapping[str, Any] | None) -> dict[str, int]:
    """Genesis ``market`` over the defaults; ValueError names a bad key (ints only, no floats)."""
    out = dict(DEFAULT_PARAMS)
    for key, value in (raw or {}).items():
        if key not in _PARAM_RANGES:
            raise ValueError(f"genesis: market.{key}: unknown parameter")
        lo, hi = _PARAM_RANGES[key]
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise ValueError(f"genesis: market.{key}: must be an integer in [{lo}, {hi}]")
        out[key] = value
    return out


def round_key(rid: int) -> str:
    return f"{rid:012d}"


def _prod(xs: list[int]) -> int:
    out = 1
    for x in xs:
        out *= x
    return out


def theta_parts(prices: list[int]) -> tuple[list[int], int]:
    """theta_j = num_j / den with num_j = prod_{m != j} P_m and den = sum_l num_l (exact)."""
    nums = [_prod(prices[:j] + prices[j + 1:]) for j in range(len(prices))]
    return nums, sum(nums)


def payment(params: Mapping[str, int], prices: list[int], demand: int) -> int:
    """Balance units an MSP pays one MRP for ``demand`` quanta: floor(theta_j kappa p_j b), exact."""
    if demand == 0:
        return 0
    _, den = theta_parts(prices)
    num = params["token_scale"] * params["kappa_milli"] * demand * _prod(prices)
    return num // (1000 * params["demand_scale"] * params["price_scale"] * den)


def theta_ppm(prices: list[int]) -> list[int]:
    nums, den = theta_parts(prices)
    return [n * 1_000_000 // den for n in nums]


def _round_of(view: StateView, rid: int) -> dict[str, Any]:
    rec = view.get(NS_ROUND, round_key(rid))
    if rec is None:
        raise TxRejected("payload.round", f"no market round {rid}", Code.UNMET)
    return rec


def _require_phase(rec: dict[str, Any], phase: str) -> None:
    if rec["phase"] != phase:
        raise TxRejected("payload.round", f"market round {rec['id']} is in phase {rec['phase']!r}, "
                         f"this transaction needs {phase!r}", Code.CONFLICT)


def _address_list(payload: dict[str, Any], name: str) -> list[str]:
    value = payload[name]
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_PARTICIPANTS:
        raise TxRejected(f"payload.{name}", f"must be a list of 1..{MAX_PARTICIPANTS} addresses")
    out = [address_field({f"{name}[{i}]": a}, f"{name}[{i}]") for i, a in enumerate(value)]
    if len(set(out)) != len(out):
        raise TxRejected(f"payload.{name}", "lists an address twice")
    return out


# ----------------------------------------------------------------- market_open
@dataclass(frozen=True)
class OpenPayload:
    leaders: list[str]
    followers: list[str]
    price_blocks: int
    demand_blocks: int


class OpenHandler:
    tx_type = "market_open"

    def check_payload(self, payload: dict[str, Any]) -> OpenPayload:
        exact_fields(payload, ("leaders", "followers", "price_blocks", "demand_blocks"))
        leaders = _address_list(payload, "leaders")
        followers = _address_list(payload, "followers")
        both = set(leaders) & set(followers)
        if both:
            raise TxRejected("payload.followers", f"{sorted(both)[0][:16]}... is both a leader and a follower")
        return OpenPayload(leaders, followers, int_field(payload, "price_blocks", 1, MAX_PHASE_BLOCKS),
                           int_field(payload, "demand_blocks", 1, MAX_PHASE_BLOCKS))

    def check_state(self, view: StateView, tx: Tx, p: OpenPayload) -> None:
        return None

    def apply(self, view: StateView, tx: Tx, p: OpenPayload, ctx: BlockContext) -> None:
        rid = view.get(NS, "round_seq", 0) + 1
        view.set(NS, "round_seq", rid)
        price_deadline = ctx.height + p.price_blocks
        view.set(NS_ROUND, round_key(rid), {
            "id": rid, "opener": tx.sender, "open_tx": tx.hash, "phase": PHASE_PRICING,
            "leaders": p.leaders, "followers": p.followers, "params": view.get(NS, "params"),
            "opened_height": ctx.height, "price_deadline": price_deadline,
            "demand_deadline": price_deadline + p.demand_blocks, "prices": {}, "theta_ppm": {},
            "demands": {}, "payments": {}, "escrow": 0, "paid": {}, "demand_height": None,
            "settled_height": None,
        })
        view.set(NS, "open", list(view.get(NS, "open", [])) + [rid])


# ----------------------------------------------------------------- market_price
@dataclass(frozen=True)
class PricePayload:
    round: int
    price: int


class PriceHandler:
    tx_type = "market_price"

    def check_payload(self, payload: dict[str, Any]) -> PricePayload:
        exact_fields(payload, ("round", "price"))
        price = payload["price"]
        if isinstance(price, int) and not isinstance(price, bool) and price <= 0:
            raise TxRejected("payload.price", f"must be > 0 price quanta (got {price}); theta_j needs 1/p_j")
        return PricePayload(int_field(payload, "round", 1, MAX_INT), int_field(payload, "price", 1, MAX_INT))

    def check_state(self, view: StateView, tx: Tx, p: PricePayload) -> None:
        rec = _round_of(view, p.round)
        if tx.sender not in rec["leaders"]:
            raise TxRejected("sender", f"not a leader (MRP) of market round {p.round}", Code.FORBIDDEN)
        _require_phase(rec, PHASE_PRICING)
        if tx.sender in rec["prices"]:
            raise TxRejected("sender", f"already posted a price in market round {p.round}", Code.CONFLICT)
        if p.price > rec["params"]["p_max"]:
            raise TxRejected("payload.price", f"must be in [1, p_max = {rec['params']['p_max']}] price quanta "
                             f"(got {p.price})", Code.UNMET)

    def apply(self, view: StateView, tx: Tx, p: PricePayload, ctx: BlockContext) -> None:
        rec = view.get_copy(NS_ROUND, round_key(p.round))
        rec["prices"] = dict(rec["prices"], **{tx.sender: p.price})
        view.set(NS_ROUND, round_key(p.round), rec)


# ----------------------------------------------------------------- market_demand
@dataclass(frozen=True)
class DemandPayload:
    round: int
    demands: list[int]


class DemandHandler:
    tx_type = "market_demand"

    def check_payload(self, payload: dict[str, Any]) -> DemandPayload:
        exact_fields(payload, ("round", "demands"))
        value = payload["demands"]
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_PARTICIPANTS:
            raise TxRejected("payload.demands", f"must be a list of 1..{MAX_PARTICIPANTS} integers (one per leader)")
        for i, x in enumerate(value):
            if not isinstance(x, int) or isinstance(x, bool):
                raise TxRejected(f"payload.demands[{i}]", "must be an integer (demand quanta)")
            if x < 0:
                raise TxRejected(f"payload.demands[{i}]", f"must be >= 0 (got {x})")
            if x > MAX_DEMAND_UNITS * 10**9:
                raise TxRejected(f"payload.demands[{i}]", "too large")
        return DemandPayload(int_field(payload, "round", 1, MAX_INT), list(value))

    def _payments(self, rec: dict[str, Any], demands: list[int]) -> list[int]:
        leaders = rec["leaders"]
        posted = [a for a in leaders if a in rec["prices"]]
        prices = [rec["prices"][a] for a in posted]
        return [payment(rec["params"], prices, d) if a in rec["prices"] else 0 for a, d in zip(leaders, demands)]

    def check_state(self, view: StateView, tx: Tx, p: DemandPayload) -> None:
        rec = _round_of(view, p.round)
        if tx.sender not in rec["followers"]:
            raise TxRejected("sender", f"not a follower (MSP) of market round {p.round}", Code.FORBIDDEN)
        _require_phase(rec, PHASE_DEMAND)
        if tx.sender in rec["demands"]:
            raise TxRejected("sender", f"already posted demands in market round {p.round}", Code.CONFLICT)
        leaders = rec["leaders"]
        if len(p.demands) != len(leaders):
            raise TxRejected("payload.demands", f"market round {p.round} has {len(leaders)} leaders; "
                             f"got {len(p.demands)} demands", Code.UNMET)
        limit = MAX_DEMAND_UNITS * rec["params"]["demand_scale"]
        for i, (a, d) in enumerate(zip(leaders, p.demands)):
            if d > limit:
                raise TxRejected(f"payload.demands[{i}]", f"must be <= {limit} demand quanta", Code.UNMET)
            if d and a not in rec["prices"]:
                raise TxRejected(f"payload.demands[{i}]", "this leader posted no price; demand must be 0", Code.UNMET)
        need = sum(self._payments(rec, p.demands))
        balance = get_account(view, tx.sender)["balance"]
        if balance < need:
            raise TxRejected("payload.demands", f"insufficient balance to escrow the payments: have {balance}, "
                             f"need {need}", Code.UNMET)

    def apply(self, view: StateView, tx: Tx, p: DemandPayload, ctx: BlockContext) -> None:
        key = round_key(p.round)
        rec = view.get_copy(NS_ROUND, key)
        pays = self._payments(rec, p.demands)
        acct = get_account(view, tx.sender)
        acct["balance"] -= sum(pays)
        set_account(view, tx.sender, acct)
        rec["demands"] = dict(rec["demands"], **{tx.sender: list(p.demands)})
        rec["payments"] = dict(rec["payments"], **{tx.sender: pays})
        rec["escrow"] += sum(pays)
        view.set(NS_ROUND, key, rec)


# ----------------------------------------------------------------- end-block: phases and settlement
def _settle(view: StateView, rec: dict[str, Any], height: int) -> None:
    paid = {a: 0 for a in rec["leaders"]}
    for pays in rec["payments"].values():
        for a, amount in zip(rec["leaders"], pays):
            paid[a] += amount
    for a in rec["leaders"]:
        if paid[a]:
            acct = get_account(view, a)
            if acct["balance"] + paid[a] > MAX_INT:
                raise ValueError("market settlement would overflow a balance")
            acct["balance"] += paid[a]
            set_account(view, a, acct)
    if sum(paid.values()) != rec["escrow"]:
        raise ValueError(f"market round {rec['id']}: payments do not add up to the escrow")
    rec.update(phase=PHASE_SETTLED, paid=paid, escrow=0, settled_height=height)


def _end_block(view: StateView, ctx: BlockContext) -> None:
    open_ids = view.get(NS, "open", [])
    if not open_ids:
        return
    still = []
    for rid in open_ids:
        key = round_key(rid)
        rec = view.get_copy(NS_ROUND, key)
        if rec["phase"] == PHASE_PRICING and (len(rec["prices"]) == len(rec["leaders"])
                                              or ctx.height >= rec["price_deadline"]):
            if rec["prices"]:
                posted = [a for a in rec["leaders"] if a in rec["prices"]]
                rec.update(phase=PHASE_DEMAND, demand_height=ctx.height,
                           theta_ppm=dict(zip(posted, theta_ppm([rec["prices"][a] for a in posted]))))
            else:
                rec.update(phase=PHASE_CANCELLED, settled_height=ctx.height)
        elif rec["phase"] == PHASE_DEMAND and (len(rec["demands"]) == len(rec["followers"])
                                               or ctx.height >= rec["demand_deadline"]):
            _settle(view, rec, ctx.height)
        if rec != view.get(NS_ROUND, key):
            view.set(NS_ROUND, key, rec)
        if rec["phase"] in (PHASE_PRICING, PHASE_DEMAND):
            still.append(rid)
    if still != list(open_ids):
        view.set(NS, "open", still)


def _genesis(view: StateView, genesis: Genesis) -> None:
    view.set(NS, "params", params_from_genesis(genesis.market))


register_genesis("market", _genesis)
register_end_block("market", _end_block)
for _h in (OpenHandler(), PriceHandler(), DemandHandler()):
    register_handler(_h)
