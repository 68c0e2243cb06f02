"""Read a CSV file as frictionless sees it: its header labels, then Arrow record batches of text.

Every column is read as text. The file is streamed in blocks (one record batch each), hashed and
counted on the way, never held whole. A background thread reads the next batch while the caller
checks the current one (pyarrow parses without the GIL), and the reader's read-ahead is held to
READ_AHEAD blocks, so memory does not depend on how far reading outruns checking.
"""

from __future__ import annotations

import csv
import hashlib
import io
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.csv as pcsv

from opendata.fastcheck.unsupported import Unsupported

BLOCK_SIZE = 16 << 20  # bytes per Arrow block (one record batch each)
HEADER_LIMIT = 1 << 20  # a header record longer than this is not ours to read
SAMPLE_LINES = 100  # frictionless sniffs the dialect on the first 100 lines
READ_AHEAD = 4  # blocks the CSV reader may read beyond the batches taken (bounds memory)
WAIT = 1.0  # seconds a read waits for the consumer before it goes on anyway (never a hang)
TEXT = pa.string()
_END = object()  # end of the batches, sent by the reading thread


class _Tee(io.RawIOBase):
    """A read-only stream of ``prefix`` then ``raw`` that counts and hashes every byte passed on."""

    def __init__(self, prefix: bytes, raw: BinaryIO, hashes: list[Any]) -> None:
        super().__init__()
        self._prefix, self._raw, self._hashes = prefix, raw, hashes
        self.bytes = 0
        self._taken = 0  # batches the consumer has taken
        self._reads = 0
        self._progress = threading.Condition()

    def taken(self) -> None:
        """One more batch was taken: the reader may read one block further."""
        with self._progress:
            self._taken += 1
            self._progress.notify_all()

    def _pace(self) -> None:
        """Hold the reader's read-ahead (whole blocks it buffers) to READ_AHEAD blocks."""
        with self._progress:
            self._progress.wait_for(lambda: self._reads <= self._taken + READ_AHEAD, timeout=WAIT)
            self._reads += 1

    def readable(self) -> bool:
        return True

    def _seen(self, data: bytes) -> bytes:
        self.bytes += len(data)
        for h in self._hashes:
            h.update(data)
        return data

    def read(self, size: int | None = -1) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix, b""
            if size is not None and 0 <= size < len(data):
                data, self._prefix = data[:size], data[size:]
            return self._seen(data)
        self._pace()
        return self._seen(self._raw.read(-1 if size is None else size))

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _header_end(head: bytes) -> int:
    """Byte offset just after the first CSV record (RFC 4180 quoting), or -1 if not within ``head``."""
    quoted = False
    for i, byte in enumerate(head):
        if byte == 0x22:
            quoted = not quoted
        elif not quoted and byte in (0x0A, 0x0D):
            return i + 2 if head[i:i + 2] == b"\r\n" else i + 1
    return -1 if quoted or len(head) >= HEADER_LIMIT else len(head)


def _check_dialect(lines: Iterable[str], what: str) -> None:
    """Frictionless sniffs the delimiter and quoting on the first lines; accept only plain CSV."""
    try:
        sample = "".join(islice(lines, SAMPLE_LINES))
    except UnicodeDecodeError as exc:
        raise Unsupported(f"{what} is not UTF-8 text ({exc.reason})") from exc
    try:
        found = csv.Sniffer().sniff(sample, ",\t;|")
    except csv.Error:
        return  # frictionless falls back to the excel dialect: plain CSV
    if found.delimiter != "," or found.quotechar not in ('"', "'") or found.escapechar \
            or found.skipinitialspace:
        raise Unsupported(f"{what}: frictionless would read it with another CSV dialect")


@dataclass
class CsvStream:
    """An open CSV file: labels now, batches on iteration, byte count and hashes afterwards."""

    labels: list[str]
    batches: Iterator[pa.RecordBatch]
    tee: _Tee
    hashes: dict[str, Any] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        """Bytes read so far (all of them once the batches are exhausted)."""
        return self.tee.bytes

    def digest(self, algorithm: str) -> str:
        """Hex digest of the bytes read so far."""
        return str(self.hashes[algorithm].hexdigest())


def _batches(stream: _Tee, width: int, columns: list[int] | None) -> Iterator[pa.RecordBatch]:
    names = [f"c{i}" for i in range(width)]
    keep = names if columns is None else [names[i] for i in columns]
    try:
        reader = pcsv.open_csv(
            stream,
            read_options=pcsv.ReadOptions(column_names=names, block_size=BLOCK_SIZE, use_threads=True),
            parse_options=pcsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(
                column_types={n: TEXT for n in keep}, include_columns=keep,
                strings_can_be_null=False, quoted_strings_can_be_null=False, check_utf8=True))
        for batch in reader:
            stream.taken()
            yield batch
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            return
        raise Unsupported(f"the CSV reader stopped: {exc}") from exc


def _prefetch(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Read the next batch in a background thread while the caller checks this one.

    pyarrow parses without the GIL, so reading and checking overlap on two cores. Errors of the
    reader (``Unsupported``) are raised in the caller's thread, in order.
    """
    slot: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def offer(item: Any, error: BaseException | None = None) -> bool:
        while not stop.is_set():
            try:
                slot.put((item, error), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for batch in batches:
                if not offer(batch):
                    return
            offer(_END)
        except BaseException as exc:  # handed to the caller's thread
            offer(None, exc)

    worker = threading.Thread(target=run, name="fastcheck-csv", daemon=True)
    worker.start()
    try:
        while True:
            item, error = slot.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()


def open_csv(source: Path | bytes, *, hashes: tuple[str, ...] = (),
             columns: list[int] | None = None) -> tuple[CsvStream, BinaryIO]:
    """Open UTF-8 CSV (a file or its bytes); the caller closes the returned handle."""
    what = source.name if isinstance(source, Path) else "the table"
    if isinstance(source, Path):
        with source.open(encoding="utf-8", newline="") as lines:
            _check_dialect(lines, what)
        fh: BinaryIO = source.open("rb")
    else:
        _check_dialect(io.TextIOWrapper(io.BytesIO(source), encoding="utf-8", newline=""), what)
        fh = io.BytesIO(source)
    try:
        head = fh.read(HEADER_LIMIT)
        if head.startswith(b"\xef\xbb\xbf"):
            raise Unsupported(f"{what} starts with a byte order mark")
        end = _header_end(head)
        if end <= 0:
            raise Unsupported(f"{what} has no header record the engine can read")
        try:
            text = head[:end].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Unsupported(f"{what}: header is not UTF-8") from exc
        labels = [c.strip() for c in next(csv.reader(io.StringIO(text, newline="")), [])]
        if not labels or not any(labels):
            raise Unsupported(f"{what} has a blank header")
        digests = {name: hashlib.new(name) for name in hashes}
        tee = _Tee(head[end:], fh, list(digests.values()))
        tee.bytes = end
        for h in digests.values():
            h.update(head[:end])
        batches = _prefetch(_batches(tee, len(labels), columns))
        return CsvStream(labels, batches, tee, digests), fh
    except BaseException:
        fh.close()
        raise
