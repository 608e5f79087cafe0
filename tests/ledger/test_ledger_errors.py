"""Refusals carry a Code (what kind), never an HTTP status; the REST edge maps codes."""
import ast
from pathlib import Path

import pytest

from pocnet.ledger.errors import Code, TxRejected
from pocnet.node.api import HTTP_STATUS

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ledger", "node", "p2p", "consensus", "games", "fml", "models")


def _calls(name):
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    f = node.func
                    if (isinstance(f, ast.Name) and f.id == name) or (isinstance(f, ast.Attribute) and f.attr == name):
                        yield path, node


def test_no_http_status_in_refusals():
    bad = [f"{p.relative_to(ROOT)}:{c.lineno}" for p, c in _calls("TxRejected")
           if any(isinstance(a, ast.Constant) and isinstance(a.value, int) for a in list(c.args) + [k.value for k in c.keywords])]
    assert not bad, f"TxRejected(..., <int>) — pass a ledger.errors.Code instead: {bad}"


def test_no_matching_on_reason_text():
    """`"..." in exc.reason` decides nothing anywhere in the code (tests may still read reasons)."""
    bad = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn, ast.Eq)) for op in node.ops)
                        and any(isinstance(x, ast.Attribute) and x.attr == "reason" for x in [node.left, *node.comparators])):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bad, bad


def test_every_code_has_an_http_status():
    assert set(HTTP_STATUS) == set(Code)
    assert all(400 <= s < 600 for s in HTTP_STATUS.values())


def test_int_status_is_refused_at_the_call_site():
    """The deprecated HTTP-status form was removed once no caller used it."""
    with pytest.raises(TypeError, match="ledger.errors.Code"):
        TxRejected("x", "y", 422)  # type: ignore[arg-type]
    e = TxRejected("x", "y", Code.UNMET)
    assert e.code is Code.UNMET and not hasattr(e, "status")
