"""No platform-dependent arithmetic on the consensus path (docs/games.md § Determinism).

Walks, by AST and without importing anything, every pocnet module the state
machine can run: transitively from ``ledger/state_machine.py``, the registered
tx types (``ledger/txtypes``), proposer selection (``consensus/poc_selector.py``)
and the block builder/verifier (``node/chain.py``), following every
``pocnet.*`` import, including the lazy ones inside functions, and every
parent package's ``__init__``. It fails on:

* libm / numpy transcendentals (``math.exp``, ``np.log1p``, ``np.power``, ``np.tanh``, ...):
  their last bits depend on the CPU (glibc picks an FMA or SSE2 version, numpy
  an AVX-512/AVX2/baseline loop) -- use ``games.pmath``;
* BLAS-backed products (``@``, ``np.dot``, ``np.matmul``, ``np.einsum``, ``np.linalg``);
* ``**`` / ``pow`` unless the base is an int literal (``10**6``: exact integer
  arithmetic); ``float ** n`` calls libm ``pow`` -- use ``pmath.powi``;
* numba ``fastmath`` anything but ``False`` (it allows FMA contraction and reassociation);
* torch / scipy / dgl / sklearn / statistics imports, ``numpy.random`` and the
  module-level (unseeded) ``random`` functions.

``ALLOWED`` lists the exceptions, each with its reason; an entry that no longer
matches anything fails too, so the list cannot silently go stale.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {"pocnet": "pocnet", "pocnet.node": "node", "pocnet.consensus": "consensus", "pocnet.ledger": "ledger",
                "pocnet.models": "models", "pocnet.p2p": "p2p", "pocnet.games": "games", "pocnet.fml": "fml"}
ROOTS = ("pocnet.ledger.state_machine", "pocnet.ledger.txtypes", "pocnet.consensus.poc_selector", "pocnet.node.chain")

_TRANSCENDENTAL = {
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "pow", "power", "float_power", "sin", "cos", "tan",
    "asin", "acos", "atan", "atan2", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh", "asinh",
    "acosh", "atanh", "arcsinh", "arccosh", "arctanh", "erf", "erfc", "gamma", "lgamma", "hypot", "dist", "cbrt",
    "logaddexp", "logaddexp2", "sinc", "i0", "deg2rad", "rad2deg", "degrees", "radians", "sigmoid", "softmax",
}
_PRODUCTS = {"dot", "vdot", "matmul", "inner", "tensordot", "einsum", "einsum_path", "kron", "linalg", "matrix_power"}
BANNED_ATTRS = {f"math.{n}" for n in _TRANSCENDENTAL} | {f"numpy.{n}" for n in _TRANSCENDENTAL | _PRODUCTS} | {
    "numpy.random", "numpy.emath", "numpy.lib.scimath",
    # module-level functions of `random` draw from the process's unseeded generator (random.Random(seed) is fine)
    "random.random", "random.uniform", "random.randint", "random.randrange", "random.choice", "random.choices",
    "random.shuffle", "random.sample", "random.gauss", "random.normalvariate", "random.expovariate",
}
BANNED_MODULES = ("torch", "scipy", "dgl", "sklearn", "statistics", "cmath")

# (module, rule, detail) -> reason. Every entry must match at least one finding.
ALLOWED: dict[tuple[str, str, str], str] = {}


@dataclass(frozen=True)
class Finding:
    module: str
    line: int
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.rule}: {self.detail}"


def module_path(name: str) -> Path | None:
    """File of a pocnet module under the package-dir mapping (None: not a pocnet module / not a module)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        pkg = ".".join(parts[:i])
        if pkg in PACKAGE_DIRS:
            base = ROOT / PACKAGE_DIRS[pkg] / Path(*parts[i:]) if parts[i:] else ROOT / PACKAGE_DIRS[pkg]
            if base.with_suffix(".py").is_file():
                return base.with_suffix(".py")
            if (base / "__init__.py").is_file():
                return base / "__init__.py"
            return None
    return None


def _imports(tree: ast.AST, name: str, is_pkg: bool) -> set[str]:
    """Every pocnet module this module imports (anywhere in it, lazy imports included)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)  # `from pkg import submodule`
    found = set()
    for m in out:
        if m.startswith("pocnet") and module_path(m) is not None:
            parts = m.split(".")
            found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))  # parents' __init__ run too
    return {m for m in found if module_path(m) is not None}


def consensus_modules(roots: tuple[str, ...] = ROOTS) -> dict[str, ast.Module]:
    """Module name -> parsed AST, for the transitive pocnet imports of ``roots``."""
    seen: dict[str, ast.Module] = {}
    todo = []
    for r in roots:
        parts = r.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_path(name)
        if path is None:
            raise AssertionError(f"consensus module {name} not found")
        tree = ast.parse(path.read_text(), filename=str(path))
        seen[name] = tree
        todo.extend(_imports(tree, name, path.name == "__init__.py") - set(seen))
    return seen


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def check_source(tree: ast.Module, module: str) -> list[Finding]:
    """The banned constructs in one module's AST."""
    aliases: dict[str, str] = {}
    out: list[Finding] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
                if a.name.split(".")[0] in BANNED_MODULES:
                    out.append(Finding(module, node.lineno, "import", a.name))
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            if node.module.split(".")[0] in BANNED_MODULES:
                out.append(Finding(module, node.lineno, "import", node.module))
            for a in node.names:
                full = f"{node.module}.{a.name}"
                aliases[a.asname or a.name] = full
                if _banned_name(full):
                    out.append(Finding(module, node.lineno, "call", full))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if dotted:
                head, _, rest = dotted.partition(".")
                full = aliases.get(head, head) + ("." + rest if rest else "")
                if _banned_name(full):
                    out.append(Finding(module, node.lineno, "call", full))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            out.append(Finding(module, node.lineno, "matmul", "@"))
        elif isinstance(node, ast.AugAssign) and isinstance(node.op, ast.MatMult):
            out.append(Finding(module, node.lineno, "matmul", "@="))
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, ast.Pow):
            base = node.left if isinstance(node, ast.BinOp) else node.target
            if not (isinstance(base, ast.Constant) and type(base.value) is int):
                out.append(Finding(module, node.lineno, "pow", ast.unparse(node)))
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "pow" and len(node.args) == 2:
                if not (isinstance(node.args[0], ast.Constant) and type(node.args[0].value) is int):
                    out.append(Finding(module, node.lineno, "pow", ast.unparse(node)))
            for kw in node.keywords:
                if kw.arg == "fastmath" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    out.append(Finding(module, node.lineno, "fastmath", ast.unparse(kw.value)))
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and k.value == "fastmath" and not (
                        isinstance(v, ast.Constant) and v.value is False):
                    out.append(Finding(module, node.lineno, "fastmath", ast.unparse(v)))
    return out


def _banned_name(full: str) -> bool:
    parts = full.split(".")
    if parts[0] == "np":
        parts[0] = "numpy"
    for i in range(1, len(parts) + 1):
        if ".".join(parts[:i]) in BANNED_ATTRS:
            return True
    return False


def findings() -> list[Finding]:
    out = []
    for name, tree in sorted(consensus_modules().items()):
        out.extend(check_source(tree, name))
    return out


def test_no_platform_dependent_math_on_the_consensus_path():
    found = findings()
    bad = [f for f in found if (f.module, f.rule, f.detail) not in ALLOWED]
    assert not bad, "platform-dependent arithmetic on the consensus path (use games.pmath):\n" + "\n".join(
        map(str, bad))
    used = {(f.module, f.rule, f.detail) for f in found}
    stale = [k for k in ALLOWED if k not in used]
    assert not stale, f"allowlist entries that match nothing any more: {stale}"


def test_the_walk_reaches_the_game_and_poc_kernels():
    """Not vacuous: the walk gets through the lazy imports to the modules that do the math."""
    mods = set(consensus_modules())
    for m in ("pocnet.ledger.txtypes.fml", "pocnet.ledger.txtypes.providers", "pocnet.games.round",
              "pocnet.games.coalition", "pocnet.games.switch_kernel", "pocnet.games.stackelberg",
              "pocnet.games.reputation", "pocnet.games.pmath", "pocnet.games.quantize", "pocnet.models.poc",
              "pocnet.models.quant", "pocnet.models.quant_kernel", "pocnet.models.scenario", "pocnet.ledger.block"):
        assert m in mods, m
    assert "pocnet.fml.driver" not in mods and "pocnet.models.train" not in mods  # offline code stays off


@pytest.mark.parametrize("src,rule", [
    ("import math\nmath.exp(1.0)", "call"),
    ("import math as m\nm.log1p(1.0)", "call"),
    ("from math import exp\nexp(1.0)", "call"),
    ("import numpy as np\nnp.exp(x)", "call"),
    ("import numpy\nnumpy.tanh(x)", "call"),
    ("import numpy as np\nnp.power(x, 2)", "call"),
    ("import numpy as np\nnp.linalg.norm(x)", "call"),
    ("from numpy import dot\ndot(a, b)", "call"),
    ("import numpy as np\nnp.random.default_rng(1)", "call"),
    ("import random\nrandom.shuffle(xs)", "call"),
    ("c = a @ b", "matmul"),
    ("a @= b", "matmul"),
    ("y = x ** 2", "pow"),
    ("y = 0.7 ** n", "pow"),
    ("y = pow(x, 3)", "pow"),
    ("import numba\n@numba.njit(fastmath=True)\ndef f(x):\n    return x", "fastmath"),
    ("_JIT = dict(cache=True, fastmath={'contract'})", "fastmath"),
    ("_JIT = {'fastmath': True}", "fastmath"),
    ("import torch", "import"),
    ("from scipy.special import expit", "import"),
])
def test_checker_flags(src, rule):
    assert rule in {f.rule for f in check_source(ast.parse(src), "m")}


@pytest.mark.parametrize("src", [
    "import math\nmath.sqrt(x); math.fsum(xs); math.isfinite(x); math.frexp(x); math.ldexp(m, e); math.floor(x)",
    "import numpy as np\nnp.sqrt(x); np.sum(x); np.maximum(a, b); np.where(c, a, b); np.argmax(a)",
    "y = 10**6 + 2**63",
    "import numba\n@numba.njit(cache=True, fastmath=False)\ndef f(x):\n    return x",
    "import random\nrandom.Random(seed).shuffle(xs)",
    "from pocnet.games import pmath\npmath.exp(x); pmath.powi(0.7, n)",
])
def test_checker_accepts(src):
    assert check_source(ast.parse(src), "m") == []
