"""Semantic versions from diffs: compare a candidate with the latest release by primary key."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opendata.tables import primary_key, read_csv_strings

BUMPS = ("major", "minor", "patch")
VOLATILE_KEYS = ("version", "created", "hash", "bytes")  # differ by design, not a change


@dataclass
class ResourceChanges:
    """What changed in one resource."""

    added: list[list[str]] = field(default_factory=list)
    removed: list[list[str]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)  # key, field, old, new
    schema: list[str] = field(default_factory=list)
    status: str = "same"  # same | new | removed | changed
    old_rows: int = 0  # rows of the resource in the previous release

    @property
    def retired(self) -> int:
        """Rows removed, plus rows newly marked ``removed = true`` (kept rows of gone records)."""
        flagged = sum(1 for c in self.changed if c["field"] == "removed"
                      and str(c["new"]).lower() == "true")
        return len(self.removed) + flagged

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"status": self.status, "schema_changes": self.schema,
                "added_keys": self.added, "removed_keys": self.removed,
                "changed_cells": self.changed}


@dataclass
class Changes:
    """The diff of a candidate against the latest release."""

    resources: dict[str, ResourceChanges]
    bump: str | None
    metadata_changed: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (changes.json)."""
        return {"bump": self.bump, "metadata_changed": self.metadata_changed,
                "resources": {k: v.as_dict() for k, v in sorted(self.resources.items())}}


def _resources(release: Path) -> dict[str, dict[str, Any]]:
    dp = json.loads((release / "datapackage.json").read_text(encoding="utf-8"))
    return {r["name"]: r for r in dp["resources"]}


def _schema_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], str | None]:
    of = {f["name"]: f.get("type", "string") for f in old["fields"]}
    nf = {f["name"]: f for f in new["fields"]}
    notes: list[str] = []
    bump: str | None = None
    for name, typ in of.items():
        if name not in nf:
            notes.append(f"field '{name}' removed")
            bump = "major"
        elif nf[name].get("type", "string") != typ:
            notes.append(f"field '{name}' retyped {typ} -> {nf[name].get('type', 'string')}")
            bump = "major"
    for name, f in nf.items():
        if name not in of:
            required = f.get("constraints", {}).get("required", False)
            notes.append(f"field '{name}' added" + (" (required)" if required else ""))
            bump = "major" if required or bump == "major" else "minor"
    if primary_key(old) != primary_key(new):
        notes.append(f"primary key {primary_key(old)} -> {primary_key(new)}")
        bump = "major"
    if bump is None and old != new:
        notes.append("schema metadata changed")
        bump = "patch"
    return notes, bump


def _rows(path: Path, key: list[str]) -> dict[tuple[str, ...], dict[str, str]]:
    frame = read_csv_strings(path)
    cols = key or list(frame.columns)
    return {tuple(r[c] for c in cols): r for r in frame.to_dict("records")}


def _data_changes(old: Path, new: Path, key: list[str], rc: ResourceChanges) -> str | None:
    a, b = _rows(old, key), _rows(new, key)
    rc.old_rows = len(a)
    rc.added = [list(k) for k in sorted(set(b) - set(a))]
    rc.removed = [list(k) for k in sorted(set(a) - set(b))]
    for k in sorted(set(a) & set(b)):
        for col, val in b[k].items():
            if col in a[k] and a[k][col] != val:
                rc.changed.append({"key": list(k), "field": col, "old": a[k][col], "new": val})
    if rc.added or rc.removed:
        return "minor"
    return "patch" if rc.changed else None


def _max(*bumps: str | None) -> str | None:
    found = [b for b in bumps if b]
    return min(found, key=BUMPS.index) if found else None


def _strip(meta: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in meta.items() if k not in VOLATILE_KEYS and k != "resources"}
    out["resources"] = [{k: v for k, v in r.items() if k not in VOLATILE_KEYS}
                        for r in meta.get("resources", [])]
    return out


def diff(old: Path | None, new: Path) -> Changes:
    """Compare two release folders (old may be None for the first release)."""
    new_res = _resources(new)
    if old is None:
        res = {n: ResourceChanges(status="new") for n in new_res}
        return Changes(res, "major")
    old_res = _resources(old)
    result: dict[str, ResourceChanges] = {}
    bump: str | None = None
    for name in sorted(set(old_res) | set(new_res)):
        rc = ResourceChanges()
        if name not in new_res:
            rc.status, bump = "removed", _max(bump, "major")
        elif name not in old_res:
            rc.status, bump = "new", _max(bump, "minor")
        else:
            rc.schema, sb = _schema_changes(old_res[name]["schema"], new_res[name]["schema"])
            db = _data_changes(old / old_res[name]["path"], new / new_res[name]["path"],
                               primary_key(new_res[name]["schema"]), rc)
            rc.status = "changed" if (sb or db) else "same"
            bump = _max(bump, sb, db)
        result[name] = rc
    old_meta = json.loads((old / "datapackage.json").read_text(encoding="utf-8"))
    new_meta = json.loads((new / "datapackage.json").read_text(encoding="utf-8"))
    meta_changed = _strip(old_meta) != _strip(new_meta)
    if meta_changed:
        bump = _max(bump, "patch")
    return Changes(result, bump, meta_changed)


def mass_removals(changes: Changes, share: float) -> list[str]:
    """Resources of both releases that would lose more than ``share`` of their rows, as text."""
    out = []
    for name, rc in sorted(changes.resources.items()):
        if rc.old_rows and rc.retired / rc.old_rows > share:
            out.append(f"{name}: {rc.retired:,} of {rc.old_rows:,} rows removed "
                       f"({rc.retired / rc.old_rows:.0%})")
    return out


def next_version(current: str | None, bump: str) -> str:
    """Apply a bump to a semantic version; the first release is 1.0.0."""
    if current is None:
        return "1.0.0"
    major, minor, patch = (int(x) for x in current.split("."))
    if bump == "major":
        return f"{major + 1}.0.0"
    if bump == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def summary(changes: Changes) -> str:
    """One line for people, e.g. 'population: 12 rows added; 3 values revised'."""
    parts = []
    for name, rc in sorted(changes.resources.items()):
        if rc.status == "new":
            parts.append(f"{name}: new resource")
        elif rc.status == "removed":
            parts.append(f"{name}: resource removed")
        elif rc.status == "changed":
            bits = [f"{len(rc.added)} rows added"] if rc.added else []
            bits += [f"{len(rc.removed)} rows removed"] if rc.removed else []
            bits += [f"{len(rc.changed)} values revised"] if rc.changed else []
            bits += rc.schema
            parts.append(f"{name}: {', '.join(bits)}")
    if changes.metadata_changed:
        parts.append("metadata updated")
    return "; ".join(parts) or "no changes"
