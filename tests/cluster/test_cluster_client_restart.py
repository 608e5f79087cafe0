"""An independent client sends transfers to random peers while one peer is killed and restarted.

The client behaves as a wallet would: it picks a random live peer per tx, and if a
peer refuses a nonce as "skips ahead" (the previous tx died with a killed peer
before it was gossiped) it re-submits its uncommitted txs in nonce order.
"""
import random
import threading
import time

import httpx
import pytest

from pocnet.ledger.keys import KeyPair
from pocnet.ledger.tx import compute_tx_hash, sign_tx
from tests.cluster_helpers import Cluster
from tests.proc_helpers import wait_until

pytestmark = pytest.mark.slow


def test_every_transfer_committed_once_through_peer_restart(tmp_path, port_block):
    c = Cluster(tmp_path / "net", port_block(4)).start_all()
    rng = random.Random(11)
    bob = KeyPair.generate()
    total = 120
    txs = [sign_tx(c.faucet, c.genesis.chain_id, "transfer", n, {"to": bob.address, "amount": n + 1})
           for n in range(total)]
    down: set[int] = set()

    def chaos():
        time.sleep(2.0)
        down.add(2)
        c.kill(2)
        time.sleep(4.0)
        c.start(2)
        down.discard(2)

    t = threading.Thread(target=chaos)
    t.start()
    try:
        http = httpx.Client(timeout=10)
        n = 0
        deadline = time.monotonic() + 120
        while n < total:
            assert time.monotonic() < deadline, f"stuck at nonce {n}"
            peer = rng.choice([i for i in range(4) if i not in down])
            try:
                r = http.post(c.urls[peer] + "/txs", json=txs[n].to_dict())
            except httpx.HTTPError:
                continue  # peer died under us: try another
            if r.status_code == 202:
                n += 1
                time.sleep(0.03)
            elif r.status_code == 409 and "skips ahead" in r.json()["reason"]:
                expected = int(r.json()["reason"].rsplit(" ", 1)[1])
                n = expected  # resend from the first tx that peer has not seen
            elif r.status_code == 409 and ("already" in r.json()["reason"]):
                n += 1
            else:
                raise AssertionError(r.text)
        t.join()
        wait_until(lambda: c.height(2) >= 0, 60)
        expected_balance = sum(range(1, total + 1))
        wait_until(lambda: all(http.get(f"{u}/accounts/{bob.address}").json()["balance"] == expected_balance
                               for u in c.urls), 90, 0.5)
        top = c.assert_same_chain(peers=[0, 1, 2, 3])
        seen: dict[str, int] = {}
        for h in range(1, top + 1):
            for tx in c.block(0, h)["txs"]:
                seen[compute_tx_hash(tx)] = seen.get(compute_tx_hash(tx), 0) + 1
        assert all(seen.get(tx.hash) == 1 for tx in txs)
    finally:
        t.join()
        c.stop_all()
