"""``pocnet init --genesis --peer``: a home for a peer joining an existing chain, and its refusals."""
from __future__ import annotations

import json

from pocnet.ledger.keys import KeyPair
from pocnet.node.cli import main
from pocnet.node.config import NodeConfig
from pocnet.node.setup_home import init_cluster_home
from tests.conftest import free_port_block


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_init_creates_a_full_node_home_and_is_idempotent(tmp_path, capsys):
    g = init_cluster_home(tmp_path / "net", 4, 30100, [], chain_id="init-test")
    home = tmp_path / "new"
    code, out, err = run(capsys, "init", "--home", str(home), "--genesis", str(tmp_path / "net" / "genesis.json"),
                         "--port", "30200", "--name", "peer5")
    assert code == 0, err
    key = KeyPair.load(home / "node_key.json")
    assert key.address in out and "validator-join" in out
    assert json.loads((home / "genesis.json").read_text())["chain_id"] == g.chain_id
    cfg = NodeConfig.load(home)
    assert cfg.port == 30200 and cfg.name == "peer5"
    assert key.address not in {v.address for v in g.validators}
    code, _, err = run(capsys, "init", "--home", str(home), "--genesis", str(tmp_path / "net" / "genesis.json"),
                       "--port", "30201")
    assert code == 0, err
    assert KeyPair.load(home / "node_key.json").address == key.address      # key kept
    assert NodeConfig.load(home).port == 30201 and NodeConfig.load(home).name == "peer5"


def test_init_refuses_another_chain_a_missing_genesis_and_an_unreachable_peer(tmp_path, capsys):
    init_cluster_home(tmp_path / "a", 4, 30100, [], chain_id="chain-a")
    init_cluster_home(tmp_path / "b", 4, 30100, [], chain_id="chain-b")
    home = tmp_path / "new"
    assert run(capsys, "init", "--home", str(home), "--genesis", str(tmp_path / "a" / "genesis.json"))[0] == 0
    code, _, err = run(capsys, "init", "--home", str(home), "--genesis", str(tmp_path / "b" / "genesis.json"))
    assert code != 0 and "already holds another chain" in err
    code, _, err = run(capsys, "init", "--home", str(home), "--genesis", str(tmp_path / "nope.json"))
    assert code != 0 and "does not exist" in err
    port = free_port_block(1)
    code, _, err = run(capsys, "init", "--home", str(home), "--genesis", str(tmp_path / "a" / "genesis.json"),
                       "--peer", f"http://127.0.0.1:{port}")
    assert code != 0 and "cannot read its /status" in err and "Traceback" not in err
