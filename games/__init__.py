"""pocnet's FML games: reputation, coalition formation, Stackelberg incentives.

Pure, typed functions with no I/O (docs/model.md is the model); the node's state
machine calls ``plan_round`` / ``settle_round`` and stores quantised results.
"""
from pocnet.games.params import DEFAULT_PARAMS, GameParams
from pocnet.games.profile import LearnerProfile
from pocnet.games.quantize import dequantize, quantize
from pocnet.games.reputation import ContributionRecord, ReputationHistory
from pocnet.games.round import MemberReport, RoundPlan, RoundSettlement, plan_round, settle_round

__all__ = [
    "DEFAULT_PARAMS",
    "GameParams",
    "LearnerProfile",
    "ContributionRecord",
    "ReputationHistory",
    "MemberReport",
    "RoundPlan",
    "RoundSettlement",
    "plan_round",
    "settle_round",
    "quantize",
    "dequantize",
]
