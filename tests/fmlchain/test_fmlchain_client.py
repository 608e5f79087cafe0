"""Payload builders of fml.chain_client: units, rounding, chunking, float-free genesis params."""
from pocnet.fml.chain_client import (genesis_game_params, join_payload, open_round_payload, register_payload,
                              report_payloads, tokens)
from pocnet.games.params import GameParams
from pocnet.games.profile import LearnerProfile
from pocnet.games.round import MemberReport
from pocnet.ledger.encoding import canonical_json
from pocnet.ledger.txtypes import fml_codec as fc
from tests.fmlchain.fmlchain_support import LocalChain


def test_register_payload_units_round_trip():
    p = LearnerProfile("a" * 64, 612.0, 1.3e-26, 0.25e9, 1.7504e9, 4.2e6, 7.25, (0.5, -0.25))
    pay = register_payload(p)
    assert pay == {"data_size": 612, "kappa_e36": 13_000_000_000, "f_min_mhz": 250, "f_max_mhz": 1750,
                   "rate_kbps": 4200, "tolerated_ms": 7250, "active": True}
    back = fc.profile_from_state(p.address, pay, join_payload(1, p.embedding)["embedding"])
    assert back.kappa == 1.3e-26 and back.f_max == 1.75e9 and back.rate == 4.2e6 and back.tolerated_time == 7.25
    assert back.embedding == (0.5, -0.25)


def test_open_and_report_payloads():
    assert open_round_payload(2.5, 8, C_max=12.0, tau=5) == {"budget": 2_500_000, "embedding_dim": 8, "tau": 5,
                                                              "incentive_max": 12_000_000}
    assert tokens(7.25) == 7_250_000 and tokens(4e-7) == 0  # micro-tokens, rounded to the nearest
    reps = {f"{i:064x}": MemberReport(-0.5, 2.0, 3.0004) for i in range(300)}
    pays = report_payloads(4, reps)
    assert [len(p["reports"]) for p in pays] == [256, 44] and all(p["round"] == 4 for p in pays)
    assert pays[0]["reports"][0] == {"member": f"{0:064x}", "loss_reduction": -500_000, "grad_norm": 2_000_000,
                                     "completion_ms": 3000}


def test_genesis_game_params_are_float_free_and_exact():
    g = genesis_game_params(GameParams(C_max=12.5, kappa=3e-27))
    canonical_json(g)
    assert fc.params_from_config(g) == GameParams(C_max=12.5, kappa=3e-27)
    assert LocalChain(game_params=g).state.get(fc.NS, "params") == g
