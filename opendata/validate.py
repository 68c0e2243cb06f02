"""Validation returns a report; the caller decides whether to publish."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frictionless import FrictionlessException, Package, Schema
from frictionless import Resource as FResource

from opendata import fastcheck
from opendata.model import Build, Issue, Resource
from opendata.tables import load_schema, to_csv_bytes

log = logging.getLogger(__name__)
PER_GROUP = 20  # report entries per repeated finding before "… and N more"


@dataclass
class Report:
    """Findings for one package candidate: frictionless errors plus custom checks."""

    package: str
    issues: list[Issue] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)
    dropped: list[dict[str, Any]] = field(default_factory=list)  # rows left out, with the reason

    @property
    def errors(self) -> list[Issue]:
        """Blocking findings."""
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        """Non-blocking findings."""
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def valid(self) -> bool:
        """True when nothing blocks publication."""
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form with a fixed key order."""
        return {"package": self.package, "valid": self.valid,
                "errors": len(self.errors), "warnings": len(self.warnings),
                "row_counts": dict(sorted(self.row_counts.items())),
                "dropped_rows": sum(int(d["rows"]) for d in self.dropped),
                "dropped": self.dropped,
                "issues": summarised(self.issues)}

    def summary(self, limit: int = 20) -> str:
        """A short text for people: the first findings, then a count."""
        head = (f"{self.package}: {'valid' if self.valid else 'INVALID'} "
                f"({len(self.errors)} errors, {len(self.warnings)} warnings)")
        lines = [head] + [f"  {i}" for i in self.issues[:limit]]
        if len(self.issues) > limit:
            lines.append(f"  ... and {len(self.issues) - limit} more (see the JSON report)")
        return "\n".join(lines)


def summarised(issues: list[Issue], per_group: int = PER_GROUP) -> list[dict[str, Any]]:
    """Issues as dicts; a finding repeated more than ``per_group`` times (same severity, code,
    source, resource and field) lists its first ones, then one entry "… and N more"."""
    seen: dict[tuple[str, ...], list[Issue]] = {}
    out: list[dict[str, Any]] = []
    for i in issues:
        group = seen.setdefault((i.severity, i.code, i.source, i.resource, i.field), [])
        group.append(i)
        if len(group) <= per_group:
            out.append(i.as_dict())
    for group in seen.values():
        more = group[per_group:]
        if more:
            first = more[0]
            rows = [i.row for i in more if i.row is not None]
            where = f"row {rows[0]} " if rows else ""
            out.append(Issue(first.severity, first.code, f"{where}… and {len(more) - 1:,} more "
                             f"with this finding, not listed ({len(group):,} in all)",
                             first.source, first.resource, first.row, first.field,
                             first.file).as_dict() | {"more": len(more)})
    return out


def _source_of(build: Build, resource: str) -> str:
    for res in build.resources:
        if res.name == resource:
            return ",".join(res.sources)
    return ""


def _issue(err: Any, source: str, resource: str) -> Issue:
    """A frictionless error as an Issue (row = 1-based data row, without the header)."""
    row = getattr(err, "row_number", None)
    return Issue("error", err.type, err.message, source=source, resource=resource,
                 row=(row - 1) if row else None, field=getattr(err, "field_name", "") or "")


def _metadata_issues(package: Package) -> list[Issue] | None:
    """Descriptor checks by frictionless (no rows read); None when the descriptor is valid."""
    try:
        package.to_descriptor(validate=True)
    except FrictionlessException as exc:
        return [Issue("error", err.type, err.message, resource="datapackage.json")
                for err in exc.to_errors()]
    return None


def _frictionless_resource(descriptor: Path, name: str) -> tuple[list[Any], int]:
    """Full frictionless validation of one resource (the fast engine declined it)."""
    report = Package(str(descriptor)).validate(name=name)
    if report.errors:
        return list(report.errors), 0
    task = report.tasks[0]
    return list(task.errors), int(task.stats.get("rows") or 0)


def frictionless_issues(descriptor: Path, build: Build) -> tuple[list[Issue], dict[str, int]]:
    """Validate a staged datapackage.json; return issues and row counts.

    Frictionless checks the descriptor (package and resource metadata, no rows); the columnar
    engine (opendata.fastcheck) checks the rows of every resource with the same findings. A
    resource the engine declines (see ``fastcheck.Unsupported``) is validated by frictionless.
    """
    package = Package(str(descriptor))
    meta = _metadata_issues(package)
    if meta is not None:
        return meta, {}
    fast = fastcheck.check_package(descriptor)
    issues: list[Issue] = []
    counts: dict[str, int] = {}
    for res in package.resources:
        source = _source_of(build, res.name)
        try:
            res.to_descriptor(validate=True)
        except FrictionlessException as exc:
            issues += [_issue(err, source, res.name) for err in exc.to_errors()]
            counts[res.name] = 0
            continue
        result = fast.get(res.name)
        if isinstance(result, fastcheck.TableResult):
            found, counts[res.name] = result.errors, result.rows
        else:
            log.info("frictionless validates %s row by row: %s", res.name, result)
            found, counts[res.name] = _frictionless_resource(descriptor, res.name)
        issues += [_issue(err, source, res.name) for err in found]
    return issues, counts


def resource_issues(res: Resource, source: str) -> list[Issue]:
    """Check of one built resource against its Table Schema, foreign keys left out."""
    schema = {k: v for k, v in load_schema(res.schema_path).items() if k != "foreignKeys"}
    data = to_csv_bytes(res.frame, schema)
    try:
        found = fastcheck.check_csv(data, schema, name=res.name).errors
    except fastcheck.Unsupported:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "data.csv").write_bytes(data)
            report = FResource(path="data.csv", basepath=tmp,
                               schema=Schema.from_descriptor(schema)).validate()
        found = [err for task in report.tasks for err in task.errors]
    return [_issue(err, source, res.name) for err in found]


def validate(build: Build, descriptor: Path) -> Report:
    """Validation of the staged package (descriptor by frictionless, rows by the columnar engine)
    plus the builder's custom checks."""
    issues, counts = frictionless_issues(descriptor, build)
    report = Report(build.package, list(build.issues) + issues, counts,
                    list(build.meta.get("dropped", [])))
    log.info("validated %s: %d errors, %d warnings, %d rows left out", build.package,
             len(report.errors), len(report.warnings), sum(int(d["rows"]) for d in report.dropped))
    return report
