"""Read GENESIS "flat file CSV" (ffcsv) into a stable long DataFrame (see ARCHITECTURE.md)."""

from __future__ import annotations

import io
import logging
import re
import zipfile
import zlib
from datetime import date

import numpy as np
import pandas as pd

from opendata.errors import TerminalFetchError

log = logging.getLogger(__name__)

MAX_CSV_BYTES = 512 * 1024 * 1024
"""Decompression limit for the CSV inside a ZIP (the largest known table, 12531-0043, is 34 MB)."""

MARKERS: dict[str, str] = {
    "-": "nothing there (zero)",
    ".": "unknown or secret",
    "...": "available later",
    "/": "not reliable enough",
    "x": "cell blocked, no meaningful value",
}
"""Special values in ffcsv ``value``: the value becomes NaN and ``value_note`` gets the meaning."""

LIMITED_RELIABILITY = "limited reliability"
EMPTY_NOTE = "no value given"
HEAD = ["statistics_code", "statistics_label", "time_code", "time_label", "time"]
TAIL = ["value_unit", "value_variable_code", "value_variable_label"]
REQUIRED = ("statistics_code", "time", "value")
DIM_PARTS = (("variable_code", "variable_code"), ("variable_label", "variable_label"),
             ("variable_attribute_code", "code"), ("variable_attribute_label", "label"))
_DIM_RE = re.compile(r"^(\d+)_(variable_code|variable_label|variable_attribute_code|"
                     r"variable_attribute_label)$")
_LANG_RE = re.compile(r"_(de|en)_flat\.csv$", re.IGNORECASE)
_GROUPED = {",": re.compile(r"^-?\d{1,3}(,\d{3})+$"), ".": re.compile(r"^-?\d{1,3}(\.\d{3})+$")}


def _fail(source: str, message: str) -> TerminalFetchError:
    return TerminalFetchError(source or "ffcsv", message)


def is_zip(data: bytes) -> bool:
    """True when the bytes start like a ZIP archive."""
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def _csv_member(zf: zipfile.ZipFile, source: str) -> zipfile.ZipInfo:
    members = [i for i in zf.infolist() if i.filename.lower().endswith(".csv") and not i.is_dir()]
    names = ", ".join(i.filename for i in zf.infolist()) or "none"
    if not members:
        raise _fail(source, f"the ZIP holds no CSV file (members: {names}); "
                            "the server did not send an ffcsv table")
    if len(members) > 1:
        raise _fail(source, f"the ZIP holds {len(members)} CSV files ({names}); expected one")
    return members[0]


def _read_limited(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, source: str) -> bytes:
    too_big = _fail(source, f"the CSV {info.filename} in the ZIP exceeds the decompression "
                            f"limit of {limit} bytes; raise ffcsv.MAX_CSV_BYTES if the table is "
                            "really that large, or narrow the selection")
    if info.file_size > limit:
        raise too_big
    with zf.open(info) as fh:
        out = fh.read(limit + 1)
    if len(out) > limit:
        raise too_big
    return out


def extract_csv(data: bytes, *, source: str, limit: int = MAX_CSV_BYTES) -> bytes:
    """The raw bytes of the single CSV inside a GENESIS ZIP (TerminalFetchError if unusable)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            info = _csv_member(zf, source)
            return _read_limited(zf, info, limit, source)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise _fail(source, f"truncated or invalid ZIP ({len(data)} bytes): {exc}; "
                            "the download was probably cut off, try again") from None


def _csv_name(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return _csv_member(zf, "").filename
    except (zipfile.BadZipFile, TerminalFetchError):
        return ""


def _frame(text: str, source: str) -> pd.DataFrame:
    try:
        return pd.read_csv(io.StringIO(text), sep=";", dtype=str, keep_default_na=False,
                           na_filter=False, quotechar='"')
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise _fail(source, f"the CSV cannot be parsed as ';'-separated ffcsv: {exc}") from None


def _decode(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _fail(source, f"the CSV is not UTF-8 (byte {exc.start}); ffcsv is always UTF-8") from None


def _dims(columns: list[str], source: str) -> list[int]:
    found: dict[int, set[str]] = {}
    for col in columns:
        m = _DIM_RE.match(col)
        if m:
            found.setdefault(int(m.group(1)), set()).add(m.group(2))
    want = {p for p, _ in DIM_PARTS}
    for n, parts in sorted(found.items()):
        if parts != want:
            missing = ", ".join(f"{n}_{p}" for p in sorted(want - parts))
            raise _fail(source, f"not an ffcsv header: classifying variable {n} lacks {missing}")
    return sorted(found)


def _check_header(columns: list[str], source: str) -> list[int]:
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        shown = ";".join(columns[:6]) + (";…" if len(columns) > 6 else "")
        raise _fail(source, f"not an ffcsv header: missing column(s) {', '.join(missing)}; "
                            f"header starts {shown!r}. Request the table with format=ffcsv")
    return _dims(columns, source)


def check_header(csv: bytes, *, source: str = "") -> list[str]:
    """The header columns of ffcsv bytes; TerminalFetchError when the header is not ffcsv."""
    first = csv[: csv.find(b"\n")] if b"\n" in csv else csv
    text = _decode(first, source).strip().strip("\r")
    if text[:1] in ("<", "{"):
        raise _fail(source, f"got {'an HTML page' if text[:1] == '<' else 'a JSON document'} "
                            f"instead of an ffcsv table: {text[:200]!r}")
    columns = [c.strip('"') for c in text.split(";")]
    _check_header(columns, source)
    return columns


def decimal_separator(values: pd.Series, language: str = "") -> tuple[str, str]:
    """(decimal, thousands) separators used in ``values``; ``language`` ('de'/'en') breaks ties."""
    has_c = values.str.contains(",", regex=False)
    has_p = values.str.contains(".", regex=False) & ~values.isin(list(MARKERS))
    both = values[has_c & has_p]
    if len(both):
        v = str(both.iloc[0])
        return (",", ".") if v.rfind(",") > v.rfind(".") else (".", ",")
    if has_c.any() and has_p.any():
        return (",", ".") if language == "de" else (".", ",")
    for sep, other, lang in ((",", ".", "en"), (".", ",", "de")):
        hits = values[has_c if sep == "," else has_p]
        if len(hits):
            if language == lang and hits.str.match(_GROUPED[sep]).all():
                return other, sep
            return sep, ""
    return ("," if language == "de" else "."), ""


def parse_values(values: pd.Series, language: str = "") -> tuple[pd.Series, pd.Series]:
    """Numbers as float64 (NaN for markers) and the notes explaining non-numbers."""
    s = values.str.strip()
    paren = s.str.match(r"^\(.*\)$")
    inner = s.where(~paren, s.str.slice(1, -1).str.strip())
    dec, thou = decimal_separator(inner[~inner.isin(list(MARKERS))], language)
    num = inner.str.replace(thou, "", regex=False) if thou else inner
    num = pd.to_numeric(num.str.replace(dec, ".", regex=False), errors="coerce").astype("float64")
    num = num.where(~inner.isin(list(MARKERS)), np.nan)
    note = inner.map(MARKERS).fillna("").astype(object)
    note = note.where(~paren, (note + "; " + LIMITED_RELIABILITY).str.lstrip("; "))
    note = note.where(~inner.eq(""), EMPTY_NOTE)
    bad = num.isna() & note.eq("")
    if bad.any():
        log.warning("unrecognised ffcsv values set to NaN", extra={"values": sorted(set(s[bad]))[:5]})
        note = note.where(~bad, "unrecognised value " + s.astype(object).map(repr))
    return num, note


def reference_date(time: pd.Series) -> pd.Series:
    """ISO date for ``time`` values that are an ISO or dd.mm.yyyy date, else ""."""
    def one(t: str) -> str:
        t = t.strip()
        m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", t) or re.fullmatch(r"(\d{2})\.(\d{2})\.(\d{4})", t)
        if not m:
            return ""
        y, mo, d = (m.group(1), m.group(2), m.group(3)) if "-" in t else (m.group(3), m.group(2),
                                                                          m.group(1))
        try:
            return date(int(y), int(mo), int(d)).isoformat()
        except ValueError:
            return ""
    uniq = {t: one(t) for t in time.unique()}
    return time.map(uniq).astype(object)


def _layout(df: pd.DataFrame, dims: list[int], language: str) -> pd.DataFrame:
    out = pd.DataFrame(index=df.index)
    for col in HEAD:
        out[col] = df[col] if col in df.columns else ""
    out["reference_date"] = reference_date(out["time"].astype(object))
    for i, n in enumerate(dims, start=1):
        for part, name in DIM_PARTS:
            out[f"dim{i}_{name}"] = df[f"{n}_{part}"]
    out["value"], out["value_note"] = parse_values(df["value"], language)
    out["value_q"] = df["value_q"] if "value_q" in df.columns else ""
    for col in TAIL:
        out[col] = df[col] if col in df.columns else ""
    known = set(HEAD) | set(TAIL) | {"value", "value_q"} | {f"{n}_{p}" for n in dims for p, _ in DIM_PARTS}
    extra = [c for c in df.columns if c not in known]
    if extra:
        log.warning("extra ffcsv columns kept at the end", extra={"columns": extra})
        for col in extra:
            out[col] = df[col]
    return out


def _sorted(out: pd.DataFrame) -> pd.DataFrame:
    fixed = ("statistics_code", "time_code", "time", "value_variable_code")
    keys = [c for c in out.columns if c in fixed or re.match(r"dim\d+_(variable_)?code$", c)]
    out = out.sort_values(keys, kind="stable").reset_index(drop=True)
    for col in out.columns:
        if col != "value":
            out[col] = out[col].astype(object)
    return out


def read_ffcsv(data: bytes, *, source: str = "") -> pd.DataFrame:
    """ZIP or CSV bytes of an ffcsv table → the stable long frame (TerminalFetchError if not ffcsv)."""
    language = ""
    if is_zip(data) or data[:2] == b"PK":
        m = _LANG_RE.search(_csv_name(data))
        language = m.group(1).lower() if m else ""
        data = extract_csv(data, source=source)
    text = _decode(data, source)
    if text.lstrip()[:1] in ("<", "{"):
        kind = "an HTML page" if text.lstrip()[:1] == "<" else "a JSON document"
        raise _fail(source, f"got {kind} instead of an ffcsv table: {text.strip()[:200]!r}")
    df = _frame(text, source)
    dims = _check_header([str(c) for c in df.columns], source)
    return _sorted(_layout(df, dims, language))
