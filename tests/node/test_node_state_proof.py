"""GET /state/proof: a committed entry's proof checks against /status's state_root."""
from fastapi.testclient import TestClient

from pocnet.ledger.commitment import ProofInvalid, verify_proof
from pocnet.node.setup_home import init_cluster_home


def test_state_proof_route(tmp_path):
    from pocnet.node.node import Node
    init_cluster_home(tmp_path, 1, 29993, [], chain_id="state-proof", poc_weights_sha256="")
    node = Node(tmp_path / "peer0")
    addr = next(iter(node.genesis.balances))
    with TestClient(node.create_app()) as client:
        root = client.get("/status").json()["state_root"]
        got = client.get("/state/proof", params={"ns": "acct", "key": addr}).json()
        assert got["present"] and got["state_root"] == got["header_state_root"] == root
        verify_proof(root, "acct", addr, got["value"], got["proof"])
        try:
            verify_proof(root, "acct", addr, {"balance": got["value"]["balance"] + 1, "nonce": 0}, got["proof"])
            raise AssertionError("a forged balance verified")
        except ProofInvalid:
            pass
        absent = client.get("/state/proof", params={"ns": "acct", "key": "ab" * 32}).json()
        assert not absent["present"] and absent["value"] is None
        verify_proof(root, "acct", "ab" * 32, None, absent["proof"], present=False)
        bad = client.get("/state/proof", params={"ns": "acct", "key": "x" * 161})
        assert bad.status_code == 400 and bad.json()["field"] == "key"
        assert client.get("/state/proof", params={"ns": "acct"}).status_code == 400
