"""The ``table`` source kind: a CSV, XLSX or JSON table at an http(s) URL or a local path.

Every cell is read as trimmed text (no type inference, leading zeros kept, empty -> "").
The returned frame's index is the 1-based *data row* number in the file (the header is
row 0), so checks can name the row the city sees; completely empty rows are skipped.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd
import requests

from opendata import http
from opendata.config import Config, SourceConfig
from opendata.errors import TerminalFetchError
from opendata.model import Issue
from opendata.snapshot import FetchedFile, Snapshot, sha256_bytes
from opendata.sources import Fetched

log = logging.getLogger(__name__)

FORMATS = ("csv", "xlsx", "json")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
Rows = list[list[str]]


def is_url(location: str) -> bool:
    """True for an http(s) URL, False for a file path."""
    return urlparse(location).scheme in ("http", "https")


def table_format(source: SourceConfig) -> str:
    """The format of a table source: ``source.format`` or the location's extension."""
    fmt = (source.format or Path(urlparse(source.location).path).suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise TerminalFetchError(
            source.id, f"cannot tell the table format of '{source.location}' (got '{fmt}'); "
            f"set format = one of {', '.join(FORMATS)} in the source entry")
    return fmt


def _download(source: SourceConfig, policy: http.RetryPolicy,
              sess: requests.Session | None) -> FetchedFile:
    resp = http.request(source.id, "GET", source.location, policy=policy, sess=sess)
    headers = {k: resp.headers[k] for k in ("Content-Type",) if k in resp.headers}
    return FetchedFile("", resp.content, source.location, status=resp.status_code, headers=headers)


def _read_file(source: SourceConfig, config: Config) -> FetchedFile:
    path = Path(source.location)
    if not path.is_absolute():
        path = config.path.parent / path
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise TerminalFetchError(
            source.id, f"cannot read {path} ({exc.strerror}); check 'location' in "
            f"{config.path} (relative paths start at the config file's folder)") from None
    return FetchedFile("", content, f"file:{source.location}")


def fetch(source: SourceConfig, config: Config, *, policy: http.RetryPolicy,
          sess: requests.Session | None = None) -> Fetched:
    """Download or read the table; the content hash is the sha256 of the raw bytes."""
    fmt = table_format(source)
    got = _download(source, policy, sess) if is_url(source.location) else _read_file(source, config)
    frame = parse(got.content, fmt, source=source.id, sheet=source.options.get("sheet"))
    got.name, got.role = f"data.{fmt}", "data"
    log.info("%s: table read, %d rows, sha256 %s", source.id, len(frame),
             sha256_bytes(got.content)[:12])
    return Fetched([got], sha256_bytes(got.content), {"format": fmt, "rows": len(frame)})


def read(source: SourceConfig, snapshot: Snapshot) -> pd.DataFrame:
    """The snapshot's table as a frame of trimmed strings (index = 1-based data row)."""
    path = snapshot.file("data")
    fmt = path.suffix.lstrip(".").lower()
    return parse(path.read_bytes(), fmt, source=source.id, sheet=source.options.get("sheet"))


def parse(data: bytes, fmt: str, *, source: str = "", sheet: str | None = None) -> pd.DataFrame:
    """Parse CSV, XLSX or JSON bytes into a frame of trimmed strings."""
    if fmt == "csv":
        rows = _csv_rows(data, source)
    elif fmt == "xlsx":
        rows = _xlsx_rows(data, source, sheet)
    elif fmt == "json":
        rows = _json_rows(data, source)
    else:
        raise TerminalFetchError(source, f"unsupported table format '{fmt}'; use csv, xlsx or json")
    return _frame(rows, source)


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM) if valid, else Windows-1252."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _csv_rows(data: bytes, source: str) -> Rows:
    text = decode_text(data)
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    try:
        return [list(r) for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]
    except csv.Error as exc:
        raise TerminalFetchError(source, f"malformed CSV: {exc}; re-export the file") from None


def cell_text(value: Any) -> str:
    """One spreadsheet/JSON value as text: dates ISO, whole numbers without '.0'."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _xlsx_rows(data: bytes, source: str, sheet: str | None) -> Rows:
    import openpyxl  # local: only needed for XLSX

    try:
        # data_only=False: a formula arrives as its text ("=..."), so it can be neutralised
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises several unrelated types for a bad file
        raise TerminalFetchError(source, f"not a readable XLSX file ({exc})") from None
    try:
        if sheet and sheet not in book.sheetnames:
            raise TerminalFetchError(source, f"XLSX has no sheet '{sheet}' (sheets: "
                                     f"{', '.join(book.sheetnames)}); fix options.sheet")
        ws = book[sheet] if sheet else book.worksheets[0]
        ws.reset_dimensions()  # do not trust a writer's <dimension> tag: read every row
        return [[cell_text(v) for v in row] for row in ws.iter_rows(values_only=True)]
    finally:
        book.close()


def _json_rows(data: bytes, source: str) -> Rows:
    try:
        doc = json.loads(decode_text(data))
    except json.JSONDecodeError as exc:
        raise TerminalFetchError(source, f"invalid JSON ({exc})") from None
    records = doc.get("data") if isinstance(doc, dict) else doc
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise TerminalFetchError(source, "JSON must be a list of objects or {\"data\": [objects]}")
    header: list[str] = []
    for rec in records:
        header += [k for k in rec if k not in header]
    rows: Rows = [header]
    for i, rec in enumerate(records, start=1):
        bad = [k for k, v in rec.items() if isinstance(v, dict | list)]
        if bad:
            raise TerminalFetchError(source, f"JSON record {i}, field '{bad[0]}': nested values "
                                     "are not allowed; use plain text or numbers")
        rows.append([cell_text(rec.get(k)) for k in header])
    return rows


def _frame(rows: Rows, source: str) -> pd.DataFrame:
    if not rows:
        raise TerminalFetchError(source, "the table is empty (no header row)")
    header = [h.strip() for h in rows[0]]
    width = len(header)
    body: Rows = []
    index: list[int] = []
    for n, raw in enumerate(rows[1:], start=1):
        cells = [c.strip() for c in raw] + [""] * (width - len(raw))
        if any(cells[width:]):
            raise TerminalFetchError(source, f"data row {n} has more cells than the header "
                                     f"({len(raw)} > {width}); add a column name or remove them")
        if any(cells):
            body.append(cells[:width])
            index.append(n)
    frame = pd.DataFrame(body, columns=header, index=pd.Index(index, name="row"), dtype=object)
    return _drop_blank_columns(frame, source)


def _drop_blank_columns(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    unnamed = [i for i, h in enumerate(frame.columns) if h == ""]
    for i in unnamed:
        if frame.iloc[:, i].astype(bool).any():
            raise TerminalFetchError(source, f"column {i + 1} has values but no name; "
                                     "add a header or delete the column")
    frame = frame.iloc[:, [i for i in range(frame.shape[1]) if i not in unnamed]]
    dupes = sorted({h for h in frame.columns if list(frame.columns).count(h) > 1})
    if dupes:
        raise TerminalFetchError(source, f"duplicate column name '{dupes[0]}'; rename one of them")
    return frame


def neutralise(value: str) -> str:
    """Prefix a cell starting with = + - @ tab or CR with an apostrophe (OWASP CSV injection)."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def neutralise_frame(frame: pd.DataFrame, *, source: str, resource: str = "",
                     skip: tuple[str, ...] = ()) -> tuple[pd.DataFrame, list[Issue]]:
    """Neutralise formula-like text cells; one warning Issue per neutralised cell."""
    out = frame.copy()
    issues: list[Issue] = []
    for col in out.columns:
        if col in skip:
            continue
        for row, value in out[col].items():
            if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
                out.at[row, col] = neutralise(value)
                issues.append(Issue(
                    "warning", "formula-neutralised",
                    f"cell starts with {value[0]!r} and could run as a spreadsheet formula; "
                    "published with a leading apostrophe. Remove the leading character "
                    "in the source if it is not meant.", source, resource, int(row), str(col)))
    return out, issues
