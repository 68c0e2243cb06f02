"""Keys across all batches: one dictionary per key column, duplicates and lookups on integer ids.

A key column is kept as the dictionary indices of every batch (4 bytes a row) and unified at the
end. Values are compared as frictionless compares them: parsed (``"01"`` and ``"1"`` are the same
integer), missing and wrongly typed cells as None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from opendata.fastcheck.cells import FieldCheck

_RADIX_LIMIT = 1 << 62


def _unify(chunks: list[pa.DictionaryArray]) -> tuple[pa.Array, np.ndarray]:
    """One dictionary for all batches (first appearance order) and every row's int32 index in it.

    Each batch's indices are remapped straight into one preallocated array: no intermediate copy.
    """
    encoded = pc.dictionary_encode(pa.concat_arrays([c.dictionary for c in chunks]))
    remap = encoded.indices.to_numpy(zero_copy_only=False)
    index = np.empty(sum(len(c) for c in chunks), dtype=np.int32)
    row = start = 0
    for c in chunks:
        n, d = len(c), len(c.dictionary)
        np.take(remap[start:start + d], c.indices.to_numpy(zero_copy_only=False),
                out=index[row:row + n])
        row, start = row + n, start + d
    return encoded.dictionary, index


@dataclass
class KeyColumn:
    """One column over the whole table: distinct raw texts, row indices into them, parsed values."""

    raw: pa.Array  # distinct texts (unified dictionary)
    index: np.ndarray  # per row: position in ``raw``
    canon: pa.Array  # per distinct text: the parsed value (null: missing or wrong type)

    @classmethod
    def build(cls, chunks: list[pa.DictionaryArray], check: FieldCheck | None) -> KeyColumn:
        """Unify the batches' dictionaries; parse the distinct texts with the field's rules."""
        if not chunks:
            raw = pa.array([], pa.string())
            index = np.zeros(0, dtype=np.int32)
        else:
            raw, index = _unify(chunks)
        if check is None:  # a referenced field the header does not carry: every value None
            return cls(raw, index, pa.nulls(len(raw), pa.string()))
        return cls(raw, index, check.canonical(raw))

    @classmethod
    def absent(cls, rows: int) -> KeyColumn:
        """A field missing from the table: None in every row."""
        return cls(pa.array([""], pa.string()), np.zeros(rows, dtype=np.int32),
                   pa.nulls(1, pa.string()))

    def ids(self) -> tuple[np.ndarray, int, np.ndarray]:
        """Per distinct text: an id equal for equal parsed values; the id count; the null mask."""
        enc = pc.dictionary_encode(self.canon, null_encoding="encode")
        ids = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        return ids, len(enc.dictionary), np.asarray(self.canon.is_null().to_numpy(zero_copy_only=False))

    def value(self, row: int) -> str:
        """The raw text of one row."""
        return str(self.raw[int(self.index[row])].as_py())


def _combine(parts: list[tuple[np.ndarray, np.ndarray, int]]) -> np.ndarray:
    """Mixed-radix composite of per-row ids, re-densified whenever it would overflow int64.

    Each part is (id per distinct value, row index into it, id count); the per-row ids are
    gathered one column at a time and added in place, so at most one temporary exists.
    """
    table, index, size = parts[0]
    comp = table.astype(np.int64)[index]
    for table, index, n in parts[1:]:
        table = table.astype(np.int32)  # ids < n <= rows: half the size of the gathered temporary
        n = max(n, 1)
        if size * n >= _RADIX_LIMIT:
            enc = pc.dictionary_encode(pa.array(comp))
            comp = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
            size = len(enc.dictionary)
        comp *= n
        comp += table[index]
        size *= n
    return comp


def _row_ids(columns: list[KeyColumn], per_col: list[tuple[np.ndarray, int, np.ndarray]],
             ) -> np.ndarray:
    """Per row: one int64 id, equal for rows whose parsed key is equal."""
    return _combine([(ids, c.index, n) for c, (ids, n, _) in zip(columns, per_col, strict=True)])


def _null_rows(columns: list[KeyColumn], per_col: list[tuple[np.ndarray, int, np.ndarray]],
               rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose key is None in every column, and rows with None in any column."""
    all_null = np.zeros(rows, dtype=bool) if not columns else None
    any_null = np.zeros(rows, dtype=bool)
    for c, (_, _, null) in zip(columns, per_col, strict=True):
        if not null.any():  # no None in this column: no row is all None, this adds none
            all_null = np.zeros(rows, dtype=bool)
            continue
        row_null = null[c.index]
        any_null |= row_null
        all_null = row_null if all_null is None else all_null & row_null
    return (np.zeros(rows, dtype=bool) if all_null is None else all_null), any_null


def _strictly_increasing(values: np.ndarray) -> bool:
    return bool(len(values) < 2 or np.all(values[1:] > values[:-1]))


def duplicates(columns: list[KeyColumn], *, skip_all_null: bool, skip_any_null: bool = False,
               ) -> tuple[dict[int, int], np.ndarray]:
    """Rows whose parsed key repeats an earlier row: {row: previous row}, plus the all-None rows.

    Fast path: when parsing is one-to-one on every column, ids ranked in text order make the
    composite strictly increasing for a table sorted by its key (as tables.py writes them);
    otherwise a stable sort finds the repeats.
    """
    rows = len(columns[0].index) if columns else 0
    per_col = [c.ids() for c in columns]
    all_null, any_null = _null_rows(columns, per_col, rows)
    skip = any_null if skip_any_null else (all_null if skip_all_null else None)
    if skip is not None and not skip.any():
        skip = None
    one_to_one = all(n == len(c.raw) for c, (_, n, _) in zip(columns, per_col, strict=True))
    if one_to_one:
        ranks = []
        for c in columns:
            order = pc.sort_indices(c.raw).to_numpy(zero_copy_only=False)
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(len(order), dtype=np.int64)
            ranks.append((rank, c.index, len(order)))
        comp = _combine(ranks)
        if _strictly_increasing(comp if skip is None else comp[~skip]):
            return {}, np.flatnonzero(all_null)
        del comp
    comp = _row_ids(columns, per_col)
    candidates = np.arange(rows) if skip is None else np.flatnonzero(~skip)
    order = candidates[np.argsort(comp[candidates], kind="stable")]
    same = comp[order[1:]] == comp[order[:-1]]
    later, earlier = order[1:][same], order[:-1][same]
    return dict(zip(later.tolist(), earlier.tolist(), strict=True)), np.flatnonzero(all_null)


@dataclass
class Reference:
    """The parsed key values of a referenced resource (rows whose key is all None left out)."""

    single: pa.Array | None  # one-field keys: distinct parsed values
    tuples: set[tuple[Any, ...]] | None  # several fields: distinct parsed tuples

    @classmethod
    def of(cls, columns: list[KeyColumn]) -> Reference:
        """Collect the reference values of one foreign key."""
        if len(columns) == 1:
            c = columns[0]
            used = np.unique(c.index) if len(c.index) else np.zeros(0, dtype=np.int64)
            values = c.canon.take(pa.array(used, pa.int64())).drop_null()
            return cls(pc.unique(values), None)
        return cls(None, set(_distinct_tuples(columns, skip_all_null=True).values()))


def _distinct_tuples(columns: list[KeyColumn], *, skip_all_null: bool) -> dict[int, tuple[Any, ...]]:
    """First row of each distinct parsed tuple → the tuple (Python values)."""
    per_col = [c.ids() for c in columns]
    comp = _row_ids(columns, per_col)
    _, first = np.unique(comp, return_index=True)
    canon = [c.canon.to_pylist() for c in columns]
    out = {}
    for row in first.tolist():
        values = tuple(canon[k][int(c.index[row])] for k, c in enumerate(columns))
        if skip_all_null and all(v is None for v in values):
            continue
        out[row] = values
    return out


def _in_reference(canon: pa.Array, ref: pa.Array) -> np.ndarray:
    """Per parsed value: found among the reference values (Python equality across types)."""
    numeric = (pa.int64(), pa.float64())
    if canon.type != ref.type and canon.type in numeric and ref.type in numeric:
        canon, ref = pc.cast(canon, pa.float64()), pc.cast(ref, pa.float64())
    if canon.type != ref.type:
        return np.zeros(len(canon), dtype=bool)
    return np.asarray(pc.is_in(canon, value_set=ref).to_numpy(zero_copy_only=False), dtype=bool)


def dangling(columns: list[KeyColumn], ref: Reference) -> np.ndarray:
    """Rows whose key is not all None and not found in the reference."""
    if ref.single is not None:
        c = columns[0]
        bad = ~_in_reference(c.canon, ref.single) & ~np.asarray(
            c.canon.is_null().to_numpy(zero_copy_only=False))
        return np.flatnonzero(bad[c.index])
    assert ref.tuples is not None
    per_col = [c.ids() for c in columns]
    comp = _row_ids(columns, per_col)
    firsts = _distinct_tuples(columns, skip_all_null=True)
    bad = [comp[row] for row, values in firsts.items() if values not in ref.tuples]
    return np.flatnonzero(np.isin(comp, np.array(bad, dtype=np.int64))) if bad else np.zeros(0, int)
