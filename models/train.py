"""Dataset generation (GA labels), teacher training and student distillation.

Losses (per task, masked over real providers):
  teacher: CE(logits, GA label) + LAMBDA_LAT * E_pi[regret]      (regret = finish - best finish, /TIME_SCALE)
  student: ALPHA * T^2 * KL(teacher_T || student_T) + (1-ALPHA) * CE(GA) + LAMBDA_LAT * E_pi[regret]
The expected-regret term keeps the latency objective in view: it is the
expected extra latency of this task over the best available provider.
Checkpoint = epoch with the best free-running validation objective.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from pocnet.models.features import (forced_pair_features, graph_with_self_loops, provider_sequences,
                             task_features)
from pocnet.models.net import STUDENT_CONFIG, TEACHER_CONFIG, AllocNet, NetConfig, allocate_float, make_batch
from pocnet.models.objective import diversity_score, total_latency
from pocnet.models.scenario import Scenario, generate_scenario, scenario_from_dict, scenario_to_dict
from pocnet.models.solvers import ga_solve, greedy_eft

LAMBDA_LAT = 0.3
KD_ALPHA = 0.7
KD_TEMP = 2.0


def label_scenarios(seeds: list[int], size: tuple[tuple[int, int], tuple[int, int]] = ((8, 64), (3, 8)),
                    desc: str = "label") -> list[dict]:
    """Generate scenarios for `seeds` and label them with GA (seed = scenario seed)."""
    out = []
    for s in tqdm(seeds, desc=desc, leave=False):
        scn = generate_scenario(s, *size)
        ga = ga_solve(scn, seed=s)
        gr = greedy_eft(scn)
        out.append({"seed": s, "scenario": scenario_to_dict(scn), "ga": ga.tolist(), "greedy": gr.tolist(),
                    "ga_obj": total_latency(scn, ga), "greedy_obj": total_latency(scn, gr)})
    return out


def suffix_scenario(scn: Scenario, alloc: np.ndarray, cut: int) -> Scenario:
    """Tasks cut.. of `scn` with provider queues as left by `alloc` on tasks
    < cut (encoded as backlog at the new t0 = arrival of task `cut`). Used to
    train on queue states off the GA path (the decoder's own mistakes lead
    there at inference)."""
    from pocnet.models.objective import initial_free, proc_times
    proc = proc_times(scn)
    free = initial_free(scn).copy()
    for i in range(cut):
        p = int(alloc[i])
        free[p] = max(int(free[p]), int(scn.arrival[i])) + int(proc[i, p])
    t0 = int(scn.arrival[cut])
    d = scenario_to_dict(scn)
    d["tasks"] = d["tasks"][cut:]
    for k, prov in enumerate(d["providers"]):
        prov["backlog"] = max(0, int(free[k]) - t0) * int(scn.capacity[k])
    return scenario_from_dict(d)


def label_suffixes(seeds: list[int], desc: str = "augment") -> list[dict]:
    """Off-GA-path samples: for each seed's training scenario, cut at a random
    task in [n/4, 3n/4] after a greedy-EFT or look-ahead-greedy prefix, and
    label the suffix scenario with GA."""
    from pocnet.models.solvers import lookahead_greedy
    out = []
    for s in tqdm(seeds, desc=desc, leave=False):
        scn = generate_scenario(s)
        rng = random.Random(s)
        if scn.n_tasks < 12:
            continue
        prefix = greedy_eft(scn) if rng.random() < 0.5 else lookahead_greedy(scn)
        cut = rng.randint(scn.n_tasks // 4, 3 * scn.n_tasks // 4)
        sub = suffix_scenario(scn, prefix, cut)
        ga = ga_solve(sub, seed=s + 7)
        gr = greedy_eft(sub)
        out.append({"seed": s, "cut": cut, "scenario": scenario_to_dict(sub), "ga": ga.tolist(),
                    "greedy": gr.tolist(), "ga_obj": total_latency(sub, ga), "greedy_obj": total_latency(sub, gr)})
    return out


def prepare_sample(rec: dict) -> dict:
    """Integer inputs of one labelled scenario for batching."""
    scn = scenario_from_dict(rec["scenario"])
    ga = np.array(rec["ga"], dtype=np.int64)
    src, dst = graph_with_self_loops(scn)
    return {"src": src, "dst": dst, "task_x": task_features(scn), "prov_seq": provider_sequences(scn),
            "pair": forced_pair_features(scn, ga), "label": ga, "scn": scn, "rec": rec}


def save_dataset(recs: list[dict], path: Path) -> None:
    path.write_text(json.dumps(recs))


def load_dataset(path: Path) -> list[dict]:
    return json.loads(Path(path).read_text())


def _task_losses(logits: torch.Tensor, b, teacher_logits: torch.Tensor | None) -> dict[str, torch.Tensor]:
    ce = F.cross_entropy(logits, b.labels)
    probs = torch.softmax(logits, -1)
    lat = (probs * b.pair[..., 3]).sum(-1).mean()
    out = {"ce": ce, "lat": lat}
    if teacher_logits is not None:
        t = teacher_logits.masked_fill(~b.mask, -1e9)
        kl = F.kl_div(F.log_softmax(logits / KD_TEMP, -1), F.softmax(t / KD_TEMP, -1), reduction="batchmean")
        out["kd"] = kl * KD_TEMP ** 2
    return out


def evaluate_free(net: AllocNet, samples: list[dict]) -> dict[str, float]:
    """Free-running metrics vs GA labels: objective ratio, agreement, diversity."""
    net.eval()
    ratios, agree, div, objs = [], [], [], []
    for s in samples:
        alloc, probs = allocate_float(net, s["scn"])
        obj = total_latency(s["scn"], alloc)
        objs.append(obj)
        ratios.append(obj / max(1, s["rec"]["ga_obj"]))
        agree.append(float((alloc == s["label"]).mean()))
        div.append(diversity_score(probs))
    return {"obj_ratio_ga": float(np.mean(ratios)), "objective": float(np.mean(objs)),
            "accuracy": float(np.mean(agree)), "diversity": float(np.mean(div))}


def train_net(cfg: NetConfig, train: list[dict], val: list[dict], epochs: int, seed: int,
              teacher: AllocNet | None = None, lr: float = 3e-3, batch_size: int = 32,
              log: Callable[[str], None] = lambda s: None) -> tuple[AllocNet, list[dict]]:
    """Train one network; with `teacher`, distil (KD + CE + latency)."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    net = AllocNet(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    history, best_state, best_val = [], None, float("inf")
    order = list(range(len(train)))
    for ep in tqdm(range(epochs), desc="distill" if teacher else "train-teacher", leave=False):
        net.train()
        rng.shuffle(order)
        sums: dict[str, float] = {}
        nb = 0
        t0 = time.time()
        for k in range(0, len(order), batch_size):
            b = make_batch([train[j] for j in order[k:k + batch_size]])
            logits = net.forward_batch(b)
            tl = None
            if teacher is not None:
                with torch.no_grad():
                    tl = teacher.forward_batch(b)
            parts = _task_losses(logits, b, tl)
            if teacher is None:
                loss = parts["ce"] + LAMBDA_LAT * parts["lat"]
            else:
                loss = KD_ALPHA * parts["kd"] + (1 - KD_ALPHA) * parts["ce"] + LAMBDA_LAT * parts["lat"]
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            parts["loss"] = loss
            for kk, v in parts.items():
                sums[kk] = sums.get(kk, 0.0) + float(v.detach())
            nb += 1
        sched.step()
        row = {"epoch": ep + 1, **{k: v / nb for k, v in sums.items()}, "train_s": time.time() - t0}
        row.update({f"val_{k}": v for k, v in evaluate_free(net, val).items()})
        history.append(row)
        log(json.dumps(row))
        if row["val_objective"] < best_val:
            best_val = row["val_objective"]
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return net, history


def default_teacher_config() -> NetConfig:
    return TEACHER_CONFIG


def default_student_config() -> NetConfig:
    return STUDENT_CONFIG


def config_dict(cfg: NetConfig) -> dict:
    return asdict(cfg)
