"""Deterministic serialisation of resource frames to CSV and JSON, driven by the Table Schema.

The files are written from columns and streamed in chunks of rows: the rows are sorted once (by
position, no copy of the frame), then every chunk is formatted column by column (numpy for
numbers, one Python call per *distinct* string) and joined row by row in C (``str.join``,
``str.__mod__``). ``cell_text`` / ``cell_json`` define the text of one value; the columnar
formatters below produce exactly the same text, byte for byte (tests/test_tables.py).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from json.encoder import encode_basestring
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from opendata.frames import code_dtype

CHUNK_ROWS = 50_000  # rows formatted and written at a time: bounds the memory of a write
_TRUE = (True, "true", "True", 1, "1")
_BIG_ROUND = 2.0 ** 19  # |x| >= 2**19: round(x, 10) == x (a float's spacing there exceeds 1e-10)
_INT64_LIMIT = 2.0 ** 63
_JSON_SPECIAL = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def load_schema(path: Path) -> dict[str, Any]:
    """Read a Table Schema JSON file."""
    return dict(json.loads(path.read_text(encoding="utf-8")))


def field_names(schema: dict[str, Any]) -> list[str]:
    """Field names in schema order."""
    return [f["name"] for f in schema["fields"]]


def primary_key(schema: dict[str, Any]) -> list[str]:
    """The primary key as a list (possibly empty)."""
    pk = schema.get("primaryKey") or []
    return [pk] if isinstance(pk, str) else list(pk)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA \
        or (isinstance(value, str) and value == "")


def _number_text(value: Any) -> str:
    f = float(value)
    if f.is_integer() and abs(f) < 1e15:
        return str(int(f))
    return repr(round(f, 10))


def cell_text(value: Any, ftype: str) -> str:
    """One cell as CSV text ('' for missing), before quoting."""
    if _is_missing(value):
        return ""
    if ftype == "integer":
        return str(int(float(value)))
    if ftype == "number":
        return _number_text(value)
    if ftype == "boolean":
        return "true" if value in _TRUE else "false"
    return str(value)


def cell_json(value: Any, ftype: str) -> Any:
    """One cell as a JSON value (None for missing)."""
    if _is_missing(value):
        return None
    if ftype == "integer":
        return int(float(value))
    if ftype == "number":
        f = float(value)
        return int(f) if f.is_integer() and abs(f) < 1e15 else round(f, 10)
    if ftype == "boolean":
        return value in _TRUE
    return str(value)


def quote(text: str) -> str:
    """CSV quoting: quotes around text with a comma, quote or line break; quotes doubled."""
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _text_ranks(column: pd.Series) -> np.ndarray:
    """Per row, the rank of ``str(value)`` among the column's distinct texts (sort key)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        values = pd.Series(column.cat.categories, dtype=object)
        if codes.min(initial=0) < 0:  # a missing cell: sorted last
            values = pd.concat([values, pd.Series([np.nan], dtype=object)], ignore_index=True)
            codes = np.where(codes < 0, len(values) - 1, codes)
    else:
        codes, uniques = pd.factorize(column, use_na_sentinel=False)
        values = pd.Series(np.asarray(uniques, dtype=object), dtype=object)
    texts = pd.Series(values, dtype=object).astype(str)
    missing = texts.isna().to_numpy()  # missing stays missing as text: sorted last
    rank = np.full(len(texts), len(texts), dtype=np.int64)
    _, rank[~missing] = np.unique(texts[~missing].to_numpy(dtype=object), return_inverse=True)
    return rank.astype(code_dtype(len(texts) + 1))[codes]  # one or two bytes a row, mostly


def sort_positions(frame: pd.DataFrame, schema: dict[str, Any]) -> np.ndarray:
    """Row positions sorted by the primary key (all fields without one), as text, stable.

    Each key column is ranked by the text of its distinct values, then the rows are sorted by
    those integer ranks: no text per row is made.
    """
    key = [k for k in (primary_key(schema) or field_names(schema)) if k in frame.columns]
    if not key or frame.empty:
        return np.arange(len(frame))
    ranks = [_text_ranks(frame[k]) for k in key]
    return np.lexsort(ranks[::-1]).astype(np.int64)


# --- columnar formatting ---------------------------------------------------------------------

def _round10(x: np.ndarray) -> np.ndarray:
    """``round(v, 10)`` for every v, as Python rounds (correctly rounded), vectorised.

    rint(x * 1e10) / 1e10 equals Python's result except where x * 1e10 rounded to an exact
    half-integer (then the product's rounding may have flipped the tie): those few are redone
    with Python's ``round``. For |x| >= 2**19 (and inf, nan) ``round`` returns x itself.
    """
    big = ~(np.abs(x) < _BIG_ROUND)
    y = np.where(big, 0.0, x) * 1e10
    out = np.rint(y) / 1e10
    out[big] = x[big]
    for i in np.flatnonzero(np.abs(y - np.trunc(y)) == 0.5):
        out[i] = round(float(x[i]), 10)
    return out


def _int_texts(f: np.ndarray) -> list[str]:
    """``str(int(v))`` for every float v (truncation toward zero, exact for huge values)."""
    if not np.isfinite(f).all():
        bad = float(f[~np.isfinite(f)][0])
        raise ValueError(f"cannot write {bad!r} in an integer field: only finite numbers fit")
    t = np.trunc(f)
    small = np.abs(t) < _INT64_LIMIT
    if small.all():
        return list(map(str, t.astype(np.int64).tolist()))
    out = np.empty(len(t), dtype=object)
    out[small] = list(map(str, t[small].astype(np.int64).tolist()))
    out[~small] = [str(int(v)) for v in t[~small].tolist()]
    return list(out)


def _number_texts(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_number_text`` for every float: (texts, non-finite mask)."""
    finite = np.isfinite(f)
    whole = finite & (np.trunc(np.where(finite, f, 0.0)) == f) & (np.abs(f) < 1e15)
    out = np.empty(len(f), dtype=object)
    out[whole] = list(map(str, f[whole].astype(np.int64).tolist()))
    rest = ~whole
    out[rest] = list(map(repr, _round10(f[rest]).tolist()))
    return out, ~finite


class _Cells:
    """The formatted cells of one column of one chunk: CSV text and JSON text per row."""

    __slots__ = ("csv", "json")

    def __init__(self, csv: np.ndarray | pa.Array, json_: np.ndarray | pa.Array) -> None:
        self.csv = csv
        self.json = json_


def _with_missing(texts: np.ndarray, missing: np.ndarray, empty: str) -> np.ndarray:
    if not missing.any():
        return texts
    out = np.full(len(missing), empty, dtype=object)
    out[~missing] = texts
    return out


def _whole_cells(data: np.ndarray, missing: np.ndarray) -> _Cells:
    """Whole numbers below 2**63 in an integer or number field: digits made by Arrow (C++)."""
    ints = np.where(missing, 0, np.trunc(data.astype(np.float64))).astype(np.int64)
    texts = pa.array(ints, mask=missing).cast(pa.string())
    return _Cells(pc.fill_null(texts, ""), pc.fill_null(texts, "null"))


def _all_whole(data: np.ndarray, missing: np.ndarray, ftype: str) -> bool:
    f = data[~missing].astype(np.float64)
    if not np.isfinite(f).all():
        return False
    limit = _INT64_LIMIT if ftype == "integer" else 1e15
    return bool((np.abs(f) < limit).all() and (ftype == "integer" or (np.trunc(f) == f).all()))


def _numeric_cells(data: np.ndarray, missing: np.ndarray, ftype: str) -> _Cells:
    """A column of numpy numbers (bool, int, float) with its missing mask."""
    if ftype in ("integer", "number") and _all_whole(data, missing, ftype):
        return _whole_cells(data, missing)
    vals = data[~missing]
    if ftype in ("integer", "number", "boolean"):
        f = vals.astype(np.float64)
        if ftype == "integer":
            csv = np.array(_int_texts(f), dtype=object)
            js = csv
        elif ftype == "number":
            csv, special = _number_texts(f)
            js = csv.copy()
            js[special] = [_JSON_SPECIAL[t] for t in csv[special]]
        else:
            csv = np.where(f == 1, "true", "false").astype(object)
            js = csv
    else:  # str(value) of the Python scalar, as a JSON string
        if vals.dtype.kind == "b":
            texts = np.where(vals, "True", "False").astype(object)
        elif vals.dtype.kind in "iu":
            texts = np.array(list(map(str, vals.tolist())), dtype=object)
        else:
            texts = np.array(list(map(repr, vals.astype(np.float64).tolist())), dtype=object)
        csv = texts  # digits, signs, '.', 'e', 'inf', 'True': nothing to quote or escape
        js = np.array(list(map('"%s"'.__mod__, texts.tolist())), dtype=object)
    return _Cells(_with_missing(csv, missing, ""), _with_missing(js, missing, "null"))


_MISSING_TYPES = (type(None), type(pd.NA), float)  # null values the reference rule calls missing


def _object_cells(arr: np.ndarray, ftype: str) -> _Cells:
    """An object column: strings (plus None/NaN/NA) by distinct value, anything else one by one."""
    codes, uniques = pd.factorize(arr)  # nulls (None, NaN, NA, NaT, ...) get code -1
    null = codes < 0
    if all(type(u) is str for u in uniques) and \
            all(issubclass(t, _MISSING_TYPES) for t in set(map(type, arr[null]))):
        csv_u = np.array([quote(cell_text(u, ftype)) for u in uniques] + [""], dtype=object)
        json_u = np.array([json.dumps(cell_json(u, ftype), ensure_ascii=False) for u in uniques]
                          + ["null"], dtype=object)
        return _Cells(csv_u[codes], json_u[codes])  # code -1 picks the missing text
    # mixed or unusual objects (no builder makes them): the reference rule for every value
    csv = np.array([quote(cell_text(v, ftype)) for v in arr], dtype=object)
    js = np.array([json.dumps(cell_json(v, ftype), ensure_ascii=False) for v in arr], dtype=object)
    return _Cells(csv, js)


def _text_categories(dtype: Any) -> bool:
    return isinstance(dtype, pd.CategoricalDtype) and all(type(v) is str for v in dtype.categories)


def _category_texts(dtype: pd.CategoricalDtype, ftype: str) -> _Cells:
    """The CSV and JSON text of every category, plus the missing text last (Arrow arrays)."""
    cells = _object_cells(np.asarray(dtype.categories, dtype=object), ftype)
    return _Cells(pa.array([*cells.csv.tolist(), ""], type=pa.string()),
                  pa.array([*cells.json.tolist(), "null"], type=pa.string()))


def _category_cells(codes: np.ndarray, texts: _Cells) -> _Cells:
    """The cells of rows with these category codes (-1: missing, the last text)."""
    pick = pa.array(np.where(codes < 0, len(texts.csv) - 1, codes).astype(np.int32))
    return _Cells(pc.take(texts.csv, pick), pc.take(texts.json, pick))


def _cells(col: pd.Series, ftype: str) -> _Cells:
    """Format one column chunk the way ``cell_text`` / ``cell_json`` format each of its values."""
    dtype = col.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        data = col.to_numpy()
        missing = np.isnan(data) if dtype.kind == "f" else np.zeros(len(data), dtype=bool)
        return _numeric_cells(data, missing, ftype)
    if isinstance(dtype, pd.BooleanDtype | pd.Int64Dtype | pd.Int32Dtype | pd.Int16Dtype
                  | pd.Int8Dtype | pd.UInt64Dtype | pd.UInt32Dtype | pd.UInt16Dtype
                  | pd.UInt8Dtype | pd.Float64Dtype):
        mask = col.isna().to_numpy()
        numpy_type = dtype.numpy_dtype
        fill = False if numpy_type.kind == "b" else (np.nan if numpy_type.kind == "f" else 0)
        data = col.to_numpy(dtype=numpy_type, na_value=fill)
        if numpy_type.kind == "f":
            mask = mask | np.isnan(data)
        return _numeric_cells(data, mask, ftype)
    if _text_categories(dtype):  # each distinct text formatted once
        return _category_cells(col.cat.codes.to_numpy(), _category_texts(dtype, ftype))
    if (isinstance(dtype, np.dtype) and dtype.kind == "O") or isinstance(dtype, pd.StringDtype):
        return _object_cells(col.to_numpy(dtype=object), ftype)
    # other dtypes (dates, categories, ...): the values exactly as iterating the column yields them
    return _object_cells(np.fromiter(iter(col), dtype=object, count=len(col)), ftype)


# --- streaming writers -----------------------------------------------------------------------

def _chunks(frame: pd.DataFrame, schema: dict[str, Any], size: int) -> Iterator[list[_Cells]]:
    """The formatted columns of each chunk of sorted rows."""
    order = sort_positions(frame, schema)
    fields = [(f["name"], f.get("type", "string")) for f in schema["fields"]]
    texts = {name: (frame[name].cat.codes.to_numpy(), _category_texts(frame[name].dtype, ftype))
             for name, ftype in fields
             if name in frame.columns and _text_categories(frame[name].dtype)}
    for start in range(0, len(order), size):
        pos = order[start:start + size]
        cols = []
        for name, ftype in fields:
            if name in texts:  # categories formatted once for the whole column
                cols.append(_category_cells(texts[name][0][pos], texts[name][1]))
            elif name in frame.columns:
                cols.append(_cells(frame[name].take(pos), ftype))
            else:
                cols.append(_Cells(np.full(len(pos), "", dtype=object),
                                   np.full(len(pos), "null", dtype=object)))
        yield cols


def _arrow(texts: Any) -> pa.Array:
    """Formatted cells as an Arrow string array (taken as is when they already are one)."""
    return texts if isinstance(texts, pa.Array) else pa.array(texts, type=pa.string())


def _body(parts: list[Any]) -> memoryview:
    """The bytes of ``parts`` (Arrow arrays and text scalars) joined per row, rows back to back.

    One C++ call per chunk (``binary_join_element_wise`` with an empty separator): no Python
    object per row or cell.
    """
    args = [p if isinstance(p, pa.Array) else pa.scalar(p, type=pa.string()) for p in parts]
    rows = pc.binary_join_element_wise(*args, pa.scalar("", type=pa.string()))
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32, count=len(rows) + 1,
                            offset=rows.offset * 4)
    data = rows.buffers()[2]
    return memoryview(data)[int(offsets[0]):int(offsets[-1])] if data is not None \
        else memoryview(b"")


def _json_pieces(names: list[str]) -> list[str]:
    """The text around the values of one JSON row object (json.dumps(indent=1) layout), with
    the ',\n' that separates it from the row before."""
    keys = [encode_basestring(n) + ": " for n in names]
    return [",\n {\n  " + keys[0], *(",\n  " + k for k in keys[1:]), "\n }"] if names \
        else [",\n {}"]


def _csv_body(cols: list[_Cells]) -> memoryview:
    parts: list[Any] = [x for col in cols for x in (_arrow(col.csv), ",")]
    return _body([*parts[:-1], "\n"] if parts else ["\n"])


def _json_body(cols: list[_Cells], pieces: list[str], first: bool) -> bytes | memoryview:
    parts = [x for piece, col in zip(pieces, cols, strict=False) for x in (piece, _arrow(col.json))]
    body = _body([*parts, pieces[-1]] if cols else pieces)
    return b"[\n" + bytes(body[2:]) if first else body


def _write_csv(out: IO[bytes], cols: list[_Cells]) -> None:
    out.write(_csv_body(cols))


def _write_json(out: IO[bytes], cols: list[_Cells], pieces: list[str], first: bool) -> None:
    out.write(_json_body(cols, pieces, first))


def write_streams(frame: pd.DataFrame, schema: dict[str, Any], csv_out: IO[bytes] | None,
                  json_out: IO[bytes] | None, chunk_rows: int = CHUNK_ROWS) -> int:
    """Write the CSV and/or JSON of a frame to binary streams, chunk by chunk; return the rows.

    The cells of a chunk are formatted here; joining them into rows and writing (C++ and I/O,
    without the GIL) run in one thread per file, overlapping the next chunk's formatting. At
    most one chunk per file is in flight, so memory stays bounded.
    """
    names = field_names(schema)
    if csv_out is not None:
        csv_out.write((",".join(quote(n) for n in names) + "\n").encode("utf-8"))
    pieces = _json_pieces(names)
    rows = 0
    with ThreadPoolExecutor(1, "csv") as csv_pool, ThreadPoolExecutor(1, "json") as json_pool:
        pending: list[Future[Any]] = []
        for cols in _chunks(frame, schema, chunk_rows):
            for f in pending:
                f.result()
            pending = []
            if csv_out is not None:
                pending.append(csv_pool.submit(_write_csv, csv_out, cols))
            if json_out is not None:
                pending.append(json_pool.submit(_write_json, json_out, cols, pieces, rows == 0))
            rows += len(cols[0].csv) if cols else 0
        for f in pending:
            f.result()
    if json_out is not None:
        json_out.write(b"\n]\n" if rows else b"[]\n")
    return rows


def write_tables(frame: pd.DataFrame, schema: dict[str, Any], csv_path: Path | None,
                 json_path: Path | None) -> int:
    """Write the resource's CSV and/or JSON file (rows sorted once); return the row count."""
    with ExitStack() as stack:
        csv_out = stack.enter_context(csv_path.open("wb")) if csv_path else None
        json_out = stack.enter_context(json_path.open("wb")) if json_path else None
        return write_streams(frame, schema, csv_out, json_out)


def write_csv(frame: pd.DataFrame, schema: dict[str, Any], path: Path) -> int:
    """UTF-8, comma, header row, '\\n' line endings, schema column order; return the rows."""
    return write_tables(frame, schema, path, None)


def write_json(frame: pd.DataFrame, schema: dict[str, Any], path: Path) -> int:
    """A JSON array of objects with schema key order and typed values; return the rows."""
    return write_tables(frame, schema, None, path)


def to_csv_bytes(frame: pd.DataFrame, schema: dict[str, Any]) -> bytes:
    """The CSV of ``write_csv`` in memory (small frames, tests)."""
    buf = io.BytesIO()
    write_streams(frame, schema, buf, None)
    return buf.getvalue()


def to_json_bytes(frame: pd.DataFrame, schema: dict[str, Any]) -> bytes:
    """The JSON of ``write_json`` in memory (small frames, tests)."""
    buf = io.BytesIO()
    write_streams(frame, schema, None, buf)
    return buf.getvalue()
