"""``pocnet cluster up``: run N peers as separate processes on 127.0.0.1.

Each peer is a plain ``pocnet node --home DIR/peerI`` process, so any one of them
can be killed and started again by hand with the printed command while the
others keep running. SIGINT/SIGTERM stops every peer cleanly (SIGTERM, then
SIGKILL after a grace period).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from pocnet.node.setup_home import FAUCET_FILE, init_cluster_home, peer_homes


def node_command(peer_home: Path) -> list[str]:
    return [sys.executable, "-m", "pocnet.node", "node", "--home", str(peer_home)]


def wait_healthy(urls: list[str], timeout_s: float = 60.0, stop=lambda: False) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    pending = set(urls)
    while pending and time.monotonic() < deadline and not stop():
        for url in list(pending):
            try:
                if httpx.get(url + "/health", timeout=1.0).status_code == 200:
                    pending.discard(url)
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    return not pending


def cluster_up(home: Path, peers: int, base_port: int, funds: list[tuple[str, int]],
               chain_id: str | None = None, echo=print) -> int:  # noqa: ANN001
    home = Path(home)
    genesis = init_cluster_home(home, peers, base_port, funds, chain_id=chain_id)
    homes = peer_homes(home, peers, base_port)
    for p, v in zip(homes, genesis.validators):
        p.url = v.url
    # Handlers first: a SIGTERM that arrives while peers start must still stop them all.
    stopping = {"flag": False}

    def _stop(signum, _frame):  # noqa: ANN001
        stopping["flag"] = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    procs: dict[str, subprocess.Popen] = {}
    for p in homes:
        log = open(p.home / "stdout.log", "ab")
        procs[p.name] = subprocess.Popen(node_command(p.home), stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
    echo(f"chain {genesis.chain_id}: {peers} peer(s), home {home.resolve()}")
    echo(f"faucet key (funded in genesis): {home.resolve() / FAUCET_FILE}")
    echo(f"{'name':8} {'url':26} {'pid':>8}  home")
    for p in homes:
        echo(f"{p.name:8} {p.url:26} {procs[p.name].pid:>8}  {p.home.resolve()}")
    echo("restart one peer by hand with:  pocnet node --home <its home>")
    (home / "cluster.json").write_text(json.dumps({p.name: {"url": p.url, "pid": procs[p.name].pid,
                                                            "home": str(p.home.resolve())} for p in homes}, indent=2))
    ok = wait_healthy([p.url for p in homes], stop=lambda: stopping["flag"])
    if not stopping["flag"]:
        echo("all peers healthy" if ok else
             "WARNING: some peers did not answer /health within 60 s (see their node.log)")
    reported: set[str] = set()
    while not stopping["flag"]:
        for name, proc in procs.items():
            if proc.poll() is not None and name not in reported:
                reported.add(name)
                echo(f"{name} (pid {proc.pid}) exited with code {proc.returncode}")
        time.sleep(0.3)
    echo("stopping peers ...")
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    echo("all peers stopped")
    return 0


class LocalCluster:
    """A throwaway local cluster for tools (``pocnet fml simulate --on-chain``, benchmarks).

    Creates the home if absent, starts each peer as its own ``pocnet node`` process on
    127.0.0.1, waits until all answer, and stops them (SIGTERM, then SIGKILL) on exit.
    """

    def __init__(self, home: Path, peers: int = 4, base_port: int = 27650, chain_id: str | None = None,
                 consensus: dict | None = None, funds: list[tuple[str, int]] | None = None,
                 log_level: str = "WARNING") -> None:
        self.home, self.peers, self.base_port = Path(home), peers, base_port
        self.chain_id, self.consensus, self.funds, self.log_level = chain_id, consensus, funds or [], log_level
        self.procs: list[subprocess.Popen] = []
        self.urls: list[str] = []

    def __enter__(self) -> "LocalCluster":
        from pocnet.ledger.keys import KeyPair
        genesis = init_cluster_home(self.home, self.peers, self.base_port, self.funds, chain_id=self.chain_id,
                                    consensus=self.consensus)
        self.urls = [v.url for v in genesis.validators]
        self.faucet = KeyPair.load(self.home / FAUCET_FILE)
        for p in peer_homes(self.home, self.peers, self.base_port):
            log = open(p.home / "stdout.log", "ab")
            self.procs.append(subprocess.Popen(node_command(p.home) + ["--log-level", self.log_level],
                                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        if not wait_healthy(self.urls, 90):
            self.__exit__(None, None, None)
            raise RuntimeError(f"local cluster in {self.home} did not come up (see peer*/node.log)")
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.procs = []
