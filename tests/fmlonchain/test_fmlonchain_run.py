"""A reduced GFML run through a real 4-peer cluster: learners train, the chain plans and settles."""
import pytest

from pocnet.fml.driver import RunConfig, run
from pocnet.fml.onchain import OnChainCoordinator
from pocnet.games.params import GameParams
from tests.cluster_helpers import Cluster
from tests.fml_toy import toy_dataset
from tests.proc_helpers import wait_until

pytestmark = pytest.mark.slow


def test_onchain_rounds_agree_on_every_peer(tmp_path, port_block):
    c = Cluster(tmp_path / "net", port_block(4)).start_all()
    try:
        params = GameParams(n_coalitions=2)
        coord = OnChainCoordinator(c.urls, c.faucet, params, budget_tokens=500.0, key_seed=3)
        cfg = RunConfig(n_learners=8, n_coalitions=2, rounds=2, misbehave_rate=0.25)
        result = run(coord, toy_dataset(), cfg, seed=0, params=params, scheme_name="gfml-onchain")
        assert len(result.rounds) == 2
        assert all(r["participants"] >= 2 for r in result.rounds)
        # the run returns once its own peer committed the last close; the others may be a block behind
        wait_until(lambda: all(len(cl.rounds(phase="closed")) == 2 for cl in coord.clients), 30, 0.2)
        # every peer holds the same reputations, payouts and round records
        views = [[cl.round(rid) for rid in sorted(coord.round_ids.values())] for cl in coord.clients]
        assert all(v == views[0] for v in views)
        reps = [{a: cl.reputation(k.address)["global_reputation"] for a, k in coord.keys.items()}
                for cl in coord.clients]
        assert all(r == reps[0] for r in reps)
        paid = sum(sum(v["payouts"].values()) for v in views[0])
        assert paid > 0
        c.wait_height(c.height(0) + 1)
        c.assert_same_chain()
        coord.close()
    finally:
        c.stop_all()


def test_simulate_on_chain_cli(tmp_path, port_block, monkeypatch):
    """`pocnet fml simulate --on-chain` starts its own cluster, runs GFML through it, reports agreement."""
    import json

    from typer.testing import CliRunner

    from pocnet.fml import data as fml_data
    from pocnet.fml.cli import app
    monkeypatch.setattr(fml_data, "load_dataset", lambda name, limit=None: toy_dataset())
    out = tmp_path / "rep"
    res = CliRunner().invoke(app, ["simulate", "--on-chain", "--learners", "6", "--coalitions", "2", "--rounds", "2",
                                   "--seeds", "0", "--schemes", "gfml", "--misbehaviour", "0,0.5",
                                   "--base-port", str(port_block(4)), "--out", str(out)])
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["meta"]["mode"] == "on-chain"
    chained = [r for r in rep["runs"] if r["on_chain"]]
    assert chained and all(r["chain"]["reputations_agree_on_all_peers"] for r in chained)
    assert any(not r["on_chain"] and not r["config"]["blockchain"] for r in rep["runs"])
