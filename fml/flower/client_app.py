"""The learners of one device as a Flower ClientApp: their shards, their keys, local Per-FedAvg HF.

Node config (``flower-supernode --node-config '...'``):

* ``learner``       this device's learner index (0..learners-1; its shard and key follow), or
* ``learners``      several indices, comma-separated (``"0,8,16,24,32"``): one SuperNode hosts
  them all (the strategy sends the node one message per round with every hosted learner's
  part; each learner trains, commits and signs on its own; a killed node = all its learners
  missing);
* ``misbehave``     honest (default) | lazy | disguised | noisy | free-rider (fml.driver's kinds),
  for every hosted learner, or per learner ``"3=lazy,5=noisy"``:
  lazy runs ``lazy-iters`` of the committed iterations and is seen early; disguised does the
  same but holds its update to its committed time; noisy also pads the update with noise
  to ``noise-scale`` x its own size; free-rider returns the model it received;
* ``lazy-iters``    iterations a lazy/disguised/noisy learner really runs (default 2);
* ``delay-s``       sleep before training (a slow device; the tests kill one mid-round);
* ``cache-dir``     keep shards and the round's checkpoints there between messages (Flower starts
  a ClientApp process per message; a device would point this at its local storage; default:
  a folder under the system's temp dir).

Run config (``flwr run ... --run-config``): ``dataset``, ``data-limit``, ``learners``,
``seed``, ``key-seed`` (shared with the ServerApp) and the Per-FedAvg step sizes.

The minibatch draws come with the train message (the strategy draws them from the
run seed, so a Flower run repeats ``pocnet fml simulate`` bit for bit); with
``local-sampling=true`` in the run config a learner draws its own instead.

Spot checks (docs/fml.md "Spot checks"): with its update a learner commits to the chain of
its local checkpoints (digest of the model before step 1 and after each of the tau steps,
signed with the update) and keeps the models; the strategy, acting for the heads, then asks
(``query.challenge``) for the models around 2 of the steps and re-executes them.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from pocnet.fml.flower.common import (
    from_arrays, hosted_learners, key_of, learner_key, misbehaviour, model_digest, opt, update_digest,
)
from pocnet.fml.flower.shard import Shard, load_shard
from pocnet.fml.flower.spot import chain_arrays, checkpoint_chain, iterations, pad_with_noise
from pocnet.fml.flower.spot import reveal as spot_reveal
from pocnet.fml.model import Params, accuracy, masked_loss
from pocnet.fml.perfedavg import PerFedAvgConfig, adapt, shard_batch
from pocnet.games.cost import completion_time, cycles_per_round
from pocnet.games.params import GameParams

log = logging.getLogger("pocnet.fml.flower.client")
app = ClientApp()
_SHARDS: dict[tuple, Shard] = {}  # a ClientApp process may serve several messages


def _cache(ctx: Context) -> Path:
    c = str(opt(ctx.node_config, "cache-dir", ""))
    return Path(c) if c else Path(tempfile.gettempdir()) / "pocnet-flower-cache"


def _shard(ctx: Context, j: int) -> Shard:
    rc = ctx.run_config
    limit = int(opt(rc, "data-limit", 0)) or None
    key = (str(opt(rc, "dataset", "fashion-mnist")), limit, int(opt(rc, "learners", 40)), int(opt(rc, "seed", 0)), j)
    if key not in _SHARDS:
        path = _cache(ctx) / ("shard-" + "-".join(str(k) for k in key) + ".pt")
        if path.exists():  # Flower starts a ClientApp process per message
            _SHARDS[key] = Shard(**torch.load(path, weights_only=False))
        else:
            _SHARDS[key] = load_shard(*key)
            _save(path, dict(vars(_SHARDS[key])))
    return _SHARDS[key]


def _save(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    tmp.replace(path)


def _checkpoint_path(ctx: Context, run_id: int, round_no: int, j: int) -> Path:
    return _cache(ctx) / f"checkpoints-run{run_id}-r{round_no}-l{j}.pt"


def learn_config(rc: Any) -> PerFedAvgConfig:
    d = PerFedAvgConfig()
    return PerFedAvgConfig(alpha=float(opt(rc, "alpha", d.alpha)), beta=float(opt(rc, "beta", d.beta)),
                           batch=int(opt(rc, "batch", d.batch)))


@app.query()
def hello(msg: Message, ctx: Context) -> Message:
    """Who is here: every hosted learner's index and address, signed (the server checks each
    key is the learner's)."""
    ks = int(opt(ctx.run_config, "key-seed", 0))
    out = RecordDict({"config": ConfigRecord({"learners": hosted_learners(ctx.node_config)})})
    for j in hosted_learners(ctx.node_config):
        key = learner_key(ks, j)
        out[key_of("config", j)] = ConfigRecord({"learner": j, "address": key.address,
                                                 "sig": key.sign(update_digest(0, j, [])),
                                                 "misbehave": misbehaviour(ctx.node_config, j)})
    return Message(out, reply_to=msg)


def train_learner(j: int, kind: str, shard: Shard, start: Params, noise: torch.Tensor, cfg: ConfigRecord,
                  lcfg: PerFedAvgConfig, nc: Any, rc: Any) -> tuple[list[Params], float]:
    """One hosted learner's round: its checkpoint chain (``spot.checkpoint_chain``; the last entry
    is its update) and its emulated arrival time. A noisy learner's last checkpoint is its
    padded update (the chain must end at what it sends)."""
    round_no, committed = int(cfg["round"]), int(cfg["iters"])
    lazy = int(opt(nc, "lazy-iters", 2))
    iters = iterations(kind, committed, lazy)
    chain = checkpoint_chain(start, shard.train_x, shard.train_y, noise, committed, iters, lcfg)
    if kind == "noisy":  # pad with noise to look like an honest update (fml.training._inflate's idea)
        chain[-1] = pad_with_noise(start, chain[-1], float(opt(nc, "noise-scale", committed / max(lazy, 1))),
                                   round_no * 65_537 + j)
    # emulated arrival: the device profile's time for the work really done at the committed
    # frequency (the processes are not the simulated devices); disguised kinds wait to their committed time
    arrival = float(cfg["time"])
    if kind == "lazy":
        params = GameParams(n_learners=int(opt(rc, "learners", 40)), n_coalitions=int(opt(rc, "coalitions", 4)))
        q_cyc = cycles_per_round(float(len(shard.train_y)), params) * iters / params.tau
        arrival = completion_time(q_cyc, float(cfg["frequency"]), shard.device.rate, params)
    return chain, arrival


@app.train()
def train(msg: Message, ctx: Context) -> Message:
    rc, nc = ctx.run_config, ctx.node_config
    mine = set(hosted_learners(nc))
    parts = [j for j in (int(x) for x in msg.content["config"]["learners"]) if j in mine]
    delay = float(opt(nc, "delay-s", 0.0))
    if delay > 0:
        time.sleep(delay)
    lcfg = learn_config(rc)
    ks = int(opt(rc, "key-seed", 0))
    reply = RecordDict({"config": ConfigRecord({"learners": parts})})
    for j in parts:
        kind = misbehaviour(nc, j)
        shard = _shard(ctx, j)
        cfg = msg.content[key_of("config", j)]
        round_no, committed = int(cfg["round"]), int(cfg["iters"])
        start = from_arrays(msg.content[key_of("arrays", j)].to_numpy_ndarrays())
        if key_of("noise", j) in msg.content:
            noise = torch.from_numpy(msg.content[key_of("noise", j)]["u"].numpy())
        else:  # local sampling: the learner's own draws
            gen = torch.Generator().manual_seed(int(opt(rc, "seed", 0)) * 1_000_003 + round_no * 7_919 + j)
            noise = torch.rand(committed, 3, lcfg.batch, generator=gen)
        chain, arrival = train_learner(j, kind, shard, start, noise, cfg, lcfg, nc, rc)
        arrays = chain_arrays(chain)
        commit = [model_digest(a) for a in arrays]
        _save(_checkpoint_path(ctx, msg.metadata.run_id, round_no, j), arrays)  # revealed if challenged
        out_arrays = arrays[-1]
        key = learner_key(ks, j)
        reply[key_of("arrays", j)] = ArrayRecord(out_arrays)
        reply[key_of("metrics", j)] = MetricRecord({"learner": j, "arrival_s": arrival, "num-examples": len(shard.train_y)})
        reply[key_of("config", j)] = ConfigRecord({"sig": key.sign(update_digest(round_no, j, out_arrays, commit)),
                                                   "commit": commit})
    return Message(reply, reply_to=msg)


@app.query("challenge")
def reveal(msg: Message, ctx: Context) -> Message:
    """Spot check: reveal the committed models before and after each challenged step."""
    mine = set(hosted_learners(ctx.node_config))
    out = RecordDict({})
    for j in (int(x) for x in msg.content["config"]["learners"]):
        if j not in mine:
            continue
        c = msg.content[key_of("challenge", j)]
        path = _checkpoint_path(ctx, msg.metadata.run_id, int(c["round"]), j)
        if not path.exists():
            continue  # nothing kept: the strategy counts the challenge as failed
        chain = torch.load(path, weights_only=False)
        for t, (before, after) in spot_reveal(chain, [int(x) for x in c["steps"]]).items():
            out[f"before.{j}.{t}"] = ArrayRecord(before)
            out[f"after.{j}.{t}"] = ArrayRecord(after)
        if bool(c.get("last", False)):
            path.unlink(missing_ok=True)
    return Message(out, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, ctx: Context) -> Message:
    """Personalised accuracy: alpha-step(s) on a batch of the learner's data, scored on its test split."""
    mine = set(hosted_learners(ctx.node_config))
    lcfg = learn_config(ctx.run_config)
    out = RecordDict({})
    for j in (int(x) for x in msg.content["config"]["learners"]):
        if j not in mine:
            continue
        shard = _shard(ctx, j)
        base = from_arrays(msg.content[key_of("arrays", j)].to_numpy_ndarrays())
        u = torch.from_numpy(msg.content[key_of("noise", j)]["u"].numpy())
        bx, by = shard_batch(shard.train_x, shard.train_y, u)
        pers = adapt(base, bx.unsqueeze(0), by.unsqueeze(0), lcfg.alpha, lcfg.personal_steps)
        x, y = shard.test_x.unsqueeze(0), shard.test_y.unsqueeze(0)
        m = torch.ones_like(y, dtype=torch.float32)
        out[key_of("metrics", j)] = MetricRecord({
            "learner": j, "num-examples": int(len(shard.test_y)),
            "acc": float(accuracy(pers, x, y)[0]), "loss": float(masked_loss(pers, x, y, m)[0]),
            "global_acc": float(accuracy(base, x, y)[0]), "global_loss": float(masked_loss(base, x, y, m)[0]),
        })
    return Message(out, reply_to=msg)


def noise_record(u: np.ndarray | torch.Tensor) -> ArrayRecord:
    arr = u.numpy() if isinstance(u, torch.Tensor) else u
    from flwr.app import Array
    return ArrayRecord({"u": Array(np.ascontiguousarray(arr, dtype=np.float32))})
