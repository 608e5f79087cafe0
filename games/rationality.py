"""Individual rationality after the Stackelberg stage (docs/model.md: a learner never stays where its
utility is negative).

Coalition formation evaluates utilities at the incentives learners *assume*
(the previous round's C_k, or C_max); the leader then fixes C_k*, often lower,
and some members end up with U_{i,k}(f_i*) < 0. Rule (ours): after C_k* and
f_i* are fixed, the member with the lowest negative utility (ties: address)
sits the round out with the reason recorded; the shares omega are renormalised
over the remaining members and the leader's problem is solved again; repeat
until no member's utility is negative. One member at a time, because each exit
raises the others' shares (|S_k| falls, omega renormalises) and may lift them
back above zero. The head never leaves (it aggregates; without it there is no
coalition); its utility is recorded in the plan like everyone's. At most
|S_k| - 1 re-solves, so the loop ends.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from pocnet.games.params import GameParams
from pocnet.games.quantize import quantize
from pocnet.games.stackelberg import CoalitionGame, Follower, StackelbergSolution, coalition_weights, make_game, \
    solve_coalition

NEGATIVE_UTILITY = "negative_utility"
NO_COALITION = "no_coalition"


def exit_reason(utility: float, incentive: float) -> str:
    """Human-readable, deterministic reason (values quantised to 1e-6 before printing)."""
    u, c = quantize(utility), quantize(incentive)
    return f"{NEGATIVE_UTILITY}: U={u / 1e6:.6f} at C_k*={c / 1e6:.6f}"


def solve_rational(
    head: str,
    deadline: float,
    followers: Sequence[Follower],
    similarities: Sequence[float],
    data_sizes: Sequence[float],
    params: GameParams,
) -> tuple[CoalitionGame, StackelbergSolution, dict[str, str]]:
    """(game of the members who stay, its solution, {member who left: reason})."""
    keep = list(range(len(followers)))
    exits: dict[str, str] = {}
    while True:
        weights = coalition_weights([similarities[i] for i in keep], [data_sizes[i] for i in keep])
        members = [replace(followers[i], weight=w) for i, w in zip(keep, weights)]
        game = make_game(head, deadline, members)
        sol = solve_coalition(game, params)
        negative = sorted((sol.learner_utilities[m.address], m.address) for m in members
                          if m.address != head and m.address in sol.learner_utilities
                          and sol.learner_utilities[m.address] < 0.0)
        if not negative:
            return game, sol, exits
        u, addr = negative[0]
        exits[addr] = exit_reason(u, sol.incentive)
        keep = [i for i in keep if followers[i].address != addr]


__all__ = ["NEGATIVE_UTILITY", "NO_COALITION", "exit_reason", "solve_rational"]
