"""The exception tree: transient vs terminal, each mapped to a CLI exit code."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Any, TypeGuard


class OpendataError(Exception):
    """Base error; ``exit_code`` is what the CLI returns."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(OpendataError):
    """The configuration (or command line) is malformed."""

    exit_code = 2

    def __init__(self, file: str, entry: str, problem: str) -> None:
        super().__init__(f"config error in {file} [{entry}]: {problem}")
        self.file, self.entry, self.problem = file, entry, problem


class FetchError(OpendataError):
    """A source could not be fetched."""

    exit_code = 3

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"fetch failed for source '{source}': {message}")
        self.source = source


class TransientFetchError(FetchError):
    """A fault that may go away: 429, 5xx, connection reset, timeout."""


class TerminalFetchError(FetchError):
    """A fault that retrying cannot fix: bad body, API error status, no data."""


class InputError(OpendataError):
    """An input file cannot be used as delivered (unreadable, over a limit, hostile): exit 1."""

    exit_code = 1

    def __init__(self, source: str, message: str, file: str = "") -> None:
        where = f"source '{source}'" + (f" (file {file})" if file else "")
        super().__init__(f"input error in {where}: {message}")
        self.source, self.file = source, file


class MassRemovalError(OpendataError):
    """A run would remove a large share of a resource's rows; nothing was published."""

    exit_code = 1


class DeadlineExceeded(FetchError):
    """A source took longer than its overall deadline ([settings] source_deadline); not retried."""

    def __init__(self, source: str, deadline: float, last: str) -> None:
        super().__init__(source, f"no complete answer within the source deadline of "
                         f"{deadline:g} s (last fault: {last or 'none'}); gave up without further "
                         "retries. The service may be down or very slow: try again later, or raise "
                         "source_deadline in [settings] of the config.")


class SnapshotError(OpendataError):
    """A raw snapshot is missing or does not match its manifest."""

    exit_code = 3


class ValidationFailed(OpendataError):
    """Validation found errors; nothing was published."""

    exit_code = 1

    def __init__(self, message: str, report: Any = None) -> None:
        super().__init__(message)
        self.report = report


class LockError(OpendataError):
    """Another run holds the pipeline lock on this data dir."""

    exit_code = 2


class StorageError(OpendataError):
    """A file could not be written (or read): disk full, read-only, permissions, a path in the way."""

    exit_code = 4

    @classmethod
    def from_oserror(cls, exc: OSError, data_dir: Path) -> StorageError:
        """A clear message for an OSError: what, where, why, the free space, how to fix it."""
        where = exc.filename or f"a file below {data_dir}"
        if exc.filename2:
            where = f"{exc.filename} -> {exc.filename2}"
        code = exc.errno or 0
        verb = "could not write" if code in _WRITE_ERRNOS else "could not access"
        why, fix = _REASONS.get(code, ("", "check the file system and the data dir"))
        name = errno.errorcode.get(code, "unknown error")
        detail = f"{exc.strerror or exc}" + (f", {name}" if code else "")
        return cls(f"{verb} {where}: {why or detail}{f' ({detail})' if why else ''}. "
                   f"Free space there: {free_space(Path(str(exc.filename or data_dir)), data_dir)}. "
                   f"How to fix: {fix}; then run again (the next run cleans up what this one left).")


_REASONS = {
    errno.ENOSPC: ("the disk is full", "free space on that file system (old releases can go with "
                   "'opendata prune --keep N')"),
    errno.EDQUOT: ("the disk quota is exhausted", "raise the quota or free space"),
    errno.EFBIG: ("the file is too large for the file system", "free space or use another file system"),
    errno.EROFS: ("the file system is read-only", "remount it read-write or point --data-dir at a "
                  "writable place"),
    errno.EACCES: ("permission denied", "give the user running opendata write access to the data dir"),
    errno.EPERM: ("operation not permitted", "give the user running opendata write access to the "
                  "data dir"),
    errno.ENOTDIR: ("a part of the path is a file where a folder is expected",
                    "move that file out of the data dir"),
    errno.EISDIR: ("a folder is in the way where a file is expected", "move that folder away"),
    errno.EEXIST: ("something is in the way", "move it out of the data dir"),
    errno.EXDEV: ("published/ and state/ are on different file systems",
                  "keep the whole data dir on one file system (releases are moved in with rename)"),
}
_WRITE_ERRNOS = frozenset(_REASONS)


def free_space(path: Path, data_dir: Path) -> str:
    """Free bytes on the file system holding ``path`` (its nearest existing folder), for people."""
    for candidate in (path, *path.parents, data_dir, *data_dir.parents):
        try:
            usage = shutil.disk_usage(candidate)
        except OSError:
            continue
        return f"{_human(usage.free)} free of {_human(usage.total)}"
    return "unknown"


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def is_file_error(exc: BaseException) -> TypeGuard[OSError]:
    """True for an OSError of the file system (not a network fault, which is an OSError too)."""
    if not isinstance(exc, OSError) or isinstance(exc, ConnectionError | TimeoutError):
        return False
    import requests

    return not isinstance(exc, requests.RequestException)
