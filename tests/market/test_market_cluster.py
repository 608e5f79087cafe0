"""A market round through a 4-peer cluster: leaders and followers post the solver's equilibrium on
different peers; every peer settles identically (payments, balances, state root, blocks)."""
import pytest

from pocnet.games import market as mk
from pocnet.games.market_chain import MarketClient, posted_point
from tests.market.market_chain_support import MRPS, MSPS

pytestmark = pytest.mark.slow


def test_market_round_settles_identically_on_four_peers(cluster):
    c = cluster
    clients = [MarketClient(u) for u in c.urls]
    inst = mk.fig3_instance()
    eq = mk.solve(inst)
    mrps, msps = MRPS[:2], MSPS[:3]
    funds = [clients[0].peer.sign_and_submit(c.faucet, "transfer", {"to": k.address, "amount": 10**9}).hash
             for k in msps]
    for h in funds:
        clients[0].peer.wait_committed(h, 60)
    open_tx = clients[0].open(c.faucet, [k.address for k in mrps], [k.address for k in msps], 200, 200)
    rid = clients[1].round_id_of(open_tx)
    for j, k in enumerate(mrps):
        clients[j + 1].post_price(k, rid, float(eq.prices[j]))
    clients[3].wait_phase(rid, ["demand"])
    for i, k in enumerate(msps):
        clients[i].post_demands(k, rid, eq.demands[i].tolist())
    recs = [cl.wait_phase(rid, ["settled"]) for cl in clients]
    assert all(r == recs[0] for r in recs)
    rec = recs[0]
    prices, demands = posted_point(rec)
    assert prices == pytest.approx(eq.prices.tolist(), abs=1e-6)
    # payments (micro-tokens) are theta_j kappa p_j b_ij of the posted point
    pay = mk.payments(inst, prices, demands)
    for i, k in enumerate(msps):
        assert rec["payments"][k.address] == pytest.approx((pay[i] * 1e6).tolist(), abs=1.0)
    for k in mrps + msps:
        assert len({cl.peer.account(k.address)["balance"] for cl in clients}) == 1
    assert sum(clients[2].peer.account(k.address)["balance"] for k in mrps) == sum(rec["paid"].values()) > 0
    # the posted point passes the equilibrium check (up to the quanta's rounding)
    ch = mk.check_equilibrium(inst, prices, demands)
    assert ch.max_leader_gain < 1e-5 and ch.max_follower_gain < 1e-5, ch
    top = c.assert_same_chain()
    assert top >= rec["settled_height"]
    for cl in clients:
        cl.close()
