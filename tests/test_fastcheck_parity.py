"""Parity: the columnar engine (opendata.fastcheck) reports what frictionless-py reports.

Both engines run on the staged packages built from the embedded data (clean) and on a corpus of
broken copies generated here: every check of every schema broken at least once (wrong type, missing
required value, enum miss, pattern miss, below minimum, duplicate primary key, dangling foreign key,
extra / missing / reordered columns, blank row, unique id). Frictionless is the reference; the
findings are compared as (type, row number, field name, note), in order, and the error limit is
exercised with a small limit.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from frictionless import Package
from helpers import REPO, copy_raw

from opendata import config as config_mod
from opendata import fastcheck, pipeline, publish
from opendata.paths import Paths

Rows = list[list[str]]
Finding = tuple[str, int | None, str, str]


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Both packages built from the embedded data and staged (datapackage.json with hashes)."""
    data = copy_raw(tmp_path_factory.mktemp("parity") / "data")
    cfg = config_mod.load(REPO / "config" / "opendata.toml")
    cands, _ = pipeline.validate_all(cfg, Paths(data))
    out = {}
    for cand in cands:
        dest = tmp_path_factory.mktemp(cand.build.package) / "pkg"
        shutil.copytree(cand.staged.path, dest)
        out[cand.build.package] = dest
        publish.discard(cand.staged)
    yield out


def _findings(errors: list[Any]) -> list[Finding]:
    return [(e.type, getattr(e, "row_number", None), getattr(e, "field_name", "") or "",
             getattr(e, "note", "")) for e in errors]


def _reference(pkg_dir: Path, name: str, limit: int = 1000) -> tuple[list[Finding], int]:
    report = Package(str(pkg_dir / "datapackage.json")).validate(name=name, limit_errors=limit)
    assert not report.errors, report.errors
    task = report.tasks[0]
    return _findings(task.errors), int(task.stats.get("rows") or 0)


def _fast(pkg_dir: Path, name: str, limit: int = 1000) -> tuple[list[Finding], int]:
    result = fastcheck.check_package(pkg_dir / "datapackage.json", names=[name],
                                     limit_errors=limit)[name]
    assert isinstance(result, fastcheck.TableResult), result
    return _findings(result.errors), result.rows


def _resources(pkg_dir: Path) -> list[dict[str, Any]]:
    return list(json.loads((pkg_dir / "datapackage.json").read_text(encoding="utf-8"))["resources"])


def _read(path: Path) -> Rows:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def _write(path: Path, rows: Rows) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def test_clean_packages_agree(staged: dict[str, Path]) -> None:
    """Every resource of both embedded packages: no findings from either engine, same row counts."""
    assert set(staged) == {"integration_measures", "integration_statistics"}
    for pkg_dir in staged.values():
        for res in _resources(pkg_dir):
            ref, ref_rows = _reference(pkg_dir, res["name"])
            fast, fast_rows = _fast(pkg_dir, res["name"])
            assert ref == fast == [], res["name"]
            assert ref_rows == fast_rows > 0, res["name"]


# The broken corpus: (label, mutation of the rows) per resource, derived from its schema.

Mutation = Callable[[Rows], None]


def _set(col: int, value: str, row: int = -1) -> Mutation:
    def apply(rows: Rows) -> None:
        rows[row][col] = value
    return apply


def _field_mutations(schema: dict[str, Any], header: list[str]) -> Iterator[tuple[str, Mutation]]:
    for f in schema["fields"]:
        col, c = header.index(f["name"]), f.get("constraints", {})
        ftype = f.get("type", "string")
        if ftype in ("integer", "number", "year", "date", "boolean"):
            yield f"{f['name']}: wrong type", _set(col, "BEISPIEL-x1")
        if ftype == "date":
            yield f"{f['name']}: impossible date", _set(col, "2021-02-30")
        if c.get("required"):
            yield f"{f['name']}: missing required", _set(col, "")
        if "enum" in c:
            yield f"{f['name']}: enum miss", _set(col, "beispiel-not-allowed")
        if "pattern" in c:
            yield f"{f['name']}: pattern miss", _set(col, "BEISPIEL 12")
            yield f"{f['name']}: pattern, trailing newline", _set(col, "2020\n")
        if "minimum" in c:
            yield f"{f['name']}: below minimum", _set(col, str(c["minimum"] - 1))
            yield f"{f['name']}: below minimum, decimal", _set(col, str(c["minimum"] - 0.5))
    yield "blank row", lambda rows: rows.__setitem__(-1, [""] * len(header))


def _all_fields_broken(schema: dict[str, Any], header: list[str]) -> Mutation:
    """One copy of the first data row per cell check, each broken once (appended rows)."""
    def apply(rows: Rows) -> None:
        base = list(rows[1])
        for _, mutate in _field_mutations(schema, header):
            rows.append(list(base))
            mutate(rows)
    return apply


def _key_mutations(schema: dict[str, Any], header: list[str]) -> Iterator[tuple[str, Mutation]]:
    if schema.get("primaryKey"):
        yield "duplicate primary key", lambda rows: rows.append(list(rows[1]))
        pk = schema["primaryKey"]
        first = header.index(pk[0] if isinstance(pk, list) else pk)
        yield "primary key cell wrong and duplicated", lambda rows: (
            rows.append(list(rows[1])), rows[-1].__setitem__(first, ""))
    for fk in schema.get("foreignKeys", []):
        name = fk["fields"][0] if isinstance(fk["fields"], list) else fk["fields"]
        yield f"dangling foreign key {name}", _set(header.index(name), "99999", row=1)
    for f in schema["fields"]:
        if f.get("constraints", {}).get("unique"):
            yield f"{f['name']}: not unique", _copy_cell(header.index(f["name"]))


def _copy_cell(col: int) -> Mutation:
    """A new last row whose cell ``col`` repeats the first row's (other cells differ)."""
    def apply(rows: Rows) -> None:
        rows.append([f"BEISPIEL {c}" for c in rows[1]])
        rows[-1][col] = rows[1][col]
    return apply


def _shape_mutations(header: list[str]) -> Iterator[tuple[str, Mutation]]:
    yield "extra column", lambda rows: [r.append("BEISPIEL") for r in rows]
    yield "missing last column", lambda rows: [r.pop() for r in rows]
    yield "missing first column", lambda rows: [r.pop(0) for r in rows]
    yield "reordered columns", lambda rows: [r.insert(0, r.pop(1)) for r in rows]
    yield "renamed label", lambda rows: rows[0].__setitem__(0, "BEISPIEL")


def _corpus(staged: dict[str, Path]) -> Iterator[tuple[str, Path, str, Mutation]]:
    for pkg, pkg_dir in sorted(staged.items()):
        for res in _resources(pkg_dir):
            header = _read(pkg_dir / res["path"])[0]
            schema = res["schema"]
            cases = [("every cell check broken", _all_fields_broken(schema, header)),
                     *_key_mutations(schema, header), *_shape_mutations(header)]
            for label, mutate in cases:
                yield f"{pkg}/{res['name']}: {label}", pkg_dir, res["name"], mutate


def test_broken_corpus_agrees(staged: dict[str, Path], tmp_path: Path) -> None:
    """Each broken copy: the same findings, in the same order, and the same rows read."""
    checked, mismatches = 0, []
    for label, pkg_dir, name, mutate in _corpus(staged):
        work = tmp_path / f"case{checked}"
        shutil.copytree(pkg_dir, work)
        csv_path = work / "data" / f"{name}.csv"
        rows = _read(csv_path)
        mutate(rows)
        _write(csv_path, rows)
        ref = _reference(work, name)
        fast = _fast(work, name)
        assert ref[0], f"{label}: the broken copy is not broken"
        if ref != fast:
            mismatches.append((label, ref, fast))
        checked += 1
        shutil.rmtree(work)
    assert checked > 100
    assert not mismatches, mismatches[:3]


def test_error_limit_agrees(staged: dict[str, Path], tmp_path: Path) -> None:
    """With more errors than the limit both stop at the same row with the same findings."""
    work = tmp_path / "limit"
    shutil.copytree(staged["integration_statistics"], work)
    path = work / "data" / "protection_seekers.csv"
    rows = _read(path)
    value, unit = rows[0].index("value"), rows[0].index("unit")
    for i, row in enumerate(rows[1:], 1):
        row[value] = "BEISPIEL" if i % 2 else "-3"
        row[unit] = "" if i % 3 else "pieces"
    _write(path, rows)
    for limit in (7, 50, 1000):
        ref = _reference(work, "protection_seekers", limit)
        assert len(ref[0]) == min(limit, len(ref[0])) and ref[0]
        assert _fast(work, "protection_seekers", limit) == ref, limit
