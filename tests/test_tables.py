"""The columnar, streamed CSV/JSON writer against the per-cell writer it replaced (kept here as
the reference): byte-identical on every embedded resource and on hostile example frames."""

from __future__ import annotations

import io
import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import REPO

from opendata import config, pipeline
from opendata.paths import Paths
from opendata.tables import (
    _number_texts,
    _round10,
    load_schema,
    to_csv_bytes,
    to_json_bytes,
    write_csv,
    write_json,
    write_streams,
    write_tables,
)

# --- the reference: tables.py before issue 14, per cell in Python (do not "improve") -----------


def _ref_is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA \
        or (isinstance(value, str) and value == "")


def _ref_number_text(value: Any) -> str:
    f = float(value)
    if f.is_integer() and abs(f) < 1e15:
        return str(int(f))
    return repr(round(f, 10))


def _ref_cell_text(value: Any, ftype: str) -> str:
    if _ref_is_missing(value):
        return ""
    if ftype == "integer":
        return str(int(float(value)))
    if ftype == "number":
        return _ref_number_text(value)
    if ftype == "boolean":
        return "true" if value in (True, "true", "True", 1, "1") else "false"
    return str(value)


def _ref_cell_json(value: Any, ftype: str) -> Any:
    if _ref_is_missing(value):
        return None
    if ftype == "integer":
        return int(float(value))
    if ftype == "number":
        f = float(value)
        return int(f) if f.is_integer() and abs(f) < 1e15 else round(f, 10)
    if ftype == "boolean":
        return value in (True, "true", "True", 1, "1")
    return str(value)


def _ref_ordered(frame: pd.DataFrame, schema: dict[str, Any]) -> pd.DataFrame:
    names = [f["name"] for f in schema["fields"]]
    out = frame.copy()
    for name in names:
        if name not in out.columns:
            out[name] = ""
    out = out[names]
    pk = schema.get("primaryKey") or []
    key = ([pk] if isinstance(pk, str) else list(pk)) or names
    sort_frame = out[key].astype(str)
    order = sort_frame.sort_values(by=key, kind="mergesort").index
    return out.loc[order].reset_index(drop=True)


def _ref_quote(text: str) -> str:
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def ref_csv(frame: pd.DataFrame, schema: dict[str, Any]) -> bytes:
    types = [f.get("type", "string") for f in schema["fields"]]
    names = [f["name"] for f in schema["fields"]]
    lines = [",".join(_ref_quote(n) for n in names)]
    for row in _ref_ordered(frame, schema).itertuples(index=False, name=None):
        lines.append(",".join(_ref_quote(_ref_cell_text(v, t)) for v, t in zip(row, types, strict=True)))
    return ("\n".join(lines) + "\n").encode("utf-8")


def ref_json(frame: pd.DataFrame, schema: dict[str, Any]) -> bytes:
    types = [f.get("type", "string") for f in schema["fields"]]
    names = [f["name"] for f in schema["fields"]]
    rows = [{n: _ref_cell_json(v, t) for n, v, t in zip(names, row, types, strict=True)}
            for row in _ref_ordered(frame, schema).itertuples(index=False, name=None)]
    return (json.dumps(rows, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


# --- helpers -------------------------------------------------------------------------------------

def _streamed(frame: pd.DataFrame, schema: dict[str, Any], chunk_rows: int) -> tuple[bytes, bytes]:
    c, j = io.BytesIO(), io.BytesIO()
    write_streams(frame, schema, c, j, chunk_rows=chunk_rows)
    return c.getvalue(), j.getvalue()


def assert_same(frame: pd.DataFrame, schema: dict[str, Any], what: str) -> None:
    """New writer == reference, whole and in chunks of 1, 2 and 7 rows (chunk seams)."""
    want_csv, want_json = ref_csv(frame, schema), ref_json(frame, schema)
    assert to_csv_bytes(frame, schema) == want_csv, what
    assert to_json_bytes(frame, schema) == want_json, what
    for size in (1, 2, 7):
        assert _streamed(frame, schema, size) == (want_csv, want_json), f"{what}, chunks of {size}"


# --- every embedded resource ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, pd.DataFrame, dict[str, Any]]]:
    """Every resource the builders make from the embedded raw data (no release written)."""
    data = tmp_path_factory.mktemp("tables") / "data"
    shutil.copytree(REPO / "data" / "raw", data / "raw")
    cfg, paths = config.load(), Paths(data)
    out = []
    for pkg in cfg.packages:
        for res in pipeline.build_package(cfg, paths, pkg).resources:
            out.append((f"{pkg}/{res.name}", res.frame, load_schema(res.schema_path)))
    return out


def test_every_embedded_resource_is_byte_identical(
        embedded: list[tuple[str, pd.DataFrame, dict[str, Any]]]) -> None:
    assert len(embedded) >= 10
    for name, frame, schema in embedded:
        assert_same(frame, schema, name)


def test_embedded_resources_shuffled_sort_the_same(
        embedded: list[tuple[str, pd.DataFrame, dict[str, Any]]]) -> None:
    """Sorting by key, not input order: reversed frames give the same files as the reference."""
    for name, frame, schema in embedded:
        back = frame.iloc[::-1].reset_index(drop=True)
        assert_same(back, schema, f"{name} reversed")
        assert to_csv_bytes(back, schema) == to_csv_bytes(frame, schema), name


def test_files_on_disk_match_bytes(embedded: list[tuple[str, pd.DataFrame, dict[str, Any]]],
                                   tmp_path: Path) -> None:
    name, frame, schema = next(e for e in embedded if e[0].endswith("/protection_seekers"))
    assert write_tables(frame, schema, tmp_path / "a.csv", tmp_path / "a.json") == len(frame)
    assert write_csv(frame, schema, tmp_path / "b.csv") == len(frame)
    assert write_json(frame, schema, tmp_path / "b.json") == len(frame)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes() == ref_csv(frame, schema)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes() \
        == ref_json(frame, schema)


# --- hostile example frames ---------------------------------------------------------------------

TEXTS = ["BEISPIEL", 'Anführungs"zeichen"', "Komma, dann mehr", "Zeile\nneu", "Wagen\rrücklauf",
         "Tab\tund\\Backslash", "", "ünïcødé ✓ 𝄞", "\x00\x1f Steuerzeichen", "\u2028\u2029",
         "=1+1 (Formel)", "  Leerzeichen  ", "null", "1e20", "%s %d %%", '""', ","]
NUMBERS = [0.0, -0.0, 1.0, -1.0, 0.1, 0.5, 2.5, 1 / 3, -2 / 3, 1e20, -1e20, 1e15, 1e15 - 1, 1e16,
           9999999999999998.0, 1e-5, 1e-10, 1e-11, -1e-12, 5e-11, 1.5e-10, 2.5e-10, 123456.789,
           524287.123456789, 524288.123456789, 4503599627370497.0, 1.7976931348623157e308,
           5e-324, float("inf"), float("-inf"), float("nan"), 12.3456789012345, 100.0, 3e-5]


def _schema(fields: dict[str, str], pk: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"fields": [{"name": n, "type": t} for n, t in fields.items()]}
    if pk is not None:
        schema["primaryKey"] = pk
    return schema


def test_hostile_strings_in_every_field_type() -> None:
    n = len(TEXTS)
    frame = pd.DataFrame({"id": [f"BEISPIEL-{i:02d}" for i in range(n)],
                          "text": pd.Series(TEXTS, dtype=object),
                          "text_str": pd.Series(TEXTS, dtype="str"),
                          "date": ["2024-12-31", "", None, "2020", "31.12.2024"] * 3 + ["x", "y"],
                          "year": ["2024", "", "1999", None, "0"] * 3 + ["1", "2"],
                          "flag": ["true", "True", "1", "false", "TRUE", "", None, "0"] * 2 + ["yes"],
                          "count": ["1", " 2 ", "3.9", "-4.1", "1_000", "", None, "1e3"] * 2 + ["7"],
                          "value": ["0.1", "1e20", "-0.0", "1e-12", "nan", "inf", "", None] * 2
                          + ["12.3456789012345"]})
    schema = _schema({"id": "string", "text": "string", "text_str": "string", "date": "date",
                      "year": "year", "flag": "boolean", "count": "integer", "value": "number",
                      "absent": "string", "Feld, mit \"Zeichen\"": "string"}, ["id"])
    assert_same(frame, schema, "hostile strings")
    assert_same(frame, _schema({n: t["type"] for n, t in
                                ((f["name"], f) for f in schema["fields"])}), "no primary key")


def test_hostile_numbers_in_numeric_dtypes() -> None:
    n = len(NUMBERS)
    ints = list(range(-3, n - 3))
    frame = pd.DataFrame({"id": [f"BEISPIEL-{i:02d}" for i in range(n)],
                          "number": pd.Series(NUMBERS, dtype="float64"),
                          "number_f32": pd.Series([v if abs(v) < 3e38 else v / 1e300 for v in NUMBERS],
                                                  dtype="float32"),
                          "number_obj": pd.Series(NUMBERS, dtype=object),
                          "number_int": pd.Series(ints, dtype="int64"),
                          "whole": pd.Series([float(i) for i in ints], dtype="float64"),
                          "masked": pd.Series([None if i % 5 == 0 else i for i in ints], dtype="Int64"),
                          "masked_f": pd.Series([None if i % 4 == 0 else i / 8 for i in ints],
                                                dtype="Float64"),
                          "truth": [i % 2 == 0 for i in ints],
                          "truth_masked": pd.Series([None if i % 3 == 0 else i % 2 == 0 for i in ints],
                                                    dtype="boolean"),
                          "text_of_number": pd.Series(NUMBERS, dtype="float64")})
    fields = {"id": "string", "number": "number", "number_f32": "number", "number_obj": "number",
              "number_int": "number", "whole": "integer", "masked": "integer", "masked_f": "number",
              "truth": "boolean", "truth_masked": "boolean", "text_of_number": "string"}
    assert_same(frame, _schema(fields, ["id"]), "numbers")
    # the same columns read as other types: integers as numbers/booleans/years, floats as strings
    other = {"id": "string", "number_int": "boolean", "whole": "number", "masked": "year",
             "masked_f": "string", "truth": "integer", "truth_masked": "string", "number": "string",
             "number_f32": "string", "number_obj": "string", "text_of_number": "date"}
    assert_same(frame, _schema(other, ["id"]), "numbers as other types")


def test_sort_by_numeric_and_missing_keys() -> None:
    """Keys sort as text (as published), missing keys last, ties in input order."""
    frame = pd.DataFrame({"k": pd.Series([10.0, 9.0, None, 9.0, -0.0, 0.0, 1e20, None], dtype="float64"),
                          "j": pd.Series([1, 2, 3, 4, 5, 6, None, 8], dtype="Int64"),
                          "s": pd.Series(["b", None, "a", "", "B", "ä", "a", "Z"], dtype=object),
                          "v": [f"BEISPIEL {i}" for i in range(8)]})
    for pk in (["k"], ["s"], ["j"], ["s", "k"], ["k", "j", "s"], None):
        schema = _schema({"k": "number", "j": "integer", "s": "string", "v": "string"}, pk)
        assert_same(frame, schema, f"key {pk}")


def test_mixed_and_unusual_objects_fall_back_to_the_reference_rule() -> None:
    values = [1, 1.0, True, "1", -0.0, 0.0, None, float("nan"), pd.NA, pd.NaT, np.float32(0.1),
              pd.Timestamp("2024-12-31"), np.int64(7), "BEISPIEL"]
    frame = pd.DataFrame({"id": [f"{i:02d}" for i in range(len(values))],
                          "s": pd.Series(values, dtype=object),
                          "d": pd.date_range("2024-01-01", periods=len(values), freq="D"),
                          "c": pd.Categorical(["x", "y"] * (len(values) // 2))})
    assert_same(frame, _schema({"id": "string", "s": "string", "d": "date", "c": "string"}, ["id"]),
                "mixed objects")
    numeric = frame[~frame.index.isin([9, 11, 13])]  # NaT, Timestamp, text: the reference raises
    assert_same(numeric.reset_index(drop=True),
                _schema({"id": "string", "s": "number", "c": "string"}, ["id"]), "mixed as numbers")


def test_empty_frame_and_single_field() -> None:
    empty = pd.DataFrame({"id": pd.Series([], dtype=object), "n": pd.Series([], dtype="float64")})
    assert_same(empty, _schema({"id": "string", "n": "number"}, ["id"]), "empty")
    assert to_json_bytes(empty, _schema({"id": "string"})) == b"[]\n"
    one = pd.DataFrame({"id": ["b", "", "a,b", None]})
    assert_same(one, _schema({"id": "string"}), "one field")


def test_integer_field_with_non_finite_value_fails_clearly() -> None:
    frame = pd.DataFrame({"n": [1.0, float("inf")]})
    with pytest.raises(ValueError, match="integer field"):
        to_csv_bytes(frame, _schema({"n": "integer"}))


# --- float formatting, value by value ---------------------------------------------------------------

def _float_corpus(seed: int = 14) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.integers(0, 14, 60_000)
    parts = [
        rng.integers(0, 2 ** 64, 60_000, dtype=np.uint64).view(np.float64),  # any bit pattern
        rng.standard_normal(60_000) * 10.0 ** rng.integers(-14, 22, 60_000),  # every magnitude
        np.trunc(rng.uniform(-1e6, 1e6, 60_000) * scale) / scale,  # short decimals
        (rng.integers(-10 ** 9, 10 ** 9, 60_000) * 2 + 1) * 5e-11,  # exact ties at 10 decimals
        (rng.integers(-10 ** 6, 10 ** 6, 60_000) + 0.5) / 10.0 ** rng.integers(6, 12, 60_000),
        rng.integers(-2 ** 20, 2 ** 20, 60_000) + rng.integers(0, 10 ** 10, 60_000) / 1e10,
        rng.integers(-10 ** 16, 10 ** 16, 60_000).astype(np.float64),  # integers around 1e15
    ]
    return np.concatenate(parts)


def test_round10_equals_python_round() -> None:
    x = _float_corpus()
    x = x[~np.isnan(x)]
    got = _round10(x)
    want = np.array([round(v, 10) for v in x.tolist()])
    same = (got == want) & (np.signbit(got) == np.signbit(want)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), x[~same][:5]


def test_number_text_equals_reference_on_float_corpus() -> None:
    x = _float_corpus(15)
    x = x[~np.isnan(x)]
    texts, special = _number_texts(x)
    want = [_ref_number_text(v) for v in x.tolist()]
    bad = [(v, t, w) for v, t, w in zip(x.tolist(), texts.tolist(), want, strict=True) if t != w]
    assert not bad, bad[:5]
    assert list(special) == [not math.isfinite(v) for v in x.tolist()]
    frame = pd.DataFrame({"v": x[:20_000]})  # and through the JSON writer (Infinity, -0.0, 1e+20)
    schema = _schema({"v": "number"})
    assert to_json_bytes(frame, schema) == ref_json(frame, schema)
