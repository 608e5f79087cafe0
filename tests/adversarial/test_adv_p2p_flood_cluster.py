"""Multi-process: peer routes under a request flood (issue 17, #1).

peer3's key floods peer0 with validly signed (empty) batches as fast as this process can
send them, and a client without an envelope floods peer1. peer0 runs with a low per-peer
rate (20 requests/s, burst 40) so the limit is reached on a loaded machine too. Expected:
the flooder gets 429 past its budget, the unauthenticated client only 401, and the chain
keeps committing with every peer agreeing (honest gossip to peer0 is paced by the same
limit and adapts by batching). The flooder is a test-only client, not a node mode.
"""
import threading
import time
from collections import Counter

import httpx
import pytest

from pocnet.ledger.keys import KeyPair
from pocnet.node.config import NodeConfig
from tests.cluster_helpers import Cluster

pytestmark = pytest.mark.slow
RATE, BURST = 20, 40


class Flood(threading.Thread):
    def __init__(self, send) -> None:  # noqa: ANN001
        super().__init__(daemon=True)
        self.send = send
        self.codes: Counter = Counter()
        self.stop_flag = threading.Event()
        self.http = httpx.Client(timeout=10)

    def run(self) -> None:
        while not self.stop_flag.is_set():
            try:
                self.codes[self.send(self.http).status_code] += 1
            except httpx.HTTPError:
                self.codes["error"] += 1


def test_request_flood_is_rate_limited_and_chain_keeps_committing(tmp_path, port_block):
    c = Cluster(tmp_path / "net", port_block(4))
    cfg = NodeConfig.load(c.home / "peer0")
    cfg.p2p_rate_per_s, cfg.p2p_burst = RATE, BURST
    cfg.save(c.home / "peer0")
    c.start_all()
    try:
        c.wait_height(3, timeout=90)
        byz = KeyPair.load(c.home / "peer3" / "node_key.json")
        signed = Flood(lambda http: c.post_p2p(0, byz, {"msgs": [], "txs": []}, http))
        anon = Flood(lambda http: http.post(c.urls[1] + "/p2p/msgs", json={"from": byz.address, "msgs": [], "txs": []}))
        h0 = c.height(0)
        t0 = time.monotonic()
        signed.start()
        anon.start()
        c.wait_height(h0 + 5, peers=[0, 1, 2], timeout=90)
        time.sleep(max(0.0, 8 - (time.monotonic() - t0)))
        for f in (signed, anon):
            f.stop_flag.set()
        for f in (signed, anon):
            f.join(30)
        elapsed = time.monotonic() - t0
        stats = c.http.get(c.urls[0] + "/p2p/stats").json()["stats"]
        print(f"{elapsed:.1f} s: signed flood {dict(signed.codes)}, unauthenticated flood {dict(anon.codes)}; "
              f"chain {h0} -> {c.height(0)}; peer0 refused {stats.get('p2p_auth_refused_rate', 0)} for rate")
        assert signed.codes[429] > 0 and set(signed.codes) <= {200, 429, "error"}
        # the flooder shares its bucket with peer3's own gossip: its 200s stay within the budget
        assert signed.codes[200] <= BURST + RATE * elapsed + RATE
        assert anon.codes[401] > 0 and set(anon.codes) <= {401, "error"}
        c.wait_height(c.height(0) + 2, timeout=60)     # all four, peer3 included, keep going
        c.assert_same_chain()
    finally:
        c.stop_all()
