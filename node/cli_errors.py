"""One place that turns CLI failures into one line on stderr and a non-zero exit code.

Every ``pocnet`` command runs through :func:`run_cli`. A user or network error (bad
option, unreachable peer, a 4xx answer, a missing or malformed file, an unwritable
output folder) prints ``error: <what went wrong>`` and exits with a code; the
traceback is shown only with ``pocnet --debug ...`` (or ``POCNET_DEBUG=1``).
Anything unexpected still prints one line, naming the exception and ``--debug``.

Exit codes: 1 runtime/network error, 2 bad usage or input, 130 interrupted.
"""
from __future__ import annotations

import errno
import json
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import click
import httpx
import typer

# Typer may vendor its own copy of click: take the exception classes from the module that
# defines typer.BadParameter, and accept the standalone click's as well.
_tclick = sys.modules[typer.BadParameter.__module__]
_CLICK_EXC = tuple({_tclick.ClickException, click.ClickException})
_EXIT = tuple({typer.Exit, click.exceptions.Exit})
_ABORT = tuple({typer.Abort, click.exceptions.Abort})
_NO_ARGS = tuple({getattr(_tclick, "NoArgsIsHelpError", click.exceptions.NoArgsIsHelpError),
                  click.exceptions.NoArgsIsHelpError})

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A failure the user can act on; ``message`` is printed as is after ``error: ``."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message, self.code = message, code


class UsageFailure(CliError):
    """Bad option value or input file content (exit code 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


def debug_enabled(argv: Sequence[str]) -> bool:
    return "--debug" in argv or os.environ.get("POCNET_DEBUG", "") not in ("", "0")


def _reason_of(exc: BaseException) -> str:
    """The innermost OS-level reason of a connection failure, e.g. 'connection refused'."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ConnectionRefusedError) or getattr(cur, "errno", None) == errno.ECONNREFUSED:
            return "connection refused"
        if isinstance(cur, OSError) and cur.strerror:
            return cur.strerror[0].lower() + cur.strerror[1:]
        cur = cur.__cause__ or cur.__context__
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    return text


def _base_url(request: httpx.Request | None) -> str:
    if request is None:
        return "the peer"
    u = request.url
    return f"{u.scheme}://{u.host}" + (f":{u.port}" if u.port else "")


def describe_http_status(exc: httpx.HTTPStatusError) -> str:
    """'peer http://h:p answered 404 for GET /accounts/x: not found (address): reason'."""
    r = exc.response
    detail = ""
    try:
        body: Any = r.json()
    except (ValueError, json.JSONDecodeError):
        body = None
    if isinstance(body, dict) and "error" in body:
        detail = str(body["error"])
        if body.get("field") not in (None, "", "$"):
            detail += f" ({body['field']})"
        if body.get("reason"):
            detail += f": {body['reason']}"
    elif r.text:
        detail = r.text.strip().splitlines()[0][:200]
    req = exc.request
    where = f" for {req.method} {req.url.raw_path.decode(errors='replace')}" if req is not None else ""
    return f"peer {_base_url(req)} answered {r.status_code}{where}" + (f": {detail}" if detail else "")


def describe(exc: BaseException) -> tuple[str, int] | None:
    """Message and exit code for a known error class; None for an unexpected exception."""
    if isinstance(exc, CliError):
        return exc.message, exc.code
    if isinstance(exc, httpx.HTTPStatusError):
        return describe_http_status(exc), EXIT_ERROR
    if isinstance(exc, httpx.TimeoutException):
        return f"cannot reach {_base_url(exc.request if _has_request(exc) else None)}: timed out", EXIT_ERROR
    if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol)):
        return f"invalid peer URL: {exc}", EXIT_USAGE
    if isinstance(exc, httpx.TransportError):
        return f"cannot reach {_base_url(exc.request if _has_request(exc) else None)}: {_reason_of(exc)}", EXIT_ERROR
    if isinstance(exc, OSError) and exc.strerror:
        return (f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror), EXIT_ERROR
    return None


def _has_request(exc: httpx.RequestError) -> bool:
    try:
        exc.request  # noqa: B018 - raises RuntimeError when the error carries no request
    except RuntimeError:
        return False
    return True


def _usage_line(exc: Any) -> str:
    msg = exc.format_message()
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return f"{msg}{hint}"


def run_cli(app: typer.Typer, argv: Sequence[str] | None = None, prog_name: str = "pocnet") -> int:
    """Run ``app`` on ``argv``; return the exit code instead of raising (see module doc)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = debug_enabled(args)
    if "--debug" in args:  # accepted anywhere on the line: move it to the root command
        args = ["--debug"] + [a for a in args if a != "--debug"]
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=args, prog_name=prog_name, standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except _NO_ARGS as exc:
        exc.show()
        return EXIT_USAGE
    except _EXIT as exc:
        return int(getattr(exc, "exit_code", 1))
    except _ABORT:
        typer.echo("error: interrupted", err=True)
        return EXIT_INTERRUPTED
    except _CLICK_EXC as exc:
        typer.echo(f"error: {_usage_line(exc)}", err=True)
        return int(getattr(exc, "exit_code", 1))
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the one place that reports every failure
        known = describe(exc)
        if debug:
            traceback.print_exc()
        if known is not None:
            typer.echo(f"error: {known[0]}", err=True)
            return known[1]
        typer.echo(f"error: unexpected {type(exc).__name__}: {exc} (rerun with 'pocnet --debug ...' "
                   "for the traceback)", err=True)
        return EXIT_ERROR
