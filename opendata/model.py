"""Plain data passed between stages: issues, resources, builds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from opendata.snapshot import Snapshot


@dataclass(frozen=True)
class Issue:
    """One finding: an error blocks publication, a warning is reported."""

    severity: str  # "error" | "warning"
    code: str  # slug, e.g. "negative-count"
    message: str
    source: str = ""
    resource: str = ""
    row: int | None = None  # 1-based data row in the source/resource, when known
    field: str = ""
    file: str = ""  # the input file's name (e.g. massnahmen.csv) when row/field refer to it

    @property
    def sheet_row(self) -> int | None:
        """The row number a spreadsheet shows (header = row 1) for a row of an input file."""
        if self.row is None or not self.file or self.file.lower().endswith(".json"):
            return None
        return self.row + 1

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form with a fixed key order."""
        return {"severity": self.severity, "code": self.code, "source": self.source,
                "file": self.file, "resource": self.resource, "row": self.row,
                "sheet_row": self.sheet_row, "field": self.field, "message": self.message}

    def _row_text(self) -> str:
        if self.row is None:
            return ""
        if self.sheet_row is not None:
            return f"spreadsheet row {self.sheet_row}, data row {self.row}"
        return f"record {self.row}" if self.file else f"row {self.row}"

    def __str__(self) -> str:
        where = ", ".join(x for x in (
            f"source {self.source}" if self.source else "",
            f"file {self.file}" if self.file else "",
            f"resource {self.resource}" if self.resource else "",
            self._row_text(),
            f"field {self.field}" if self.field else "") if x)
        return f"{self.severity.upper()} [{self.code}] {where}: {self.message}"


@dataclass
class Resource:
    """One published table: a frame plus its Table Schema."""

    name: str
    frame: pd.DataFrame
    schema_path: Path
    title: str = ""
    description: str = ""
    sources: list[str] = field(default_factory=list)


@dataclass
class Build:
    """Everything a package transform produced for one candidate release."""

    package: str
    resources: list[Resource]
    snapshots: list[Snapshot]
    issues: list[Issue] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. temporal coverage, notes

    @property
    def errors(self) -> list[Issue]:
        """Blocking issues."""
        return [i for i in self.issues if i.severity == "error"]
