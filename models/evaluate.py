"""Held-out evaluation: objective (eq. 1), agreement with GA labels,
diversity D (eqs. 2-3), inference time, float-vs-integer ranking agreement,
GA gap to the exact optimum; JSON numbers + PNG plots (matplotlib Agg)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pocnet.models.features import ONE
from pocnet.models.net import allocate_float, load_net, param_count
from pocnet.models.objective import diversity_score, one_hot, total_latency
from pocnet.models.poc import absorbed_work, rank_providers
from pocnet.models.quant import allocate_int_logits, load_quant, weights_sha256
from pocnet.models.scenario import scenario_from_dict
from pocnet.models.solvers import exact_solve, ga_solve, greedy_eft, lookahead_greedy
from pocnet.models.train import load_dataset

GA_TIMING_SAMPLES = 20


def _softmax_int(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64) / ONE
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


def _top(scn, alloc, prev_hash: str = "00" * 32) -> str:
    ids = list(scn.provider_ids)
    _, ranking = rank_providers(ids, absorbed_work(scn.work.tolist(), alloc, len(ids)),
                                scn.reputation_ppm.tolist(), prev_hash)
    return ranking[0]


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def evaluate_test(recs: list[dict], teacher, student, q) -> dict:
    rows = []
    for k, r in enumerate(tqdm(recs, desc="eval", leave=False)):
        scn = scenario_from_dict(r["scenario"])
        m = scn.n_providers
        ga = np.array(r["ga"])
        row = {"n": scn.n_tasks, "m": m, "ga_obj": r["ga_obj"]}
        gr, t_gr = _timed(lambda scn=scn: greedy_eft(scn))
        la, t_la = _timed(lambda scn=scn: lookahead_greedy(scn))
        (ta, tp), t_t = _timed(lambda scn=scn: allocate_float(teacher, scn))
        (sa, sp), t_s = _timed(lambda scn=scn: allocate_float(student, scn))
        (ia, il), t_i = _timed(lambda scn=scn: allocate_int_logits(q, scn))
        for name, alloc, probs, dt in [("greedy", gr, one_hot(gr, m), t_gr), ("lookahead", la, one_hot(la, m), t_la),
                                       ("teacher", ta, tp, t_t),
                                       ("student_float", sa, sp, t_s), ("student_int", ia, _softmax_int(il), t_i),
                                       ("ga", ga, one_hot(ga, m), None)]:
            row[f"{name}_obj"] = total_latency(scn, alloc)
            row[f"{name}_agree"] = float((alloc == ga).mean())
            row[f"{name}_div"] = diversity_score(probs)
            if dt is not None:
                row[f"{name}_ms"] = dt * 1000
        if k < GA_TIMING_SAMPLES:
            _, t_ga = _timed(lambda scn=scn, r=r: ga_solve(scn, seed=r["seed"]))
            row["ga_ms"] = t_ga * 1000
        row["alloc_float_int_agree"] = float((sa == ia).mean())
        row["top_float"], row["top_int"] = _top(scn, sa), _top(scn, ia)
        rows.append(row)
    return {"rows": rows}


def evaluate_small(recs: list[dict], q) -> dict:
    rows = []
    for r in recs:
        scn = scenario_from_dict(r["scenario"])
        ex = r.get("exact")
        if ex is None:
            ex = exact_solve(scn).tolist()
        ex_obj = total_latency(scn, ex)
        ia, _ = allocate_int_logits(q, scn)
        rows.append({"exact_obj": ex_obj, "ga_obj": r["ga_obj"], "greedy_obj": r["greedy_obj"],
                     "student_int_obj": total_latency(scn, ia)})
    return {"rows": rows}


def summarize(test_rows: list[dict], small_rows: list[dict], sizes: dict) -> dict:
    def mean(key, rows=test_rows):
        vals = [r[key] for r in rows if key in r]
        return float(np.mean(vals)) if vals else None

    ga_total = sum(r["ga_obj"] for r in test_rows)
    s: dict = {"n_test": len(test_rows), "n_small": len(small_rows), "solvers": {}}
    for name in ("ga", "greedy", "lookahead", "teacher", "student_float", "student_int"):
        ratios = [r[f"{name}_obj"] / max(1, r["ga_obj"]) for r in test_rows]
        s["solvers"][name] = {
            "mean_objective": mean(f"{name}_obj"),
            "mean_ratio_to_ga": float(np.mean(ratios)),
            "ratio_of_totals_to_ga": sum(r[f"{name}_obj"] for r in test_rows) / ga_total,
            "agreement_with_ga": mean(f"{name}_agree"),
            "diversity_D": mean(f"{name}_div"),
            "mean_ms": mean(f"{name}_ms"),
            "frac_beats_or_ties_greedy": float(np.mean([r[f"{name}_obj"] <= r["greedy_obj"] for r in test_rows])),
        }
    s["top_provider_disagreement_float_vs_int"] = float(np.mean([r["top_float"] != r["top_int"] for r in test_rows]))
    s["allocation_agreement_float_vs_int"] = mean("alloc_float_int_agree")
    if small_rows:
        s["small_exact"] = {
            k: {"mean_ratio_to_exact": float(np.mean([r[f"{k}_obj"] / max(1, r["exact_obj"]) for r in small_rows])),
                "max_ratio_to_exact": float(np.max([r[f"{k}_obj"] / max(1, r["exact_obj"]) for r in small_rows])),
                "frac_optimal": float(np.mean([r[f"{k}_obj"] == r["exact_obj"] for r in small_rows]))}
            for k in ("ga", "greedy", "student_int")}
    ga_ms, si_ms = s["solvers"]["ga"]["mean_ms"], s["solvers"]["student_int"]["mean_ms"]
    ga_rows = [r for r in test_rows if "ga_ms" in r]
    s["speedup_student_int_vs_ga"] = float(np.mean([r["ga_ms"] for r in ga_rows]) /
                                           np.mean([r["student_int_ms"] for r in ga_rows])) if ga_rows else None
    s["speedup_student_float_vs_ga"] = float(np.mean([r["ga_ms"] for r in ga_rows]) /
                                             np.mean([r["student_float_ms"] for r in ga_rows])) if ga_rows else None
    del ga_ms, si_ms
    s["models"] = sizes
    return s


def plot_all(out: Path, teacher_hist: list[dict], student_hist: list[dict], summary: dict) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        files.append(name)

    te = [h["epoch"] for h in teacher_hist]
    se = [h["epoch"] for h in student_hist]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(te, [h["loss"] for h in teacher_hist], label="teacher total")
    ax.plot(te, [h["ce"] for h in teacher_hist], "--", label="teacher CE(GA)")
    ax.plot(se, [h["loss"] for h in student_hist], label="student total")
    ax.plot(se, [h["ce"] for h in student_hist], "--", label="student CE(GA)")
    ax.set_xlabel("epoch"), ax.set_ylabel("loss"), ax.set_title("Training loss"), ax.legend()
    save(fig, "training_loss.png")

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(te, [h["val_obj_ratio_ga"] for h in teacher_hist], label="teacher")
    a1.plot(se, [h["val_obj_ratio_ga"] for h in student_hist], label="student")
    a1.axhline(1.0, color="k", lw=0.8, label="GA")
    a1.set_xlabel("epoch"), a1.set_ylabel("val total delay / GA"), a1.set_title("Validation total delay"), a1.legend()
    names = ["ga", "greedy", "lookahead", "teacher", "student_float", "student_int"]
    a2.bar(names, [summary["solvers"][n]["mean_objective"] for n in names])
    a2.set_ylabel("mean total delay (ms)"), a2.set_title(f"Held-out ({summary['n_test']} scenarios)")
    a2.tick_params(axis="x", rotation=30)
    save(fig, "total_delay.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(te, [h["val_accuracy"] for h in teacher_hist], label="teacher")
    ax.plot(se, [h["val_accuracy"] for h in student_hist], label="student")
    ax.set_xlabel("epoch"), ax.set_ylabel("agreement with GA labels"), ax.set_title("Accuracy (free-running)")
    ax.legend()
    save(fig, "accuracy.png")

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(te, [h["val_diversity"] for h in teacher_hist], label="teacher")
    a1.plot(se, [h["val_diversity"] for h in student_hist], label="student")
    a1.set_xlabel("epoch"), a1.set_ylabel("D (eq. 3)"), a1.set_title("Validation diversity"), a1.legend()
    a2.bar(names, [summary["solvers"][n]["diversity_D"] for n in names])
    a2.set_ylabel("mean D"), a2.set_title("Held-out diversity"), a2.tick_params(axis="x", rotation=30)
    save(fig, "diversity.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(se, [h["kd"] for h in student_hist], label="KD term T^2*KL(teacher||student)")
    ax.set_xlabel("epoch"), ax.set_ylabel("loss"), ax.set_title("Distillation loss"), ax.legend()
    save(fig, "distillation_loss.png")
    return files


def run_evaluation(data: Path, model_dir: Path, history_dir: Path, out: Path) -> dict:
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    teacher = load_net(str(model_dir / "teacher.pt"))
    student = load_net(str(model_dir / "student.pt"))
    qpath = model_dir / "student_q.json"
    q = load_quant(qpath)
    test = evaluate_test(load_dataset(data / "test.json"), teacher, student, q)
    small_path = data / "small.json"
    small = evaluate_small(load_dataset(small_path), q) if small_path.exists() else {"rows": []}
    sizes = {
        "teacher_params": param_count(teacher), "student_params": param_count(student),
        "teacher_pt_bytes": (model_dir / "teacher.pt").stat().st_size,
        "student_pt_bytes": (model_dir / "student.pt").stat().st_size,
        "student_q_bytes": qpath.stat().st_size, "student_q_sha256": weights_sha256(qpath),
    }
    summary = summarize(test["rows"], small["rows"], sizes)
    th = json.loads((history_dir / "teacher_history.json").read_text())
    sh = json.loads((history_dir / "student_history.json").read_text())
    summary["plots"] = plot_all(out, th, sh, summary)
    (out / "metrics.json").write_text(json.dumps({"summary": summary, "test_rows": test["rows"],
                                                  "small_rows": small["rows"]}, indent=1))
    return {"summary": summary}
