"""One table against its Table Schema: batches in, frictionless error objects out.

Cell checks run per batch on distinct values; keys are kept as dictionary indices and decided at
the end. The findings are then put in the order frictionless reports them (header first, then row
by row, within a row in the order its row stream finds them) and cut at its error limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from frictionless import FrictionlessException, Schema, errors
from frictionless.error import Error
from frictionless.table.fields_match import resolve
from frictionless.table.header import Header

from opendata.fastcheck.cells import FieldCheck
from opendata.fastcheck.keys import KeyColumn, Reference, dangling, duplicates
from opendata.fastcheck.unsupported import Unsupported

LIMIT_ERRORS = 1000  # frictionless's default error limit
DISTINCT_RATIO = 4  # check on distinct values when there are at most a quarter as many as rows
Lookup = Callable[[str, list[str]], Reference]  # (resource, fields) → reference values


@dataclass
class TableResult:
    """What frictionless's task report would hold: errors (cut at the limit) and rows read."""

    errors: list[Error]
    rows: int
    partial: bool = False


@dataclass
class _Row:
    """Everything found in one data row, before it is put in frictionless's order."""

    cells: list[str] = field(default_factory=list)
    bad: dict[int, str] = field(default_factory=dict)  # field position → raw text
    blank: bool = False
    unique: dict[str, int] = field(default_factory=dict)  # field → earlier row number
    pk: str = ""  # note of a primary-key error
    fk: list[int] = field(default_factory=list)  # indexes of violated foreign keys


def _is_self(reference: str, name: str) -> bool:
    return not reference or reference == name


def _spread(column: pa.Array, distinct: pa.Array, flags: np.ndarray) -> np.ndarray:
    """Per row of ``column``: the flag of its distinct value (only flagged values are looked up)."""
    if not flags.any():
        return np.zeros(len(column), dtype=bool)
    hit = pc.is_in(column, value_set=distinct.filter(pa.array(flags)))
    return np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool)


class TableCheck:
    """Feed batches of one table, then ``finish`` for its errors."""

    def __init__(self, schema: Schema, labels: list[str], *, name: str = "",
                 limit_errors: int = LIMIT_ERRORS) -> None:
        declared = schema.fields_match if schema.has_defined("fields_match") else None
        self.header = Header(labels, fields=schema.fields, row_numbers=[1], ignore_case=False,
                             fields_match=resolve(declared, schema_sync=False))
        try:
            expected = self.header.get_expected_fields()
        except FrictionlessException as exc:
            raise Unsupported(f"header of {name or 'table'}: {exc}") from exc
        self.name, self.limit = name, limit_errors
        self.checks = [FieldCheck(f) for f in expected]
        self.names = [f.name for f in expected]
        self.pos = {n: i for i, n in enumerate(self.names)}
        pk = list(schema.primary_key)
        self.pk = pk if pk and set(pk) <= set(self.names) else []
        self.unique = [f.name for f in expected if (f.constraints or {}).get("unique")]
        self.fks = [fk for fk in schema.foreign_keys if set(fk["fields"]) <= set(self.names)]
        wanted = set(self.pk) | set(self.unique)
        for fk in self.fks:
            wanted |= set(fk["fields"])
            if _is_self(fk["reference"]["resource"], name):
                wanted |= {f for f in fk["reference"]["fields"] if f in self.pos}
        self.kept: dict[int, list[pa.DictionaryArray]] = {self.pos[n]: [] for n in wanted}
        self.dense: dict[int, bool] = {}  # column → worth checking on its distinct values
        self.rows = 0
        self.found: dict[int, _Row] = {}  # data row index → findings
        self.stop: int | None = None  # last data row whose cell findings are collected

    # Batches

    def _evaluate(self, j: int, column: pa.Array, need_missing: bool,
                  ) -> tuple[np.ndarray, np.ndarray | None]:
        """Check one column: on its distinct values when they are few, else value by value.

        Returns the error mask and (when ``need_missing``, else maybe None) the missing mask.
        """
        kept, check = j in self.kept, self.checks[j]
        if not kept and check.any_text:  # no distinct values needed: only missing can be wrong
            if not check.required and not need_missing:
                return np.zeros(len(column), dtype=bool), None
            missing = check.missing_mask(column)
            return (missing if check.required else np.zeros(len(column), dtype=bool)), missing
        if kept or self.dense.get(j, True):
            encoded = pc.dictionary_encode(column) if kept else None
            if encoded is not None:
                self.kept[j].append(encoded)
            distinct = pc.unique(column) if encoded is None else encoded.dictionary
            if kept or len(distinct) * DISTINCT_RATIO <= len(column):
                bad, missing = check.evaluate(distinct)
                if encoded is None:
                    return (_spread(column, distinct, bad),
                            _spread(column, distinct, missing) if need_missing else None)
                if not bad.any() and not missing.any():
                    return np.zeros(len(column), dtype=bool), np.zeros(len(column), dtype=bool)
                index = encoded.indices.to_numpy(zero_copy_only=False)
                return bad[index], missing[index] if need_missing else None
            self.dense[j] = False  # mostly distinct values: encoding does not pay off
        return check.evaluate(column)

    def feed(self, batch: pa.RecordBatch) -> None:
        """Check one batch of text columns (in label order)."""
        n, offset = batch.num_rows, self.rows
        self.rows += n
        if self.stop is not None or n == 0:
            for j in self.kept:
                self.kept[j].append(pc.dictionary_encode(batch.column(j)))
            return
        bad_rows: dict[int, np.ndarray] = {}
        blank: np.ndarray | None = np.ones(n, dtype=bool)
        for j in range(len(self.checks)):
            bad, missing = self._evaluate(j, batch.column(j), blank is not None)
            if bad.any():
                bad_rows[j] = np.flatnonzero(bad)
            if blank is not None:
                blank = blank & missing if missing is not None and missing.any() else None
        blank_rows = np.flatnonzero(blank) if blank is not None else np.zeros(0, dtype=np.int64)
        rows = np.unique(np.concatenate([*bad_rows.values(), blank_rows]).astype(np.int64))
        if len(rows) == 0:
            return
        room = self.limit - len(self.found)
        if len(rows) >= room:
            rows = rows[:room]
            self.stop = offset + int(rows[-1])
        cells = batch.take(pa.array(rows)).to_pylist()
        keys = [f"c{j}" for j in range(len(self.checks))]
        for r, row in zip(rows.tolist(), cells, strict=True):
            self.found[offset + r] = _Row(cells=[str(row[k]) for k in keys])
        last = rows[-1]
        for j, found in bad_rows.items():
            for r in found[found <= last].tolist():
                self.found[offset + r].bad[j] = self.found[offset + r].cells[j]
        for r in blank_rows[blank_rows <= last].tolist():
            self.found[offset + r].blank = True

    # Keys

    def _key(self, name: str, built: dict[str, KeyColumn]) -> KeyColumn:
        if name not in built:
            j = self.pos.get(name)
            built[name] = KeyColumn.absent(self.rows) if j is None else \
                KeyColumn.build(self.kept[j], self.checks[j])
            if j is not None:
                self.kept[j] = []  # the built column holds all it needs: free the batches' copy
        return built[name]

    def _within(self, rows: Iterable[int]) -> list[int]:
        return [r for r in rows if self.stop is None or r <= self.stop]

    def _row(self, r: int) -> _Row:
        return self.found.setdefault(r, _Row())

    def _keys(self, lookup: Lookup | None) -> dict[str, KeyColumn]:
        built: dict[str, KeyColumn] = {}
        for name in self.unique:
            later, _ = duplicates([self._key(name, built)], skip_all_null=True)
            for r in self._within(later):
                self._row(r).unique[name] = later[r] + 2
        if self.pk:
            later, none = duplicates([self._key(n, built) for n in self.pk], skip_all_null=True)
            for r in self._within(none.tolist()):
                self._row(r).pk = 'cells composing the primary keys are all "None"'
            for r in self._within(later):
                self._row(r).pk = f"the same as in the row at position {later[r] + 2}"
        for i, fk in enumerate(self.fks):
            target = [self._key(n, built) for n in fk["fields"]]
            source, ref_fields = fk["reference"]["resource"], list(fk["reference"]["fields"])
            if _is_self(source, self.name):
                ref = Reference.of([self._key(n, built) for n in ref_fields])
            elif lookup is None:
                raise Unsupported(f"foreign key to {source!r} needs the package")
            else:
                ref = lookup(source, ref_fields)
            for r in self._within(dangling(target, ref).tolist()):
                self._row(r).fk.append(i)
        return built

    # Findings in frictionless's order

    def finish(self, lookup: Lookup | None = None) -> TableResult:
        """All findings, ordered and cut as frictionless does."""
        built = self._keys(lookup)
        found: list[Error] = list(self.header.errors)
        if found and len(found) >= self.limit and self.rows:
            return TableResult(found[:self.limit], 1, partial=True)
        for r in sorted(self.found):
            found += self._ordered(r, self.found[r], built)
            if len(found) >= self.limit:
                return TableResult(found[:self.limit], r + 1, partial=True)
        return TableResult(found, self.rows)

    def _cell_errors(self, j: int, row: _Row, number: int) -> list[Error]:
        if j not in row.bad:
            return []
        raw, check = row.bad[j], self.checks[j]
        _, notes = check.reader(raw)
        notes = dict(notes or {})
        out: list[Error] = []
        common: dict[str, Any] = {"cells": row.cells, "row_number": number, "cell": str(raw),
                                  "field_name": check.name, "field_number": j + 1}
        type_note = notes.pop("type", None)
        if type_note:
            out.append(errors.TypeError(note=type_note, **common))
        out += [errors.ConstraintError(note=note, **common) for note in notes.values()]
        return out

    def _ordered(self, r: int, row: _Row, built: dict[str, KeyColumn]) -> list[Error]:
        """Replay frictionless's row stream: fields read one by one, then the whole row."""
        number, out, read = r + 2, [], set()
        full = False

        def access(name: str) -> None:
            if not full and name not in read:
                read.add(name)
                out.extend(self._cell_errors(self.pos[name], row, number))

        def whole() -> None:
            nonlocal full, out
            if full:
                return
            for j, name in enumerate(self.names):
                if name not in read:
                    read.add(name)
                    out.extend(self._cell_errors(j, row, number))
            if row.blank:
                out[:] = [errors.BlankRowError(note="", cells=row.cells, row_number=number)]
            full = True

        for name in self.unique:
            access(name)
            if name in row.unique:
                whole()
                parsed = self.checks[self.pos[name]].reader(built[name].value(r))[0]
                out.append(errors.UniqueError(
                    note=f"the same as in the row at position {row.unique[name]}", cells=row.cells,
                    row_number=number, cell=str(parsed), field_name=name,
                    field_number=self.pos[name] + 1))
        if self.pk:
            for name in self.pk:
                access(name)
            if row.pk:
                whole()
                out.append(errors.PrimaryKeyError(note=row.pk, cells=row.cells, row_number=number))
        for i, fk in enumerate(self.fks):
            for name in fk["fields"]:
                access(name)
            if i in row.fk:
                whole()
                out.append(self._fk_error(fk, r, row, built))
        whole()
        return out

    def _fk_error(self, fk: dict[str, Any], r: int, row: _Row,
                  built: dict[str, KeyColumn]) -> Error:
        names, ref = list(fk["fields"]), list(fk["reference"]["fields"])
        values = [self.checks[self.pos[n]].reader(built[n].value(r))[0] for n in names]
        source = fk["reference"]["resource"]
        note = (f'for "{", ".join(names)}": values "{", ".join(str(v) for v in values)}" '
                f'not found in the lookup table "{source}" as "{", ".join(ref)}"')
        return errors.ForeignKeyError(
            note=note, cells=row.cells, row_number=r + 2, field_names=names,
            field_cells=["" if v is None else str(v) for v in values], reference_name=source,
            reference_field_names=ref)
