"""``pocnet games ...``: the game math on JSON files (JSON in, JSON on stdout).

Bad input exits with code 2 and a message on stderr naming the field.
Formats: docs/games.md; examples: games/examples/*.json.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import typer

from pocnet.games.schema import InputError, run_coalition, run_reputation, run_stackelberg

app = typer.Typer(help="FML games: reputation, coalition formation, Stackelberg incentives.", no_args_is_help=True)

InputOpt = typer.Option(..., "--input", "-i", help="JSON input file ('-' for stdin)")


def _run(path: str, fn: Callable[[Any], dict[str, Any]]) -> None:
    try:
        text = typer.get_text_stream("stdin").read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        typer.echo(f"error: --input: cannot read {path}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        typer.echo(f"error: input: not valid JSON: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        result = fn(doc)
    except InputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(result, indent=2, sort_keys=True))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


@app.command()
def reputation(input: str = InputOpt) -> None:
    """Global / task-specific / overall reputations from contribution histories."""
    _run(input, run_reputation)


@app.command()
def coalition(input: str = InputOpt) -> None:
    """Heads, Nash-stable coalitions and Stackelberg incentives for a set of learners."""
    _run(input, run_coalition)


@app.command()
def stackelberg(input: str = InputOpt) -> None:
    """Leader optimum C* and follower frequencies f* of one coalition."""
    _run(input, run_stackelberg)


if __name__ == "__main__":
    app()
