"""Double-sign protection state survives restarts and resets per height."""
from pocnet.node.privval import PrivValState


def test_privval_persists_signed_votes_and_lock(tmp_path):
    pv = PrivValState(tmp_path)
    wire = {"t": "vote", "kind": "prevote", "height": 5, "round": 1, "block_hash": "ab" * 32, "signature": "x"}
    pv.record(5, 1, "prevote", wire, "ab" * 32, 1)
    again = PrivValState(tmp_path)
    assert again.previous(5, 1, "prevote")["block_hash"] == "ab" * 32
    assert again.previous(5, 2, "prevote") is None
    assert again.previous(6, 1, "prevote") is None
    assert (again.locked_value, again.locked_round) == ("ab" * 32, 1)
    again.record(6, 0, "precommit", dict(wire, height=6, kind="precommit"), None, -1)
    assert PrivValState(tmp_path).previous(5, 1, "prevote") is None
