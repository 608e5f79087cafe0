"""``pocnet cluster up|status|down``: run N peers as separate processes on 127.0.0.1.

Each peer is a plain ``pocnet node --home DIR/peerI`` process, so any one of them
can be killed and started again by hand with the printed command while the
others keep running. SIGINT/SIGTERM stops every peer cleanly (SIGTERM, then
SIGKILL after a grace period), including a peer that was restarted by hand.

Who runs what is read from the per-home locks (``node/homelock.py``): ``cluster up``
holds ``HOME/cluster.lock``, each peer holds ``HOME/peerI/node.lock``; both files
name the holder's PID. ``cluster.json`` only records what was started.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from pocnet.node import homelock
from pocnet.node.config import CONFIG_FILE, GENESIS_FILE, NodeConfig
from pocnet.node.setup_home import FAUCET_FILE, init_cluster_home, peer_homes


class ClusterError(Exception):
    """A cluster home that cannot be started, inspected or stopped as asked."""


def node_command(peer_home: Path) -> list[str]:
    return [sys.executable, "-m", "pocnet.node", "node", "--home", str(peer_home)]


def shell_command(peer_home: Path) -> str:
    """The restart command as a user can paste it: the venv's ``pocnet`` script by absolute
    path when it sits next to this interpreter, else ``python -m pocnet.node``."""
    script = Path(sys.executable).parent / "pocnet"
    prefix = [str(script)] if script.exists() else [sys.executable, "-m", "pocnet.node"]
    return shlex.join(prefix + ["node", "--home", str(Path(peer_home).resolve())])


def existing_peer_homes(home: Path) -> list[Path]:
    """peer0, peer1, ... folders of a cluster home, in numeric order."""
    found = [p.parent for p in Path(home).glob(f"peer*/{CONFIG_FILE}") if p.parent.name[4:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[4:]))


def running(home: Path) -> dict[str, int]:
    """``{"cluster up": pid, "peer0": pid, ...}`` for every process holding a lock in HOME."""
    out: dict[str, int] = {}
    pid = homelock.holder(home, homelock.CLUSTER_LOCK)
    if pid:
        out["cluster up"] = pid
    for ph in existing_peer_homes(home):
        pid = homelock.holder(ph)
        if pid:
            out[ph.name] = pid
    return out


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
    busy = running(home) if home.exists() else {}
    if busy:
        who = ", ".join(f"{k} pid {v}" for k, v in busy.items())
        raise ClusterError(f"{home} is already running ({who}); see `pocnet cluster status --home {home}`, "
                           f"stop it with `pocnet cluster down --home {home}`")
    home.mkdir(parents=True, exist_ok=True)
    try:
        homelock.acquire(home, homelock.CLUSTER_LOCK)
    except homelock.HomeLocked as exc:
        raise ClusterError(f"{exc}; another `pocnet cluster up` is starting it") from None
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
    echo(f"restart a peer by hand (while it is stopped) with:  {shell_command(homes[0].home)}"
         + ("" if len(homes) == 1 else f"  (or {homes[-1].name}, ...)"))
    echo(f"status: pocnet cluster status --home {home}   stop: Ctrl-C here, or pocnet cluster down --home {home}")
    (home / "cluster.json").write_text(json.dumps(
        {"launcher_pid": os.getpid(),
         "peers": {p.name: {"url": p.url, "pid": procs[p.name].pid, "home": str(p.home.resolve())} for p in homes}},
        indent=2))
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
    # Peers restarted by hand are not our children, but they belong to this cluster.
    others = {n: pid for n, pid in running(home).items() if n != "cluster up"}
    for name, pid in others.items():
        echo(f"stopping {name} (pid {pid}, started by hand)")
    _stop_pids(home, others)
    homelock.release(home, homelock.CLUSTER_LOCK)
    echo("all peers stopped")
    return 0


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _stop_pids(home: Path, pids: dict[str, int], grace_s: float = 15.0) -> list[str]:
    """SIGTERM each peer holding its lock, wait until its lock is free, SIGKILL after the grace."""
    for pid in pids.values():
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    lock_of = {n: (Path(home) / n, homelock.NODE_LOCK) if n != "cluster up" else (Path(home), homelock.CLUSTER_LOCK)
               for n in pids}
    left = dict(pids)
    while left and time.monotonic() < deadline:
        left = {n: p for n, p in left.items() if homelock.holder(*lock_of[n]) == p}
        if left:
            time.sleep(0.1)
    for pid in left.values():
        _signal(pid, signal.SIGKILL)
    return sorted(left)


def cluster_down(home: Path, echo=print, grace_s: float = 15.0) -> int:  # noqa: ANN001
    """Stop whatever runs on HOME: the ``cluster up`` launcher (which stops its peers)
    first, then any peer still holding its lock (e.g. one restarted by hand).
    Returns how many processes were stopped."""
    home = Path(home)
    if not (home / GENESIS_FILE).exists():
        raise ClusterError(f"{home} is not a cluster home (no {GENESIS_FILE})")
    busy = running(home)
    if not busy:
        echo(f"nothing is running in {home}")
        return 0
    stopped = 0
    launcher = busy.pop("cluster up", None)
    if launcher:
        echo(f"stopping cluster up (pid {launcher}) and its peers ...")
        killed = _stop_pids(home, {"cluster up": launcher}, grace_s + 5)
        stopped += 1
        if killed:
            echo(f"cluster up (pid {launcher}) did not stop in time: killed")
        busy = {n: p for n, p in running(home).items() if n != "cluster up"}
    for name, pid in busy.items():
        echo(f"stopping {name} (pid {pid}) ...")
    for name in _stop_pids(home, busy, grace_s):
        echo(f"{name} did not stop within {grace_s:.0f} s: killed")
    stopped += len(busy)
    left = running(home)
    if left:
        raise ClusterError("still running: " + ", ".join(f"{k} pid {v}" for k, v in left.items()))
    echo(f"stopped {home}")
    return stopped


def _get_json(url: str, timeout: float) -> dict | None:
    try:
        r = httpx.get(url, timeout=timeout)
        return r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def cluster_status(home: Path, timeout_s: float = 2.0) -> list[dict]:
    """One row per peer: name, pid (lock holder), url, height, catching_up, health."""
    home = Path(home)
    if not (home / GENESIS_FILE).exists():
        raise ClusterError(f"{home} is not a cluster home (no {GENESIS_FILE}); create one with `pocnet cluster up`")
    rows = []
    for ph in existing_peer_homes(home):
        cfg = NodeConfig.load(ph)
        url = f"http://{cfg.host}:{cfg.port}"
        pid = homelock.holder(ph)
        st = _get_json(url + "/status", timeout_s) if pid else None
        health = _get_json(url + "/health", timeout_s) if st else None
        if not pid:
            state = "stopped"
        elif st is None:
            state = "not answering"
        elif health is None or not health.get("ok"):
            state = "unhealthy"
        else:
            state = "ok"
        rows.append({"name": ph.name, "pid": pid, "url": url,
                     "height": st.get("height") if st else None,
                     "catching_up": st.get("catching_up") if st else None, "health": state})
    return rows


def format_status(home: Path, rows: list[dict]) -> list[str]:
    launcher = homelock.holder(home, homelock.CLUSTER_LOCK)
    lines = [f"cluster {home}: {len(rows)} peer(s); "
             + (f"`cluster up` running (pid {launcher})" if launcher else "no `cluster up` launcher running"),
             f"{'name':8} {'pid':>8}  {'url':26} {'height':>7}  {'catching_up':11}  health"]

    def cell(v: object) -> str:
        return "-" if v is None else ("yes" if v is True else "no" if v is False else str(v))
    for r in rows:
        lines.append(f"{r['name']:8} {cell(r['pid']):>8}  {r['url']:26} {cell(r['height']):>7}  "
                     f"{cell(r['catching_up']):11}  {r['health']}")
    return lines


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
