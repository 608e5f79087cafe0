"""Per-home process locks: one ``pocnet node`` per peer home, one ``cluster up`` per cluster home.

A lock is an exclusive ``flock`` on a file in the home, held for the life of the process
(the kernel drops it when the process dies, even on SIGKILL, so a stale file never blocks
a restart). The file holds the owner's PID, which ``pocnet cluster status|down`` read:
a lock that is held names a live process that really runs on that home.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

NODE_LOCK = "node.lock"
CLUSTER_LOCK = "cluster.lock"

_held: dict[str, int] = {}  # path -> fd, kept open for the life of the process


class HomeLocked(Exception):
    def __init__(self, path: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid else "another process"
        super().__init__(f"{path.parent} is in use by {who} (lock {path})")
        self.path, self.pid = path, pid


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def acquire(home: Path, name: str = NODE_LOCK) -> None:
    """Take the lock or raise HomeLocked naming the holder; idempotent within a process."""
    path = (Path(home) / name).resolve()
    if str(path) in _held:
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise HomeLocked(path, _read_pid(path)) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held[str(path)] = fd


def release(home: Path, name: str = NODE_LOCK) -> None:
    fd = _held.pop(str((Path(home) / name).resolve()), None)
    if fd is not None:
        os.close(fd)  # closing the descriptor drops the flock


def holder(home: Path, name: str = NODE_LOCK) -> int | None:
    """PID of the live process holding the lock, or None when nobody holds it."""
    path = Path(home) / name
    if not path.exists():
        return None
    if str(path.resolve()) in _held:
        return os.getpid()
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(path) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
