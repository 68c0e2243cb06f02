"""Deterministic serialisation of resource frames to CSV and JSON, driven by the Table Schema."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd


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
    """One cell as CSV text ('' for missing)."""
    if _is_missing(value):
        return ""
    if ftype == "integer":
        return str(int(float(value)))
    if ftype == "number":
        return _number_text(value)
    if ftype == "boolean":
        return "true" if value in (True, "true", "True", 1, "1") else "false"
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
        return value in (True, "true", "True", 1, "1")
    return str(value)


def ordered(frame: pd.DataFrame, schema: dict[str, Any]) -> pd.DataFrame:
    """Columns in schema order (missing ones added empty), rows sorted by primary key."""
    names = field_names(schema)
    out = frame.copy()
    for name in names:
        if name not in out.columns:
            out[name] = ""
    out = out[names]
    key = primary_key(schema) or names
    sort_frame = out[key].astype(str)
    order = sort_frame.sort_values(by=key, kind="mergesort").index
    return out.loc[order].reset_index(drop=True)


def _quote(text: str) -> str:
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def to_csv_bytes(frame: pd.DataFrame, schema: dict[str, Any]) -> bytes:
    """UTF-8, comma, header row, '\\n' line endings, schema column order."""
    types = [f.get("type", "string") for f in schema["fields"]]
    names = field_names(schema)
    lines = [",".join(_quote(n) for n in names)]
    for row in ordered(frame, schema).itertuples(index=False, name=None):
        lines.append(",".join(_quote(cell_text(v, t)) for v, t in zip(row, types, strict=True)))
    return ("\n".join(lines) + "\n").encode("utf-8")


def to_json_bytes(frame: pd.DataFrame, schema: dict[str, Any]) -> bytes:
    """A JSON array of objects with schema key order and typed values."""
    types = [f.get("type", "string") for f in schema["fields"]]
    names = field_names(schema)
    rows = [{n: cell_json(v, t) for n, v, t in zip(names, row, types, strict=True)}
            for row in ordered(frame, schema).itertuples(index=False, name=None)]
    return (json.dumps(rows, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def read_csv_strings(path: Path) -> pd.DataFrame:
    """Read a published CSV with every cell as a string ('' for empty)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
