"""Read GENESIS "flat file CSV" (ffcsv) into a stable long DataFrame (see ARCHITECTURE.md)."""

from __future__ import annotations

import codecs
import io
import logging
import re
import zipfile
import zlib
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from opendata.errors import InputError, TerminalFetchError

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
"""Special values in ffcsv ``value``: the value becomes NaN and ``value_note`` gets the meaning.

A value in parentheses (``(7)``, ``(-)``) has limited reliability. Anything else that is not a
plain number in the table's decimal separator is refused (InputError)."""

QUALITY: dict[str, str] = {"": "no flag", "e": "final", "p": "preliminary", "r": "revised",
                           "s": "estimated", "()": "limited reliability"}
"""Documented flags of the ffcsv ``value_q`` column (quality=on); any other flag is refused."""

DECIMAL = {"de": ",", "en": "."}
NUMBER = {",": r"-?\d+(?:,\d+)?", ".": r"-?\d+(?:\.\d+)?"}
"""A plain ffcsv number per decimal separator: optional minus, digits, no digit grouping."""

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
                            f"limit of {limit} bytes; raise [settings] max_csv_bytes in the "
                            "config if the table is really that large, or narrow the selection")
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


def csv_name(data: bytes) -> str:
    """The name of the CSV member of a GENESIS ZIP ("" for plain CSV bytes or an unusable ZIP)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return _csv_member(zf, "").filename
    except (zipfile.BadZipFile, TerminalFetchError):
        return ""


def _bad(source: str, message: str, file: str = "") -> InputError:
    return InputError(source or "ffcsv", message, file)


TEXT = pd.StringDtype("pyarrow", na_value=np.nan)
"""Cells stay Arrow strings (pandas' default ``str``): a few bytes each, not a Python object."""


def _frame(raw: bytes, source: str, file: str) -> pd.DataFrame:
    """Every column as text, parsed by pyarrow straight from the bytes (no decoded copy)."""
    head = raw[: raw.find(b"\n")] if b"\n" in raw else raw
    names = [c.strip('"') for c in _decode(head, source, file).strip("\r").split(";")]
    if not raw.strip():
        raise _bad(source, "the CSV is empty (not even a header); the service sent no table", file)
    try:
        table = pacsv.read_csv(
            pa.py_buffer(raw[3:] if raw.startswith(codecs.BOM_UTF8) else raw),
            read_options=pacsv.ReadOptions(block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=";", quote_char='"'),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False,
                quoted_strings_can_be_null=False))
    except pa.ArrowInvalid as exc:
        if "UTF8" in str(exc) or "utf8" in str(exc).lower():
            _decode(raw, source, file)  # names the first byte that is not UTF-8
        raise _bad(source, f"the CSV cannot be parsed as ';'-separated ffcsv: {exc}", file) from None
    return table.to_pandas(types_mapper={pa.string(): TEXT, pa.large_string(): TEXT}.get)


def _decode(raw: bytes, source: str, file: str = "") -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _bad(source, f"the CSV is not UTF-8 (byte {exc.start}); ffcsv is always UTF-8, so "
                           "the service sent something else than an ffcsv table", file) from None


def _dims(columns: list[str], source: str, file: str) -> list[int]:
    found: dict[int, set[str]] = {}
    for col in columns:
        m = _DIM_RE.match(col)
        if m:
            found.setdefault(int(m.group(1)), set()).add(m.group(2))
    want = {p for p, _ in DIM_PARTS}
    for n, parts in sorted(found.items()):
        if parts != want:
            missing = ", ".join(f"{n}_{p}" for p in sorted(want - parts))
            raise _bad(source, f"not an ffcsv header: classifying variable {n} lacks {missing}", file)
    return sorted(found)


def _check_header(columns: list[str], source: str, file: str) -> list[int]:
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        shown = ";".join(columns[:6]) + (";…" if len(columns) > 6 else "")
        raise _bad(source, f"not an ffcsv header: missing column(s) {', '.join(missing)}; "
                           f"header starts {shown!r}. Request the table with format=ffcsv", file)
    return _dims(columns, source, file)


def decimal_separator(values: pd.Series, language: str = "") -> str:
    """The decimal separator: ',' for German, '.' for English, else the one ``values`` use.

    ffcsv never groups digits, so there is no thousands separator to guess.
    """
    if language in DECIMAL:
        return DECIMAL[language]
    comma = bool(values.str.contains(",", regex=False).any())
    point = bool(values.str.contains(".", regex=False).any())
    return "," if comma and not point else "."


def _cells(values: pd.Series, limit: int = 5) -> str:
    shown = "; ".join(f"line {int(i) + 2}: {v!r}" for i, v in values.iloc[:limit].items())
    more = len(values) - limit
    return shown + (f" … and {more:,} more" if more > 0 else "")


def _number_fault(bad: pd.Series, dec: str, language: str, source: str, file: str) -> InputError:
    other = "." if dec == "," else ","
    hint = ""
    if bad.str.fullmatch(NUMBER[other]).any() or bad.str.contains(r"\d[.,]\d{3}\b").any():
        hint = (f" Some are written with {other!r}: mixed decimal separators or digit grouping, "
                "which ffcsv never uses; the value cannot be read unambiguously.")
    lang = {"de": "German", "en": "English"}.get(language, "unknown")
    return _bad(source, f"{len(bad):,} cell(s) in column value are neither a plain number "
                        f"(decimal separator {dec!r} for a table in {lang} language, no digit "
                        f"grouping) nor a documented marker ({' '.join(MARKERS)}, or one of them "
                        f"in parentheses): {_cells(bad)}.{hint} Nothing from this answer is "
                        "used; fetch again later, or report the answer to the statistics office.",
                file)


def parse_values(values: pd.Series, language: str = "", *, source: str = "",
                 file: str = "") -> tuple[pd.Series, pd.Series]:
    """Numbers as float64 (NaN for markers) and the notes explaining non-numbers.

    Anything else (an unknown marker, a number in the wrong decimal separator or with digit
    grouping) raises InputError naming the lines (index i = data row i + 1 = line i + 2).
    """
    s = values.astype(str).str.strip()
    paren = s.str.len().ge(2) & s.str.startswith("(") & s.str.endswith(")")
    inner = s.where(~paren, s.str.slice(1, -1).str.strip())
    marker, empty = inner.isin(list(MARKERS)), inner.eq("")
    cand = inner[~marker & ~empty]
    dec = decimal_separator(cand, language)
    bad = cand[~cand.str.fullmatch(NUMBER[dec])]
    if len(bad):
        raise _number_fault(s[bad.index], dec, language, source, file)
    num = pd.Series(np.nan, index=values.index, dtype="float64")
    num[cand.index] = pd.to_numeric(cand.str.replace(",", ".", regex=False)).astype("float64")
    note = inner.map(MARKERS).fillna("").astype(object)
    note = note.where(~paren, (note + "; " + LIMITED_RELIABILITY).str.lstrip("; "))
    note = note.where(~empty, EMPTY_NOTE)
    return num, note


def check_quality(flags: pd.Series, *, source: str = "", file: str = "") -> None:
    """Refuse a ``value_q`` flag that is not documented (``QUALITY``), naming its lines."""
    bad = flags[~flags.isin(list(QUALITY))]
    if len(bad):
        known = ", ".join(repr(q) for q in QUALITY if q)
        raise _bad(source, f"{len(bad):,} cell(s) in column value_q hold an undocumented quality "
                           f"flag (known: {known}, or empty): {_cells(bad)}. Nothing from this "
                           "answer is used; if the service documents a new flag, add it to "
                           "opendata.ffcsv.QUALITY.", file)


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


def _layout(df: pd.DataFrame, dims: list[int], language: str, source: str,
            file: str) -> pd.DataFrame:
    out = pd.DataFrame(index=df.index)
    for col in HEAD:
        out[col] = df[col] if col in df.columns else ""
    out["reference_date"] = reference_date(out["time"].astype(object))
    for i, n in enumerate(dims, start=1):
        for part, name in DIM_PARTS:
            out[f"dim{i}_{name}"] = df[f"{n}_{part}"]
    out["value"], out["value_note"] = parse_values(df["value"], language, source=source, file=file)
    out["value_q"] = df["value_q"] if "value_q" in df.columns else ""
    check_quality(out["value_q"], source=source, file=file)
    for col in TAIL:
        out[col] = df[col] if col in df.columns else ""
    known = set(HEAD) | set(TAIL) | {"value", "value_q"} | {f"{n}_{p}" for n in dims for p, _ in DIM_PARTS}
    extra = [c for c in df.columns if c not in known]
    if extra:
        log.warning("extra ffcsv columns kept at the end", extra={"columns": extra})
        for col in extra:
            out[col] = df[col]
    return out


SORT_FIRST = ("statistics_code", "time_code", "time")
SORT_LAST = ("value_variable_code", "value_unit")


def _sorted(out: pd.DataFrame) -> pd.DataFrame:
    """Sort by the cell's key (codes, value variable, unit), then by every other column: a total
    order, so the frame never depends on the order in which the server listed the rows."""
    dims = [c for c in out.columns if re.fullmatch(r"dim\d+_(variable_)?code", c)]
    keys = [*SORT_FIRST, *dims, *SORT_LAST]
    keys += [c for c in out.columns if c not in keys]
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


def language_of(data: bytes) -> str:
    """'de' or 'en' from the ZIP member name (``…_de_flat.csv``), else ""."""
    m = _LANG_RE.search(csv_name(data)) if is_zip(data) or data[:2] == b"PK" else None
    return m.group(1).lower() if m else ""


def read_ffcsv(data: bytes, *, source: str = "", language: str = "",
               limit: int = MAX_CSV_BYTES) -> pd.DataFrame:
    """ZIP or CSV bytes of an ffcsv table → the stable long frame.

    A broken ZIP is a TerminalFetchError; content that is not a usable ffcsv table (not UTF-8,
    not an ffcsv header, no data rows, a value that is not a plain number or documented marker
    in the table's language) is an InputError. ``language`` ('de'/'en') is used when the ZIP
    member name does not tell it.
    """
    file = ""
    if is_zip(data) or data[:2] == b"PK":
        file = csv_name(data)
        language = language_of(data) or language
        data = extract_csv(data, source=source, limit=limit)
    start = data.lstrip()[:1] if not data.startswith(codecs.BOM_UTF8) else data[3:].lstrip()[:1]
    if start in (b"<", b"{"):
        kind = "an HTML page" if start == b"<" else "a JSON document"
        text = data[:400].decode("utf-8", "replace").strip()
        raise _bad(source, f"got {kind} instead of an ffcsv table: {text[:200]!r}", file)
    df = _frame(data, source, file)
    dims = _check_header([str(c) for c in df.columns], source, file)
    if df.empty:
        raise _bad(source, "the ffcsv table has a header but no data rows; the service answered "
                           "an empty table for this selection (check the table's params)", file)
    return _sorted(_layout(df, dims, language.lower(), source, file))
