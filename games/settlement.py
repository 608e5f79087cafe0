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

Rule (docs/model.md "Settlement and incentive compatibility", form ours):

* reference ``ref_k`` = the upper quartile (nearest rank, the ceil(3n/4)-th
  smallest) of the coalition's *credible* work values, those at least a
  quarter of the coalition's largest: a quartile rather than the median so
  that it is still an honest member's value when most of the coalition
  shirks, not the maximum so that one outlier does not lower everyone, and
  only credible values so that members returning nothing (or next to
  nothing) cannot drag it down to their own level;
* this round's ratio ``x_i = min(work_i / ref_k, 1.5)``;
* work score ``s_i = (7 s_i' + 3 x_i) / 10``, s_i' the member's previous score
  (newcomers start at ``FULL``, the benefit of the doubt, as reputation
  starts newcomers at r_th). One round's measurement is noisy (the honest
  10th percentile of x is 0.67, the median lazy member's 0.53, measured), the
  score is not: it has the reputation's time-declining factor 0.7;
* work factor ``e_i = clip((s_i - LOW) / (FULL - LOW), 0, 1)``;
* ``ref_k = 0`` (nobody's update moved the model): ``x = 0`` for all.

The payout (reputation share + competition reward) and the contribution q_i
entering the reputation history are both multiplied by ``e_i``, so reputation
falls with the same evidence. Flagged members (missing report, misreported
time) score x = 0.
"""
from __future__ import annotations

from typing import Mapping

PPM = 1_000_000
# Thresholds of the work factor on the score (ppm of the coalition's reference), see docs/fml.md.
EVIDENCE_LOW_PPM = 600_000
EVIDENCE_FULL_PPM = 800_000
SCORE_DECAY_PPM = 700_000  # weight of the previous score (the reputation's time-declining factor)
RATIO_CAP_PPM = 1_500_000  # one round's ratio counts at most this much
CREDIBLE_DIVISOR = 4  # work below max / 4 does not enter the reference


def upper_quartile(values: list[int]) -> int:
    """Nearest-rank upper quartile: the ceil(3n/4)-th smallest value (n >= 1)."""
    if not values:
        raise ValueError("upper_quartile: no values")
    s = sorted(values)
    rank = (3 * len(s) + 3) // 4  # ceil(3n/4), >= 1
    return s[rank - 1]


def reference(work: list[int]) -> int:
    """Upper quartile of the credible work values (>= max / 4); 0 when nobody did any work."""
    top = max(work) if work else 0
    if top <= 0:
        return 0
    return upper_quartile([w for w in work if CREDIBLE_DIVISOR * w >= top])


def ratio(work: int, ref: int) -> int:
    """min(work / ref, cap) in ppm, floored; 0 when ref is 0."""
    if work < 0 or ref < 0:
        raise ValueError("work/reference: must be >= 0")
    if ref == 0:
        return 0
    return min(RATIO_CAP_PPM, work * PPM // ref)


def next_score(previous: int | None, x: int) -> int:
    """s = (0.7 s' + 0.3 x), newcomers from s' = FULL; integers, floored."""
    prev = EVIDENCE_FULL_PPM if previous is None else previous
    return (SCORE_DECAY_PPM * prev + (PPM - SCORE_DECAY_PPM) * x) // PPM


def work_factor(score: int, low: int = EVIDENCE_LOW_PPM, full: int = EVIDENCE_FULL_PPM) -> int:
    """e in ppm: 0 at or below ``low``, PPM at or above ``full``, linear in between."""
    if not 0 <= low < full:
        raise ValueError("thresholds: need 0 <= low < full")
    if score <= low:
        return 0
    if score >= full:
        return PPM
    return (score - low) * PPM // (full - low)


def work_scores(work: Mapping[str, int], previous: Mapping[str, int] | None = None) -> dict[str, int]:
    """Updated scores (ppm) of one coalition's members from the head's measured ``work`` (integers >= 0)."""
    for a, w in work.items():
        if isinstance(w, bool) or not isinstance(w, int) or w < 0:
            raise ValueError(f"work[{a}]: must be an integer >= 0")
    previous = previous or {}
    ref = reference(list(work.values()))
    return {a: next_score(previous.get(a), ratio(w, ref)) for a, w in sorted(work.items())}


def work_factors(work: Mapping[str, int], previous: Mapping[str, int] | None = None) -> dict[str, int]:
    """e_i (ppm) of one coalition's members (see ``work_scores``)."""
    return {a: work_factor(s) for a, s in work_scores(work, previous).items()}


def scale_ppm(value: int, factor_ppm: int) -> int:
    """``value * factor`` for a ppm factor, floored (token amounts in micro-units)."""
    if not 0 <= factor_ppm <= PPM:
        raise ValueError("factor_ppm: must be in [0, 1e6]")
    return value * factor_ppm // PPM


__all__ = ["PPM", "EVIDENCE_LOW_PPM", "EVIDENCE_FULL_PPM", "SCORE_DECAY_PPM", "upper_quartile", "reference",
           "ratio", "next_score", "work_factor", "work_scores", "work_factors", "scale_ppm"]
