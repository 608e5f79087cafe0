"""Create a cluster home: validator keys, per-peer configs and a shared genesis."""
from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pocnet.ledger.genesis import Genesis, ValidatorInfo
from pocnet.ledger.keys import KeyPair, parse_public_key
from pocnet.ledger.params import DEFAULTS as CONSENSUS_DEFAULTS
from pocnet.node.config import GENESIS_FILE, NODE_KEY_FILE, NodeConfig

FAUCET_FILE = "faucet.json"
DEFAULT_FAUCET_AMOUNT = 10**15
# Written out in full so an operator sees every value; the table is ledger/params.py.
DEFAULT_CONSENSUS = dict(CONSENSUS_DEFAULTS)


@dataclass
class PeerHome:
    name: str
    home: Path
    url: str
    port: int


def parse_fund(spec: str) -> tuple[str, int]:
    """``ADDRESS:AMOUNT`` → (address, amount); raise ValueError naming the problem."""
    addr, sep, amount = spec.partition(":")
    if not sep:
        raise ValueError(f"--fund {spec!r}: expected ADDRESS:AMOUNT")
    try:
        parse_public_key(addr)
    except ValueError as exc:
        raise ValueError(f"--fund {spec!r}: ADDRESS {exc}") from None
    if not amount.isdigit() or int(amount) <= 0:
        raise ValueError(f"--fund {spec!r}: AMOUNT must be a positive integer")
    return addr, int(amount)


LOCAL_URL_TEMPLATE = "http://127.0.0.1:{port}"


def existing_home_conflicts(home: Path, peers: int | None = None, base_port: int | None = None,
                            chain_id: str | None = None, funds: Sequence[tuple[str, int]] = ()) -> list[str]:
    """Options that ask for something an existing home's genesis cannot become.

    Genesis is fixed once written, so ``--peers``, ``--base-port``, ``--chain-id`` and
    ``--fund`` only apply when a home is created; given again with the values already in
    force they are accepted (rerunning the same command resumes the chain), otherwise
    each is named here so the caller refuses instead of silently ignoring it."""
    home = Path(home)
    genesis = Genesis.load(home / GENESIS_FILE)
    out = []
    if peers is not None and peers != len(genesis.validators):
        out.append(f"--peers {peers} (it has {len(genesis.validators)})")
    if base_port is not None:
        current = NodeConfig.load(home / "peer0").port if (home / "peer0").is_dir() else None
        if current is not None and current != base_port:
            out.append(f"--base-port {base_port} (its peers listen from {current})")
    if chain_id is not None and chain_id != genesis.chain_id:
        out.append(f"--chain-id {chain_id} (it is {genesis.chain_id})")
    wanted: dict[str, int] = {}
    for addr, amount in funds:
        wanted[addr] = wanted.get(addr, 0) + amount
    for addr, amount in wanted.items():
        if genesis.balances.get(addr) != amount:
            out.append(f"--fund {addr[:12]}...:{amount} (genesis balances are fixed; send from "
                       f"{home / FAUCET_FILE} instead: pocnet tx send --key {home / FAUCET_FILE} "
                       f"--to {addr} --amount {amount})")
    return out


def peer_homes(home: Path, peers: int, base_port: int,
               url_template: str = LOCAL_URL_TEMPLATE) -> list[PeerHome]:
    """Peer i listens on base_port+i; its URL (as other peers reach it) follows ``url_template``
    (``{i}``, ``{name}``, ``{port}`` are substituted; containers use e.g. ``http://peer{i}:26650``)."""
    return [PeerHome(f"peer{i}", Path(home) / f"peer{i}",
                     url_template.format(i=i, name=f"peer{i}", port=base_port + i), base_port + i)
            for i in range(peers)]


def init_cluster_home(home: Path, peers: int, base_port: int, funds: list[tuple[str, int]],
                      chain_id: str | None = None, capacities: list[int] | None = None,
                      poc_weights_sha256: str | None = None, game_params: dict | None = None,
                      consensus: dict | None = None, url_template: str = LOCAL_URL_TEMPLATE) -> Genesis:
    """Create keys, configs and genesis if absent; return the genesis in force.

    Without an explicit ``chain_id`` the chain id is derived from the genesis itself
    (``pocnet-<12 hex>``, see Genesis.derived_chain_id): two default networks never share one."""
    home = Path(home)
    genesis_path = home / GENESIS_FILE
    if genesis_path.exists():
        genesis = Genesis.load(genesis_path)
        if len(genesis.validators) != peers:
            raise ValueError(f"{home} already holds a chain with {len(genesis.validators)} validators, "
                             f"not {peers}; use another --home")
        return genesis
    home.mkdir(parents=True, exist_ok=True)
    faucet = KeyPair.generate()
    faucet.save(home / FAUCET_FILE)
    validators = []
    for i, p in enumerate(peer_homes(home, peers, base_port, url_template)):
        p.home.mkdir(parents=True, exist_ok=True)
        key = KeyPair.generate()
        key.save(p.home / NODE_KEY_FILE)
        NodeConfig(name=p.name, port=p.port).save(p.home)
        cap = capacities[i] if capacities and i < len(capacities) else 4
        validators.append(ValidatorInfo(p.name, key.address, p.url, cap))
    balances = {faucet.address: DEFAULT_FAUCET_AMOUNT}
    for addr, amount in funds:
        balances[addr] = balances.get(addr, 0) + amount
    if poc_weights_sha256 is None:  # default: the student shipped with this code
        from pocnet.models.quant import DEFAULT_WEIGHTS, weights_sha256
        poc_weights_sha256 = weights_sha256() if DEFAULT_WEIGHTS.exists() else ""
    genesis = Genesis(chain_id or "", int(time.time() * 1000), tuple(validators), balances,
                      dict(DEFAULT_CONSENSUS, **(consensus or {})), dict(game_params or {}), poc_weights_sha256)
    if not chain_id:
        genesis = replace(genesis, chain_id=genesis.derived_chain_id())
    genesis.check()
    genesis.save(genesis_path)
    for p in peer_homes(home, peers, base_port):
        shutil.copy(genesis_path, p.home / GENESIS_FILE)
    return genesis


def init_node_home(home: Path, genesis_file: Path, port: int, name: str | None = None,
                   seeds: dict[str, str] | None = None) -> tuple[Genesis, KeyPair]:
    """Home of a peer joining an existing chain (a full node until it joins the validator set
    by a ``validator_join`` tx): the chain's genesis, a new node key, a config listening on
    ``port``, and ``seeds`` (peer id -> URL) it syncs from besides the validators on chain.

    Refuses a home that already holds another chain; rerunning on the same genesis keeps the
    key and only updates port and seeds."""
    home = Path(home)
    genesis = Genesis.load(genesis_file)   # validates it (raises ValueError naming the problem)
    existing = home / GENESIS_FILE
    if existing.exists() and Genesis.load(existing).hash != genesis.hash:
        raise ValueError(f"{home} already holds another chain ({Genesis.load(existing).chain_id}); "
                         "use another --home")
    home.mkdir(parents=True, exist_ok=True)
    genesis.save(existing)
    key_path = home / NODE_KEY_FILE
    if key_path.exists():
        key = KeyPair.load(key_path)
    else:
        key = KeyPair.generate()
        key.save(key_path)
    fresh = not (home / "config.json").exists()
    cfg = NodeConfig.load(home)
    if name or fresh:
        cfg.name = name or f"peer-{key.address[:8]}"
    cfg.port = port
    if seeds:
        cfg.extra = dict(cfg.extra, seeds=dict(seeds))
    cfg.save(home)
    return genesis, key
