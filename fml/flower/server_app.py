"""The ServerApp: builds the GFML strategy from the run config and runs its rounds.

Run config (``flwr run fml/flower/app --run-config '...'``; defaults in app/pyproject.toml):
``cluster`` (comma-separated pocnet peer URLs), ``msp-key`` (funded key file, e.g.
HOME/faucet.json), ``learners``, ``coalitions``, ``rounds``, ``seed``, ``key-seed``, ``dataset``,
``data-limit`` (0 = all), ``round-timeout`` (s a round waits for updates), ``wait-nodes-s``
(s to wait for the learners' SuperNodes), ``out`` (JSON result file; empty = none).
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

from pocnet.fml.chain_client import reputations_on_every_peer
from pocnet.fml.data import load_dataset
from pocnet.fml.flower.client_app import learn_config
from pocnet.fml.flower.common import key_of, learner_key, learner_name, opt, to_arrays, update_digest
from pocnet.fml.flower.strategy import GfmlStrategy
from pocnet.fml.learners import make_population
from pocnet.fml.onchain import OnChainCoordinator
from pocnet.fml.training import Trainer
from pocnet.games.params import GameParams
from pocnet.ledger.keys import KeyPair, verify

log = logging.getLogger("pocnet.fml.flower.server")
app = ServerApp()


def discover(grid: Grid, n_learners: int, key_seed: int, wait_s: float) -> dict[int, int]:
    """learner index -> node id, from each SuperNode's signed hello (waits up to ``wait_s``).

    A SuperNode may host several learners (node config ``learners``): its hello lists them,
    each signed with its own key."""
    nodes: dict[int, int] = {}
    asked: set[int] = set()
    deadline = time.monotonic() + wait_s
    while len(nodes) < n_learners and time.monotonic() < deadline:
        new = [nid for nid in grid.get_node_ids() if nid not in asked]
        if not new:
            time.sleep(1.0)
            continue
        asked |= set(new)
        msgs = [Message(RecordDict({"config": ConfigRecord({})}), dst_node_id=nid, message_type="query") for nid in new]
        for reply in grid.send_and_receive(msgs, timeout=60):
            if reply.has_error():
                continue
            for j, ok in hello_learners(reply.content, n_learners, key_seed):
                if not ok:
                    log.warning("node %s: refused hello for learner %s (unknown or badly signed)",
                                reply.metadata.src_node_id, j)
                elif j in nodes:
                    log.warning("learner %d announced by two nodes; keeping the first", j)
                else:
                    nodes[j] = reply.metadata.src_node_id
    log.info("%d of %d learners connected on %d nodes", len(nodes), n_learners, len(set(nodes.values())))
    return nodes


def hello_learners(content: RecordDict, n_learners: int, key_seed: int) -> list[tuple[int, bool]]:
    """(learner, accepted) for every learner a node's hello lists: accepted when the index is in
    range and the learner's part is signed by its own key."""
    out = []
    for j in (int(x) for x in content["config"]["learners"]):
        c = content.config_records.get(key_of("config", j))
        ok = (c is not None and 0 <= j < n_learners and int(c["learner"]) == j
              and str(c["address"]) == learner_key(key_seed, j).address
              and verify(str(c["address"]), update_digest(0, j, []), str(c["sig"])))
        out.append((j, bool(ok)))
    return out


@app.main()
def main(grid: Grid, context: Context) -> None:
    rc = context.run_config
    seed, key_seed = int(opt(rc, "seed", 0)), int(opt(rc, "key-seed", 0))
    n, k, rounds = int(opt(rc, "learners", 40)), int(opt(rc, "coalitions", 4)), int(opt(rc, "rounds", 5))
    urls = [u.strip() for u in str(opt(rc, "cluster", "")).split(",") if u.strip()]
    if not urls:
        raise ValueError("run config `cluster`: comma-separated pocnet peer URLs are required")
    msp = KeyPair.load(Path(str(opt(rc, "msp-key", ""))))
    data = load_dataset(str(opt(rc, "dataset", "fashion-mnist")), int(opt(rc, "data-limit", 0)) or None)
    torch.manual_seed(seed)  # as fml.driver.run
    pop = make_population(data, n, seed=seed)
    trainer = Trainer(pop, learn_config(rc), seed=seed)
    params = GameParams(n_learners=n, n_coalitions=k)
    coord = OnChainCoordinator(urls, msp, params, key_seed=key_seed)
    t0 = time.time()
    try:
        nodes = discover(grid, n, key_seed, float(opt(rc, "wait-nodes-s", 120)))
        strategy = GfmlStrategy(coord, trainer, pop, params, seed, nodes, key_seed,
                                challenge_timeout=float(opt(rc, "round-timeout", 120)))
        strategy.start(grid, ArrayRecord(to_arrays(trainer.global_model)), num_rounds=rounds,
                       timeout=float(opt(rc, "round-timeout", 120)))
        reps, agree = reputations_on_every_peer(
            coord.clients, {learner_name(j): learner_key(key_seed, j).address for j in range(n)})
        result = {"config": {k2: rc[k2] for k2 in sorted(rc)}, "nodes": {learner_name(j): nid for j, nid in sorted(nodes.items())},
                  "rounds": strategy.history, "reputations_ppm_per_peer": reps,
                  "reputations_agree_on_all_peers": agree,
                  "txs_sent": coord.txs_sent, "elapsed_s": round(time.time() - t0, 1)}
    finally:
        coord.close()
    out = str(opt(rc, "out", ""))
    if out:
        Path(out).write_text(json.dumps(result, indent=1, sort_keys=True))
        log.info("wrote %s", out)
