"""Start Flower's deployment engine on this machine: a SuperLink, N SuperNodes, ``flwr run``.

Library (the slow test uses it) and command line::

    .venv/bin/python -m pocnet.fml.flower.local --learners 6 --rounds 2 --out gfml-flower

Without ``--cluster`` a local 4-peer pocnet cluster is started in OUT/chain (as
``pocnet fml simulate --on-chain`` does). The Flower processes run from the venv that has
``flwr`` (``.venv-flower``, made by scripts/setup.sh; ``POCNET_FLOWER_BIN`` overrides its
bin folder); this module itself needs no ``flwr``.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parents[2]
APP_DIR = Path(__file__).resolve().parent / "app"


def flower_bin() -> Path:
    """Folder holding flower-superlink, flower-supernode and flwr."""
    env = os.environ.get("POCNET_FLOWER_BIN")
    path = Path(env) if env else REPO / ".venv-flower" / "bin"
    if not (path / "flower-superlink").exists():
        raise FileNotFoundError(f"no flower-superlink in {path}: run scripts/setup.sh (it makes .venv-flower with "
                                f"pip install -e '.[flower]') or set POCNET_FLOWER_BIN")
    return path


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))


class LocalFlower:
    """SuperLink + SuperNodes as local processes (each its own session, so it can be killed alone)."""

    def __init__(self, home: Path, port: int = 29300) -> None:
        self.home, self.port = Path(home), port
        self.bin = flower_bin()
        self.env = dict(os.environ, PATH=f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
                        FLWR_HOME=str(self.home / "flwr-home"), PYTHONUNBUFFERED="1")
        self.superlink: subprocess.Popen | None = None
        self.nodes: dict[int, subprocess.Popen] = {}  # first hosted learner -> its SuperNode
        self.hosts: dict[int, list[int]] = {}  # first hosted learner -> every learner on that node

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.home / f"{name}.log", "ab")
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.home,
                                start_new_session=True)

    def start_superlink(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        cfg = self.home / "flwr-home"
        cfg.mkdir(exist_ok=True)
        (cfg / "config.toml").write_text(f'[superlink]\ndefault = "local"\n\n[superlink.local]\n'
                                         f'address = "127.0.0.1:{self.port}"\ninsecure = true\n')
        self.superlink = self._spawn("superlink", [str(self.bin / "flower-superlink"), "--insecure", "--host", "127.0.0.1",
                                                   "--port", str(self.port), "--disable-runtime-dependency-installation"])
        if not wait_port(self.port, 90, self.superlink):
            raise RuntimeError(f"SuperLink did not come up on 127.0.0.1:{self.port} (see {self.home}/superlink.log)")

    def start_supernode(self, learner: int | Sequence[int], superlink: str | None = None, **options: Any) -> subprocess.Popen:
        """A SuperNode hosting one learner (``learner=j``) or several (a list: ``learners="j,k,..."``);
        ``options`` become its node config (misbehave="lazy", delay_s=30, ...). Its log and local API
        port follow its first learner."""
        hosted = [learner] if isinstance(learner, int) else sorted(int(j) for j in learner)
        first = hosted[0]
        host = {"learner": first} if len(hosted) == 1 else {"learners": ",".join(str(j) for j in hosted)}
        options = {**host, "cache_dir": str(self.home / "cache"), **options}
        conf = " ".join(f"{k.replace('_', '-')}={toml_value(v)}" for k, v in options.items())
        proc = self._spawn(f"supernode{first:03d}", [
            str(self.bin / "flower-supernode"), "--insecure", "--superlink", superlink or f"127.0.0.1:{self.port}",
            "--port", str(self.port + 100 + first), "--node-config", conf])
        self.nodes[first] = proc
        self.hosts[first] = hosted
        return proc

    def run(self, run_config: dict[str, Any], stream_to: Path | None = None) -> subprocess.Popen:
        """``flwr run APP_DIR local --run-config ... --stream`` (returns the process)."""
        rc = " ".join(f"{k}={toml_value(v)}" for k, v in run_config.items())
        out = open(stream_to or self.home / "flwr-run.log", "ab")
        return subprocess.Popen([str(self.bin / "flwr"), "run", str(APP_DIR), "local", "--run-config", rc, "--stream"],
                                stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=self.home, start_new_session=True)

    def kill_node(self, learner: int) -> None:
        """SIGKILL the SuperNode hosting ``learner`` and its ClientApp processes (a device that dies:
        every learner it hosts goes missing)."""
        proc = self.nodes[next(k for k, hosted in self.hosts.items() if learner in hosted)]
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)

    def stop(self) -> None:
        procs = list(self.nodes.values()) + ([self.superlink] if self.superlink else [])
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)

    def __enter__(self) -> "LocalFlower":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def wait_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    """True once something accepts TCP connections on 127.0.0.1:port."""
    import socket
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return False
        with socket.socket() as s:
            s.settimeout(1.0)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.5)
    return False


def wait_file(path: Path, timeout: float, procs: list[subprocess.Popen] = ()) -> bool:  # type: ignore[assignment]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.stat().st_size > 0:
            return True
        if any(p.poll() is not None for p in procs):
            return path.exists()
        time.sleep(1.0)
    return False


def parse_misbehave(spec: str) -> dict[int, str]:
    """'3=lazy,5=free-rider' -> {3: 'lazy', 5: 'free-rider'}."""
    out = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        j, _, kind = part.partition("=")
        out[int(j)] = kind
    return out


def node_layout(learners: int, per_node: int) -> list[list[int]]:
    """Learners per SuperNode: one each (``per_node`` 1, the default), or ``ceil(learners / per_node)``
    nodes, node k hosting learners k, k + nodes, k + 2 nodes, ... (round robin)."""
    if per_node < 1:
        raise ValueError("--learners-per-node: at least 1")
    n_nodes = -(-learners // per_node)
    return [list(range(k, learners, n_nodes)) for k in range(n_nodes)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--learners", type=int, default=6)
    ap.add_argument("--coalitions", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--key-seed", type=int, default=0)
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--data-limit", type=int, default=0, help="first N images only (0: all)")
    ap.add_argument("--cluster", default="", help="comma-separated peer URLs of a running cluster (default: start one)")
    ap.add_argument("--msp-key", default="", help="with --cluster: funded MSP key file (HOME/faucet.json)")
    ap.add_argument("--misbehave", default="", help="learner=kind,... e.g. 3=lazy,5=free-rider")
    ap.add_argument("--learners-per-node", type=int, default=1,
                    help="learners hosted by one SuperNode (memory: each node is 2 processes + one ClientApp per message)")
    ap.add_argument("--round-timeout", type=float, default=120.0)
    ap.add_argument("--port", type=int, default=29300, help="SuperLink port (SuperNodes use port+100+learner)")
    ap.add_argument("--base-port", type=int, default=27650, help="first port of the local cluster")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    result = a.out / "flower-result.json"
    result.unlink(missing_ok=True)
    import contextlib
    with contextlib.ExitStack() as stack:
        urls, msp_key = [u for u in a.cluster.split(",") if u], a.msp_key
        if not urls:
            from pocnet.node.cluster import LocalCluster
            from pocnet.node.setup_home import FAUCET_FILE
            lc = stack.enter_context(LocalCluster(a.out / "chain", 4, a.base_port, chain_id="fml-flower"))
            urls, msp_key = lc.urls, str(a.out / "chain" / FAUCET_FILE)
        fl = stack.enter_context(LocalFlower(a.out / "flower", a.port))
        fl.start_superlink()
        bad = parse_misbehave(a.misbehave)
        for hosted in node_layout(a.learners, a.learners_per_node):
            kinds = ",".join(f"{j}={bad[j]}" for j in hosted if j in bad)
            fl.start_supernode(hosted, **({"misbehave": kinds} if kinds else {}))
        run = fl.run({"cluster": ",".join(urls), "msp-key": str(Path(msp_key).resolve()), "learners": a.learners,
                      "coalitions": a.coalitions, "rounds": a.rounds, "seed": a.seed, "key-seed": a.key_seed,
                      "dataset": a.dataset, "data-limit": a.data_limit, "round-timeout": a.round_timeout,
                      "out": str(result.resolve())})
        ok = wait_file(result, 600 + a.rounds * (a.round_timeout + 300), [run])
        if not ok:
            print(f"no result; see {a.out / 'flower'}/*.log", file=sys.stderr)
            return 1
        data = json.loads(result.read_text())
        for r in data["rounds"]:
            print(f"round {r['round']}: coalitions {r['coalitions']} missing {r['missing']} "
                  f"payout {sum(r['payouts'].values()):.4f} acc {r.get('acc', float('nan')):.4f}")
        print(f"reputations agree on all {len(urls)} peers: {data['reputations_agree_on_all_peers']}; wrote {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
