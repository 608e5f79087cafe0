"""A full FML round through a 4-peer cluster: every peer ends with the same plan, payouts, reputations, state root."""
import dataclasses
import time

import pytest

from pocnet.fml.chain_client import (FmlChainClient, join_payload, open_round_payload, register_payload, report_payloads,
                              round_payload)
from pocnet.games.params import GameParams
from tests.fmlchain.fmlchain_support import DIM, LEARNERS, as_on_chain, honest_reports, key_of, profiles
from tests.proc_helpers import wait_until

pytestmark = pytest.mark.slow


def test_full_round_through_four_peers(cluster):
    c = cluster
    clients = [FmlChainClient(u) for u in c.urls]
    msp = c.faucet
    profs = profiles(8)
    learners = LEARNERS[:8]
    via = lambda i: clients[i % 4]  # noqa: E731 - each sender always talks to the same peer (nonce order)

    def step(txs: list) -> None:
        hashes = [t.hash for t in txs]
        wait_until(lambda: c.committed_everywhere(hashes), 60, 0.3)

    open_tx = clients[0].submit(msp, "fml_open_round", open_round_payload(200.0, DIM, n_coalitions=2))
    step([via(i).submit(k, "fml_register", register_payload(p)) for i, (k, p) in enumerate(zip(learners, profs))]
         + [open_tx])
    rid = clients[1].round_id_of(open_tx)
    step([via(i).submit(k, "fml_join", join_payload(rid, p.embedding))
          for i, (k, p) in enumerate(zip(learners, profs))])
    step([clients[0].submit(msp, "fml_close_registration", round_payload(rid))])

    plans = [cl.plan(rid) for cl in clients]
    assert all(p == plans[0] for p in plans)
    plan = plans[0]
    assert len(plan.heads) == 2 and sum(len(m) for m in plan.partition.values()) + len(plan.sitting_out) == 8
    assert set(plan.sit_out_reasons) == set(plan.sitting_out)
    chain_profs = [as_on_chain(p) for p in profs]
    reports = []
    shirkers = []
    for j, h in enumerate(plan.heads):
        mine = honest_reports(plan, GameParams(n_coalitions=2), chain_profs, h)
        others = [a for a in mine if a != h]
        if others:  # one member per coalition returns the model it received: no work
            shirkers.append(others[0])
            mine[others[0]] = dataclasses.replace(mine[others[0]], work=0.0)
        for payload in report_payloads(rid, mine):
            reports.append(clients[2 + j].submit(key_of(h), "fml_report", payload))
    step(reports)
    step([clients[0].submit(msp, "fml_close_round", round_payload(rid))])

    views = [cl.round(rid) for cl in clients]
    assert all(v == views[0] for v in views)
    v = views[0]
    assert v["phase"] == "closed" and v["flags"] == {} and v["paid"] > 0
    # settlement on evidence of work, identical on every peer: the shirkers earn nothing
    assert shirkers and all(v["work_factors"][a] == 0 and v["payouts"][a] == 0 for a in shirkers)
    assert all(e == 1_000_000 for a, e in v["work_factors"].items() if a not in shirkers)
    assert {co["head"] for co in v["coalitions"]} == set(plan.heads)
    for k in learners:
        reps = [cl.reputation(k.address) for cl in clients]
        assert all(r == reps[0] for r in reps) and reps[0]["rounds"] == 1
        bals = {cl.peer.account(k.address)["balance"] for cl in clients}
        assert bals == {v["payouts"][k.address]}

    # same state root at the same height on every peer (/status), and identical blocks
    for _ in range(100):
        st = [c.status(i) for i in range(4)]
        if len({s["height"] for s in st}) == 1:
            assert len({s["state_root"] for s in st}) == 1
            break
        time.sleep(0.05)
    else:
        pytest.fail("peers never reported the same height at once")
    c.assert_same_chain()
    for cl in clients:
        cl.close()
