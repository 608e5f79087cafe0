"""Golden chain vectors (tests/golden/chain_v1.json): the scripted history must give the checked-in roots.

scripts/test.sh replays it again in fresh processes under other CPUs' arithmetic
(glibc without FMA/AVX2, numpy without AVX-512); ``test_old_float_path_forks_under_a_mask``
shows that this replay would catch the old libm float path.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

from tests.golden import golden_chain as gc


def test_replay_gives_the_checked_in_roots():
    want = gc.load()
    got = gc.replay(want["inputs"]["sensitive_offset"])
    problems = gc.compare(want, got)
    assert not problems, ("golden chain replay differs:\n  " + "\n  ".join(problems)
                          + f"\nIf the change is intended (new rules or header format), regenerate with: {gc.REGENERATE}")


def test_history_covers_what_it_claims():
    want = gc.load()
    assert len(want["blocks"]) >= 20 and want["final_state_root"] == want["blocks"][-1]["state_root"]
    assert sum(b["txs"] for b in want["blocks"]) > 150  # 40 registrations + 3 x 40 joins + tasks, results, ...


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="pocnet-numba-") as cache:  # no code compiled under another mask
        return subprocess.run([sys.executable, "-m", "tests.golden.golden_chain", *args], capture_output=True,
                              text=True, timeout=600, cwd=gc.GOLDEN.parents[2],
                              env={**os.environ, **env, "NUMBA_CACHE_DIR": cache})


@pytest.mark.slow
def test_old_float_path_forks_under_a_mask():
    """Not vacuous: with libm's exp (the old path), glibc without FMA computes other roots; the portable path does not."""
    info = gc.load()["inputs"]["sensitivity_search"]
    if "argument" not in info:
        if " fma " not in open("/proc/cpuinfo").read().replace("\n", " "):
            pytest.skip("no FMA on this CPU: glibc has only one exp here (nothing to demonstrate)")
        pytest.fail("the sensitivity search of the last --write found no exp argument that glibc's FMA and SSE2 "
                    "variants disagree on: raise find_sensitive_offset's limit and regenerate")
    mask = {"GLIBC_TUNABLES": gc.GLIBC_MASK}
    plain = json.loads(_run("--print", "--platform-math", env={}).stdout)["blocks"]
    masked = json.loads(_run("--print", "--platform-math", env=mask).stdout)["blocks"]
    forks = [a["height"] for a, b in zip(plain, masked) if a["state_root"] != b["state_root"]]
    assert forks, "the old float path gave the same roots under the mask: the golden replay would be vacuous"
    portable = _run("--check", env=mask)
    assert portable.returncode == 0 and "SSE2 exp" in portable.stdout, portable.stdout + portable.stderr
