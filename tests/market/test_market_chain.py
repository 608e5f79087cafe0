"""On-chain market rounds in the pure state machine: lifecycle, integer settlement, refusals."""
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocnet.node.api import HTTP_STATUS
from pocnet.ledger.errors import Code
from pocnet.ledger.txtypes import market as mt
from tests.market.market_chain_support import FUNDS, MRPS, MSPS, OPENER, MarketChain


def open_payload(m=2, n=3, price_blocks=5, demand_blocks=5):
    return {"leaders": [k.address for k in MRPS[:m]], "followers": [k.address for k in MSPS[:n]],
            "price_blocks": price_blocks, "demand_blocks": demand_blocks}


def test_payment_is_exact_floor():
    params = dict(mt.DEFAULT_PARAMS)
    prices = [900_000, 800_000]
    # theta_1 kappa p_1 b = kappa b / (1/0.9 + 1/0.8), b = 0.31 units, in micro-tokens
    exact = Fraction(15500, 1000) * Fraction(310_000, 10**6) / (Fraction(10**6, 900_000) + Fraction(10**6, 800_000))
    assert mt.payment(params, prices, 310_000) == int(exact * 10**6)
    assert mt.theta_ppm(prices) == [470588, 529411]
    assert mt.payment(params, prices, 0) == 0


def test_round_lifecycle_and_settlement():
    ch = MarketChain()
    ch.block([ch.tx(OPENER, "market_open", open_payload())])
    rec = ch.round(1)
    assert rec["phase"] == "pricing" and rec["price_deadline"] == 6 and rec["demand_deadline"] == 11
    ch.block([ch.tx(MRPS[0], "market_price", {"round": 1, "price": 900_000})])
    assert ch.round(1)["phase"] == "pricing"
    ch.block([ch.tx(MRPS[1], "market_price", {"round": 1, "price": 800_000})])
    rec = ch.round(1)
    assert rec["phase"] == "demand" and rec["theta_ppm"] == {MRPS[0].address: 470588, MRPS[1].address: 529411}
    demands = [[310_000, 355_000], [233_000, 278_000], [387_000, 432_000]]
    before = {k.address: ch.balance(k) for k in MRPS[:2] + MSPS[:3]}
    ch.block([ch.tx(MSPS[0], "market_demand", {"round": 1, "demands": demands[0]}),
              ch.tx(MSPS[1], "market_demand", {"round": 1, "demands": demands[1]})])
    rec = ch.round(1)
    assert rec["phase"] == "demand"
    pay0 = [mt.payment(mt.DEFAULT_PARAMS, [900_000, 800_000], d) for d in demands[0]]
    assert rec["payments"][MSPS[0].address] == pay0
    assert ch.balance(MSPS[0]) == before[MSPS[0].address] - sum(pay0)  # escrowed at demand time
    assert ch.balance(MRPS[0]) == before[MRPS[0].address]  # not yet paid
    ch.block([ch.tx(MSPS[2], "market_demand", {"round": 1, "demands": demands[2]})])
    rec = ch.round(1)
    assert rec["phase"] == "settled" and rec["escrow"] == 0 and rec["settled_height"] == 5
    for j, k in enumerate(MRPS[:2]):
        owed = sum(mt.payment(mt.DEFAULT_PARAMS, [900_000, 800_000], d[j]) for d in demands)
        assert rec["paid"][k.address] == owed
        assert ch.balance(k) == before[k.address] + owed
    total_msps = sum(before[k.address] - ch.balance(k) for k in MSPS[:3])
    assert total_msps == sum(rec["paid"].values())  # tokens are conserved
    assert ch.state.get(mt.NS, "open") == []


def test_deadlines_move_phases():
    ch = MarketChain()
    ch.block([ch.tx(OPENER, "market_open", open_payload(price_blocks=2, demand_blocks=2))])
    ch.block([ch.tx(MRPS[0], "market_price", {"round": 1, "price": 700_000})])
    ch.block()  # height 3 = price deadline: MRP 2 never posted
    rec = ch.round(1)
    assert rec["phase"] == "demand" and rec["theta_ppm"] == {MRPS[0].address: 1_000_000}
    err = ch.refuse(MSPS[0], "market_demand", {"round": 1, "demands": [100_000, 5]})
    assert err.code is Code.UNMET and err.field == "payload.demands[1]"
    ch.block([ch.tx(MSPS[0], "market_demand", {"round": 1, "demands": [100_000, 0]})])
    ch.block()  # height 5 = demand deadline: two followers never posted
    rec = ch.round(1)
    assert rec["phase"] == "settled"
    assert rec["paid"][MRPS[0].address] == mt.payment(mt.DEFAULT_PARAMS, [700_000], 100_000) == 1_085_000
    assert rec["paid"][MRPS[1].address] == 0


def test_no_price_cancels():
    ch = MarketChain()
    ch.block([ch.tx(OPENER, "market_open", open_payload(price_blocks=1))])
    ch.block()
    assert ch.round(1)["phase"] == "cancelled"
    assert ch.refuse(MSPS[0], "market_demand", {"round": 1, "demands": [0, 0]}).code is Code.CONFLICT


@pytest.mark.parametrize("tx_type,payload,status,field", [
    ("market_price", {"round": 1, "price": 1_500_001}, 422, "payload.price"),
    ("market_price", {"round": 1, "price": 0}, 400, "payload.price"),
    ("market_price", {"round": 1, "price": -5}, 400, "payload.price"),
    ("market_price", {"round": 1, "price": "0.9"}, 400, "payload.price"),
    ("market_price", {"round": 9, "price": 900_000}, 422, "payload.round"),
    ("market_price", {"round": 1}, 400, "payload.price"),
    ("market_demand", {"round": 1, "demands": [1, 1]}, 409, "payload.round"),  # still pricing
    ("market_demand", {"round": 1, "demands": [-1, 1]}, 400, "payload.demands[0]"),
    ("market_open", {"leaders": [], "followers": [], "price_blocks": 1, "demand_blocks": 1}, 400, "payload.leaders"),
    ("market_open", {"leaders": [MRPS[0].address], "followers": [MRPS[0].address], "price_blocks": 1,
                     "demand_blocks": 1}, 400, "payload.followers"),
    ("market_open", {"leaders": ["zz"], "followers": [MSPS[0].address], "price_blocks": 1, "demand_blocks": 1},
     400, "payload.leaders[0]"),
])
def test_bad_txs_refused_without_state_change(tx_type, payload, status, field):
    ch = MarketChain()
    ch.block([ch.tx(OPENER, "market_open", open_payload())])
    root = ch.state.root
    sender = MSPS[0] if tx_type == "market_demand" else (OPENER if tx_type == "market_open" else MRPS[0])
    err = ch.refuse(sender, tx_type, payload)
    assert (HTTP_STATUS[err.code], err.field) == (status, field), err
    assert ch.state.root == root


def test_wrong_sender_and_duplicates():
    ch = MarketChain()
    ch.block([ch.tx(OPENER, "market_open", open_payload())])
    assert ch.refuse(MSPS[0], "market_price", {"round": 1, "price": 900_000}).code is Code.FORBIDDEN
    ch.block([ch.tx(MRPS[0], "market_price", {"round": 1, "price": 900_000})])
    assert ch.refuse(MRPS[0], "market_price", {"round": 1, "price": 800_000}).code is Code.CONFLICT
    ch.block([ch.tx(MRPS[1], "market_price", {"round": 1, "price": 800_000})])
    assert ch.refuse(MRPS[0], "market_price", {"round": 1, "price": 800_000}).code is Code.CONFLICT  # wrong phase
    assert ch.refuse(MRPS[0], "market_demand", {"round": 1, "demands": [1, 1]}).code is Code.FORBIDDEN
    assert ch.refuse(MSPS[0], "market_demand", {"round": 1, "demands": [1]}).code is Code.UNMET
    poor = MarketChain()
    poor.block([poor.tx(OPENER, "market_open", open_payload())])
    poor.block([poor.tx(MRPS[0], "market_price", {"round": 1, "price": 1_500_000}),
                poor.tx(MRPS[1], "market_price", {"round": 1, "price": 1_500_000})])
    err = poor.refuse(MSPS[0], "market_demand", {"round": 1, "demands": [10**15, 0]})
    assert err.code is Code.UNMET


def test_genesis_market_params():
    ch = MarketChain(market={"kappa_milli": 1000, "p_max": 2_000_000})
    assert ch.state.get(mt.NS, "params")["kappa_milli"] == 1000
    with pytest.raises(ValueError, match="market.kappa_milli"):
        MarketChain(market={"kappa_milli": 1.5})
    with pytest.raises(ValueError, match="market.nope"):
        MarketChain(market={"nope": 1})


@settings(max_examples=40, deadline=None)
@given(prices=st.lists(st.integers(1, 1_500_000), min_size=1, max_size=4),
       demands=st.lists(st.lists(st.integers(0, 10**7), min_size=4, max_size=4), min_size=1, max_size=6))
def test_settlement_conserves_tokens(prices, demands):
    """Whatever is posted, MSPs lose exactly what MRPs gain, and each payment is the exact floor."""
    m, n = len(prices), len(demands)
    ch = MarketChain()
    ch.block([ch.tx(OPENER, "market_open", open_payload(m, n))])
    ch.block([ch.tx(MRPS[j], "market_price", {"round": 1, "price": p}) for j, p in enumerate(prices)])
    ch.block([ch.tx(MSPS[i], "market_demand", {"round": 1, "demands": d[:m]}) for i, d in enumerate(demands)])
    rec = ch.round(1)
    assert rec["phase"] == "settled"
    lost = sum(FUNDS - ch.balance(MSPS[i]) for i in range(n))
    gained = sum(ch.balance(MRPS[j]) - FUNDS for j in range(m))
    assert lost == gained == sum(rec["paid"].values())
    inv = sum(Fraction(1, p) for p in prices)
    for i in range(n):
        for j in range(m):
            exact = Fraction(15500, 1000) * Fraction(demands[i][j], 10**6) / (inv * 10**6) * 10**6  # micro-tokens
            assert rec["payments"][MSPS[i].address][j] == int(exact)
