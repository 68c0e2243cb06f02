"""Compact text columns: pandas categoricals with sorted categories, built and mapped by codes.

Statistics tables repeat a few labels and codes millions of times. Held as categoricals whose
categories are sorted (so the code order is the text order: sorting by codes sorts the text),
a column costs one or two bytes per row, and anything computed from the text (a mapping, a
check, a neutralisation) runs once per distinct value and is taken back to the rows by code.
"""

from __future__ import annotations

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


def map_number(column: pd.Series, func: Callable[[pd.Series], pd.Series], dtype: str) -> pd.Series:
    """Apply a vectorised function to every distinct value; the result column has ``dtype``."""
    codes, values = codes_values(column)
    per_value = pd.array(func(values), dtype=dtype)
    taken = per_value.take(codes, allow_fill=True)
    return pd.Series(taken, index=column.index, name=column.name)


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
    stacked = np.stack([codes.astype(np.int64) + 1 for codes, _ in parts])
    if float(np.prod(np.array(sizes, dtype=float))) < 2.0 ** 62:
        key = np.zeros(len(columns[0]), dtype=np.int64)
        for row, size in zip(stacked, sizes, strict=True):
            key = key * size + row
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    else:  # too many combinations for one integer key
        _, first, inverse = np.unique(stacked, axis=1, return_index=True, return_inverse=True)
    distinct_rows = pd.DataFrame({
        str(col.name): pd.Series(np.concatenate([values.to_numpy(dtype=object),
                                                 np.array([None], dtype=object)])[codes[first]],
                                 dtype=object)
        for col, (codes, values) in zip(columns, parts, strict=True)})
    return inverse.reshape(-1), func(distinct_rows)
