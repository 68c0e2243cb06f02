"""Read GENESIS "flat file CSV" (ffcsv) into a stable long DataFrame (see ARCHITECTURE.md)."""

from __future__ import annotations

import codecs
import io
import logging
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from datetime import date
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from opendata.errors import InputError, TerminalFetchError
from opendata.frames import (
    code_dtype,
    codes_values,
    constant,
    from_codes,
    map_text,
    release_memory,
    sort_frame,
)

log = logging.getLogger(__name__)

MAX_CSV_BYTES = 1 << 30
"""Decompression limit for the CSV inside a ZIP, a guard against ZIP bombs ([settings]
max_csv_bytes). It is not what keeps memory small: the CSV is parsed in blocks whatever its size
(a valid 639 MB table of 3 M rows passes); fetching holds it once for its content hash. The
largest known real table, 12531-0043 for all Kreise, is 34 MB."""
ZIP_FAULTS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError)
"""What reading a damaged ZIP member raises (zipfile seeks to negative offsets: ValueError)."""
READ_BLOCK = 1 << 21
"""Bytes of CSV parsed at a time: pyarrow reads several blocks ahead, so this bounds memory."""

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


def _too_big(source: str, info: zipfile.ZipInfo, limit: int) -> TerminalFetchError:
    return _fail(source, f"the CSV {info.filename} in the ZIP exceeds the decompression limit of "
                         f"{limit} bytes; raise [settings] max_csv_bytes in the config if the "
                         "table is really that large, or narrow the selection")


def extract_csv(data: bytes, *, source: str, limit: int = MAX_CSV_BYTES) -> bytes:
    """The raw bytes of the single CSV inside a GENESIS ZIP, whole (TerminalFetchError if
    unusable); `csv_blocks` gives them block by block."""
    if not is_zip(data):
        raise _broken_zip(source, data, zipfile.BadZipFile("File is not a zip file"))
    return b"".join(csv_blocks(data, source=source, limit=limit))


def csv_blocks(data: bytes, *, source: str, limit: int = MAX_CSV_BYTES,
               block: int = 1 << 24) -> Iterator[bytes]:
    """The CSV of a GENESIS ZIP in decompressed blocks (at most ``limit`` bytes in all, never
    held whole); plain CSV bytes as they are. Faults as in `extract_csv`."""
    if not (is_zip(data) or data[:2] == b"PK"):
        yield data
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf, _member(zf, data, source, limit)() as fh:
            while chunk := fh.read(block):
                yield chunk
    except ZIP_FAULTS as exc:
        raise _broken_zip(source, data, exc) from None


def csv_name(data: bytes) -> str:
    """The name of the CSV member of a GENESIS ZIP ("" for plain CSV bytes or an unusable ZIP)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return _csv_member(zf, "").filename
    except (*ZIP_FAULTS, TerminalFetchError):
        return ""


def _bad(source: str, message: str, file: str = "") -> InputError:
    return InputError(source or "ffcsv", message, file)


class _Limited(io.RawIOBase):
    """A byte stream that refuses to deliver more than ``limit`` bytes (a ZIP member that lies
    about its size) and turns any fault of the member into ``broken``."""

    def __init__(self, raw: IO[bytes], limit: int, fault: Exception,
                 broken: Callable[[BaseException], Exception]) -> None:
        self.raw, self.left, self.fault, self.broken = raw, limit, fault, broken

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        view = memoryview(buf).cast("B")
        try:
            data = self.raw.read(min(len(view), self.left + 1))
        except ZIP_FAULTS as exc:
            raise self.broken(exc) from None
        if len(data) > self.left:
            raise self.fault
        self.left -= len(data)
        view[:len(data)] = data
        return len(data)


def _strip_bom(raw: IO[bytes]) -> IO[bytes]:
    buffered = io.BufferedReader(raw, 1 << 20)  # type: ignore[arg-type,type-var]
    if buffered.peek(3)[:3] == codecs.BOM_UTF8:
        buffered.read(3)
    return buffered


class _Column:
    """One ffcsv column read block by block into codes of a growing list of distinct texts."""

    def __init__(self) -> None:
        self.codes: list[np.ndarray] = []
        self.index: dict[str, int] = {}

    def add(self, chunk: pa.Array) -> None:
        enc = chunk if pa.types.is_dictionary(chunk.type) else pc.dictionary_encode(chunk)
        texts = enc.dictionary.to_pylist()
        lookup = np.fromiter((self.index.setdefault(t, len(self.index)) for t in texts),
                             dtype=np.int64, count=len(texts))
        codes = lookup[enc.indices.to_numpy(zero_copy_only=False)]
        self.codes.append(codes.astype(code_dtype(len(self.index))))

    def series(self, rows: int) -> pd.Series:
        codes = np.concatenate(self.codes) if self.codes else np.zeros(rows, dtype=np.int8)
        self.codes = []  # the blocks go as soon as they are joined
        return from_codes(codes, list(self.index))


def _check_start(start: bytes, source: str, file: str) -> None:
    """Refuse an empty body, an HTML page or a JSON document before parsing."""
    if not start.strip():
        raise _bad(source, "the CSV is empty (not even a header); the service sent no table", file)
    first = start.lstrip()[:1]
    if first in (b"<", b"{"):
        kind = "an HTML page" if first == b"<" else "a JSON document"
        text = start[:400].decode("utf-8", "replace").strip()
        raise _bad(source, f"got {kind} instead of an ffcsv table: {text[:200]!r}", file)


def _utf8_fault(opener: Callable[[], IO[bytes]], source: str, file: str) -> InputError:
    """The InputError naming the first byte of the stream that is not UTF-8."""
    decoder, offset = codecs.getincrementaldecoder("utf-8")("strict"), 0
    with opener() as fh:
        while chunk := fh.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return _bad(source, f"the CSV is not UTF-8 (byte {offset + exc.start}); ffcsv is "
                                    "always UTF-8, so the service sent something else than an "
                                    "ffcsv table", file)
            offset += len(chunk)
    return _bad(source, "the CSV is not UTF-8; ffcsv is always UTF-8", file)


def _frame(opener: Callable[[], IO[bytes]], source: str, file: str) -> pd.DataFrame:
    """Every column as compact text, parsed by pyarrow block by block from the stream: the
    table is never held as text (one or two bytes per cell, see ``opendata.frames``)."""
    with opener() as raw:
        stream = _strip_bom(raw)
        start = stream.peek(1 << 16)  # type: ignore[attr-defined]
        _check_start(start, source, file)
        head = start.split(b"\n", 1)[0]
        names = [c.strip('"') for c in _decode(head, source, file).strip("\r").split(";")]
        return _parse(stream, names, opener, source, file)


def _parse(stream: IO[bytes], names: list[str], opener: Callable[[], IO[bytes]], source: str,
           file: str) -> pd.DataFrame:
    try:
        reader = pacsv.open_csv(
            stream, read_options=pacsv.ReadOptions(block_size=READ_BLOCK),
            parse_options=pacsv.ParseOptions(delimiter=";", quote_char='"'),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.dictionary(pa.int32(), pa.string())),
                strings_can_be_null=False, quoted_strings_can_be_null=False))
        columns = {name: _Column() for name in reader.schema.names}
        rows = 0
        for batch in reader:
            for name, col in zip(batch.schema.names, batch.columns, strict=True):
                columns[name].add(col)
            rows += batch.num_rows
        frame = pd.DataFrame({name: col.series(rows) for name, col in columns.items()}, copy=False)
    except pa.ArrowInvalid as exc:
        if "UTF8" in str(exc) or "utf8" in str(exc).lower():
            raise _utf8_fault(opener, source, file) from None
        raise _bad(source, f"the CSV cannot be parsed as ';'-separated ffcsv: {exc}", file) from None
    release_memory()
    return frame


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
    """Numbers as float64 (NaN for markers) and the notes explaining non-numbers (compact).

    Anything else (an unknown marker, a number in the wrong decimal separator or with digit
    grouping) raises InputError naming the lines (index i = data row i + 1 = line i + 2).
    Every distinct text is parsed once and taken back to its rows.
    """
    codes, uniques = codes_values(values)
    s = uniques.astype(str).str.strip()
    paren = s.str.len().ge(2) & s.str.startswith("(") & s.str.endswith(")")
    inner = s.where(~paren, s.str.slice(1, -1).str.strip())
    marker, empty = inner.isin(list(MARKERS)), inner.eq("")
    cand = inner[~marker & ~empty]
    dec = decimal_separator(cand, language)
    bad = ~marker & ~empty & ~inner.str.fullmatch(NUMBER[dec]).fillna(False).astype(bool)
    if bad.any():
        rows = np.flatnonzero(np.isin(codes, np.flatnonzero(bad.to_numpy())))
        shown = pd.Series(s.to_numpy()[codes[rows]], index=values.index[rows], dtype=object)
        raise _number_fault(shown, dec, language, source, file)
    num_u = np.full(len(s) + 1, np.nan)
    num_u[np.flatnonzero((~marker & ~empty).to_numpy())] = pd.to_numeric(
        cand.str.replace(",", ".", regex=False)).astype("float64").to_numpy()
    num = pd.Series(num_u[codes], index=values.index, dtype="float64")  # code -1: the last, NaN
    note = inner.map(MARKERS).fillna("").astype(object)
    note = note.where(~paren, (note + "; " + LIMITED_RELIABILITY).str.lstrip("; "))
    note = note.where(~empty, EMPTY_NOTE)
    return num, from_codes(codes, note.to_numpy(dtype=object), values.index)


def check_quality(flags: pd.Series, *, source: str = "", file: str = "") -> None:
    """Refuse a ``value_q`` flag that is not documented (``QUALITY``), naming its lines."""
    codes, uniques = codes_values(flags)
    unknown = np.flatnonzero(~uniques.isin(list(QUALITY)).to_numpy())
    rows = np.flatnonzero(np.isin(codes, unknown))
    if len(rows):
        bad = pd.Series(uniques.to_numpy()[codes[rows]], index=flags.index[rows], dtype=object)
        known = ", ".join(repr(q) for q in QUALITY if q)
        raise _bad(source, f"{len(bad):,} cell(s) in column value_q hold an undocumented quality "
                           f"flag (known: {known}, or empty): {_cells(bad)}. Nothing from this "
                           "answer is used; if the service documents a new flag, add it to "
                           "opendata.ffcsv.QUALITY.", file)


def _iso_date(t: str) -> str:
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


def reference_date(time: pd.Series) -> pd.Series:
    """ISO date for ``time`` values that are an ISO or dd.mm.yyyy date, else "" (compact)."""
    return map_text(time, lambda values: values.astype(str).map(_iso_date))


def _text(df: pd.DataFrame, col: str) -> pd.Series:
    return df[col] if col in df.columns else constant("", df.index)


def _layout(df: pd.DataFrame, dims: list[int], language: str, source: str,
            file: str) -> pd.DataFrame:
    out: dict[str, pd.Series] = {col: _text(df, col) for col in HEAD}
    out["reference_date"] = reference_date(out["time"])
    for i, n in enumerate(dims, start=1):
        for part, name in DIM_PARTS:
            out[f"dim{i}_{name}"] = df[f"{n}_{part}"]
    out["value"], out["value_note"] = parse_values(df["value"], language, source=source, file=file)
    out["value_q"] = _text(df, "value_q")
    check_quality(out["value_q"], source=source, file=file)
    for col in TAIL:
        out[col] = _text(df, col)
    known = set(HEAD) | set(TAIL) | {"value", "value_q"} | {f"{n}_{p}" for n in dims for p, _ in DIM_PARTS}
    extra = [c for c in df.columns if c not in known]
    if extra:
        log.warning("extra ffcsv columns kept at the end", extra={"columns": extra})
        for col in extra:
            out[col] = df[col]
    return pd.DataFrame(out, index=df.index, copy=False)


SORT_FIRST = ("statistics_code", "time_code", "time")
SORT_LAST = ("value_variable_code", "value_unit")


def _sorted(out: pd.DataFrame) -> pd.DataFrame:
    """Sort by the cell's key (codes, value variable, unit), then by every other column: a total
    order, so the frame never depends on the order in which the server listed the rows.
    Text columns are compact with sorted categories, so their codes sort like their text."""
    dims = [c for c in out.columns if re.fullmatch(r"dim\d+_(variable_)?code", c)]
    keys = [*SORT_FIRST, *dims, *SORT_LAST]
    keys += [c for c in out.columns if c not in keys]
    return sort_frame(out, keys)


def language_of(data: bytes) -> str:
    """'de' or 'en' from the ZIP member name (``…_de_flat.csv``), else ""."""
    m = _LANG_RE.search(csv_name(data)) if is_zip(data) or data[:2] == b"PK" else None
    return m.group(1).lower() if m else ""


def _member(zf: zipfile.ZipFile, data: bytes, source: str, limit: int) -> Callable[[], IO[bytes]]:
    """An opener of the ZIP's CSV member as a stream of at most ``limit`` bytes whose faults are
    clear errors; a member that says it is larger is refused at once."""
    info = _csv_member(zf, source)
    too_big = _too_big(source, info, limit)
    if info.file_size > limit:
        raise too_big

    def opener() -> IO[bytes]:
        return _Limited(zf.open(info), limit, too_big,  # type: ignore[return-value]
                        lambda exc: _broken_zip(source, data, exc))
    return opener


def _zip_frame(data: bytes, source: str, file: str, limit: int) -> pd.DataFrame:
    """The frame of the single CSV of a GENESIS ZIP, decompressed as it is parsed."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return _frame(_member(zf, data, source, limit), source, file)
    except ZIP_FAULTS as exc:
        raise _broken_zip(source, data, exc) from None


def _broken_zip(source: str, data: bytes, exc: BaseException) -> TerminalFetchError:
    return _fail(source, f"truncated or invalid ZIP ({len(data)} bytes): {exc}; "
                         "the download was probably cut off, try again")


def read_ffcsv(data: bytes, *, source: str = "", language: str = "",
               limit: int = MAX_CSV_BYTES) -> pd.DataFrame:
    """ZIP or CSV bytes of an ffcsv table → the stable long frame (text columns compact).

    A broken ZIP is a TerminalFetchError; content that is not a usable ffcsv table (not UTF-8,
    not an ffcsv header, no data rows, a value that is not a plain number or documented marker
    in the table's language) is an InputError. ``language`` ('de'/'en') is used when the ZIP
    member name does not tell it. The CSV inside a ZIP is read in blocks as it is decompressed
    (at most ``limit`` bytes), never held whole.
    """
    file = ""
    if is_zip(data) or data[:2] == b"PK":
        file = csv_name(data)
        language = language_of(data) or language
        df = _zip_frame(data, source, file, limit)
    else:
        df = _frame(lambda: io.BytesIO(data), source, file)
    dims = _check_header([str(c) for c in df.columns], source, file)
    if df.empty:
        raise _bad(source, "the ffcsv table has a header but no data rows; the service answered "
                           "an empty table for this selection (check the table's params)", file)
    return _sorted(_layout(df, dims, language.lower(), source, file))
