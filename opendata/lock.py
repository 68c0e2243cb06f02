"""One run at a time per data dir: an advisory file lock."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from opendata.errors import LockError


@contextmanager
def pipeline_lock(path: Path) -> Iterator[None]:
    """Hold the pipeline lock; raise LockError at once if another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise LockError(
                f"another opendata run (pid {holder}) is working on {path.parent.parent}; "
                "this run did nothing. Wait for it to finish, or if no such process exists, "
                "try again (the lock is released automatically when a process ends).") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
