"""``pocnet market ...``: [VTM]'s bandwidth market off chain (solve; learn with MALPPO).

Bad input exits with code 2 and one line on stderr naming the field (no traceback).
Formats: docs/market.md; example: games/examples/market_fig3.json.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

app = typer.Typer(help="Bandwidth market (Kang et al. 2023, docs/market.md): Stackelberg equilibrium, MALPPO.", no_args_is_help=True)


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _load(path: str) -> Any:
    try:
        text = typer.get_text_stream("stdin").read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"--input: cannot read {path}: {exc.strerror or exc}")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        _fail(f"input: not valid JSON: {exc}")


def _parse_start(start: Optional[str], m: int) -> Optional[list[float]]:
    if start is None:
        return None
    try:
        vals = [float(x) for x in start.split(",")]
    except ValueError:
        _fail("--start: must be comma-separated numbers, one price per MRP")
    if len(vals) != m:
        _fail(f"--start: expected {m} prices (one per MRP), got {len(vals)}")
    return vals


@app.command()
def solve(input: str = typer.Option(..., "--input", "-i", help="JSON market instance ('-' for stdin)"),
          start: Optional[str] = typer.Option(None, help="starting prices P1,P2,... (default: mid-points)"),
          no_check: bool = typer.Option(False, "--no-check", help="skip the equilibrium check")) -> None:
    """Stackelberg equilibrium (Gauss-Seidel backward induction) and its check, as JSON."""
    from pocnet.games import market as mk
    doc = _load(input)
    try:
        inst = mk.instance_from_json(doc)
    except ValueError as exc:
        _fail(str(exc))
    p0 = _parse_start(start, inst.m)
    eq = mk.solve(inst, p0)
    check = (mk.check_equilibrium(inst, eq.prices, eq.demands) if not no_check
             else mk.Check(float("nan"), float("nan"), (), (), ()))
    out = mk.equilibrium_to_json(inst, eq, check)
    if no_check:
        out["check"] = None
    typer.echo(json.dumps(out, indent=2))


@app.command()
def trends(out: Path = typer.Option(Path("docs/market"), help="directory for market_trends.json and PNGs"),
           seeds: int = typer.Option(10, min=1, help="random instances per point"),
           kappa: float = typer.Option(15.5, help="payment scale")) -> None:
    """Figs. 5-8 trends of Kang et al. (2023) from the equilibrium solver (JSON + PNG plots)."""
    from pocnet.games.market_trends import main as run
    run(out, seeds, kappa)
    typer.echo(f"wrote {out}/market_trends.json and market_fig5..8.png")


@app.command()
def learn(input: str = typer.Option("games/examples/market_fig3.json", "--input", "-i", help="JSON market instance"),
          schemes: str = typer.Option("malppo,mappo,random-leaders,random-followers,random",
                                      help="comma-separated: malppo, mappo, random-leaders, random-followers, random"),
          episodes: int = typer.Option(20, min=1, help="episodes (paper: 20)"),
          slots: int = typer.Option(100, min=1, help="slots per episode (paper: 100)"),
          seed: int = typer.Option(0),
          gamma: float = typer.Option(0.99, min=0.0, max=1.0, help="discount (0.99, ours: the paper gives none)"),
          out: Path = typer.Option(Path("malppo-report"), help="directory for the report, runs and plots")) -> None:
    """Train MALPPO (and baselines) on an instance; compare with the solver's equilibrium."""
    from pocnet.games import market as mk
    from pocnet.games.malppo import SCHEMES, LearnConfig, run_experiment
    doc = _load(input)
    try:
        inst = mk.instance_from_json(doc)
    except ValueError as exc:
        _fail(str(exc))
    names = [s.strip() for s in schemes.split(",") if s.strip()]
    for s in names:
        if s not in SCHEMES:
            _fail(f"--schemes: unknown scheme {s!r}; known: {', '.join(SCHEMES)}")
    if slots % 20:
        _fail("--slots: must be a multiple of 20 (one PPO update per 20 slots)")
    report = run_experiment(inst, names, LearnConfig(episodes=episodes, slots=slots, seed=seed, gamma=gamma), out,
                            echo=lambda m: typer.echo(m, err=True))
    typer.echo(json.dumps(report["schemes"], indent=1))


if __name__ == "__main__":
    app()
