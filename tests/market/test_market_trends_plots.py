"""games/market_trends.plot_trends draws every figure from a result dict (no solving: synthetic points)."""
import numpy as np

from pocnet.games import market_trends as mt


def _point(rng: np.random.Generator) -> dict:
    return {"price": rng.random(), "demand": rng.random(), "U_F": rng.random(), "U_L": rng.random(),
            "welfare": rng.random(), "prices": rng.random(3).tolist(), "U_L_each": rng.random(3).tolist(),
            "demand_each_mrp": rng.random(3).tolist()}


def test_plot_trends_writes_the_four_figures(tmp_path):
    rng = np.random.default_rng(5)
    res = {"seeds": 3, "kappa": 15.5,
           "fig5": {str(m): {str(n): _point(rng) for n in range(2, 7)} for m in (2, 3, 4)},
           "fig6": {str(ma): {f"{mc:.1f}": _point(rng) for mc in np.arange(0.0, 0.51, 0.1)} for ma in (25, 30, 35)},
           "fig7": {f"{mw:.1f}": _point(rng) for mw in np.arange(4.0, 6.01, 0.5)},
           "fig8": {f"{c:.1f}": _point(rng) for c in np.arange(0.0, 0.61, 0.1)}}
    paths = mt.plot_trends(res, tmp_path)
    assert [p.name for p in paths] == [f"market_fig{k}.png" for k in (5, 6, 7, 8)]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
