"""A reduced MALPPO run whose agents trade through a 4-peer cluster (one on-chain round per slot)."""
import numpy as np
import pytest

pytest.importorskip("torch")

from pocnet.games import malppo as ml  # noqa: E402
from pocnet.games import market as mk  # noqa: E402
from pocnet.games.malppo_chain import ChainMarketEnv  # noqa: E402
from pocnet.games.market_chain import demand_quanta, posted_point  # noqa: E402
from tests.market.market_chain_support import MRPS, MSPS  # noqa: E402

pytestmark = pytest.mark.slow


def test_agents_trade_through_four_peers(cluster):
    c = cluster
    inst = mk.fig3_instance()
    cfg = ml.LearnConfig(episodes=1, slots=20, seed=0)
    env = ChainMarketEnv(inst, cfg, np.random.default_rng(0), c.urls, c.faucet, MRPS[:2], MSPS[:3])
    peer = env.clients[0].peer
    for k in MSPS[:3]:
        peer.wait_committed(peer.sign_and_submit(c.faucet, "transfer", {"to": k.address, "amount": 10**10}).hash)
    before = {k.address: peer.account(k.address)["balance"] for k in MRPS[:2] + MSPS[:3]}
    run = ml.learn(inst, "malppo", cfg, env=env, evaluate=False)
    assert len(env.rounds) == 20 and len(run["train"]["prices"]) == 20  # one PPO update on 20 on-chain slots
    recs = [cl.round(env.rounds[-1]) for cl in env.clients]
    assert all(r == recs[0] and r["phase"] == "settled" for r in recs)
    # what the agents learnt from is exactly what the chain settled
    p, b = np.array(run["train"]["prices"][-1]), np.array(run["train"]["demands"][-1])
    assert p.tolist() == [recs[0]["prices"][k.address] / 1e6 for k in MRPS[:2]]
    assert [demand_quanta(row, recs[0]["params"]) for row in b] == [recs[0]["demands"][k.address] for k in MSPS[:3]]
    pp, bb = posted_point(recs[0])
    assert run["train"]["U_F"][-1] == pytest.approx(mk.follower_utilities(inst, pp, bb).tolist())
    assert run["train"]["U_L"][-1] == pytest.approx(mk.leader_utilities(inst, pp, bb).tolist())
    paid = sum(sum(cl_rec["paid"].values()) for cl_rec in (env.clients[0].round(r) for r in env.rounds))
    after = {k.address: peer.account(k.address)["balance"] for k in MRPS[:2] + MSPS[:3]}
    assert sum(after[k.address] - before[k.address] for k in MRPS[:2]) == paid > 0
    assert sum(before[k.address] - after[k.address] for k in MSPS[:3]) == paid
    c.assert_same_chain()
    env.close()
