"""A 4-peer cluster of real processes on 127.0.0.1 for integration and fault tests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from pocnet.ledger.keys import KeyPair
from pocnet.node.setup_home import FAUCET_FILE, init_cluster_home
from tests.proc_helpers import ROOT, kill9, stop, wait_http, wait_until

FAST_CONSENSUS = {"timeout_propose_ms": 800, "timeout_prevote_ms": 400, "timeout_precommit_ms": 400,
                  "timeout_delta_ms": 300, "block_interval_ms": 50, "empty_block_interval_ms": 500}


class Cluster:
    def __init__(self, home: Path, base_port: int, n: int = 4, env: dict[str, dict[str, str]] | None = None,
                 consensus: dict | None = None, capacities: list[int] | None = None,
                 byzantine: dict[str, str] | None = None) -> None:
        self.home, self.n = Path(home), n
        self.genesis = init_cluster_home(self.home, n, base_port, [], chain_id="cluster-test",
                                         consensus=consensus or FAST_CONSENSUS, capacities=capacities)
        self.names = [f"peer{i}" for i in range(n)]
        self.urls = [v.url for v in self.genesis.validators]
        self.ids = [v.address for v in self.genesis.validators]
        self.extra_env = env or {}
        self.byzantine = byzantine or {}  # peer name -> mode of tests/byzantine/byz_node.py
        self.procs: dict[int, subprocess.Popen] = {}
        self.faucet = KeyPair.load(self.home / FAUCET_FILE)
        self.http = httpx.Client(timeout=10)

    def start(self, i: int) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT), POCNET_DEBUG_API="1", **self.extra_env.get(self.names[i], {}))
        log = open(self.home / self.names[i] / "stdout.log", "ab")
        home = str(self.home / self.names[i])
        mode = self.byzantine.get(self.names[i])
        cmd = (["-m", "tests.byzantine.byz_node", "--home", home, "--mode", mode] if mode
               else ["-m", "pocnet.node", "node", "--home", home])
        self.procs[i] = subprocess.Popen([sys.executable, *cmd], cwd=ROOT, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def start_all(self) -> "Cluster":
        for i in range(self.n):
            self.start(i)
        for u in self.urls:
            wait_http(u, 60)
        return self

    def kill(self, i: int) -> None:
        kill9(self.procs.pop(i))

    def stop_all(self) -> None:
        for i in list(self.procs):
            stop(self.procs.pop(i))
        self.http.close()

    def status(self, i: int) -> dict:
        return self.http.get(self.urls[i] + "/status").json()

    def height(self, i: int) -> int:
        """Head height of peer i, or -1 while it is not answering (e.g. restarting)."""
        try:
            return self.status(i)["height"]
        except httpx.HTTPError:
            return -1

    def alive(self) -> list[int]:
        return sorted(self.procs)

    def wait_height(self, h: int, peers: list[int] | None = None, timeout: float = 60) -> None:
        peers = self.alive() if peers is None else peers
        wait_until(lambda: all(self.height(i) >= h for i in peers), timeout, 0.2)

    def block(self, i: int, h: int) -> dict:
        return self.http.get(f"{self.urls[i]}/blocks/{h}").json()

    def post_p2p(self, i: int, key: KeyPair, payload: dict, client: httpx.Client | None = None) -> httpx.Response:
        """POST /p2p/msgs to peer i as the holder of ``key`` (signed envelope, p2p/auth.py)."""
        import json

        from pocnet.p2p.auth import EnvelopeSigner
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"content-type": "application/json"}
        signers = self.__dict__.setdefault("_signers", {})
        signer = signers.setdefault(key.address, EnvelopeSigner(key, self.genesis.chain_id))
        headers.update(signer.headers(self.ids[i], "POST", "/p2p/msgs", body))
        return (client or self.http).post(self.urls[i] + "/p2p/msgs", content=body, headers=headers)

    def cut(self, i: int, others: list[int]) -> None:
        self.http.post(self.urls[i] + "/debug/faults", json={"cut": [self.ids[j] for j in others]})

    def committed_everywhere(self, hashes: list[str]) -> bool:
        """Every given tx is committed in every peer's view (poll with wait_until)."""
        for url in self.urls:
            for h in hashes:
                r = self.http.get(f"{url}/txs/{h}")
                if r.status_code != 200 or r.json()["status"] != "committed":
                    return False
        return True

    def assert_same_chain(self, peers: list[int] | None = None, upto: int | None = None) -> int:
        """Identical block hash and state root at every height all given peers have."""
        peers = self.alive() if peers is None else peers
        top = min(self.height(i) for i in peers) if upto is None else upto
        for h in range(1, top + 1):
            blocks = [self.block(i, h) for i in peers]
            assert len({b["hash"] for b in blocks}) == 1, f"fork at height {h}"
            assert len({b["header"]["state_root"] for b in blocks}) == 1, f"state roots differ at {h}"
        return top
