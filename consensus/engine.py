"""Tendermint BFT engine (Buchman, Kwon, Milosevic 2018, Algorithm 1) as a pure state machine.

Events in (`start`, `on_proposal`, `on_vote`, `on_timeout`, `on_block_available`,
`set_proposal_value`, `advance_to`), a list of actions out. No clock, randomness,
I/O, signatures or ledger types: the same event sequence always yields the same
actions, which is what lets the simulator explore adversarial schedules by seed.

Paper line numbers are cited next to each rule. Deviations (all documented in
docs/consensus.md):
* quorum = ⌊2n/3⌋+1 (equals 2f+1 when n = 3f+1, and stays safe for other n);
* a decision/lock needs the value to be *known valid* (a valid proposal at this
  height or `on_block_available`), not necessarily the round's proposal message;
* the round-skip rule jumps to the (f+1)-th highest round any validator has been
  seen in (covers line 55 and is still backed by at least one honest validator);
* after Decide the engine waits for `advance_to(h+1)` instead of starting h+1 itself,
  because the node must apply the block before the next proposer is known;
* an equivocator's conflicting vote for a known block also counts for that block (see
  `_Tally`); it never counts twice towards "2f+1 of any kind".
"""

from __future__ import annotations

from typing import Callable, Sequence

from pocnet.consensus.messages import (
    PRECOMMIT,
    PREVOTE,
    PROPOSE,
    Action,
    BroadcastProposal,
    BroadcastVote,
    Decide,
    Equivocation,
    NeedBlock,
    Proposal,
    RequestProposal,
    ScheduleTimeout,
    Timeout,
    TimeoutConfig,
    Vote,
)

_STEP_ORDER = {PROPOSE: 0, PREVOTE: 1, PRECOMMIT: 2}
_MAX_PROPOSALS_PER_ROUND = 2  # the first and one conflicting (equivocation) proposal
_MAX_EVIDENCE = 1024


def fault_tolerance(n: int) -> int:
    """f = ⌊(n-1)/3⌋ Byzantine validators tolerated."""
    return (n - 1) // 3


def quorum_size(n: int) -> int:
    """Smallest count that is > 2n/3: any two quorums share ≥ f+1 validators, so at
    least one honest one. Equals 2f+1 for n = 3f+1 (n = 4 → 3)."""
    return (2 * n) // 3 + 1


def certificate_ok(cert: Decide, validators: Sequence[str]) -> bool:
    """Structure of a commit certificate: ≥ quorum distinct validators precommitting
    cert.block_hash at (cert.height, cert.round). Signatures are the node's job."""
    voters = {v.validator for v in cert.precommits}
    return (
        len(voters) == len(cert.precommits) >= quorum_size(len(validators))
        and voters <= set(validators)
        and all(
            v.kind == PRECOMMIT and v.height == cert.height and v.round == cert.round and v.block_hash == cert.block_hash
            for v in cert.precommits
        )
    )


class _Tally:
    """Votes of one (round, kind).

    `first` holds each validator's first vote: it alone counts for "2f+1 of any kind"
    and the round-skip rule. `by_hash` holds, per block hash (None = nil), the distinct
    validators that voted for it. An equivocator's later conflicting vote is recorded as
    evidence and also enters `by_hash` (for nil or a known block only, so memory stays
    bounded). This is safe — an honest validator is never in two hash sets, so any two
    quorums still share an honest member — and it is needed for liveness: otherwise a
    Byzantine vote that reached different peers in different versions can make a POL or
    commit quorum that gossip proves to some peers unprovable to others forever
    (Tendermint's VoteSet does the same via peer-claimed majorities).
    """

    __slots__ = ("first", "by_hash")

    def __init__(self) -> None:
        self.first: dict[str, Vote] = {}
        self.by_hash: dict[str | None, dict[str, Vote]] = {}

    def total(self) -> int:
        return len(self.first)

    def count(self, block_hash: str | None) -> int:
        voters = self.by_hash.get(block_hash)
        return 0 if voters is None else len(voters)


class Engine:
    """One validator's (or observer's, `my_id=None`) view of consensus at one height at a time."""

    # per-height state, (re)set by _reset_height
    step: str
    _awaiting_value: tuple[int, int] | None
    _commit_cert: Decide | None

    def __init__(
        self,
        my_id: str | None,
        validators: Sequence[str],
        proposer_fn: Callable[[int, int], str],
        timeouts: TimeoutConfig,
        height: int,
        round_window: int = 64,
    ) -> None:
        vals = tuple(validators)
        if not vals:
            raise ValueError("empty validator set")
        if len(set(vals)) != len(vals):
            raise ValueError("duplicate validator ids")
        if my_id is not None and my_id not in vals:
            raise ValueError(f"{my_id!r} is not a validator (use my_id=None for an observer)")
        if height < 0 or round_window < 1:
            raise ValueError("height must be ≥ 0 and round_window ≥ 1")
        self.my_id = my_id
        self.validators: tuple[str, ...] = vals
        self._validator_set = frozenset(vals)
        self.n = len(vals)
        self.f = fault_tolerance(self.n)
        self.quorum = quorum_size(self.n)
        self.proposer_fn = proposer_fn
        self.timeouts = timeouts
        self.round_window = round_window
        self.evidence: list[Equivocation] = []
        self._evidence_keys: set[tuple] = set()
        self._started = False
        self._reset_height(height)

    # ------------------------------------------------------------------ public state

    @property
    def decided(self) -> Decide | None:
        """The Decide of the current height, if reached (engine then awaits advance_to)."""
        return self._decision

    def status(self) -> dict[str, object]:
        """Snapshot for status endpoints and tests."""
        return {
            "height": self.height,
            "round": self.round,
            "step": self.step,
            "locked_value": self.locked_value,
            "locked_round": self.locked_round,
            "valid_value": self.valid_value,
            "valid_round": self.valid_round,
            "decided": self._decision.block_hash if self._decision else None,
        }

    def drain_evidence(self) -> list[Equivocation]:
        """Hand recorded equivocations to the node (e.g. to gossip or slash) and forget them."""
        out, self.evidence = self.evidence, []
        self._evidence_keys = {k for k in self._evidence_keys if k[1] >= self.height}
        return out

    # ------------------------------------------------------------------ events

    def start(self) -> list[Action]:
        """upon start do StartRound(0) (line 10). Idempotent."""
        if self._started:
            return []
        self._started = True
        out: list[Action] = []
        self._start_round(0, out)
        self._progress(out)
        return out

    def on_proposal(self, p: Proposal, valid: bool) -> list[Action]:
        """A signature-checked proposal; `valid` is the node's verdict on the block it names.
        Messages carrying our own id are ignored: we already counted what we sent, and
        anything else would come from a previous incarnation (see docs: sign-state WAL)."""
        if self.my_id is not None and p.proposer == self.my_id:
            return []
        if p.height == self.height + 1:
            self._buffer_proposal(p, valid)
            return []
        if p.height != self.height or self._decision is not None:
            return []
        out: list[Action] = []
        if self._add_proposal(p, valid):
            self._progress(out)
        return out

    def on_vote(self, v: Vote) -> list[Action]:
        """A signature-checked vote (ours echoed back is ignored, as in on_proposal)."""
        if self.my_id is not None and v.validator == self.my_id:
            return []
        if v.height == self.height + 1:
            self._buffer_vote(v)
            return []
        if v.height != self.height or self._decision is not None:
            return []
        out: list[Action] = []
        if self._add_vote(v):
            self._progress(out)
        return out

    def on_timeout(self, t: Timeout) -> list[Action]:
        """OnTimeoutPropose/Prevote/Precommit (lines 57-67); stale timers are no-ops."""
        if (
            not self._started
            or self._decision is not None
            or t.height != self.height
            or t.round != self.round
        ):
            return []
        out: list[Action] = []
        if t.kind == PROPOSE and self.step == PROPOSE:
            self._cast(PREVOTE, None, out)
            self.step = PREVOTE
        elif t.kind == PREVOTE and self.step == PREVOTE:
            self._cast(PRECOMMIT, None, out)
            self.step = PRECOMMIT
        elif t.kind == PRECOMMIT:
            self._start_round(self.round + 1, out)
        else:
            return []
        self._progress(out)
        return out

    def on_block_available(self, block_hash: str) -> list[Action]:
        """The node holds and has validated this block for the current height (e.g. fetched
        after seeing a precommit quorum for it, or its proposal arrived after the votes)."""
        if self._decision is not None or block_hash in self._valid_hashes:
            return []
        self._valid_hashes.add(block_hash)
        self._invalid_hashes.discard(block_hash)
        out: list[Action] = []
        self._progress(out)
        return out

    def set_proposal_value(self, height: int, round: int, block_hash: str) -> list[Action]:
        """Answer to RequestProposal(height, round): the block the node built. Ignored if the
        engine has moved on. If a validValue appeared meanwhile, that is proposed instead."""
        if (
            self._awaiting_value != (height, round)
            or height != self.height
            or round != self.round
            or self._decision is not None
            or self.step != PROPOSE
        ):
            return []
        self._awaiting_value = None
        out: list[Action] = []
        if self.valid_value is not None:
            self._propose(self.valid_value, self.valid_round, out)
        else:
            self._valid_hashes.add(block_hash)
            self._propose(block_hash, -1, out)
        self._progress(out)
        return out

    def set_validators(self, validators: Sequence[str], my_id: str | None) -> None:
        """Change the validator set (and whether we are one of them) for the next height.

        Called by the node between heights, before :meth:`advance_to`, when the set
        changes (a validator jailed, released, joined or left); quorum follows the set."""
        vals = tuple(validators)
        if not vals or len(set(vals)) != len(vals):
            raise ValueError("empty validator set or duplicate validator ids")
        if my_id is not None and my_id not in vals:
            raise ValueError(f"{my_id!r} is not a validator (use my_id=None for an observer)")
        self.my_id = my_id
        self.validators = vals
        self._validator_set = frozenset(vals)
        self.n = len(vals)
        self.f = fault_tolerance(self.n)
        self.quorum = quorum_size(self.n)

    def advance_to(self, height: int) -> list[Action]:
        """Move to `height` (after the node applied the decided block or block-synced) and
        start its round 0. Buffered messages for exactly that height are replayed."""
        if height <= self.height:
            return []
        buffered_props = self._next_proposals if height == self.height + 1 else []
        buffered_votes = self._next_votes if height == self.height + 1 else {}
        self._reset_height(height)
        self._started = True
        for prop, valid in buffered_props:
            self._add_proposal(prop, valid)
        for vote in buffered_votes.values():
            self._add_vote(vote)
        out: list[Action] = []
        self._start_round(0, out)
        self._progress(out)
        return out

    def on_commit(self, cert: Decide) -> list[Action]:
        """Block sync: a commit certificate for the current height, already signature-checked
        by the node. Decides once the block is known valid (NeedBlock otherwise). Needed
        because a height's votes may no longer be gossiped once the other validators moved on."""
        if cert.height != self.height or self._decision is not None or not self._started:
            return []
        if not certificate_ok(cert, self.validators):
            return []
        if self._commit_cert is None:
            self._commit_cert = Decide(
                cert.height, cert.round, cert.block_hash, tuple(sorted(cert.precommits, key=lambda v: v.validator))
            )
        for v in cert.precommits:
            self._add_vote(v)
        out: list[Action] = []
        self._progress(out)
        return out

    def rebroadcast(self, last_rounds: int | None = None) -> list[Proposal | Vote]:
        """Messages to re-gossip periodically: our own and every proposal/vote we counted at the
        current height (optionally only rounds > round - last_rounds). Algorithm 1's liveness
        assumes gossip: a message one correct process received reaches all of them. Over a
        lossy transport that holds only if received (signed) messages are relayed, otherwise a
        lost prevote of a since-departed validator can leave a lock unresolvable forever.
        The node re-sends each with its original signature (sign only those with our id)."""
        lo = -1 if last_rounds is None else self.round - last_rounds
        out: list[Proposal | Vote] = []
        for r in sorted(self._proposals):
            if r > lo:
                out.extend(self._proposals[r].values())
        for (r, _kind), tally in sorted(self._tallies.items()):
            if r > lo:
                for voters in tally.by_hash.values():
                    out.extend(voters.values())
        return out

    # ------------------------------------------------------------------ height state

    def _reset_height(self, height: int) -> None:
        self.height = height
        self.round = 0
        self.step = PROPOSE
        self.locked_value: str | None = None
        self.locked_round = -1
        self.valid_value: str | None = None
        self.valid_round = -1
        self._decision: Decide | None = None
        self._proposals: dict[int, dict[str, Proposal]] = {}
        self._tallies: dict[tuple[int, str], _Tally] = {}
        self._valid_hashes: set[str] = set()
        self._invalid_hashes: set[str] = set()
        self._max_round: dict[str, int] = {}
        self._precommit_quorums: dict[int, str] = {}  # round -> hash with ≥ quorum precommits
        self._lock_rule_rounds: set[int] = set()  # line 36 "for the first time"
        self._prevote_timer_rounds: set[int] = set()  # line 34
        self._precommit_timer_rounds: set[int] = set()  # line 47
        self._needed_blocks: set[str] = set()
        self._awaiting_value = None
        self._commit_cert = None
        self._next_proposals: list[tuple[Proposal, bool]] = []
        self._next_proposal_keys: dict[tuple[int, str], int] = {}
        self._next_votes: dict[tuple[int, str, str], Vote] = {}

    def _record_evidence(self, validator: str, first: Vote | Proposal, second: Vote | Proposal) -> None:
        key = (validator, first.height, first.round, getattr(first, "kind", "proposal"))
        if key in self._evidence_keys or len(self.evidence) >= _MAX_EVIDENCE:
            return
        self._evidence_keys.add(key)
        self.evidence.append(Equivocation(validator, first, second))

    def _note_round(self, validator: str, round: int) -> None:
        if round > self._max_round.get(validator, -1):
            self._max_round[validator] = round

    def _well_formed_proposal(self, p: Proposal) -> bool:
        return (
            p.round >= 0
            and -1 <= p.pol_round < p.round
            and p.proposer in self._validator_set
            and isinstance(p.block_hash, str)
        )

    def _add_proposal(self, p: Proposal, valid: bool) -> bool:
        """Store a proposal for the current height; True if state changed."""
        if not self._well_formed_proposal(p) or p.proposer != self.proposer_fn(self.height, p.round):
            return False
        if p.round > self.round + self.round_window:
            before = self._max_round.get(p.proposer, -1)
            self._note_round(p.proposer, p.round)
            return self._max_round[p.proposer] != before
        per_round = self._proposals.setdefault(p.round, {})
        if p.block_hash in per_round:
            return False
        if per_round:
            self._record_evidence(p.proposer, next(iter(per_round.values())), p)
            if len(per_round) >= _MAX_PROPOSALS_PER_ROUND:
                return False
        per_round[p.block_hash] = p
        if valid:
            if p.block_hash not in self._invalid_hashes:
                self._valid_hashes.add(p.block_hash)
        elif p.block_hash not in self._valid_hashes:
            self._invalid_hashes.add(p.block_hash)
        self._note_round(p.proposer, p.round)
        return True

    def _add_vote(self, v: Vote) -> bool:
        """Count a vote for the current height; True if state changed."""
        if v.kind not in (PREVOTE, PRECOMMIT) or v.validator not in self._validator_set or v.round < 0:
            return False
        if v.round > self.round + self.round_window:
            before = self._max_round.get(v.validator, -1)
            self._note_round(v.validator, v.round)
            return self._max_round[v.validator] != before
        tally = self._tallies.get((v.round, v.kind))
        if tally is None:
            tally = self._tallies[(v.round, v.kind)] = _Tally()
        prev = tally.first.get(v.validator)
        if prev is None:
            tally.first[v.validator] = v
        elif prev.block_hash == v.block_hash:
            return False
        else:
            self._record_evidence(v.validator, prev, v)
            if v.block_hash is not None and v.block_hash not in self._valid_hashes and v.block_hash not in self._invalid_hashes:
                return False  # conflicting vote for an unknown block: evidence only
            if v.validator in tally.by_hash.get(v.block_hash, ()):
                return False
        voters = tally.by_hash.setdefault(v.block_hash, {})
        voters[v.validator] = v
        if v.kind == PRECOMMIT and v.block_hash is not None and len(voters) >= self.quorum:
            self._precommit_quorums.setdefault(v.round, v.block_hash)
        self._note_round(v.validator, v.round)
        return True

    def _buffer_proposal(self, p: Proposal, valid: bool) -> None:
        """Keep (bounded) proposals for height+1; the proposer is checked on replay because
        the next height's ranking is only known once this height is applied."""
        if not self._well_formed_proposal(p) or p.round > self.round_window:
            return
        key = (p.round, p.proposer)
        count = self._next_proposal_keys.get(key, 0)
        if count >= _MAX_PROPOSALS_PER_ROUND or (p, valid) in self._next_proposals:
            return
        self._next_proposal_keys[key] = count + 1
        self._next_proposals.append((p, valid))

    def _buffer_vote(self, v: Vote) -> None:
        """Keep at most one vote per (round, kind, validator) for height+1."""
        if v.kind not in (PREVOTE, PRECOMMIT) or v.validator not in self._validator_set:
            return
        if not 0 <= v.round <= self.round_window:
            return
        key = (v.round, v.kind, v.validator)
        prev = self._next_votes.get(key)
        if prev is None:
            self._next_votes[key] = v
        elif prev.block_hash != v.block_hash:
            self._record_evidence(v.validator, prev, v)

    # ------------------------------------------------------------------ own messages

    def _start_round(self, round: int, out: list[Action]) -> None:
        """StartRound (lines 11-21). The propose timer is always scheduled (also for the
        proposer) so that a host that never answers RequestProposal cannot stall us."""
        self.round = round
        self.step = PROPOSE
        self._awaiting_value = None
        out.append(ScheduleTimeout(Timeout(PROPOSE, self.height, round, self.timeouts.duration(PROPOSE, round))))
        if self.my_id is not None and self.proposer_fn(self.height, round) == self.my_id:
            if self.valid_value is not None:
                self._propose(self.valid_value, self.valid_round, out)
            else:
                self._awaiting_value = (self.height, round)
                out.append(RequestProposal(self.height, round))

    def _propose(self, block_hash: str, pol_round: int, out: list[Action]) -> None:
        assert self.my_id is not None
        p = Proposal(self.height, self.round, block_hash, pol_round, self.my_id)
        self._add_proposal(p, True)
        out.append(BroadcastProposal(p))

    def _cast(self, kind: str, block_hash: str | None, out: list[Action]) -> None:
        """Broadcast our vote for the current round (and count it ourselves)."""
        if self.my_id is None:
            return
        v = Vote(kind, self.height, self.round, block_hash, self.my_id)  # type: ignore[arg-type]
        self._add_vote(v)
        out.append(BroadcastVote(v))

    # ------------------------------------------------------------------ upon rules

    def _progress(self, out: list[Action]) -> None:
        """Fire enabled upon-rules until none is (their guards are monotone in the stored
        messages, so this fixpoint is the same whatever order messages arrived in)."""
        while self._started and self._decision is None:
            if self._rule_decide(out):
                return
            if self._rule_round_skip(out):
                continue
            if self.step == PROPOSE and self._rule_prevote_on_proposal(out):
                continue
            if self._rule_lock(out):
                continue
            if self.step == PREVOTE and self._rule_precommit_nil(out):
                continue
            self._rule_timers(out)
            return

    def _tally(self, round: int, kind: str) -> _Tally | None:
        return self._tallies.get((round, kind))

    def _count(self, round: int, kind: str, block_hash: str | None) -> int:
        t = self._tallies.get((round, kind))
        return 0 if t is None else t.count(block_hash)

    def _rule_decide(self, out: list[Action]) -> bool:
        """Line 49: 2f+1 precommits for id(v) in any round r of this height and v valid
        (or a synced commit certificate for a valid v)."""
        c = self._commit_cert
        if c is not None:
            if c.block_hash in self._valid_hashes:
                self._decision = c
                out.append(c)
                return True
            if c.block_hash not in self._needed_blocks:
                self._needed_blocks.add(c.block_hash)
                out.append(NeedBlock(self.height, c.block_hash))
        for r in sorted(self._precommit_quorums):
            h = self._precommit_quorums[r]
            if h in self._valid_hashes:
                tally = self._tallies[(r, PRECOMMIT)]
                cert = tuple(sorted(tally.by_hash[h].values(), key=lambda v: v.validator))
                self._decision = Decide(self.height, r, h, cert)
                out.append(self._decision)
                return True
            if h not in self._needed_blocks and h not in self._invalid_hashes:
                self._needed_blocks.add(h)
                out.append(NeedBlock(self.height, h))
        return False

    def _rule_round_skip(self, out: list[Action]) -> bool:
        """Line 55: f+1 validators seen in rounds > round_p → StartRound. We jump to the
        (f+1)-th highest round seen, which at least one honest validator has reached."""
        if len(self._max_round) <= self.f:
            return False
        target = sorted(self._max_round.values(), reverse=True)[self.f]
        if target > self.round:
            self._start_round(target, out)
            return True
        return False

    def _rule_prevote_on_proposal(self, out: list[Action]) -> bool:
        """Lines 22-27 (vr = -1) and 28-33 (vr ≥ 0 with a POLC in vr), while step = propose."""
        for p in self._proposals.get(self.round, {}).values():
            valid = p.block_hash in self._valid_hashes
            if p.pol_round == -1:
                ok = valid and (self.locked_round == -1 or self.locked_value == p.block_hash)
            elif 0 <= p.pol_round < self.round and self._count(p.pol_round, PREVOTE, p.block_hash) >= self.quorum:
                ok = valid and (self.locked_round <= p.pol_round or self.locked_value == p.block_hash)
            else:
                continue  # POL not (yet) seen: wait for it or for timeoutPropose
            self._cast(PREVOTE, p.block_hash if ok else None, out)
            self.step = PREVOTE
            return True
        return False

    def _rule_lock(self, out: list[Action]) -> bool:
        """Lines 36-43: valid v with 2f+1 prevotes in round_p while step ≥ prevote, first time."""
        if _STEP_ORDER[self.step] < _STEP_ORDER[PREVOTE] or self.round in self._lock_rule_rounds:
            return False
        tally = self._tally(self.round, PREVOTE)
        if tally is None:
            return False
        for h, voters in tally.by_hash.items():
            if h is not None and len(voters) >= self.quorum and h in self._valid_hashes:
                self._lock_rule_rounds.add(self.round)
                if self.step == PREVOTE:
                    self.locked_value, self.locked_round = h, self.round
                    self._cast(PRECOMMIT, h, out)
                    self.step = PRECOMMIT
                self.valid_value, self.valid_round = h, self.round
                return True
        return False

    def _rule_precommit_nil(self, out: list[Action]) -> bool:
        """Lines 44-46: 2f+1 nil prevotes in round_p while step = prevote."""
        if self._count(self.round, PREVOTE, None) >= self.quorum:
            self._cast(PRECOMMIT, None, out)
            self.step = PRECOMMIT
            return True
        return False

    def _rule_timers(self, out: list[Action]) -> None:
        """Lines 34-35 and 47-48: schedule prevote/precommit timers on any 2f+1, once per round."""
        r = self.round
        prevotes = self._tally(r, PREVOTE)
        if (
            self.step == PREVOTE
            and r not in self._prevote_timer_rounds
            and prevotes is not None
            and prevotes.total() >= self.quorum
        ):
            self._prevote_timer_rounds.add(r)
            out.append(ScheduleTimeout(Timeout(PREVOTE, self.height, r, self.timeouts.duration(PREVOTE, r))))
        precommits = self._tally(r, PRECOMMIT)
        if r not in self._precommit_timer_rounds and precommits is not None and precommits.total() >= self.quorum:
            self._precommit_timer_rounds.add(r)
            out.append(ScheduleTimeout(Timeout(PRECOMMIT, self.height, r, self.timeouts.duration(PRECOMMIT, r))))
