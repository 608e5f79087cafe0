"""Settlement on evidence of work: how much of its payout a member has earned this round.

Integers only (parts per million), so every peer computes the same factor
whatever its CPU; the on-chain handler and the offline driver both call
:func:`work_factors` through ``games.round.settle_round``.

The evidence is ``work``: what the head measured of each member's update
(``fml.training.Trainer.own_gain``): the length of the update along the
descent direction of the loss on the validation samples the member lent its
head. More local iterations move the model further along it; fewer iterations
("lazy", "disguised") move it less; noise added to make an update look big is
orthogonal to it in expectation ("noisy"); a returned, untrained model has
zero length ("free rider"). When a report carries no ``work`` the update's
length (``grad_norm``) stands in for it.

Rule (FORMULAS "Settlement and incentive compatibility", form ours):

* reference ``ref_k`` = the coalition's upper quartile of ``work``
  (nearest rank, ceil(3n/4)-th smallest). A quartile rather than the median
  so that the reference is still an honest member's value when most of the
  coalition shirks; not the maximum, so one outlier does not lower everyone;
* ratio ``x_i = work_i / ref_k``;
* work factor ``e_i = clip((x_i - LOW) / (FULL - LOW), 0, 1)``: members at
  ``FULL`` of the reference or above are paid in full, at ``LOW`` or below
  nothing, linearly in between;
* ``ref_k = 0`` (nobody's update moved the model): ``e = 0`` for all.

The payout (reputation share + competition reward) and the contribution
q_i entering the reputation history are both multiplied by ``e_i``, so
reputation falls with the same evidence.
"""
from __future__ import annotations

from typing import Mapping

PPM = 1_000_000
# Thresholds of the work factor (ppm of the coalition's upper-quartile work). Chosen from the
# distributions measured on seed 0 (docs/fml.md, "Settlement on evidence of work"): the
# 10th percentile of honest members' ratios is ~0.73, the median lazy member's ~0.51.
EVIDENCE_LOW_PPM = 400_000
EVIDENCE_FULL_PPM = 700_000


def upper_quartile(values: list[int]) -> int:
    """Nearest-rank upper quartile: the ceil(3n/4)-th smallest value (n >= 1)."""
    if not values:
        raise ValueError("upper_quartile: no values")
    s = sorted(values)
    rank = (3 * len(s) + 3) // 4  # ceil(3n/4), >= 1
    return s[rank - 1]


def work_factor(work: int, reference: int, low: int = EVIDENCE_LOW_PPM, full: int = EVIDENCE_FULL_PPM) -> int:
    """e in ppm for one member: 0 at or below ``low`` x reference, PPM at or above ``full`` x reference."""
    if not 0 <= low < full:
        raise ValueError("thresholds: need 0 <= low < full")
    if work < 0 or reference < 0:
        raise ValueError("work/reference: must be >= 0")
    if reference == 0:
        return 0
    # ratio in ppm, floored; compare in integers without dividing twice
    ratio = work * PPM // reference
    if ratio <= low:
        return 0
    if ratio >= full:
        return PPM
    return (ratio - low) * PPM // (full - low)


def work_factors(work: Mapping[str, int], low: int = EVIDENCE_LOW_PPM, full: int = EVIDENCE_FULL_PPM) -> dict[str, int]:
    """e_i (ppm) for every member of one coalition, from the head's measured ``work`` (integers >= 0)."""
    for a, w in work.items():
        if isinstance(w, bool) or not isinstance(w, int) or w < 0:
            raise ValueError(f"work[{a}]: must be an integer >= 0")
    if not work:
        return {}
    ref = upper_quartile(list(work.values()))
    return {a: work_factor(w, ref, low, full) for a, w in sorted(work.items())}


def scale_ppm(value: int, factor_ppm: int) -> int:
    """``value * factor`` for a ppm factor, floored (token amounts in micro-units)."""
    if not 0 <= factor_ppm <= PPM:
        raise ValueError("factor_ppm: must be in [0, 1e6]")
    return value * factor_ppm // PPM


__all__ = ["PPM", "EVIDENCE_LOW_PPM", "EVIDENCE_FULL_PPM", "upper_quartile", "work_factor", "work_factors",
           "scale_ppm"]
