"""JSON documents of the ``pocnet games`` commands -> typed inputs -> JSON answers.

Pure (dicts in, dicts out); the CLI does the file reading. Every input error
is an ``InputError`` whose message starts with the offending field's path,
e.g. ``learners[2].rate: must be a finite number > 0``.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from pocnet.games.coalition import is_nash_stable
from pocnet.games.cost import cycles_per_round, transmission_time
from pocnet.games.params import GameParams
from pocnet.games.profile import LearnerProfile
from pocnet.games.reputation import (
    ReputationHistory,
    contributions,
    global_reputation,
    overall_reputation,
    reputation_matrix,
    task_specific_reputation,
)
from pocnet.games.round import plan_round
from pocnet.games.stackelberg import (
    Follower,
    follower_best_response,
    learner_utility,
    make_game,
    msp_utility,
    solve_coalition,
)


class InputError(ValueError):
    """Bad input document; the message names the field."""


def _obj(doc: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise InputError(f"{path or 'input'}: must be a JSON object")
    return doc


def _num(v: Any, path: str, positive: bool = False, unit: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise InputError(f"{path}: must be a finite number")
    if positive and v <= 0:
        raise InputError(f"{path}: must be > 0")
    if unit and not 0.0 <= v <= 1.0:
        raise InputError(f"{path}: must be in [0, 1]")
    return float(v)


def _check_keys(doc: Mapping[str, Any], allowed: set[str], path: str) -> None:
    for key in doc:
        if key not in allowed:
            raise InputError(f"{path}{'.' if path else ''}{key}: unknown field")


def parse_params(doc: Mapping[str, Any]) -> GameParams:
    raw = doc.get("params", {})
    try:
        return GameParams.from_dict(_obj(raw, "params"))
    except InputError:
        raise
    except ValueError as exc:
        raise InputError(str(exc)) from None


def parse_histories(raw: Any, path: str = "histories") -> dict[str, ReputationHistory]:
    out: dict[str, ReputationHistory] = {}
    for addr, items in _obj(raw, path).items():
        if not isinstance(items, list):
            raise InputError(f"{path}.{addr}: must be a list of [round, head, q]")
        hist = ReputationHistory()
        for j, item in enumerate(items):
            p = f"{path}.{addr}[{j}]"
            if isinstance(item, Mapping):
                item = [item.get("round"), item.get("head"), item.get("q")]
            if not isinstance(item, (list, tuple)) or len(item) != 3:
                raise InputError(f"{p}: must be [round, head, q]")
            rnd, head, q = item
            if isinstance(rnd, bool) or not isinstance(rnd, int):
                raise InputError(f"{p}.round: must be an integer")
            if not isinstance(head, str) or not head:
                raise InputError(f"{p}.head: must be a non-empty string")
            qv = _num(q, f"{p}.q", unit=True)
            try:
                hist = hist.add(rnd, head, qv)
            except ValueError as exc:
                raise InputError(f"{p}.{exc}") from None
        out[str(addr)] = hist
    return out


def parse_embeddings(raw: Any, path: str = "embeddings") -> dict[str, tuple[float, ...]]:
    out = {}
    dims = set()
    for addr, vec in _obj(raw, path).items():
        if not isinstance(vec, list):
            raise InputError(f"{path}.{addr}: must be a list of numbers")
        out[str(addr)] = tuple(_num(x, f"{path}.{addr}[{j}]") for j, x in enumerate(vec))
        dims.add(len(vec))
    if len(dims) > 1:
        raise InputError(f"{path}: all embeddings must have the same length")
    return out


def parse_learners(raw: Any, params: GameParams, path: str = "learners") -> list[LearnerProfile]:
    if not isinstance(raw, list) or not raw:
        raise InputError(f"{path}: must be a non-empty list of learner objects")
    out = []
    seen = set()
    for i, item in enumerate(raw):
        try:
            prof = LearnerProfile.from_dict(_obj(item, f"{path}[{i}]"), default_kappa=params.kappa)
        except InputError:
            raise
        except (ValueError, TypeError) as exc:
            raise InputError(f"{path}[{i}].{exc}") from None
        if prof.address in seen:
            raise InputError(f"{path}[{i}].address: duplicate {prof.address}")
        seen.add(prof.address)
        out.append(prof)
    return out


# ---------------------------------------------------------------- reputation


def run_reputation(doc: Any) -> dict[str, Any]:
    """Global, task-specific and overall reputations (+ optional contributions q_i)."""
    doc = _obj(doc, "")
    _check_keys(doc, {"params", "histories", "embeddings", "heads", "contributions"}, "")
    params = parse_params(doc)
    if "histories" not in doc:
        raise InputError("histories: missing")
    histories = parse_histories(doc["histories"])
    embeddings = parse_embeddings(doc.get("embeddings", {}))
    heads = doc.get("heads", sorted(embeddings))
    if not isinstance(heads, list) or not all(isinstance(h, str) for h in heads):
        raise InputError("heads: must be a list of addresses")
    result: dict[str, Any] = {
        "global": {a: global_reputation(h, params) for a, h in sorted(histories.items())},
        "task_specific": {
            a: {h: task_specific_reputation(hist, h, embeddings, params) for h in heads}
            for a, hist in sorted(histories.items())
        },
        "overall": {
            a: {h: overall_reputation(hist, h, embeddings, params) for h in heads}
            for a, hist in sorted(histories.items())
        },
    }
    if "contributions" in doc:
        c = _obj(doc["contributions"], "contributions")
        _check_keys(c, {"loss_reductions", "times"}, "contributions")
        for key in ("loss_reductions", "times"):
            if not isinstance(c.get(key), list):
                raise InputError(f"contributions.{key}: must be a list of numbers")
        ells = [_num(x, f"contributions.loss_reductions[{j}]") for j, x in enumerate(c["loss_reductions"])]
        times = [_num(x, f"contributions.times[{j}]") for j, x in enumerate(c["times"])]
        if len(ells) != len(times):
            raise InputError("contributions.times: must have as many entries as loss_reductions")
        result["contributions"] = contributions(ells, times, params)
    return result


# ----------------------------------------------------------------- coalition


def run_coalition(doc: Any) -> dict[str, Any]:
    """plan_round on the given learners: heads, Nash-stable partition, Stackelberg per coalition."""
    doc = _obj(doc, "")
    _check_keys(doc, {"params", "seed", "learners", "histories", "prev_partition", "prev_incentives"}, "")
    params = parse_params(doc)
    seed = doc.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError("seed: must be an integer")
    if "learners" not in doc:
        raise InputError("learners: missing")
    learners = parse_learners(doc["learners"], params)
    histories = parse_histories(doc.get("histories", {}))
    addrs = {p.address for p in learners}
    prev = _obj(doc.get("prev_partition", {}), "prev_partition")
    for h, members in prev.items():
        if not isinstance(members, list) or not all(isinstance(a, str) for a in members):
            raise InputError(f"prev_partition.{h}: must be a list of addresses")
        for a in members:
            if a not in addrs:
                raise InputError(f"prev_partition.{h}: unknown learner {a}")
    prev_inc = {
        h: _num(v, f"prev_incentives.{h}") for h, v in _obj(doc.get("prev_incentives", {}), "prev_incentives").items()
    }
    plan = plan_round(learners, histories, {h: list(m) for h, m in prev.items()}, seed, params, prev_inc or None)
    out = plan.to_dict()
    del out["embeddings"], out["quantized"], out["scale"]
    if plan.heads:
        active = [p for p in learners if p.active]
        _, overall = reputation_matrix([p.address for p in active], list(plan.heads), histories,
                                       {p.address: p.embedding for p in learners}, params)
        # stability is w.r.t. the incentives learners assumed while switching and the history rule
        out["nash_stable"] = is_nash_stable(active, list(plan.heads), overall, plan.formation_partition(), params,
                                            plan.formation_incentives, plan.left)
    else:
        out["nash_stable"] = True
    return out


# --------------------------------------------------------------- stackelberg


def run_stackelberg(doc: Any) -> dict[str, Any]:
    """Leader optimum C_k* and follower best responses of one coalition."""
    doc = _obj(doc, "")
    _check_keys(doc, {"params", "head", "deadline", "members", "incentive"}, "")
    params = parse_params(doc)
    if "deadline" not in doc:
        raise InputError("deadline: missing")
    deadline = _num(doc["deadline"], "deadline", positive=True)
    raw = doc.get("members")
    if not isinstance(raw, list) or not raw:
        raise InputError("members: must be a non-empty list of member objects")
    allowed = {"address", "data_size", "kappa", "f_min", "f_max", "rate", "reputation", "similarity"}
    rows = []
    for i, m in enumerate(raw):
        p = f"members[{i}]"
        m = _obj(m, p)
        _check_keys(m, allowed, p)
        addr = m.get("address")
        if not isinstance(addr, str) or not addr:
            raise InputError(f"{p}.address: missing or not a non-empty string")
        vals = {}
        for key in ("data_size", "f_min", "f_max", "rate"):
            if key not in m:
                raise InputError(f"{p}.{key}: missing")
            vals[key] = _num(m[key], f"{p}.{key}", positive=True)
        vals["kappa"] = _num(m.get("kappa", params.kappa), f"{p}.kappa", positive=True)
        if vals["f_min"] > vals["f_max"]:
            raise InputError(f"{p}.f_min: must be <= f_max")
        if "reputation" not in m:
            raise InputError(f"{p}.reputation: missing")
        vals["reputation"] = _num(m["reputation"], f"{p}.reputation", unit=True)
        vals["similarity"] = _num(m.get("similarity", 1.0), f"{p}.similarity", unit=True)
        rows.append((addr, vals))
    if len({a for a, _ in rows}) != len(rows):
        raise InputError("members: duplicate address")
    total = math.fsum(v["similarity"] * v["data_size"] for _, v in rows)
    followers = [
        Follower(
            address=a,
            cycles=cycles_per_round(v["data_size"], params),
            kappa=v["kappa"],
            f_min=v["f_min"],
            f_max=v["f_max"],
            tx_time=transmission_time(v["rate"], params),
            weight=(v["similarity"] * v["data_size"] / total) if total > 0 else 0.0,
            reputation=v["reputation"],
        )
        for a, v in rows
    ]
    head = doc.get("head", followers[0].address)
    if not isinstance(head, str):
        raise InputError("head: must be an address")
    game = make_game(head, deadline, followers)
    if "incentive" in doc:
        c = _num(doc["incentive"], "incentive")
        if not params.C_min <= c <= params.C_max:
            raise InputError(f"incentive: must lie in [C_min, C_max] = [{params.C_min}, {params.C_max}]")
        members = {}
        for m in followers:
            br = follower_best_response(c, m, deadline, params)
            members[m.address] = {
                "weight": m.weight,
                "frequency": br.frequency,
                "case": br.case.name,
                "completion_time": m.cycles / br.frequency + m.tx_time,
                "utility": learner_utility(br.frequency, c, m, game.size, game.reputation, params),
            }
        return {
            "incentive": c,
            "msp_utility": msp_utility(c, game, params),
            "coalition_reputation": game.reputation,
            "members": members,
            "infeasible": [a for a, v in members.items() if v["case"] == "INFEASIBLE"],
        }
    sol = solve_coalition(game, params)
    return {
        "incentive": sol.incentive,
        "msp_utility": sol.msp_utility,
        "coalition_reputation": game.reputation,
        "members": {
            m.address: {
                "weight": m.weight,
                "frequency": sol.frequencies.get(m.address, m.f_max),
                "case": sol.cases[m.address].name,
                "completion_time": sol.completion_times.get(m.address),
                "utility": sol.learner_utilities.get(m.address),
            }
            for m in followers
        },
        "infeasible": list(sol.infeasible),
    }
