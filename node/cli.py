"""``pocnet`` command line: keys, genesis, node, cluster, tx, query (+ models, games, fml, market)."""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Optional

import typer

from pocnet.ledger.keys import KeyPair
from pocnet.node.cli_errors import CliError, UsageFailure, run_cli

app = typer.Typer(help="pocnet: proof-of-contribution blockchain node for edge computing and FML.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
keys_app = typer.Typer(help="Ed25519 key files.", no_args_is_help=True)
genesis_app = typer.Typer(help="Create chain homes and genesis files.", no_args_is_help=True)
cluster_app = typer.Typer(help="Run a local multi-peer cluster.", no_args_is_help=True)
tx_app = typer.Typer(help="Sign and submit transactions.", no_args_is_help=True)
query_app = typer.Typer(help="Query a peer's REST API.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(genesis_app, name="genesis")
app.add_typer(cluster_app, name="cluster")
app.add_typer(tx_app, name="tx")
app.add_typer(query_app, name="query")

# Sub-apps of the other packages, mounted when present.
for _name, _module, _help in (("models", "pocnet.models.cli", "Proof-of-contribution models: data, training, evaluation."),
                              ("games", "pocnet.games.cli", "FML incentive games on JSON input."),
                              ("fml", "pocnet.fml.cli", "Federated meta-learning experiments."),
                              ("market", "pocnet.games.market_cli", "Bandwidth market (Kang et al. 2023): equilibrium, MALPPO.")):
    try:
        app.add_typer(importlib.import_module(_module).app, name=_name, help=_help)
    except ImportError as _exc:  # the package is optional at import time; say why it is missing
        if _module.split(".")[0] not in str(_exc):
            raise

NODE_OPT = typer.Option("http://127.0.0.1:26650", "--node", envvar="POCNET_NODE", help="peer URL")


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="show the traceback of a failure "
                                     "(also POCNET_DEBUG=1)")) -> None:
    """pocnet: proof-of-contribution blockchain node for edge computing and FML."""
    # --debug itself is read by run_cli (pocnet.node.cli_errors) before parsing.


def _fail(msg: str) -> None:
    raise UsageFailure(msg)


def load_key(path: Path) -> KeyPair:
    """A key file, or one clear error naming the file and what is wrong with it."""
    try:
        return KeyPair.load(path)
    except FileNotFoundError:
        raise UsageFailure(f"key file {path} does not exist (create one with `pocnet keys new --out {path}`)") from None
    except IsADirectoryError:
        raise UsageFailure(f"key file {path} is a directory") from None
    except OSError as exc:
        raise UsageFailure(f"cannot read key file {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise UsageFailure(f"{path} is not a pocnet key file ({what}); expected "
                           '{"address": hex, "private_key": hex 32-byte seed}') from None


def _print(obj) -> None:  # noqa: ANN001
    typer.echo(json.dumps(obj, indent=2))


@keys_app.command("new")
def keys_new(out: Path = typer.Option(..., help="key file to write"),
             force: bool = typer.Option(False, help="overwrite an existing file")) -> None:
    """Generate a key; print its address."""
    if out.exists() and not force:
        _fail(f"{out} exists (use --force to overwrite)")
    kp = KeyPair.generate()
    kp.save(out)
    typer.echo(kp.address)


@keys_app.command("show")
def keys_show(path: Path) -> None:
    """Print the address of a key file."""
    typer.echo(load_key(path).address)


@genesis_app.command("new")
def genesis_new(home: Path = typer.Option(..., help="cluster home directory"),
                peers: int = typer.Option(1, min=1, max=64),
                base_port: int = typer.Option(26650),
                chain_id: Optional[str] = typer.Option(None, help="default: pocnet-<12 hex> derived from the genesis"),
                fund: list[str] = typer.Option([], help="ADDRESS:AMOUNT credited in genesis (repeatable)"),
                url_template: str = typer.Option("http://127.0.0.1:{port}",
                                                 help="how peers reach peer i: {i}, {name}, {port} substituted"),
                same_port: bool = typer.Option(False, help="every peer listens on BASE_PORT (containers)")) -> None:
    """Create validator keys, peer configs and genesis in HOME (no-op if present)."""
    from pocnet.node.config import NodeConfig
    from pocnet.node.setup_home import init_cluster_home, parse_fund
    try:
        funds = [parse_fund(f) for f in fund]
        _refuse_conflicts(home, peers, base_port, chain_id, funds)
        g = init_cluster_home(home, peers, base_port, funds, chain_id=chain_id, url_template=url_template)
        if same_port:
            for i in range(peers):
                cfg = NodeConfig.load(home / f"peer{i}")
                cfg.port = base_port
                cfg.save(home / f"peer{i}")
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(f"genesis {g.hash} for chain {g.chain_id} with {len(g.validators)} validator(s) in {home}")


@app.command("init")
def init_cmd(home: Path = typer.Option(..., help="new peer home"),
             genesis: Path = typer.Option(..., help="the chain's genesis.json (copy it from any peer's home, "
                                          "or GET /genesis)"),
             peer: list[str] = typer.Option([], help="URL of a running peer to sync from (repeatable); "
                                            "checked to serve this chain"),
             port: int = typer.Option(26660, help="port this peer listens on"),
             name: Optional[str] = typer.Option(None, help="peer name in logs [default: peer-<address>]")) -> None:
    """Set up a peer for an existing chain: it syncs as a full node; it becomes a validator
    with `pocnet tx validator-join` (then run `pocnet node --home HOME`)."""
    import httpx

    from pocnet.ledger.genesis import Genesis
    from pocnet.node.setup_home import init_node_home
    try:
        g = Genesis.load(genesis)
    except FileNotFoundError:
        raise UsageFailure(f"--genesis {genesis} does not exist") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageFailure(f"--genesis {genesis} is not a pocnet genesis file: {exc}") from None
    seeds: dict[str, str] = {}
    for url in peer:
        try:
            st = httpx.get(url.rstrip("/") + "/status", timeout=10).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise CliError(f"--peer {url}: cannot read its /status ({type(exc).__name__}: {exc})") from None
        if st.get("chain_id") != g.chain_id:
            raise CliError(f"--peer {url} serves chain {st.get('chain_id')!r}, not {g.chain_id!r} of {genesis}")
        seeds[str(st["peer_id"])] = url.rstrip("/")
    try:
        g, key = init_node_home(home, genesis, port, name, seeds)
    except ValueError as exc:
        raise UsageFailure(str(exc)) from None
    typer.echo(f"peer {key.address} for chain {g.chain_id} in {home} (port {port}); "
               f"start it with `pocnet node --home {home}`, join with "
               f"`pocnet tx validator-join --key {home / 'node_key.json'} --url http://HOST:{port} --bond N`")


@app.command("node")
def node_cmd(home: Path = typer.Option(..., help="peer home (node_key.json, genesis.json, config.json)"),
             db_url: Optional[str] = typer.Option(None, help="SQLAlchemy URL (default: SQLite in HOME)"),
             port: Optional[int] = typer.Option(None, help="override the configured port"),
             host: Optional[str] = typer.Option(None, help="listen address (default 127.0.0.1)"),
             log_level: Optional[str] = typer.Option(None)) -> None:
    """Run one peer in the foreground (one per home: a second one on the same home refuses)."""
    import uvicorn

    from pocnet.node import homelock
    from pocnet.node.config import LOG_FILE, NodeConfig
    from pocnet.node.logging_setup import setup_logging
    from pocnet.node.node import Node
    if not (home / "genesis.json").exists() or not (home / "node_key.json").exists():
        _fail(f"{home} has no genesis.json/node_key.json; create it with `pocnet genesis new` or `pocnet cluster up`")
    try:
        homelock.acquire(home)
    except homelock.HomeLocked as exc:
        raise CliError(f"peer home {exc}: another `pocnet node` runs on it; stop it first "
                       "(`pocnet cluster status --home <cluster home>` shows who runs where)") from None
    cfg = NodeConfig.load(home)
    if port:
        cfg.port = port
    if host:
        cfg.host = host
    if log_level:
        cfg.log_level = log_level
    setup_logging(cfg.log_level, home / LOG_FILE, cfg.name)
    try:
        node = Node(home, cfg, db_url=db_url)
    except Exception as exc:  # noqa: BLE001 - startup errors are reported, not traced
        raise CliError(f"cannot start peer: {exc}") from exc
    from pocnet.node.server import uvicorn_settings
    uvicorn.run(node.create_app(), host=cfg.host, port=cfg.port, log_level="warning", **uvicorn_settings())


def _refuse_conflicts(home: Path, peers: Optional[int], base_port: Optional[int], chain_id: Optional[str],
                      funds: list[tuple[str, int]]) -> None:
    from pocnet.node.config import GENESIS_FILE
    from pocnet.node.setup_home import existing_home_conflicts
    if not (home / GENESIS_FILE).exists():
        return
    conflicts = existing_home_conflicts(home, peers, base_port, chain_id, funds)
    if conflicts:
        raise UsageFailure(f"{home} already holds a chain; these options only apply to a new home: "
                           + "; ".join(conflicts) + " (use another --home for a new chain)")


@cluster_app.command("up")
def cluster_up_cmd(peers: Optional[int] = typer.Option(None, min=1, max=32, help="number of peers [default: 4]"),
                   home: Path = typer.Option(Path("localnet")),
                   base_port: Optional[int] = typer.Option(None, help="peer i listens on BASE_PORT+i [default: 26650]"),
                   fund: list[str] = typer.Option([], help="ADDRESS:AMOUNT credited in genesis (repeatable; "
                                                  "new homes only)"),
                   chain_id: Optional[str] = typer.Option(None, help="default: pocnet-<12 hex> derived from the genesis")) -> None:
    """Start N peers on 127.0.0.1:BASE_PORT.. in the foreground; Ctrl-C stops them all.

    On an existing home it resumes the same chain; options that would change its genesis
    are refused. A home that is already running is refused too."""
    from pocnet.node.cluster import ClusterError, cluster_up
    from pocnet.node.config import GENESIS_FILE
    from pocnet.node.setup_home import parse_fund
    try:
        funds = [parse_fund(f) for f in fund]
    except ValueError as exc:
        raise UsageFailure(str(exc)) from None
    _refuse_conflicts(home, peers, base_port, chain_id, funds)
    if (home / GENESIS_FILE).exists() and peers is None:
        from pocnet.ledger.genesis import Genesis
        peers = len(Genesis.load(home / GENESIS_FILE).validators)
    try:
        code = cluster_up(home, peers or 4, base_port or 26650, funds, chain_id=chain_id, echo=typer.echo)
    except ClusterError as exc:
        raise CliError(str(exc)) from None
    except ValueError as exc:
        raise UsageFailure(str(exc)) from None
    raise typer.Exit(code)


@cluster_app.command("status")
def cluster_status_cmd(home: Path = typer.Option(Path("localnet")),
                       wait: float = typer.Option(0.0, help="wait up to this many seconds until every peer "
                                                  "is healthy and not catching up"),
                       as_json: bool = typer.Option(False, "--json", help="print JSON rows")) -> None:
    """Each peer's PID, URL, height, catching-up flag and health. Exit 1 unless all are healthy.

    With --wait, a home that does not exist yet (cluster up still starting) is waited for too."""
    import time

    from pocnet.node.cluster import ClusterError, cluster_status, format_status
    deadline = time.monotonic() + max(0.0, wait)
    while True:
        try:
            rows = cluster_status(home)
        except ClusterError as exc:  # with --wait, the home may still be being created
            if time.monotonic() >= deadline:
                raise CliError(str(exc)) from None
            time.sleep(0.5)
            continue
        bad = [r for r in rows if r["health"] != "ok" or r["catching_up"]]
        if (rows and not bad) or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    if as_json:
        _print(rows)
    else:
        for line in format_status(home, rows):
            typer.echo(line)
    if bad:
        raise CliError(f"{len(bad)} of {len(rows)} peer(s) not ready: "
                       + ", ".join(f"{r['name']} {'catching up' if r['health'] == 'ok' else r['health']}"
                                   for r in bad))


@cluster_app.command("down")
def cluster_down_cmd(home: Path = typer.Option(Path("localnet"))) -> None:
    """Stop every process of the cluster in HOME (the `cluster up` launcher and any peer,
    including one restarted by hand): SIGTERM, then SIGKILL after 15 s."""
    from pocnet.node.cluster import ClusterError, cluster_down
    try:
        cluster_down(home, echo=typer.echo)
    except ClusterError as exc:
        raise CliError(str(exc)) from None


def _client(node: str):  # noqa: ANN202
    from pocnet.node.client import PeerClient
    return PeerClient(node)


@tx_app.command("send")
def tx_send(key: Path = typer.Option(..., help="sender key file"),
            to: str = typer.Option(..., help="recipient address"),
            amount: int = typer.Option(..., help="integer amount"),
            node: str = NODE_OPT, wait: bool = typer.Option(True, help="wait until committed")) -> None:
    """Sign and submit a transfer."""
    _submit(node, key, "transfer", {"to": to, "amount": amount}, wait)


@tx_app.command("task")
def tx_task(key: Path = typer.Option(...), work: int = typer.Option(..., help="work units"),
            demand: str = typer.Option("100", help="comma-separated integer resource demands"),
            deadline_ms: int = typer.Option(10_000, help="time the provider has to report, from allocation"),
            node: str = NODE_OPT, wait: bool = typer.Option(True),
            id_only: bool = typer.Option(False, "--id-only", help="print only the task id (its tx hash)")) -> None:
    """Sign and submit an edge-computing task (the provider it is allocated to reports it
    with `pocnet tx task-result`; unreported, it expires after --deadline-ms)."""
    try:
        vec = [int(x) for x in demand.split(",")]
    except ValueError:
        _fail("--demand must be comma-separated integers")
    _submit(node, key, "task", {"work": work, "demand": vec, "deadline_ms": deadline_ms}, wait,
            id_only=id_only)


@tx_app.command("unjail")
def tx_unjail(key: Path = typer.Option(..., help="the jailed validator's key file (node_key.json)"),
              node: str = NODE_OPT, wait: bool = typer.Option(True)) -> None:
    """Ask to be released from jail (accepted once the jail period is over; the validator
    votes and proposes again two heights after it is committed). See GET /validators."""
    _submit(node, key, "unjail", {}, wait)


@tx_app.command("validator-join")
def tx_validator_join(key: Path = typer.Option(..., help="the joining validator's key file (its peer's "
                                               "node_key.json): it signs its own join and pays the bond"),
                      url: str = typer.Option(..., help="URL the other validators reach this peer at"),
                      bond: int = typer.Option(..., help="tokens locked from the key's balance (>= genesis "
                                               "consensus.min_bond)"),
                      capacity: Optional[int] = typer.Option(None, help="work units per ms offered to the task "
                                                             "market (PoC input) [default: 4]"),
                      node: str = NODE_OPT, wait: bool = typer.Option(True)) -> None:
    """Join the validator set: votes and proposes from two heights after the tx is committed.
    See GET /validators (active_from)."""
    payload: dict = {"validator": load_key(key).address, "url": url, "bond": bond}
    if capacity is not None:
        payload["capacity"] = capacity
    _submit(node, key, "validator_join", payload, wait)


@tx_app.command("validator-leave")
def tx_validator_leave(key: Path = typer.Option(..., help="the leaving validator's key file (node_key.json)"),
                       node: str = NODE_OPT, wait: bool = typer.Option(True)) -> None:
    """Leave the validator set two heights after commit; the bond (minus any slash) is paid
    back consensus.unbonding_heights later (GET /validators: active_until, unbond_at)."""
    _submit(node, key, "validator_leave", {}, wait)


def _find_task(c, task_id: str) -> dict | None:  # noqa: ANN001
    """The committed task with this id, or None while it is not committed."""
    import httpx
    try:
        return c._get(f"/tasks/{task_id}")
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == 404:
            return None
        raise


def _provider_key(home: Path, address: str) -> Path:
    from pocnet.node.cluster import existing_peer_homes
    from pocnet.node.config import NODE_KEY_FILE
    for ph in existing_peer_homes(home):
        path = ph / NODE_KEY_FILE
        if path.exists() and load_key(path).address == address:
            return path
    raise CliError(f"the task is allocated to {address}, whose key is not in {home}; "
                   "that provider must report it with its own key (--key)")


@tx_app.command("task-result")
def tx_task_result(task_id: str = typer.Option(..., help="the task's id (the hash of its task tx)"),
                   delivered_work: Optional[int] = typer.Option(None, help="work units delivered "
                                                                "[default: all of the task's work]"),
                   key: Optional[Path] = typer.Option(None, help="the provider's key file (the validator the "
                                                      "task is allocated to)"),
                   home: Optional[Path] = typer.Option(None, help="instead of --key: a cluster home; the key of "
                                                       "the peer the task is allocated to is taken from it"),
                   wait_allocated: float = typer.Option(60.0, help="seconds to wait while the task is still "
                                                        "queued (allocation takes a few blocks)"),
                   node: str = NODE_OPT, wait: bool = typer.Option(True)) -> None:
    """Report a task's result as the provider it was allocated to: a claim that the submitter
    attests (``tx task-attest``) or that stands after task_attest_heights; then it feeds the
    provider's reputation and pays it the task fee pro rata. A task nobody reports expires at
    its deadline and counts against that provider's reputation if it could have met it."""
    import time
    if (key is None) == (home is None):
        _fail("give exactly one of --key (the provider's key file) or --home (a cluster home)")
    c = _client(node)
    deadline = time.monotonic() + max(0.0, wait_allocated)
    while True:
        task = _find_task(c, task_id)
        if task is not None and task["status"] != "queued":
            break
        if time.monotonic() >= deadline:
            raise CliError(f"task {task_id} is " + ("not committed on " + node if task is None else
                                                     "still queued, not yet allocated to a provider")
                           + f" after {wait_allocated:.0f} s")
        time.sleep(0.5)
    if task["status"] != "allocated":
        raise CliError(f"task {task_id} is {task['status']}; only an allocated task can be reported")
    if home is not None:
        key = _provider_key(home, task["assigned_to"])
    assert key is not None
    amount = task["work"] if delivered_work is None else delivered_work
    _submit(node, key, "task_result", {"task_id": task_id, "delivered_work": amount}, wait)


@tx_app.command("task-attest")
def tx_task_attest(task_id: str = typer.Option(..., help="the task's id (the hash of its task tx)"),
                   key: Path = typer.Option(..., help="the submitter's key file (who sent the task tx)"),
                   delivered_work: Optional[int] = typer.Option(None, help="work units you received: the "
                                                                "provider's claim confirms it, less disputes it "
                                                                "[default: the claim]"),
                   wait_reported: float = typer.Option(30.0, help="seconds to wait for the provider's report"),
                   node: str = NODE_OPT, wait: bool = typer.Option(True)) -> None:
    """Attest a reported task result as its submitter: the claimed amount confirms it (the
    provider is credited now), less disputes it (counts neither for nor against the provider;
    the fee is burned). Unattested claims stand after task_attest_heights."""
    import time
    c = _client(node)
    deadline = time.monotonic() + max(0.0, wait_reported)
    while True:
        task = _find_task(c, task_id)
        if task is not None and task["status"] not in ("queued", "allocated"):
            break
        if time.monotonic() >= deadline:
            raise CliError(f"task {task_id} is " + ("not committed on " + node if task is None else
                                                     f"{task['status']}, not yet reported by its provider")
                           + f" after {wait_reported:.0f} s")
        time.sleep(0.5)
    if task["status"] != "reported":
        raise CliError(f"task {task_id} is {task['status']}; only a reported task can be attested")
    amount = task["claimed_work"] if delivered_work is None else delivered_work
    _submit(node, key, "task_attest", {"task_id": task_id, "delivered_work": amount}, wait)


def _csv_addresses(value: str, opt: str) -> list[str]:
    items = [a.strip() for a in value.split(",") if a.strip()]
    if not items:
        _fail(f"{opt}: give comma-separated addresses")
    return items


@tx_app.command("market-open")
def tx_market_open(key: Path = typer.Option(..., help="opener key file"),
                   leaders: str = typer.Option(..., help="MRP addresses, comma-separated"),
                   followers: str = typer.Option(..., help="MSP addresses, comma-separated"),
                   price_blocks: int = typer.Option(20, help="blocks during which leaders may post prices"),
                   demand_blocks: int = typer.Option(20, help="blocks after the price deadline for demands"),
                   node: str = NODE_OPT, wait: bool = typer.Option(True)) -> None:
    """Open a bandwidth-market round (docs/market.md)."""
    _submit(node, key, "market_open", {"leaders": _csv_addresses(leaders, "--leaders"),
                                       "followers": _csv_addresses(followers, "--followers"),
                                       "price_blocks": price_blocks, "demand_blocks": demand_blocks}, wait)


@tx_app.command("market-price")
def tx_market_price(key: Path = typer.Option(..., help="leader (MRP) key file"),
                    round_id: int = typer.Option(..., "--round", help="market round id"),
                    price: int = typer.Option(..., help="price in price quanta (default 1e6 per unit: 900000 = 0.9)"),
                    node: str = NODE_OPT, wait: bool = typer.Option(True)) -> None:
    """Post a leader's price in a market round."""
    _submit(node, key, "market_price", {"round": round_id, "price": price}, wait)


@tx_app.command("market-demand")
def tx_market_demand(key: Path = typer.Option(..., help="follower (MSP) key file"),
                     round_id: int = typer.Option(..., "--round", help="market round id"),
                     demands: str = typer.Option(..., help="demand quanta per leader, comma-separated, round order"),
                     node: str = NODE_OPT, wait: bool = typer.Option(True)) -> None:
    """Post a follower's demands (its payments are escrowed at once)."""
    try:
        vec = [int(x) for x in demands.split(",")]
    except ValueError:
        _fail("--demands must be comma-separated integers (demand quanta)")
    _submit(node, key, "market_demand", {"round": round_id, "demands": vec}, wait)


@tx_app.command("raw")
def tx_raw(key: Path = typer.Option(...), tx_type: str = typer.Option(..., "--type"),
           payload: str = typer.Option(..., help="payload JSON"), node: str = NODE_OPT,
           wait: bool = typer.Option(True)) -> None:
    """Sign and submit a tx of any type with a JSON payload."""
    from pocnet.ledger.encoding import EncodingError, loads_strict
    try:
        obj = loads_strict(payload)
    except EncodingError as exc:
        _fail(f"--payload: {exc}")
    _submit(node, key, tx_type, obj, wait)


def _submit(node: str, key: Path, tx_type: str, payload: dict, wait: bool, id_only: bool = False) -> None:
    from pocnet.node.client import TxRefused
    c = _client(node)
    kp = load_key(key)
    try:
        tx = c.sign_and_submit(kp, tx_type, payload)
    except TxRefused as exc:
        raise CliError(f"peer {node} refused the {tx_type}: {exc.describe()}") from None
    out: dict = {"tx_hash": tx.hash}
    if wait:
        try:
            out = c.wait_committed(tx.hash)
        except TimeoutError as exc:
            raise CliError(f"{exc} (it may still commit: `pocnet query tx {tx.hash}`)") from None
    if id_only:
        typer.echo(tx.hash)
    else:
        _print(out)


@query_app.command("status")
def q_status(node: str = NODE_OPT) -> None:
    _print(_client(node).status())


@query_app.command("block")
def q_block(height: str = typer.Argument("latest"), node: str = NODE_OPT) -> None:
    _print(_client(node).block(height))


@query_app.command("account")
def q_account(address: str, node: str = NODE_OPT) -> None:
    _print(_client(node).account(address))


@query_app.command("tx")
def q_tx(tx_hash: str, node: str = NODE_OPT) -> None:
    _print(_client(node).tx(tx_hash))


@query_app.command("market")
def q_market(round_id: Optional[int] = typer.Argument(None, help="round id (default: list rounds)"),
             node: str = NODE_OPT) -> None:
    """Market rounds (GET /market/rounds or /market/rounds/{id})."""
    import httpx
    try:
        _print(_client(node)._get("/market/rounds" if round_id is None else f"/market/rounds/{round_id}"))
    except (RuntimeError, httpx.HTTPError) as exc:
        _fail(str(exc))


@query_app.command("tasks")
def q_tasks(status: Optional[str] = typer.Option(None, help="queued | allocated | reported | done | disputed | expired"),
            node: str = NODE_OPT) -> None:
    """Committed tasks in queue order (status, assigned_to, delivered_work, ...)."""
    _print(_client(node)._get("/tasks" + (f"?status={status}" if status else "")))


def main(argv: list[str] | None = None) -> int:
    """Console entry point: errors become one line on stderr (see pocnet.node.cli_errors)."""
    return run_cli(app, argv)


def console_main() -> None:  # pragma: no cover - the ``pocnet`` console script
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    console_main()
