"""Aggregate simulation runs into [GFML]'s Table VI and the figures.

Pure functions of the run dicts (``RunResult.to_dict()``), so a report can be
rebuilt from report.json alone.
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from pocnet.fml.schemes import SCHEMES


def _ms(xs: Sequence[float]) -> tuple[float, float]:
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not xs:
        return float("nan"), float("nan")
    return float(np.mean(xs)), float(np.std(xs))


def headline_runs(runs: Iterable[dict]) -> list[dict]:
    """Runs of the main comparison: blockchain on, default population, lowest misbehaviour rate."""
    runs = [r for r in runs if r.get("tag", "main") == "main" and r["config"]["blockchain"]]
    if not runs:
        return []
    rate = min(r["config"]["misbehave_rate"] for r in runs)
    return [r for r in runs if r["config"]["misbehave_rate"] == rate]


TAIL_ROUNDS = 5  # "late accuracy": mean over the last rounds, less sensitive to one noisy round


def round_latency(run: dict) -> float:
    """Mean over rounds of the coalitions' latency T_k = max_i t_i (planned times):
    how long a round takes until every head holds its members' updates."""
    return _ms([h["avg_coalition_latency"] for h in run["rounds"]])[0]


def late_accuracy(run: dict, last: int = TAIL_ROUNDS) -> float:
    """Personalised accuracy averaged over the last ``last`` rounds."""
    return _ms([h["acc"] for h in run["rounds"][-last:]])[0]


# Table VI quantities of one run: (key, getter, higher_is_better)
METRICS: tuple[tuple[str, Callable[[dict], float], bool], ...] = (
    ("profit", lambda r: r["final"]["profit_per_active_learner"], True),
    ("time", lambda r: r["final"]["avg_completion_time"], False),
    ("latency", round_latency, False),
    ("msp", lambda r: r["final"]["avg_msp_utility"], True),
    ("acc", lambda r: r["final"]["acc"], True),
    ("acc_late", late_accuracy, True),
    ("loss", lambda r: r["final"]["loss"], False),
    ("global_acc", lambda r: r["final"]["global_acc"], True),
)


def _by_scheme(runs: Iterable[dict]) -> dict[str, list[dict]]:
    by: dict[str, list[dict]] = defaultdict(list)
    for r in headline_runs(runs):
        by[r["scheme"]].append(r)
    return by


def _label(key: str) -> str:
    return SCHEMES[key].label if key in SCHEMES else key


def _ordered(keys: Iterable[str]) -> list[str]:
    keys = list(keys)
    return [k for k in SCHEMES if k in keys] + [k for k in keys if k not in SCHEMES]


def table_rows(runs: Iterable[dict]) -> list[dict]:
    """One row per scheme: mean and std over seeds of the Table VI quantities."""
    by = _by_scheme(runs)
    rows = []
    for key in _ordered(by):
        rs = by[key]
        row = {"scheme": key, "label": _label(key), "seeds": len(rs)}
        for name, get, _ in METRICS:
            row[name], row[name + "_std"] = _ms([get(r) for r in rs])
        rows.append(row)
    return rows


def paired_rows(runs: Iterable[dict], reference: str = "gfml") -> list[dict]:
    """``reference`` minus each other scheme, paired by seed (same population, same data).

    Pairing removes the seed-to-seed spread that both schemes share, so the
    difference is measured far more precisely than the two means. For every
    metric: mean difference, 95 % confidence half-width (Student t over the
    paired seeds) and on how many seeds the reference was better.
    """
    from scipy.stats import t as student_t

    by = _by_scheme(runs)
    ref = {r["seed"]: r for r in by.get(reference, [])}
    rows = []
    for key in _ordered(by):
        if key == reference:
            continue
        other = {r["seed"]: r for r in by[key]}
        seeds = sorted(set(ref) & set(other))
        if not seeds:
            continue
        row: dict = {"scheme": key, "label": _label(key), "seeds": len(seeds)}
        for name, get, higher_better in METRICS:
            d = np.array([get(ref[s]) - get(other[s]) for s in seeds], dtype=float)
            half = float("nan")
            if len(d) > 1:
                half = float(student_t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
            better = int(np.sum(d > 0)) if higher_better else int(np.sum(d < 0))
            row[name] = {"diff": float(d.mean()), "ci95": half, "better_on": better}
        rows.append(row)
    return rows


def markdown_table(rows: Sequence[dict]) -> str:
    """Table VI layout plus round latency and personalised accuracy (mean ± std over seeds)."""
    head = (
        "| Framework | Total profit per MML | Avg completion time per round (s) | Avg round latency (s) | "
        f"Avg MSP utility per round | Final personalised accuracy | Personalised accuracy, last {TAIL_ROUNDS} rounds | seeds |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['profit']:.2f} ± {r['profit_std']:.2f} | {r['time']:.2f} ± {r['time_std']:.2f} | "
            f"{r['latency']:.2f} ± {r['latency_std']:.2f} | "
            f"{r['msp']:.1f} ± {r['msp_std']:.1f} | {100 * r['acc']:.1f} % ± {100 * r['acc_std']:.1f} | "
            f"{100 * r['acc_late']:.1f} % ± {100 * r['acc_late_std']:.1f} | {r['seeds']} |"
        )
    return head + "\n".join(lines) + "\n"


def paired_markdown(rows: Sequence[dict], reference: str = "gfml") -> str:
    """GFML minus each baseline, paired by seed: mean ± 95 % CI, and seeds where GFML was better."""
    if not rows:
        return ""

    def cell(v: dict, scale: float, unit: str, digits: int) -> str:
        ci = "" if math.isnan(v["ci95"]) else f" ± {scale * v['ci95']:.{digits}f}"
        return f"{scale * v['diff']:+.{digits}f}{ci}{unit} ({v['better_on']})"

    head = (
        f"{_label(reference)} minus each baseline, paired by seed: "
        "mean difference ± 95 % confidence half-width (in brackets: on how many seeds "
        f"{reference} was better; lower loss and time are better).\n\n"
        "| Baseline | seeds | Final personalised accuracy | Accuracy, last "
        f"{TAIL_ROUNDS} rounds | Final personalised loss | Avg completion time (s) | Avg round latency (s) |\n"
        "|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r['label']} | {r['seeds']} | {cell(r['acc'], 100, ' pt', 2)} | {cell(r['acc_late'], 100, ' pt', 2)} | "
        f"{cell(r['loss'], 1, '', 3)} | {cell(r['time'], 1, '', 2)} | {cell(r['latency'], 1, '', 2)} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


def adversarial_rows(runs: Iterable[dict]) -> list[dict]:
    """GFML runs with misbehaving learners grouped by (strategy, rate, blockchain, on chain): profit per
    honest and per misbehaving learner (mean, std over seeds), the per-seed range of honest minus
    misbehaving profit (a mean can hide one seed where shirking pays), accuracy and its cost against
    the same seeds' runs without misbehaviour."""
    runs = [r for r in runs if r["scheme"] == "gfml" and r.get("tag", "main") in ("main", "misbehaviour")]
    clean = {(r["seed"], bool(r.get("on_chain"))): r["final"]["acc"] for r in runs
             if r["config"]["misbehave_rate"] == 0 and r["config"]["blockchain"]}
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        c = r["config"]
        if c["misbehave_rate"] == 0:
            continue
        kind = c.get("misbehaviour_kind", "disguised" if c.get("disguise") else "lazy")
        groups.setdefault((kind, c["misbehave_rate"], c["blockchain"], bool(r.get("on_chain"))), []).append(r)
    rows = []
    for (kind, rate, chain, on_chain), rs in sorted(groups.items()):
        cost = [clean[(r["seed"], on_chain)] - r["final"]["acc"] for r in rs if (r["seed"], on_chain) in clean]
        ph, pb = _ms([r["final"]["profit_per_honest"] for r in rs]), _ms([r["final"]["profit_per_misbehaving"] for r in rs])
        margins = [r["final"]["profit_per_honest"] - r["final"]["profit_per_misbehaving"] for r in rs]
        rows.append({"kind": kind, "rate": rate, "blockchain": chain, "on_chain": on_chain, "seeds": len(rs),
                     "profit_honest": ph, "profit_misbehaving": pb,
                     "margin_range": (min(margins), max(margins)),
                     "acc": _ms([r["final"]["acc"] for r in rs]),
                     "acc_cost": _ms(cost) if cost else (float("nan"), float("nan")),
                     "honest_wins": sum(r["final"]["profit_per_honest"] > r["final"]["profit_per_misbehaving"]
                                        for r in rs)})
    return rows


def adversarial_markdown(rows: Sequence[dict]) -> str:
    if not rows:
        return ""
    head = ("| strategy | rate | settled by | seeds | profit honest | profit misbehaving | honest − misbehaving, "
            "per seed (min … max) | honest ahead (seeds) | personalised acc. | accuracy cost |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        where = "chain (4 peers)" if r["on_chain"] else ("offline, head-measured" if r["blockchain"] else
                                                          "offline, self-reported")
        cost = "–" if r["acc_cost"][0] != r["acc_cost"][0] else f"{100 * r['acc_cost'][0]:+.1f} pts"
        lines.append(f"| {r['kind']} | {r['rate']:.0%} | {where} | {r['seeds']} | "
                     f"{r['profit_honest'][0]:.2f} ± {r['profit_honest'][1]:.2f} | "
                     f"{r['profit_misbehaving'][0]:.2f} ± {r['profit_misbehaving'][1]:.2f} | "
                     f"{r['margin_range'][0]:+.2f} … {r['margin_range'][1]:+.2f} | "
                     f"{r['honest_wins']}/{r['seeds']} | {100 * r['acc'][0]:.1f} % | {cost} |")
    return head + "\n".join(lines) + "\n"


def report_markdown(runs: Sequence[dict], meta: dict) -> str:
    """The whole report.md: settings, Table VI, the paired comparison against GFML, adversarial learners."""
    import json

    md = "# FML simulation report\n\n```\n" + json.dumps(meta) + "\n```\n\n" + markdown_table(table_rows(runs))
    paired = paired_markdown(paired_rows(runs))
    adv = adversarial_markdown(adversarial_rows(runs))
    return md + ("\n" + paired if paired else "") + ("\n## Adversarial learners\n\n" + adv if adv else "")


_COLOURS = {"game": "tab:blue", "random": "tab:red", "single": "tab:grey", "fixed": "tab:green", "oracle": "black"}


def _style(key: str) -> dict:
    """Colour by coalition rule, line style by incentive/frequency rule: schemes whose
    learning is identical (same partitions) stay visible as overlapping pairs."""
    s = SCHEMES.get(key)
    if s is None:
        return {}
    ls = "-" if s.incentives == "stackelberg" else ("--" if s.frequencies == "optimised" else ":")
    colour = _COLOURS[s.coalitions]
    if s.coalitions == "game" and s.heads != "reputation":
        colour = "tab:purple" if s.frequencies == "optimised" else "tab:orange"
    return {"color": colour, "linestyle": ls}


def _curves(runs: Sequence[dict], metric: str) -> dict[str, np.ndarray]:
    by: dict[str, list[list[float]]] = defaultdict(list)
    for r in runs:
        by[r["scheme"]].append([h[metric] for h in r["rounds"]])
    out = {}
    for k, series in by.items():
        n = min(len(s) for s in series)
        out[k] = np.mean([s[:n] for s in series], axis=0)
    return out


def write_plots(runs: Sequence[dict], out_dir: Path) -> list[Path]:
    """All PNG figures that the runs allow; returns the written paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    written: list[Path] = []
    main = headline_runs(runs)
    if main:
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
        for metric, ax, ylab in (("acc", axes[0], "personalised accuracy"), ("loss", axes[1], "personalised loss")):
            for k, c in _curves(main, metric).items():
                ax.plot(np.arange(1, len(c) + 1), c, label=k, **_style(k))
            ax.set_xlabel("round")
            ax.set_ylabel(ylab)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        fig.suptitle("Active learners, after personalisation (mean over seeds)")
        fig.tight_layout()
        written.append(_save(fig, out_dir / "personalised_accuracy_loss.png"))

        fig, ax = plt.subplots(figsize=(7, 4.5))
        for k, c in _curves(main, "global_acc").items():
            ax.plot(np.arange(1, len(c) + 1), c, label=k, **_style(k))
        ax.set_xlabel("round")
        ax.set_ylabel("accuracy of the meta-model (no personalisation)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        written.append(_save(fig, out_dir / "global_accuracy.png"))

        by: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in main:
            for shots, acc in r["final"]["passive_acc"].items():
                by[r["scheme"]][shots].append(acc)
        if by:
            fig, ax = plt.subplots(figsize=(10, 4.5))
            keys = list(by)
            shots = sorted({s for v in by.values() for s in v}, key=int)
            width = 0.8 / max(1, len(shots))
            for i, s in enumerate(shots):
                ax.bar(np.arange(len(keys)) + i * width, [float(np.mean(by[k][s])) if by[k][s] else 0.0 for k in keys], width, label=f"{s} sample(s)")
            ax.set_xticks(np.arange(len(keys)) + width * (len(shots) - 1) / 2)
            ax.set_xticklabels(keys, rotation=30, ha="right", fontsize=7)
            ax.set_ylabel("passive learners' accuracy")
            ax.legend()
            fig.tight_layout()
            written.append(_save(fig, out_dir / "passive_accuracy.png"))

    mis = [r for r in runs if r.get("tag") in ("main", "misbehaviour") and r["scheme"] == "gfml"]
    rates = sorted({r["config"]["misbehave_rate"] for r in mis})
    if len(rates) > 1:
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
        for chain in (True, False):
            rs = [r for r in mis if r["config"]["blockchain"] == chain]
            xs = sorted({r["config"]["misbehave_rate"] for r in rs})
            if not xs:
                continue
            lab = "with blockchain" if chain else "without blockchain"
            for ax, get in (
                (axes[0], lambda r: r["final"]["acc"]),
                (axes[1], lambda r: r["final"]["profit_per_misbehaving"]),
                (axes[2], lambda r: r["final"]["profit_per_honest"]),
            ):
                ys = [_ms([get(r) for r in rs if r["config"]["misbehave_rate"] == x])[0] for x in xs]
                ax.plot(xs, ys, marker="o", label=lab)
        for ax, t in zip(axes, ("personalised accuracy", "total profit, misbehaving MML", "total profit, honest MML")):
            ax.set_xlabel("misbehaviour rate")
            ax.set_title(t)
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        written.append(_save(fig, out_dir / "misbehaviour.png"))
        if all("payout_per_misbehaving" in r["final"] for r in mis):
            written.append(_payout_reputation_plot(mis, out_dir))

    for tag, key, xlabel, fname in (
        ("users", "n_learners", "number of learners", "accuracy_vs_users.png"),
        ("coalitions", "n_coalitions", "number of coalitions", "accuracy_vs_coalitions.png"),
    ):
        rs = [r for r in runs if r.get("tag") == tag or (r.get("tag") == "main" and r["scheme"] == "gfml" and r["config"]["blockchain"] and r["config"]["misbehave_rate"] == 0)]
        xs = sorted({r["config"][key] for r in rs})
        if len(xs) > 1 and any(r.get("tag") == tag for r in rs):
            fig, ax = plt.subplots(figsize=(6, 4))
            stats = [_ms([r["final"]["acc"] for r in rs if r["config"][key] == x]) for x in xs]
            ax.errorbar(xs, [m for m, _ in stats], yerr=[sd for _, sd in stats], marker="o", capsize=3)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("GFML personalised accuracy")
            ax.grid(alpha=0.3)
            fig.tight_layout()
            written.append(_save(fig, out_dir / fname))
    return written


def _payout_reputation_plot(mis: Sequence[dict], out_dir: Path) -> Path:
    """Misbehaving vs honest learners' total payout and final reputation, with/without blockchain."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for chain, ls in ((True, "-"), (False, "--")):
        rs = [r for r in mis if r["config"]["blockchain"] == chain]
        xs = sorted({r["config"]["misbehave_rate"] for r in rs})
        if not xs:
            continue
        lab = "with blockchain" if chain else "without blockchain"
        for ax, metric in ((axes[0], "payout"), (axes[1], "reputation")):
            for who, colour in (("misbehaving", "tab:red"), ("honest", "tab:green")):
                key = f"{metric}_per_{who}" if metric == "payout" else f"reputation_{who}"
                ys = [_ms([r["final"][key] for r in rs if r["config"]["misbehave_rate"] == x])[0] for x in xs]
                ax.plot(xs, ys, ls, marker="o", color=colour, label=f"{who}, {lab}")
    for ax, t in zip(axes, ("total payout per learner (tokens)", "final global reputation")):
        ax.set_xlabel("misbehaviour rate")
        ax.set_title(t)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out_dir / "misbehaviour_payout_reputation.png")


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
