"""Optional final pass without the no-return rule: stop at a truly Nash-stable partition.

The switch rule's history rule (a learner never returns to a coalition it left
during a formation) guarantees termination, but the partition it reaches is
stable only *given the history*: a learner may still gain by going back
(docs/games.md measures how often). ``stabilise_with_returns`` continues from
that partition with the history cleared: each pass is one more run of the
switch rule (history rule inside the pass, so each pass ends), and a pass in
which nobody moves proves that no learner gains by any switch at all, returns
included — a truly Nash-stable partition. Passes are bounded (``max_passes``):
better-response dynamics need not converge, so the pass may stop at a
partition that is still only history-stable, and says so.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pocnet.games.coalition import FormationArrays, run_switch_rule, stability_violations


@dataclass(frozen=True)
class StabilityPass:
    assign: np.ndarray  # final assignment (coalition index or -1)
    passes: int  # switch-rule runs made (the last one moved nobody when stable)
    moves: int  # moves over all passes
    stable: bool  # True: no learner gains by any switch (returns allowed)


def stabilise_with_returns(fa: FormationArrays, assign: np.ndarray, max_passes: int = 10) -> StabilityPass:
    """Re-run the switch rule with a cleared history until a run moves nobody, at most ``max_passes`` runs."""
    if max_passes < 1:
        raise ValueError("max_passes: must be >= 1")
    work = np.array(assign, dtype=np.int64, copy=True)
    moves = 0
    for p in range(1, max_passes + 1):
        work, _, _, moved = run_switch_rule(fa, work)
        moves += moved
        if moved == 0:
            return StabilityPass(work, p, moves, True)
    return StabilityPass(work, max_passes, moves, stability_violations(fa, work, None) == [])


def gains_by_returning(fa: FormationArrays, assign: np.ndarray) -> list[tuple[str, str | None, str | None, float]]:
    """Every switch that gains more than epsilon when returns are allowed (empty: truly stable)."""
    return stability_violations(fa, assign, None)


__all__ = ["StabilityPass", "stabilise_with_returns", "gains_by_returning"]
