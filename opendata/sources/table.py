"""The ``table`` source kind: a CSV, XLSX or JSON table at an http(s) URL or a local path.

Every cell is read as trimmed text (no type inference, leading zeros kept, empty -> "").
The returned frame's index is the 1-based *data row* number in the file (the header is
row 0; a spreadsheet shows data row n as row n + 1), so checks can name the row the city sees;
completely empty rows are skipped. Encoding by byte-order mark (UTF-8/16/32), else UTF-8, else
Windows-1252. Size limits from [settings] (``config.Limits``) are checked while parsing, before
a snapshot is stored; a file that cannot be used raises ``InputError`` (exit 1). Text cells are
made safe later, in ``opendata.text`` (one place for every source).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import zipfile
import zlib
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd
import requests

from opendata import http
from opendata.config import Config, Limits, SourceConfig
from opendata.errors import InputError, TerminalFetchError
from opendata.snapshot import FetchedFile, Snapshot, sha256_bytes
from opendata.sources import Fetched

log = logging.getLogger(__name__)

FORMATS = ("csv", "xlsx", "json")
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


def file_name(source: SourceConfig) -> str:
    """The table's file name as the city knows it (e.g. massnahmen.csv), for messages."""
    return Path(urlparse(source.location).path).name or source.location


def _download(source: SourceConfig, policy: http.RetryPolicy,
              sess: requests.Session | None, limits: Limits) -> FetchedFile:
    resp = http.request(source.id, "GET", source.location, policy=policy, sess=sess)
    _check_bytes(len(resp.content), source.id, file_name(source), limits)
    headers = {k: resp.headers[k] for k in ("Content-Type",) if k in resp.headers}
    return FetchedFile("", resp.content, source.location, status=resp.status_code, headers=headers)


def _check_bytes(size: int, source: str, file: str, limits: Limits) -> None:
    if size > limits.max_table_bytes:
        raise InputError(source, f"the file has {size:,} bytes, more than the limit of "
                         f"{limits.max_table_bytes:,} (max_table_bytes in [settings]); split "
                         "the table or raise the limit", file)


def _read_file(source: SourceConfig, config: Config) -> FetchedFile:
    path = Path(source.location)
    if not path.is_absolute():
        path = config.path.parent / path
    try:
        _check_bytes(path.stat().st_size, source.id, file_name(source), config.limits)
        content = path.read_bytes()
    except OSError as exc:
        raise TerminalFetchError(
            source.id, f"cannot read {path} ({exc.strerror}); check 'location' in "
            f"{config.path} (relative paths start at the config file's folder)") from None
    _check_bytes(len(content), source.id, file_name(source), config.limits)  # grew meanwhile
    return FetchedFile("", content, f"file:{source.location}")


def fetch(source: SourceConfig, config: Config, *, policy: http.RetryPolicy,
          sess: requests.Session | None = None, stored: str = "") -> Fetched:
    """Download or read the table and check it (limits, encoding, structure) before it is stored.

    The content hash is the sha256 of the raw bytes. A file that cannot be parsed or is over a
    limit of [settings] raises ``InputError`` (exit 1), so no snapshot is stored for it. Bytes
    whose hash is ``stored`` (the newest snapshot's, checked when it was stored) are not parsed
    again: nothing new is stored, and a run reads that snapshot.
    """
    fmt = table_format(source)
    limits = config.limits
    got = (_download(source, policy, sess, limits) if is_url(source.location)
           else _read_file(source, config))
    got.name, got.role = f"data.{fmt}", "data"
    digest = sha256_bytes(got.content)
    if stored and digest == stored:
        log.info("%s: table unchanged, sha256 %s", source.id, digest[:12])
        return Fetched([got], digest, {"format": fmt})
    frame = parse(got.content, fmt, source=source.id, sheet=source.options.get("sheet"),
                  file=file_name(source), limits=limits)
    log.info("%s: table read, %d rows, sha256 %s", source.id, len(frame), digest[:12])
    return Fetched([got], digest, {"format": fmt, "rows": len(frame)})


def read(source: SourceConfig, snapshot: Snapshot) -> pd.DataFrame:
    """The snapshot's table as a frame of trimmed strings (index = 1-based data row).

    Limits were checked when the snapshot was stored (``fetch``); they are not applied again.
    """
    path = snapshot.file("data")
    fmt = path.suffix.lstrip(".").lower()
    return parse(path.read_bytes(), fmt, source=source.id, sheet=source.options.get("sheet"),
                 file=file_name(source), limits=None)


@dataclass(frozen=True)
class _Ctx:
    source: str
    file: str
    limits: Limits | None

    def fail(self, message: str) -> InputError:
        return InputError(self.source, message, self.file)

    def rows_over(self, n: int) -> bool:
        return self.limits is not None and n > self.limits.max_table_rows

    def check_row(self, n: int, cells: list[str]) -> None:
        """Data row ``n`` (0 = header) against the cells-per-row and characters-per-cell limits."""
        if self.limits is None:
            return
        where = "the header (row 1)" if n == 0 else f"spreadsheet row {n + 1} (data row {n})"
        if self.rows_over(n):
            raise self.fail(f"the table has more than {self.limits.max_table_rows:,} data rows "
                            "(max_table_rows in [settings]); split the table or raise the limit")
        width = len(cells)
        while width > self.limits.max_table_cells and not cells[width - 1]:
            width -= 1  # empty trailing cells (e.g. formatted but empty columns) do not count
        if width > self.limits.max_table_cells:
            raise self.fail(f"{where} has {width:,} cells, more than the limit of "
                            f"{self.limits.max_table_cells:,} (max_table_cells in [settings]); "
                            "remove the extra columns")
        for col, cell in enumerate(cells, start=1):
            if len(cell) > self.limits.max_cell_chars:
                raise self.fail(f"{where}, column {col}: the cell has {len(cell):,} characters, "
                                f"more than the limit of {self.limits.max_cell_chars:,} "
                                "(max_cell_chars in [settings]); shorten the cell")


def parse(data: bytes, fmt: str, *, source: str = "", sheet: str | None = None, file: str = "",
          limits: Limits | None = None) -> pd.DataFrame:
    """Parse CSV, XLSX or JSON bytes into a frame of trimmed strings.

    With ``limits``, a table over a limit raises ``InputError`` naming the row and column.
    """
    ctx = _Ctx(source, file, limits)
    if fmt == "csv":
        rows = _csv_rows(data, ctx)
    elif fmt == "xlsx":
        rows = _xlsx_rows(data, ctx, sheet)
    elif fmt == "json":
        rows = _json_rows(data, ctx)
    else:
        raise ctx.fail(f"unsupported table format '{fmt}'; use csv, xlsx or json")
    return _frame(rows, ctx)


BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"))


def decode_text(data: bytes, source: str = "", file: str = "") -> str:
    """Text by byte-order mark (UTF-8/16/32), else UTF-8 if valid, else Windows-1252.

    A file without BOM that is mostly NUL bytes (UTF-16/32 without BOM) raises ``InputError``.
    """
    for bom, codec in BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(codec)
            except UnicodeDecodeError as exc:
                raise InputError(source, f"the file starts with a {codec} byte-order mark but "
                                 f"is not valid {codec} (byte {exc.start}); save it again as "
                                 "'CSV UTF-8'", file) from None
    head = data[:4096]
    if head and head.count(0) * 4 >= len(head):
        raise InputError(source, "the file is mostly NUL bytes: UTF-16 or UTF-32 text without a "
                         "byte-order mark is not supported; save it as 'CSV UTF-8'", file)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _csv_rows(data: bytes, ctx: _Ctx) -> Rows:
    text = decode_text(data, ctx.source, ctx.file)
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    rows: Rows = []
    old = csv.field_size_limit()
    # a cell can never be longer than the file; the cell limit is checked below with row/column
    csv.field_size_limit(max(old, len(text) + 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row in reader:
            ctx.check_row(len(rows), row)
            rows.append(row)
    except csv.Error as exc:
        raise ctx.fail(f"malformed CSV in spreadsheet row {len(rows) + 1} (line "
                       f"{reader.line_num}): {exc}; re-export the file as CSV") from None
    finally:
        csv.field_size_limit(old)
    return rows


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


XML_DTD = tuple(m.encode(enc) for m in ("<!DOCTYPE", "<!ENTITY")
                for enc in ("utf-8", "utf-16-le", "utf-16-be"))
UNPACKED_FACTOR = 10  # an XLSX may unpack to at most this many times max_table_bytes


def _xlsx_scan(data: bytes, ctx: _Ctx) -> None:
    """Refuse a ZIP bomb and any XML part that declares a DTD or entities (XXE, billion laughs)."""
    limit = UNPACKED_FACTOR * (ctx.limits.max_table_bytes if ctx.limits else 20_000_000)
    total = 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                with zf.open(info) as fh:
                    tail = b""
                    while chunk := fh.read(1 << 16):
                        total += len(chunk)
                        if total > limit:
                            raise ctx.fail(f"the XLSX unpacks to more than {limit:,} bytes "
                                           f"({UNPACKED_FACTOR} × max_table_bytes); refused as a "
                                           "possible ZIP bomb. Save it again or split it")
                        if any(m in tail + chunk for m in XML_DTD):
                            raise ctx.fail(f"part {info.filename} of the XLSX declares a DTD or "
                                           "XML entities, which spreadsheets never need; refused "
                                           "(XXE / entity expansion). Open the file in "
                                           "Excel or LibreOffice and save it again as .xlsx")
                        tail = chunk[-32:]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError,
            zlib.error) as exc:
        raise ctx.fail(f"not a readable XLSX file ({exc}); save it again as .xlsx") from None


def _xlsx_rows(data: bytes, ctx: _Ctx, sheet: str | None) -> Rows:
    import openpyxl  # local: only needed for XLSX
    from defusedxml import DefusedXmlException

    _xlsx_scan(data, ctx)
    try:
        # data_only=False: a formula arrives as its text ("=..."), so it can be neutralised
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except DefusedXmlException as exc:
        raise ctx.fail(f"the XLSX declares XML entities ({type(exc).__name__}); refused. Save "
                       "it again from Excel or LibreOffice") from None
    except Exception as exc:  # openpyxl raises several unrelated types for a bad file
        raise ctx.fail(f"not a readable XLSX file ({exc})") from None
    try:
        if sheet and sheet not in book.sheetnames:
            raise ctx.fail(f"XLSX has no sheet '{sheet}' (sheets: "
                           f"{', '.join(book.sheetnames)}); fix options.sheet")
        ws = book[sheet] if sheet else book.worksheets[0]
        ws.reset_dimensions()  # do not trust a writer's <dimension> tag: read every row
        rows: Rows = []
        for values in ws.iter_rows(values_only=True):
            width = len(values)
            while width and values[width - 1] is None:
                width -= 1  # formatted but empty trailing cells
            cells = [cell_text(v) for v in values[:width]]
            ctx.check_row(len(rows), cells)
            rows.append(cells)
        return rows
    except InputError:
        raise
    except DefusedXmlException as exc:
        raise ctx.fail(f"the XLSX declares XML entities ({type(exc).__name__}); refused. Save "
                       "it again from Excel or LibreOffice") from None
    except Exception as exc:  # a damaged sheet part only fails while its rows are read
        raise ctx.fail(f"not a readable XLSX file ({type(exc).__name__}: {exc})") from None
    finally:
        book.close()


def _json_rows(data: bytes, ctx: _Ctx) -> Rows:
    try:
        doc = json.loads(decode_text(data, ctx.source, ctx.file))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ctx.fail(f"invalid JSON ({exc})") from None
    records = doc.get("data") if isinstance(doc, dict) else doc
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ctx.fail("JSON must be a list of objects or {\"data\": [objects]}")
    if ctx.rows_over(len(records)):
        ctx.check_row(len(records), [])
    header: list[str] = []
    seen: set[str] = set()
    for rec in records:
        for k in rec:
            if k not in seen:
                seen.add(k)
                header.append(k)
    ctx.check_row(0, header)
    rows: Rows = [header]
    for i, rec in enumerate(records, start=1):
        bad = [k for k, v in rec.items() if isinstance(v, dict | list)]
        if bad:
            raise ctx.fail(f"JSON record {i}, field '{bad[0]}': nested values "
                           "are not allowed; use plain text or numbers")
        cells = [cell_text(rec.get(k)) for k in header]
        ctx.check_row(i, cells)
        rows.append(cells)
    return rows


def _frame(rows: Rows, ctx: _Ctx) -> pd.DataFrame:
    if not rows:
        raise ctx.fail("the table is empty (no header row)")
    header = [h.strip() for h in rows[0]]
    width = len(header)
    body: Rows = []
    index: list[int] = []
    for n, raw in enumerate(rows[1:], start=1):
        cells = [c.strip() for c in raw] + [""] * (width - len(raw))
        if any(cells[width:]):
            raise ctx.fail(f"spreadsheet row {n + 1} (data row {n}) has more cells than the "
                           f"header ({len(raw)} > {width}); add a column name or remove them")
        if any(cells):
            body.append(cells[:width])
            index.append(n)
    frame = pd.DataFrame(body, columns=header, index=pd.Index(index, name="row"), dtype=object)
    return _drop_blank_columns(frame, ctx)


def _drop_blank_columns(frame: pd.DataFrame, ctx: _Ctx) -> pd.DataFrame:
    unnamed = [i for i, h in enumerate(frame.columns) if h == ""]
    for i in unnamed:
        if frame.iloc[:, i].astype(bool).any():
            raise ctx.fail(f"column {i + 1} has values but no name; "
                           "add a header or delete the column")
    frame = frame.iloc[:, [i for i in range(frame.shape[1]) if i not in unnamed]]
    dupes = sorted({h for h in frame.columns if list(frame.columns).count(h) > 1})
    if dupes:
        raise ctx.fail(f"duplicate column name '{dupes[0]}'; rename one of them")
    return frame
