"""[VTM]'s parameter studies (Figs. 5-8) recomputed with pocnet's equilibrium solver.

Each point averages the Stackelberg equilibrium over ``seeds`` instances drawn as
in Sec. VI-A (``market.random_instance``) with one parameter changed. The paper's
curves are MALPPO runs next to its ADMM equilibrium; we plot the equilibrium only.
Writes ``trends.json`` and one PNG per figure into ``out``.
"""
from __future__ import annotations

import json
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pocnet.games import market as mk


def _summary(inst: mk.MarketInstance) -> dict[str, Any]:
    eq = mk.solve(inst)
    return {"price": float(eq.prices.mean()), "demand": float(eq.demands.sum(axis=1).mean()),
            "U_F": float(eq.U_F.mean()), "U_L": float(eq.U_L.mean()),
            "welfare": float(eq.U_F.sum() + eq.U_L.sum()), "prices": eq.prices.tolist(),
            "U_L_each": eq.U_L.tolist(), "demand_each_mrp": eq.demands.sum(axis=0).tolist(),
            "binding": int(sum(eq.delay_binding)), "out": int(sum(s == "out" for s in eq.status)),
            "converged": bool(eq.converged)}


def _mean(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in rows[0]:
        vals = [r[key] for r in rows]
        if isinstance(vals[0], list):
            out[key] = np.mean(np.array(vals), axis=0).tolist()
        elif isinstance(vals[0], bool):
            out[key] = int(sum(vals))
        else:
            out[key] = float(np.mean(vals))
    return out


def _point(seeds: int, draw: Callable[[np.random.Generator], mk.MarketInstance], tag: int) -> dict[str, Any]:
    return _mean([_summary(draw(np.random.default_rng([tag, s]))) for s in range(seeds)])


def run_trends(seeds: int = 10, kappa: float = 15.5, echo: Callable[[str], None] = print) -> dict[str, Any]:
    res: dict[str, Any] = {"seeds": seeds, "kappa": kappa}
    # Fig. 5: N in [2, 6], M in {2, 3, 4}
    fig5: dict[str, Any] = {}
    for m in (2, 3, 4):
        fig5[str(m)] = {str(n): _point(seeds, partial(mk.random_instance, n=n, m=m, kappa=kappa), 5)
                        for n in range(2, 7)}
        echo(f"fig5 M={m} done")
    res["fig5"] = fig5
    # Fig. 6: mu_c in [0, 0.5] (c clipped to >= 0.01), mu_alpha in {25, 30, 35}; M = 3, N = 4
    fig6: dict[str, Any] = {}
    for ma in (25, 30, 35):
        fig6[str(ma)] = {f"{mc:.1f}": _point(seeds, partial(
            mk.random_instance, n=4, m=3, kappa=kappa, mu_alpha=ma, mu_c=mc), 6) for mc in np.arange(0.0, 0.51, 0.1)}
        echo(f"fig6 mu_alpha={ma} done")
    res["fig6"] = fig6
    # Fig. 7: mu_w in [4, 6]; N = 4, M = 3
    res["fig7"] = {f"{mw:.1f}": _point(seeds, partial(mk.random_instance, n=4, m=3, kappa=kappa, mu_w=mw), 7)
                   for mw in np.arange(4.0, 6.01, 0.5)}
    echo("fig7 done")

    # Fig. 8: c_1 in [0, 0.6] (from 0.01), c_2 = 0.1, c_3 = 0.5; N = 4
    def fig8(r: np.random.Generator, c1: float) -> mk.MarketInstance:
        inst = mk.random_instance(r, 4, 3, kappa=kappa)
        return replace(inst, c=(max(c1, 0.01), 0.1, 0.5))
    res["fig8"] = {f"{c1:.1f}": _point(seeds, partial(fig8, c1=c1), 8) for c1 in np.arange(0.0, 0.61, 0.1)}
    echo("fig8 done")
    return res


def _family_panels(ax: Any, families: dict[str, Any], panels: tuple[tuple[str, str], ...], xlabel: str,
                   label: str) -> None:
    """One curve per family (e.g. per M) in each panel (key, title); x = the points' keys."""
    for fam, pts in families.items():
        xs = [float(x) for x in pts]
        for a, (key, title) in zip(ax, panels):
            a.plot(xs, [v[key] for v in pts.values()], "o-", label=label.format(fam))
            a.set_xlabel(xlabel)
            a.set_title(title)
    ax[0].legend()


def _save(fig: Any, path: Path, title: str) -> Path:
    import matplotlib.pyplot as plt

    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_trends(res: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    k = res["kappa"]
    fig, ax = plt.subplots(1, 4, figsize=(16, 3.6))
    _family_panels(ax, res["fig5"], (("demand", "avg MSP demand (x B0)"), ("U_F", "avg MSP utility"),
                                     ("U_L", "avg MRP utility"), ("welfare", "social welfare")),
                   "N (MSPs)", "M = {}")
    paths.append(_save(fig, out / "market_fig5.png",
                       f"Fig. 5 trends: equilibrium vs N and M (kappa = {k}, {res['seeds']} draws per point)"))

    fig, ax = plt.subplots(1, 4, figsize=(16, 3.6))
    _family_panels(ax, res["fig6"], (("price", "avg MRP price"), ("demand", "avg MSP demand (x B0)"),
                                     ("U_F", "avg MSP utility"), ("U_L", "avg MRP utility")),
                   "mu_c (mean MRP cost)", "mu_alpha = {}")
    paths.append(_save(fig, out / "market_fig6.png",
                       f"Fig. 6 trends: equilibrium vs mean cost and mean satisfaction (M = 3, N = 4, kappa = {k})"))

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
    pts = res["fig7"]
    xs = [float(x) for x in pts]
    ax[0].plot(xs, [pts[x]["demand"] for x in pts], "o-", label="avg MSP demand (x B0)")
    ax0b = ax[0].twinx()
    ax0b.plot(xs, [pts[x]["U_F"] for x in pts], "s--", color="C1", label="avg MSP utility")
    ax[0].set_xlabel("mu_w (mean social tie)")
    ax[0].set_title("MSPs: demand (o) and utility (s)")
    ax[1].plot(xs, [pts[x]["U_L"] for x in pts], "o-", label="avg MRP utility")
    ax[1].plot(xs, [pts[x]["welfare"] for x in pts], "s-", label="social welfare")
    ax[1].set_xlabel("mu_w (mean social tie)")
    ax[1].legend()
    paths.append(_save(fig, out / "market_fig7.png", f"Fig. 7 trends (M = 3, N = 4, kappa = {k})"))

    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    pts = res["fig8"]
    xs = [float(x) for x in pts]
    for j in range(3):
        for a, key in zip(ax, ("prices", "demand_each_mrp", "U_L_each")):
            a.plot(xs, [pts[x][key][j] for x in pts], "o-", label=f"MRP{j + 1}")
    for a, t in zip(ax, ("price", "bandwidth sold (x B0)", "MRP utility")):
        a.set_xlabel("c_1 (c_2 = 0.1, c_3 = 0.5)")
        a.set_title(t)
    ax[0].legend()
    paths.append(_save(fig, out / "market_fig8.png",
                       f"Fig. 8 trends: competition when MRP1's cost rises (N = 4, kappa = {k})"))
    return paths


def main(out: Path, seeds: int, kappa: float) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    res = run_trends(seeds, kappa)
    (out / "market_trends.json").write_text(json.dumps(res, indent=1) + "\n")
    plot_trends(res, out)
    return res
