"""The FML round lifecycle as transactions (DESIGN § FML application, docs/model.md).

``fml_register`` (a learner's capabilities) -> ``fml_open_round`` (an MSP escrows a
budget and sets the round's parameters) -> ``fml_join`` (registered learners post
their embedding) -> ``fml_close_registration`` (the state machine plans the round:
heads, Nash-stable coalitions, Stackelberg incentives and frequencies, with
``games.plan_round`` seeded from the previous block hash) -> ``fml_report`` (heads
report on their own members) -> ``fml_close_round`` (``games.settle_round``:
contributions, misreport/missing flags, reputations, payouts credited from the
escrow, the rest refunded). Phases: registration -> training -> closed.

Every check is in ``check_state`` so a proposer can leave a failing tx out; the
only failure left to ``apply`` is the (deterministic) case where the game
itself cannot be solved. Payload formats and units: docs/fmlchain.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pocnet.games.quantize import dequantize, quantize
from pocnet.games.round import MemberReport, RoundPlan, plan_round, settle_round
from pocnet.ledger.errors import Code, TxRejected
from pocnet.ledger.genesis import Genesis
from pocnet.ledger.state import StateView
from pocnet.ledger.state_machine import BlockContext, get_account, register_genesis, register_handler, set_account
from pocnet.ledger.tx import Tx
from pocnet.ledger.txtypes import fml_codec as fc
from pocnet.ledger.txtypes.common import MAX_INT, exact_fields, int_field

MAX_EMBEDDING_DIM = 64
MAX_EMBEDDING_ABS = 10**12  # x1e6, i.e. |e| <= 1e6
MAX_REPORTS_PER_TX = 256
MAX_ROUND_LEARNERS = 1024
MAX_COALITIONS = 64
MAX_LOSS_ABS = 10**12  # x1e6
MAX_GRAD_NORM = 10**15  # x1e6
MAX_COMPLETION_MS = 7 * 24 * 3600 * 1000
MAX_MHZ = 10**6  # 1 THz
MAX_KAPPA_E36 = 10**18  # kappa <= 1e-18
MAX_DATA_SIZE = 10**9
MAX_RATE_KBPS = 10**9  # 1 Tbit/s
MAX_TOLERATED_MS = 24 * 3600 * 1000


# ----------------------------------------------------------------- helpers
def _bool_field(payload: dict[str, Any], name: str) -> bool:
    value = payload[name]
    if not isinstance(value, bool):
        raise TxRejected(f"payload.{name}", "must be true or false")
    return value


def _round_of(view: StateView, rid: int) -> dict[str, Any]:
    """The round summary (read-only) or 422 naming the round."""
    summary = view.get(fc.NS_ROUND, fc.round_key(rid))
    if summary is None:
        raise TxRejected("payload.round", f"no round {rid}", Code.UNMET)
    return summary


def _require_phase(summary: dict[str, Any], phase: str) -> None:
    if summary["phase"] != phase:
        raise TxRejected("payload.round", f"round {summary['id']} is in phase {summary['phase']!r}, "
                         f"this transaction needs {phase!r}", Code.CONFLICT)


def _require_opener(summary: dict[str, Any], tx: Tx) -> None:
    if summary["opener"] != tx.sender:
        raise TxRejected("sender", f"only the round's opener (MSP) {summary['opener'][:16]}... may do this", Code.FORBIDDEN)


def _chain_params(view: StateView):
    return fc.params_from_state(view.get(fc.NS, "params"))


def _game_params(view: StateView, summary: dict[str, Any]):
    return fc.round_params(_chain_params(view), summary["params"])


@dataclass(frozen=True)
class RoundRef:
    round: int


def _round_only(payload: dict[str, Any]) -> RoundRef:
    exact_fields(payload, ("round",))
    return RoundRef(int_field(payload, "round", 1, MAX_INT))


# ----------------------------------------------------------------- fml_register
@dataclass(frozen=True)
class RegisterPayload:
    caps: dict[str, Any]


class RegisterHandler:
    """A learner registers (or updates) its own capabilities; anyone may register itself."""

    tx_type = "fml_register"

    def check_payload(self, payload: dict[str, Any]) -> RegisterPayload:
        exact_fields(payload, fc.CAPABILITY_FIELDS)
        caps = {
            "data_size": int_field(payload, "data_size", 1, MAX_DATA_SIZE),
            "kappa_e36": int_field(payload, "kappa_e36", 1, MAX_KAPPA_E36),
            "f_min_mhz": int_field(payload, "f_min_mhz", 1, MAX_MHZ),
            "f_max_mhz": int_field(payload, "f_max_mhz", 1, MAX_MHZ),
            "rate_kbps": int_field(payload, "rate_kbps", 1, MAX_RATE_KBPS),
            "tolerated_ms": int_field(payload, "tolerated_ms", 1, MAX_TOLERATED_MS),
            "active": _bool_field(payload, "active"),
        }
        if caps["f_min_mhz"] > caps["f_max_mhz"]:
            raise TxRejected("payload.f_min_mhz", "must be <= f_max_mhz")
        return RegisterPayload(caps)

    def check_state(self, view: StateView, tx: Tx, p: RegisterPayload) -> None:
        return None

    def apply(self, view: StateView, tx: Tx, p: RegisterPayload, ctx: BlockContext) -> None:
        old = view.get(fc.NS_LEARNER, tx.sender)
        rec = dict(p.caps)
        rec["registered_height"] = old["registered_height"] if old else ctx.height
        rec["updated_height"] = ctx.height
        view.set(fc.NS_LEARNER, tx.sender, rec)


# ----------------------------------------------------------------- fml_open_round
@dataclass(frozen=True)
class OpenPayload:
    budget: int
    embedding_dim: int
    max_learners: int
    overrides: dict[str, int]


_OVERRIDE_RANGES = {
    "n_coalitions": (1, MAX_COALITIONS),
    "tau": (1, 10_000),
    "model_size_bits": (1, 10**13),
    "reputation_incentive": (0, 10**15),
    "incentive_min": (0, 10**15),
    "incentive_max": (0, 10**15),
}


class OpenRoundHandler:
    """An MSP opens a round: escrows ``budget`` micro-tokens and fixes the round's game."""

    tx_type = "fml_open_round"

    def check_payload(self, payload: dict[str, Any]) -> OpenPayload:
        exact_fields(payload, ("budget", "embedding_dim"), ("max_learners",) + tuple(_OVERRIDE_RANGES))
        overrides = {name: int_field(payload, name, lo, hi)
                     for name, (lo, hi) in _OVERRIDE_RANGES.items() if name in payload}
        if overrides.get("incentive_min", 0) > overrides.get("incentive_max", MAX_INT):
            raise TxRejected("payload.incentive_min", "must be <= incentive_max")
        return OpenPayload(
            budget=int_field(payload, "budget", 1, MAX_INT),
            embedding_dim=int_field(payload, "embedding_dim", 1, MAX_EMBEDDING_DIM),
            max_learners=int_field(payload, "max_learners", 2, MAX_ROUND_LEARNERS)
            if "max_learners" in payload else MAX_ROUND_LEARNERS,
            overrides=overrides,
        )

    def check_state(self, view: StateView, tx: Tx, p: OpenPayload) -> None:
        balance = get_account(view, tx.sender)["balance"]
        if balance < p.budget:
            raise TxRejected("payload.budget", f"insufficient balance to escrow: have {balance}, need {p.budget}", Code.UNMET)
        try:
            fc.round_params(_chain_params(view), p.overrides)
        except ValueError as exc:
            raise TxRejected("payload", f"parameters invalid with the chain's game parameters: {exc}", Code.UNMET) from None

    def apply(self, view: StateView, tx: Tx, p: OpenPayload, ctx: BlockContext) -> None:
        rid = view.get(fc.NS, "round_seq", 0) + 1
        view.set(fc.NS, "round_seq", rid)
        acct = get_account(view, tx.sender)
        acct["balance"] -= p.budget
        set_account(view, tx.sender, acct)
        view.set(fc.NS_ROUND, fc.round_key(rid), {
            "id": rid, "opener": tx.sender, "open_tx": tx.hash, "phase": fc.PHASE_REGISTRATION,
            "budget": p.budget, "escrow": p.budget, "embedding_dim": p.embedding_dim,
            "max_learners": p.max_learners, "params": dict(sorted(p.overrides.items())),
            "joined_count": 0, "reported_count": 0, "opened_height": ctx.height,
            "registration_closed_height": None, "closed_height": None, "seed": None, "heads": [],
            "members_count": 0, "paid": 0, "refund": 0, "settle_epoch": None, "note": None,
        })


# ----------------------------------------------------------------- fml_join
@dataclass(frozen=True)
class JoinPayload:
    round: int
    embedding: list[int]


class JoinHandler:
    """A registered learner joins a round in registration and posts its embedding (x1e6)."""

    tx_type = "fml_join"

    def check_payload(self, payload: dict[str, Any]) -> JoinPayload:
        exact_fields(payload, ("round", "embedding"))
        rid = int_field(payload, "round", 1, MAX_INT)
        emb = payload["embedding"]
        if not isinstance(emb, list) or not 1 <= len(emb) <= MAX_EMBEDDING_DIM:
            raise TxRejected("payload.embedding", f"must be a list of 1..{MAX_EMBEDDING_DIM} integers")
        for i, x in enumerate(emb):
            if not isinstance(x, int) or isinstance(x, bool) or not -MAX_EMBEDDING_ABS <= x <= MAX_EMBEDDING_ABS:
                raise TxRejected(f"payload.embedding[{i}]",
                                 f"must be an integer in [-{MAX_EMBEDDING_ABS}, {MAX_EMBEDDING_ABS}] (value x 1e6)")
        return JoinPayload(rid, list(emb))

    def check_state(self, view: StateView, tx: Tx, p: JoinPayload) -> None:
        if view.get(fc.NS_LEARNER, tx.sender) is None:
            raise TxRejected("sender", "not a registered learner (send fml_register first)", Code.FORBIDDEN)
        summary = _round_of(view, p.round)
        if summary["opener"] == tx.sender:
            raise TxRejected("sender", "the round's opener cannot join its own round", Code.FORBIDDEN)
        _require_phase(summary, fc.PHASE_REGISTRATION)
        if view.get(fc.join_ns(p.round), tx.sender) is not None:
            raise TxRejected("sender", f"already joined round {p.round}", Code.CONFLICT)
        if len(p.embedding) != summary["embedding_dim"]:
            raise TxRejected("payload.embedding", f"round {p.round} needs {summary['embedding_dim']} dimensions, "
                             f"got {len(p.embedding)}", Code.UNMET)
        if summary["joined_count"] >= summary["max_learners"]:
            raise TxRejected("payload.round", f"round {p.round} is full ({summary['max_learners']} learners)", Code.UNMET)

    def apply(self, view: StateView, tx: Tx, p: JoinPayload, ctx: BlockContext) -> None:
        view.set(fc.join_ns(p.round), tx.sender, {"embedding": p.embedding, "height": ctx.height})
        summary = view.get_copy(fc.NS_ROUND, fc.round_key(p.round))
        summary["joined_count"] += 1
        view.set(fc.NS_ROUND, fc.round_key(p.round), summary)


# ----------------------------------------------------------------- fml_close_registration
class CloseRegistrationHandler:
    """The opener closes registration; the state machine plans the round (games.plan_round)."""

    tx_type = "fml_close_registration"
    runs_solver = True  # plan_round: mempool admission checks preconditions only

    def check_payload(self, payload: dict[str, Any]) -> RoundRef:
        return _round_only(payload)

    def check_state(self, view: StateView, tx: Tx, p: RoundRef) -> None:
        summary = _round_of(view, p.round)
        _require_opener(summary, tx)
        _require_phase(summary, fc.PHASE_REGISTRATION)
        if summary["joined_count"] < 2:
            raise TxRejected("payload.round", f"round {p.round} has {summary['joined_count']} learners; "
                             "at least 2 must join before registration closes", Code.UNMET)

    def apply(self, view: StateView, tx: Tx, p: RoundRef, ctx: BlockContext) -> None:
        key = fc.round_key(p.round)
        summary = view.get_copy(fc.NS_ROUND, key)
        params = _game_params(view, summary)
        profiles, histories = [], {}
        for addr, joined in view.items(fc.join_ns(p.round)):
            profiles.append(fc.profile_from_state(addr, view.get(fc.NS_LEARNER, addr), joined["embedding"]))
            histories[addr] = fc.history_from_state(view.get(fc.NS_REP, addr))
        prev_partition, prev_incentives = None, None
        last = (view.get(fc.NS_MSP, summary["opener"]) or {}).get("last_planned_round")
        if last is not None:
            prev = view.get(fc.NS_PLAN, fc.round_key(last))
            prev_partition = prev["partition"]
            prev_incentives = fc.deq_map(prev["incentives"])
        seed = fc.round_seed(ctx.beacon, p.round)
        try:
            plan = plan_round(profiles, histories, prev_partition, seed, params, prev_incentives)
        except (ValueError, RuntimeError) as exc:  # deterministic: every peer leaves the tx out alike
            raise TxRejected("payload.round", f"round {p.round} cannot be planned: {exc}", Code.UNMET) from None
        view.set(fc.NS_PLAN, key, plan.to_dict(quantized=True, scale=fc.SCALE))
        summary.update(phase=fc.PHASE_TRAINING, seed=seed, heads=list(plan.heads),
                       members_count=sum(len(m) for m in plan.partition.values()),
                       registration_closed_height=ctx.height)
        if not plan.heads:
            summary["note"] = "no learner could head a coalition; close the round to get the escrow back"
        view.set(fc.NS_ROUND, key, summary)
        view.set(fc.NS_MSP, summary["opener"], {"last_planned_round": p.round})


# ----------------------------------------------------------------- fml_report
@dataclass(frozen=True)
class ReportPayload:
    round: int
    reports: list[dict[str, Any]]  # member, loss_reduction, grad_norm, completion_ms


class ReportHandler:
    """A head reports, for members of its own coalition, what it measured this round."""

    tx_type = "fml_report"

    def check_payload(self, payload: dict[str, Any]) -> ReportPayload:
        exact_fields(payload, ("round", "reports"))
        rid = int_field(payload, "round", 1, MAX_INT)
        items = payload["reports"]
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_REPORTS_PER_TX:
            raise TxRejected("payload.reports", f"must be a list of 1..{MAX_REPORTS_PER_TX} reports")
        out, seen = [], set()
        for i, item in enumerate(items):
            where = f"payload.reports[{i}]"
            if not isinstance(item, dict):
                raise TxRejected(where, "must be an object")
            for name in ("member", "loss_reduction", "grad_norm", "completion_ms"):
                if name not in item:
                    raise TxRejected(f"{where}.{name}", "field is required")
            for name in item:
                if name not in ("member", "loss_reduction", "grad_norm", "completion_ms", "work"):
                    raise TxRejected(f"{where}.{name}", "unknown field")
            member = item["member"]
            if not isinstance(member, str) or len(member) != 64:
                raise TxRejected(f"{where}.member", "must be a 64-hex-character address")
            if member in seen:
                raise TxRejected(f"{where}.member", "reported twice in this transaction")
            seen.add(member)
            rep: dict[str, Any] = {"member": member}
            for name, lo, hi in (("loss_reduction", -MAX_LOSS_ABS, MAX_LOSS_ABS), ("grad_norm", 0, MAX_GRAD_NORM),
                                 ("completion_ms", 1, MAX_COMPLETION_MS), ("work", 0, MAX_GRAD_NORM)):
                if name == "work" and name not in item:  # optional: evidence of work (games.settlement)
                    continue
                v = item[name]
                if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                    raise TxRejected(f"{where}.{name}", f"must be an integer in [{lo}, {hi}]")
                rep[name] = v
            out.append(rep)
        return ReportPayload(rid, out)

    def check_state(self, view: StateView, tx: Tx, p: ReportPayload) -> None:
        summary = _round_of(view, p.round)
        _require_phase(summary, fc.PHASE_TRAINING)
        plan = view.get(fc.NS_PLAN, fc.round_key(p.round))
        members = plan["partition"].get(tx.sender)
        if members is None:
            raise TxRejected("sender", f"not a head of round {p.round}; only heads report", Code.FORBIDDEN)
        ns = fc.report_ns(p.round)
        for i, rep in enumerate(p.reports):
            if rep["member"] not in members:
                raise TxRejected(f"payload.reports[{i}].member", "not a member of the sender's coalition", Code.FORBIDDEN)
            if view.get(ns, rep["member"]) is not None:
                raise TxRejected(f"payload.reports[{i}].member", "already reported in this round", Code.CONFLICT)

    def apply(self, view: StateView, tx: Tx, p: ReportPayload, ctx: BlockContext) -> None:
        ns = fc.report_ns(p.round)
        for rep in p.reports:
            stored = {"head": tx.sender, "loss_reduction": rep["loss_reduction"], "grad_norm": rep["grad_norm"],
                      "completion_ms": rep["completion_ms"], "height": ctx.height}
            if "work" in rep:
                stored["work"] = rep["work"]
            view.set(ns, rep["member"], stored)
        summary = view.get_copy(fc.NS_ROUND, fc.round_key(p.round))
        summary["reported_count"] += len(p.reports)
        view.set(fc.NS_ROUND, fc.round_key(p.round), summary)


# ----------------------------------------------------------------- fml_close_round
def cap_payouts(payouts_micro: dict[str, int], escrow: int) -> dict[str, int]:
    """Payouts as owed, or scaled down pro rata (floored) so they never exceed the escrow."""
    total = sum(payouts_micro.values())
    if total <= escrow:
        return dict(payouts_micro)
    return {a: v * escrow // total for a, v in payouts_micro.items()}


class CloseRoundHandler:
    """The opener closes the round: contributions, flags, reputations, payouts, refund."""

    tx_type = "fml_close_round"
    runs_solver = True  # settle_round: mempool admission checks preconditions only

    def check_payload(self, payload: dict[str, Any]) -> RoundRef:
        return _round_only(payload)

    def check_state(self, view: StateView, tx: Tx, p: RoundRef) -> None:
        summary = _round_of(view, p.round)
        _require_opener(summary, tx)
        _require_phase(summary, fc.PHASE_TRAINING)

    def apply(self, view: StateView, tx: Tx, p: RoundRef, ctx: BlockContext) -> None:
        key = fc.round_key(p.round)
        summary = view.get_copy(fc.NS_ROUND, key)
        params = _game_params(view, summary)
        plan = RoundPlan.from_dict(view.get(fc.NS_PLAN, key))  # the stored (quantised) plan, on every peer
        reports = {
            addr: MemberReport(dequantize(r["loss_reduction"], fc.SCALE), dequantize(r["grad_norm"], fc.SCALE),
                               r["completion_ms"] / 1000,
                               None if r.get("work") is None else dequantize(r["work"], fc.SCALE))
            for addr, r in view.items(fc.report_ns(p.round))
        }
        members = sorted(a for m in plan.partition.values() for a in m)
        stored_rep = {a: view.get(fc.NS_REP, a) for a in members}
        histories = {a: fc.history_from_state(stored_rep[a]) for a in members}
        epoch = view.get(fc.NS, "epoch", 0) + 1
        try:
            st = settle_round(plan, reports, histories, epoch, params,
                              {a: r["work_score"] for a, r in stored_rep.items() if r and "work_score" in r})
        except (ValueError, RuntimeError) as exc:
            raise TxRejected("payload.round", f"round {p.round} cannot be settled: {exc}", Code.UNMET) from None
        owed = {a: quantize(st.payouts[a], fc.TOKEN_SCALE) for a in members}
        paid = cap_payouts(owed, summary["escrow"])
        for a in members:
            if paid[a]:
                acct = get_account(view, a)
                acct["balance"] += paid[a]
                set_account(view, a, acct)
            rec = st.histories[a].records[-1]
            old = stored_rep[a] or {"history": []}
            entry = {"epoch": epoch, "round": p.round, "head": rec.head, "q": quantize(rec.q, fc.SCALE),
                     "flag": st.flags.get(a), "overall": quantize(st.overall_reputation[a], fc.SCALE),
                     "payout": paid[a]}
            view.set(fc.NS_REP, a, {"global": quantize(st.global_reputation[a], fc.SCALE),
                                    "history": (old["history"] + [entry])[-fc.MAX_HISTORY:],
                                    "work_score": st.work_scores[a]})  # ppm, games.settlement
        total_paid = sum(paid.values())
        refund = summary["escrow"] - total_paid
        if refund:
            acct = get_account(view, summary["opener"])
            acct["balance"] += refund
            set_account(view, summary["opener"], acct)
        settle = st.to_dict(quantized=True, scale=fc.SCALE)
        del settle["histories"]  # kept per learner in fml_rep
        settle["owed"] = owed
        settle["paid"] = paid
        view.set(fc.NS_SETTLE, key, settle)
        view.set(fc.NS, "epoch", epoch)
        summary.update(phase=fc.PHASE_CLOSED, closed_height=ctx.height, paid=total_paid, refund=refund,
                       escrow=0, settle_epoch=epoch)
        view.set(fc.NS_ROUND, key, summary)


# ----------------------------------------------------------------- genesis
def _genesis_hook(view: StateView, genesis: Genesis) -> None:
    """Store the chain's game parameters (genesis ``game_params`` over the defaults), float-free."""
    view.set(fc.NS, "params", fc.params_to_state(fc.params_from_config(genesis.game_params)))


register_genesis("fml", _genesis_hook)
for _h in (RegisterHandler(), OpenRoundHandler(), JoinHandler(), CloseRegistrationHandler(), ReportHandler(),
           CloseRoundHandler()):
    register_handler(_h)
