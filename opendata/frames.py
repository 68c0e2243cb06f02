"""Compact text columns: pandas categoricals with sorted categories, built and mapped by codes.

Statistics tables repeat a few labels and codes millions of times. Held as categoricals whose
categories are sorted (so the code order is the text order: sorting by codes sorts the text),
a column costs one or two bytes per row, and anything computed from the text (a mapping, a
check, a neutralisation) runs once per distinct value and is taken back to the rows by code.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd


def code_dtype(n: int) -> type[np.signedinteger[Any]]:
    """The smallest signed integer type for codes of ``n`` distinct values (and -1)."""
    return np.int8 if n < 127 else np.int16 if n < 32_767 else np.int32


def from_codes(codes: np.ndarray, values: Any, index: pd.Index | None = None,
               name: str | None = None) -> pd.Series:
    """Rows that take ``values[code]`` (code -1 or a missing value: missing), as a compact column.

    ``values`` may repeat and be unsorted; the result's categories are the distinct texts, sorted.
    """
    vals = pd.Series(values, dtype=object)
    missing = vals.isna().to_numpy()
    texts = vals.where(~missing, "").astype(str).to_numpy(dtype=object)
    cats, inverse = np.unique(texts, return_inverse=True) if len(texts) else \
        (np.array([], dtype=object), np.array([], dtype=np.int64))
    lookup = np.append(np.where(missing, -1, inverse), -1).astype(code_dtype(len(cats)))
    new = lookup[np.asarray(codes)]  # code -1 picks the last entry: -1, missing
    cat = pd.Categorical.from_codes(new, categories=pd.Index(cats, dtype=object), ordered=True)
    return pd.Series(cat, index=index, name=name)


def compact(column: pd.Series | Any) -> pd.Series:
    """A text column as a compact categorical (an existing one keeps its codes, sorted)."""
    s = column if isinstance(column, pd.Series) else pd.Series(column)
    if isinstance(s.dtype, pd.CategoricalDtype):
        return from_codes(s.cat.codes.to_numpy(), s.cat.categories.to_numpy(dtype=object),
                          s.index, s.name)
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    return from_codes(codes, np.asarray(uniques, dtype=object), s.index, s.name)


def is_compact(column: pd.Series) -> bool:
    """True for a categorical column."""
    return isinstance(column.dtype, pd.CategoricalDtype)


def codes_values(column: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """(code per row, distinct values as a Series) of any column; code -1 marks a missing value."""
    if is_compact(column):
        return column.cat.codes.to_numpy(), pd.Series(column.cat.categories, dtype=object)
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    return codes, pd.Series(np.asarray(uniques, dtype=object), dtype=object)


def map_text(column: pd.Series, func: Callable[[pd.Series], pd.Series] | Mapping[str, str],
             default: str = "") -> pd.Series:
    """Apply a vectorised function (or a mapping, unmapped → ``default``) to every distinct value
    of a column; the result is a compact column with the same index."""
    codes, values = codes_values(column)
    out = values.map(func).fillna(default) if isinstance(func, Mapping) else func(values)
    return from_codes(codes, out.to_numpy(dtype=object), column.index, column.name)


def constant(value: str, index: pd.Index) -> pd.Series:
    """A compact column holding one text in every row."""
    return from_codes(np.zeros(len(index), dtype=np.int8), [value], index)


def mask_of(column: pd.Series, per_value: Callable[[pd.Series], Any]) -> np.ndarray:
    """A boolean per row from a vectorised test of each distinct value (missing: False)."""
    codes, values = codes_values(column)
    hits = np.append(np.asarray(per_value(values), dtype=bool), False)
    return hits[codes]  # code -1 picks the last entry: False


def distinct(column: pd.Series) -> list[str]:
    """The distinct non-missing values of a column as sorted texts."""
    codes, values = codes_values(column)
    used = np.unique(codes[codes >= 0]) if is_compact(column) else np.arange(len(values))
    return sorted(str(v) for v in values.to_numpy()[used])


def combine(columns: list[pd.Series], func: Callable[[pd.DataFrame], Any]) -> tuple[np.ndarray,
                                                                                     Any]:
    """(row → distinct-row code, ``func`` of the distinct rows) for several columns at once.

    ``func`` gets a small frame (one row per distinct combination, columns as text or values)
    and returns one result per row of it; take the results back with the codes.
    """
    parts = [codes_values(c) for c in columns]
    sizes = [len(values) + 1 for _, values in parts]
    product = float(np.prod(np.array(sizes, dtype=float)))
    if product <= max(len(columns[0]), 1 << 16):  # dense: one flag per possible combination
        key: np.ndarray[Any, Any] = np.zeros(len(columns[0]),
                                             dtype=np.int64 if product >= 2 ** 31 else np.int32)
        for (codes, _), size in zip(parts, sizes, strict=True):
            key *= size
            key += codes
            key += 1
        present = np.zeros(int(product), dtype=bool)
        present[key] = True
        combos = np.flatnonzero(present)
        rank = np.cumsum(present, dtype=np.int32) - 1
        inverse, first_key = rank[key], combos
        codes_of = []
        rest = first_key
        for size in reversed(sizes):
            codes_of.append(rest % size - 1)
            rest = rest // size
        combo_codes = codes_of[::-1]
    else:  # many combinations: sort them
        stacked = np.stack([codes.astype(np.int64) for codes, _ in parts])
        _, first, inverse = np.unique(stacked, axis=1, return_index=True, return_inverse=True)
        combo_codes = [codes[first] for codes, _ in parts]
    distinct_rows = pd.DataFrame({
        str(col.name): pd.Series(np.concatenate([values.to_numpy(dtype=object),
                                                 np.array([None], dtype=object)])[codes],
                                 dtype=object)
        for col, (_, values), codes in zip(columns, parts, combo_codes, strict=True)})
    return np.asarray(inverse).reshape(-1), func(distinct_rows)


def sort_codes(column: pd.Series) -> np.ndarray:
    """Numbers per row that sort (and compare equal) like the column's values; missing last."""
    if is_compact(column):
        codes = column.cat.codes.to_numpy()
        return np.where(codes < 0, len(column.cat.categories), codes) if (codes < 0).any() \
            else codes
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biuf":
        return column.to_numpy()
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    rank = np.empty(len(uniques) + 1, dtype=np.int64)
    rank[np.argsort(np.asarray(uniques), kind="stable")] = np.arange(len(uniques))
    rank[-1] = len(uniques)  # code -1, missing: last
    return rank[codes]


def sort_frame(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The frame stably sorted by ``keys`` with a fresh index, moved one column at a time (the
    sorted copy never exists next to the whole unsorted frame)."""
    if not keys or frame.empty:
        return frame.reset_index(drop=True)
    order = np.lexsort([sort_codes(frame[k]) for k in reversed(keys)])
    rest = frame.copy(deep=False)
    return pd.DataFrame({c: rest.pop(c).take(order).reset_index(drop=True)
                         for c in list(rest.columns)}, copy=False)


def duplicated(frame: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """True for each row whose ``keys`` repeat an earlier row's (``DataFrame.duplicated``), by a
    stable sort of small codes and a comparison of neighbours: no hash table of rows."""
    n = len(frame)
    if n < 2:
        return np.zeros(n, dtype=bool)
    codes = [sort_codes(frame[k]) for k in keys]
    order = np.lexsort(codes[::-1])
    same = np.ones(n - 1, dtype=bool)
    for c in codes:
        ordered = c[order]
        equal = ordered[1:] == ordered[:-1]
        if ordered.dtype.kind == "f":  # NaN repeats NaN, as in pandas
            equal |= np.isnan(ordered[1:]) & np.isnan(ordered[:-1])
        same &= equal
    out = np.zeros(n, dtype=bool)
    out[order[1:][same]] = True
    return out


def release_memory() -> None:
    """Hand freed memory back to the system after a bulk step (glibc keeps freed heap pages of
    many small blocks, which would stack under every later peak). No-op where unsupported."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    if "pyarrow" in sys.modules:  # Arrow's own pool (mimalloc/jemalloc) keeps freed blocks too
        sys.modules["pyarrow"].default_memory_pool().release_unused()
