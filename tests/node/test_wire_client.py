"""A client written only from README § Wire format (no pocnet imports for signing/hashing)."""
import hashlib
import json
import time

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pocnet.node.setup_home import FAUCET_FILE, init_cluster_home
from tests.proc_helpers import start_peer, stop, wait_http

pytestmark = pytest.mark.slow


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def make_tx(priv: Ed25519PrivateKey, chain_id: str, nonce: int, to: str, amount: int) -> dict:
    pub = priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    tx = {"chain_id": chain_id, "type": "transfer", "sender": pub, "nonce": nonce,
          "payload": {"to": to, "amount": amount}}
    tx["signature"] = priv.sign(canonical(tx)).hex()
    return tx


def test_independent_client_transfers(tmp_path, port_block):
    base = port_block(1)
    init_cluster_home(tmp_path, 1, base, [], chain_id="wire-test")
    seed = bytes.fromhex(json.loads((tmp_path / FAUCET_FILE).read_text())["private_key"])
    priv = Ed25519PrivateKey.from_private_bytes(seed)
    recipient = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    url = f"http://127.0.0.1:{base}"
    proc = start_peer(tmp_path / "peer0")
    try:
        wait_http(url)
        http = httpx.Client(base_url=url)
        chain_id = http.get("/status").json()["chain_id"]
        sender = json.loads((tmp_path / FAUCET_FILE).read_text())["address"]
        start = http.get(f"/accounts/{sender}").json()
        hashes = []
        for i in range(5):
            tx = make_tx(priv, chain_id, start["nonce"] + i, recipient, 10 * (i + 1))
            r = http.post("/txs", json=tx)
            assert r.status_code == 202, r.text
            assert r.json()["tx_hash"] == hashlib.sha256(canonical(tx)).hexdigest()
            hashes.append(r.json()["tx_hash"])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if all(http.get(f"/txs/{h}").json()["status"] == "committed" for h in hashes):
                break
            time.sleep(0.1)
        assert all(http.get(f"/txs/{h}").json()["status"] == "committed" for h in hashes)
        assert http.get(f"/accounts/{recipient}").json()["balance"] == 150
        end = http.get(f"/accounts/{sender}").json()
        assert end["nonce"] == start["nonce"] + 5 and end["balance"] == start["balance"] - 150
        # a float anywhere is refused, not rounded
        bad = make_tx(priv, chain_id, end["nonce"], recipient, 1)
        bad["payload"]["amount"] = 1.0
        body = json.dumps(bad).encode()
        r = http.post("/txs", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400 and "float" in r.json()["reason"]
    finally:
        stop(proc)
