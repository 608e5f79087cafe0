"""The learner as a Flower ClientApp: its shard, its key, local Per-FedAvg HF.

Node config (``flower-supernode --node-config '...'``):

* ``learner``       this device's learner index (0..learners-1; its shard and key follow);
* ``misbehave``     honest (default) | lazy | disguised | noisy | free-rider (fml.driver's kinds):
  lazy runs ``lazy-iters`` of the committed iterations and is seen early; disguised does the
  same but holds its update to its committed time; noisy also pads the update with noise
  to ``noise-scale`` x its own size; free-rider returns the model it received;
* ``lazy-iters``    iterations a lazy/disguised/noisy learner really runs (default 2);
* ``delay-s``       sleep before training (a slow device; the tests kill one mid-round);
* ``cache-dir``     keep the shard there between messages (Flower starts a ClientApp process
  per message; a device would point this at its local storage).

Run config (``flwr run ... --run-config``): ``dataset``, ``data-limit``, ``learners``,
``seed``, ``key-seed`` (shared with the ServerApp) and the Per-FedAvg step sizes.

The minibatch draws come with the train message (the strategy draws them from the
run seed, so a Flower run repeats ``pocnet fml simulate`` bit for bit); with
``local-sampling=true`` in the run config a learner draws its own instead.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from pocnet.fml.flower.common import KINDS, from_arrays, learner_key, opt, to_arrays, update_digest
from pocnet.fml.flower.shard import Shard, load_shard
from pocnet.fml.model import accuracy, flat, masked_loss
from pocnet.fml.perfedavg import PerFedAvgConfig, adapt, shard_batch, train_one
from pocnet.games.cost import completion_time, cycles_per_round
from pocnet.games.params import GameParams

log = logging.getLogger("pocnet.fml.flower.client")
app = ClientApp()
_SHARDS: dict[tuple, Shard] = {}  # a ClientApp process may serve several messages


def _learner(ctx: Context) -> int:
    v = opt(ctx.node_config, "learner", None)
    if v is None:
        raise ValueError("node config: `learner` (this device's learner index) is required")
    return int(v)


def _shard(ctx: Context) -> Shard:
    rc = ctx.run_config
    limit = int(opt(rc, "data-limit", 0)) or None
    key = (str(opt(rc, "dataset", "fashion-mnist")), limit, int(opt(rc, "learners", 40)), int(opt(rc, "seed", 0)),
           _learner(ctx))
    if key not in _SHARDS:
        cache = str(opt(ctx.node_config, "cache-dir", ""))
        path = Path(cache) / ("shard-" + "-".join(str(k) for k in key) + ".pt") if cache else None
        if path is not None and path.exists():  # Flower starts a ClientApp process per message
            _SHARDS[key] = Shard(**torch.load(path, weights_only=False))
        else:
            _SHARDS[key] = load_shard(*key)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                torch.save(dict(vars(_SHARDS[key])), tmp)
                tmp.replace(path)
    return _SHARDS[key]


def learn_config(rc: Any) -> PerFedAvgConfig:
    d = PerFedAvgConfig()
    return PerFedAvgConfig(alpha=float(opt(rc, "alpha", d.alpha)), beta=float(opt(rc, "beta", d.beta)),
                           batch=int(opt(rc, "batch", d.batch)))


@app.query()
def hello(msg: Message, ctx: Context) -> Message:
    """Who am I: learner index and address, signed (the server checks the key is the learner's)."""
    j = _learner(ctx)
    key = learner_key(int(opt(ctx.run_config, "key-seed", 0)), j)
    cfg = ConfigRecord({"learner": j, "address": key.address,
                        "sig": key.sign(update_digest(0, j, [])), "misbehave": str(opt(ctx.node_config, "misbehave", "honest"))})
    return Message(RecordDict({"config": cfg}), reply_to=msg)


@app.train()
def train(msg: Message, ctx: Context) -> Message:
    j = _learner(ctx)
    rc, nc = ctx.run_config, ctx.node_config
    kind = str(opt(nc, "misbehave", "honest"))
    if kind not in KINDS:
        raise ValueError(f"node config misbehave: one of {', '.join(KINDS)}")
    shard = _shard(ctx)
    cfg = msg.content["config"]
    round_no, committed = int(cfg["round"]), int(cfg["iters"])
    delay = float(opt(nc, "delay-s", 0.0))
    if delay > 0:
        time.sleep(delay)
    arrays = msg.content["arrays"].to_numpy_ndarrays()
    start = from_arrays(arrays)
    lcfg = learn_config(rc)
    if "noise" in msg.content:
        noise = torch.from_numpy(msg.content["noise"]["u"].numpy())
    else:  # local sampling: the learner's own draws
        gen = torch.Generator().manual_seed(int(opt(rc, "seed", 0)) * 1_000_003 + round_no * 7_919 + j)
        noise = torch.rand(committed, 3, lcfg.batch, generator=gen)
    lazy = int(opt(nc, "lazy-iters", 2))
    iters = {"honest": committed, "free-rider": 0}.get(kind, min(lazy, committed))
    trained = train_one(start, shard.train_x, shard.train_y, noise, iters, lcfg)
    if kind == "noisy":  # pad with noise to look like an honest update (fml.training._inflate's idea)
        d = flat(trained) - flat(start)
        g = torch.Generator().manual_seed(round_no * 65_537 + j)
        n = torch.randn(d.shape, generator=g)
        target = float(opt(nc, "noise-scale", committed / max(lazy, 1))) * float(d.norm())
        d = d + n * (target / float(n.norm()))
        out, off = [], 0
        for p in start:
            out.append((flat(start)[:, off:off + p[0].numel()] + d[:, off:off + p[0].numel()]).reshape(p.shape))
            off += p[0].numel()
        trained = tuple(out)
    # emulated arrival: the device profile's time for the work really done at the committed
    # frequency (the processes are not the simulated devices); disguised kinds wait to their committed time
    arrival = float(cfg["time"])
    if kind == "lazy":
        params = GameParams(n_learners=int(opt(rc, "learners", 40)), n_coalitions=int(opt(rc, "coalitions", 4)))
        q_cyc = cycles_per_round(float(len(shard.train_y)), params) * iters / params.tau
        arrival = completion_time(q_cyc, float(cfg["frequency"]), shard.device.rate, params)
    out_arrays = to_arrays(trained)
    key = learner_key(int(opt(rc, "key-seed", 0)), j)
    reply = RecordDict({
        "arrays": ArrayRecord(out_arrays),
        "metrics": MetricRecord({"learner": j, "arrival_s": arrival, "num-examples": len(shard.train_y)}),
        "config": ConfigRecord({"sig": key.sign(update_digest(round_no, j, out_arrays))}),
    })
    return Message(reply, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, ctx: Context) -> Message:
    """Personalised accuracy: alpha-step(s) on a batch of the learner's data, scored on its test split."""
    j = _learner(ctx)
    shard = _shard(ctx)
    lcfg = learn_config(ctx.run_config)
    base = from_arrays(msg.content["arrays"].to_numpy_ndarrays())
    u = torch.from_numpy(msg.content["noise"]["u"].numpy())
    bx, by = shard_batch(shard.train_x, shard.train_y, u)
    pers = adapt(base, bx.unsqueeze(0), by.unsqueeze(0), lcfg.alpha, lcfg.personal_steps)
    x, y = shard.test_x.unsqueeze(0), shard.test_y.unsqueeze(0)
    m = torch.ones_like(y, dtype=torch.float32)
    metrics = MetricRecord({
        "learner": j, "num-examples": int(len(shard.test_y)),
        "acc": float(accuracy(pers, x, y)[0]), "loss": float(masked_loss(pers, x, y, m)[0]),
        "global_acc": float(accuracy(base, x, y)[0]), "global_loss": float(masked_loss(base, x, y, m)[0]),
    })
    return Message(RecordDict({"metrics": metrics}), reply_to=msg)


def noise_record(u: np.ndarray | torch.Tensor) -> ArrayRecord:
    arr = u.numpy() if isinstance(u, torch.Tensor) else u
    from flwr.app import Array
    return ArrayRecord({"u": Array(np.ascontiguousarray(arr, dtype=np.float32))})
