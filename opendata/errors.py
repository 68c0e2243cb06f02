"""The exception tree: transient vs terminal, each mapped to a CLI exit code."""

from __future__ import annotations

from typing import Any


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
