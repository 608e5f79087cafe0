"""Logging for a peer: human-readable lines to stderr and to ``<home>/node.log``."""
from __future__ import annotations

import logging
from pathlib import Path


def setup_logging(level: str = "INFO", logfile: Path | None = None, name: str = "") -> None:
    fmt = logging.Formatter(f"%(asctime)s %(levelname)s {name} %(name)s: %(message)s".replace("  ", " "))
    root = logging.getLogger()
    root.setLevel(level.upper())
    for h in list(root.handlers):
        root.removeHandler(h)
    stream = logging.StreamHandler()
    stream.setFormatter(fmt)
    root.addHandler(stream)
    if logfile is not None:
        fh = logging.FileHandler(logfile)
        fh.setFormatter(fmt)
        root.addHandler(fh)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
