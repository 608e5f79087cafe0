"""Bounded per-validator vote state (issue 17, #2): one validator's flood of distinct,
validly signed votes filled the shared 200,000-entry signature cache of honest peers, which
then dropped the honest votes they needed and stayed halted until restarted."""
import asyncio
import random

import pytest

from pocnet.consensus.messages import Vote
from pocnet.ledger.keys import KeyPair
from pocnet.node.bft import ROUND_AHEAD, VOTES_PER_SLOT
from pocnet.node.node import Node
from pocnet.node.setup_home import init_cluster_home
from pocnet.p2p.wire import sign_vote


@pytest.fixture
def cluster_home(tmp_path):
    init_cluster_home(tmp_path, 4, 29960, [], chain_id="flood-test")
    return tmp_path


def _flood(chain_id, key, n, rng):
    out = []
    for _ in range(n):
        v = Vote(rng.choice(["prevote", "precommit"]), rng.choice([1, 2]), rng.randrange(0, ROUND_AHEAD + 200),
                 rng.randbytes(32).hex(), key.address)
        out.append(sign_vote(key, chain_id, v))
    return out


def test_vote_flood_is_bounded_and_honest_votes_still_count(cluster_home):
    node = Node(cluster_home / "peer0")
    d = node.driver
    byz = KeyPair.load(cluster_home / "peer3" / "node_key.json")
    honest = [KeyPair.load(cluster_home / f"peer{i}" / "node_key.json") for i in (1, 2)]
    rng = random.Random(7)
    flood = _flood("flood-test", byz, 6000, rng)

    async def run():
        for i in range(0, len(flood), 1000):
            d.handle_batch(byz.address, flood[i:i + 1000], [])
        block = "ab" * 32
        for k in honest:
            d.handle_batch(k.address, [sign_vote(k, "flood-test", Vote("precommit", 1, 0, block, k.address))], [])
        return block

    block = asyncio.run(run())
    byz_sigs = sum(len(s) for k, s in d.vote_sigs.items() if k[3] == byz.address)
    bound = 2 * 2 * (ROUND_AHEAD + 1) * VOTES_PER_SLOT  # heights x kinds x rounds x per-slot
    assert byz_sigs <= bound, byz_sigs
    assert d.stats["dropped_vote_slot_full"] + d.stats["dropped_vote_far_round"] > 3000
    for k in honest:  # the votes progress needs are kept whatever the flood did
        assert d.vote_sigs[("precommit", 1, 0, k.address)][block]
    assert len(d.far_rounds) <= 2  # one per (height, validator)
    node.storage.close()
