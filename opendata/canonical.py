"""The canonical hash of a CSV: header, then the data lines sorted bytewise (sha256).

Snapshots record it as their content hash, so that two answers holding the same rows in another
order are the same content; it must never change (tests/test_canonical_hash.py keeps the
definition). Lines are sorted by pyarrow as offsets into the bytes, never as one Python object
per line. `canonical_csv_sha256` hashes bytes in memory; `CanonicalHash` takes the CSV in blocks
as it is decompressed and sorts at most ``run_bytes`` of lines in memory at a time: larger
tables are sorted in runs written to a temporary folder and merged, so memory stays bounded.
"""

from __future__ import annotations

import bisect
import hashlib
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

BOM = b"\xef\xbb\xbf"
_NUL_FOR_LF = bytes.maketrans(b"\n", b"\0")
_SCAN_BYTES = 1 << 24  # numpy scans of a CSV go block by block: a bounded temporary
_TAKE_ROWS = 1 << 16  # sorted lines are hashed in chunks of this many
RUN_BYTES = 1 << 27  # data lines sorted in memory at a time; beyond this: sorted runs on disk
MERGE_BYTES = 1 << 22  # read from each run at a time while merging


def canonical_csv_sha256(csv: bytes) -> str:
    """Hex sha256 of a CSV's canonical form: header, then the data lines sorted bytewise.

    A UTF-8 BOM, CR before LF and empty lines are dropped first. Two answers holding the same
    rows in a different order (the Regionaldatenbank does this) get the same hash. The lines are
    sorted by pyarrow as offsets into the CSV's bytes, never as one Python object per line.
    """
    data, start = csv, 3 if csv.startswith(BOM) else 0
    ends = _line_ends(data, start)
    if not _canonical_text(data, start, ends):
        data, start = _normalised(data[start:]), 0
        ends = _line_ends(data, start)
    if not len(ends):
        return hashlib.sha256(b"\n").hexdigest()
    digest = hashlib.sha256(memoryview(data)[start:ends[0] + 1])
    if len(ends) > 1:
        for chunk in _sorted_lines(data, int(ends[0]) + 1, ends[1:]):
            digest.update(chunk)
    return digest.hexdigest()


def _canonical_text(data: bytes, start: int, ends: Any) -> bool:
    """Whether ``data[start:]`` (LFs at ``ends``) is already canonical text: every line ends in
    LF, none is empty, none ends in CR."""
    if not len(ends):
        return len(data) == start
    view = np.frombuffer(data, dtype=np.uint8)
    return bool(ends[-1] == len(data) - 1 and ends[0] > start and (np.diff(ends) > 1).all()
                and not (view[ends - 1] == 13).any())


def _normalised(text: bytes) -> bytes:
    """``text`` without CR before LF and without empty lines, ending in LF unless empty."""
    text = text.replace(b"\r\n", b"\n")
    while b"\n\n" in text:  # each pass at least halves every run of empty lines
        text = text.replace(b"\n\n", b"\n")
    text = text.removeprefix(b"\n")
    return text if not text or text.endswith(b"\n") else text + b"\n"


def _line_ends(data: bytes, start: int) -> Any:
    """Positions of LF in ``data[start:]`` (int64), found block by block."""
    view = np.frombuffer(data, dtype=np.uint8)
    found = [np.flatnonzero(view[i:i + _SCAN_BYTES] == 10) + i
             for i in range(start, len(data), _SCAN_BYTES)]
    return np.concatenate(found) if found else np.empty(0, np.int64)


def _has_control(data: bytes, start: int) -> bool:
    """Whether ``data[start:]`` holds a byte below LF (TAB, NUL, ...)."""
    view = np.frombuffer(data, dtype=np.uint8)
    return any(bool((view[i:i + _SCAN_BYTES] < 10).any())
               for i in range(start, len(data), _SCAN_BYTES))


def _sorted_lines(data: bytes, head: int, ends: Any) -> Iterator[memoryview]:
    """The data lines (from ``head``, each ending at its LF in ``ends``) sorted bytewise as lines
    without their LF, as byte chunks of many lines, each line with its LF.

    Sorting "line\\n" differs from sorting "line" only where a line continues another one with
    a byte below LF; when the data holds such bytes the sort keys end in NUL instead of LF (a
    line plus NUL sorts like the line)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = len(ends)
    offsets = pa.py_buffer(np.concatenate(([head], ends + 1)).astype(np.int64))
    lines = pa.LargeBinaryArray.from_buffers(pa.large_binary(), rows,
                                             [None, offsets, pa.py_buffer(data)])
    keys = lines
    if _has_control(data, head):
        nul_ended = pa.py_buffer(data.translate(_NUL_FOR_LF))
        keys = pa.LargeBinaryArray.from_buffers(pa.large_binary(), rows, [None, offsets, nul_ended])
    order = pc.array_sort_indices(keys)
    del keys
    yield from _taken(lines, order)


def _taken(lines: Any, order: Any) -> Iterator[memoryview]:
    """``lines`` (each with its LF) in the order ``order``, as byte chunks of many lines."""
    for i in range(0, len(order), _TAKE_ROWS):
        part = lines.take(order[i:i + _TAKE_ROWS])
        bounds = np.frombuffer(part.buffers()[1], np.int64)[part.offset:part.offset + len(part) + 1]
        yield memoryview(part.buffers()[2])[bounds[0]:bounds[-1]]


def _lines_array(data: bytes, nul_keys: bool) -> tuple[Any, Any]:
    """Canonical ``data`` (lines ending in LF) as pyarrow lines with their LF, and their sort
    keys: the lines themselves, or (``nul_keys``, when the table holds bytes below LF) the lines
    ending in NUL, which sort like the lines without LF."""
    import pyarrow as pa

    ends = _line_ends(data, 0)
    offsets = pa.py_buffer(np.concatenate(([0], ends + 1)).astype(np.int64))
    lines = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(ends),
                                             [None, offsets, pa.py_buffer(data)])
    if not nul_keys:
        return lines, lines
    keys = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(ends),
                                            [None, offsets, pa.py_buffer(data.translate(_NUL_FOR_LF))])
    return lines, keys


class _Run:
    """One sorted run file, read in blocks of whole lines."""

    def __init__(self, path: Path, nul_keys: bool) -> None:
        self.fh, self.nul_keys = path.open("rb"), nul_keys
        self.carry, self.done = b"", False
        self.lines: Any = None
        self.keys: Any = None
        self.load()

    def load(self) -> None:
        """The next block of lines (``done``: the file has nothing after it)."""
        data = b""
        while not data and not self.done:
            block = self.fh.read(MERGE_BYTES)
            data = self.carry + block
            if not block:
                self.done, self.carry = True, b""
                self.fh.close()
            else:
                cut = data.rfind(b"\n") + 1
                data, self.carry = data[:cut], data[cut:]
        self.lines, self.keys = _lines_array(data, self.nul_keys)

    def upto(self, fence: bytes) -> int:
        """How many of the lines in hand sort at or before the key ``fence``."""
        keys = self.keys
        return bisect.bisect_right(range(len(keys)), fence, key=lambda i: keys[i].as_py())

    def drop(self, n: int) -> None:
        """Forget the first ``n`` lines in hand; load the next block when none are left."""
        self.lines, self.keys = self.lines[n:], self.keys[n:]
        if not len(self.lines) and not self.done:
            self.load()


def _merged(runs: list[Path], nul_keys: bool) -> Iterator[memoryview]:
    """The lines of sorted runs in one sorted order, as byte chunks: each round takes, from
    every run, the lines up to the smallest last key among the runs that have more to read,
    sorts them together and passes them on (no per-line Python)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    readers = [_Run(p, nul_keys) for p in runs]
    while active := [r for r in readers if len(r.lines)]:
        open_ = [r for r in active if not r.done]
        fence = min(r.keys[-1].as_py() for r in open_) if open_ else None
        lines, keys = [], []
        for r in active:
            n = len(r.lines) if fence is None else r.upto(fence)
            if n:
                lines.append(r.lines[:n])
                keys.append(r.keys[:n])
                r.drop(n)
        merged = pa.concat_arrays(lines)
        order = pc.array_sort_indices(pa.concat_arrays(keys))
        yield from _taken(merged, order)


def run_prefix(source: str) -> str:
    """The name prefix of the folder of sorted runs a fetch of ``source`` uses."""
    return f"canonical-sort-{source}."


def clean_runs(tmp_dir: Path, source: str) -> None:
    """Remove the sorted runs an interrupted fetch of ``source`` left in ``tmp_dir``."""
    if tmp_dir.is_dir():
        for p in tmp_dir.glob(run_prefix(source) + "*"):
            shutil.rmtree(p, ignore_errors=True)


class CanonicalHash:
    """`canonical_csv_sha256` of a CSV given in blocks, in bounded memory."""

    def __init__(self, tmp_dir: Path | None = None, run_bytes: int | None = None,
                 prefix: str = "canonical-sort-") -> None:
        self.tmp_dir, self.run_bytes, self.prefix = tmp_dir, run_bytes or RUN_BYTES, prefix
        self.carry, self.started = b"", False
        self.header: bytes | None = None
        self.parts: list[tuple[bytes, Any]] = []  # normalised data lines and their LF positions
        self.size = 0
        self.control = False  # whether a data line holds a byte below LF
        self.runs: list[Path] = []
        self.folder: Path | None = None

    def update(self, block: bytes) -> None:
        """Take the next block of the CSV (any size, cut anywhere)."""
        data = self.carry + block
        if not self.started:
            if len(data) < len(BOM):
                self.carry = data
                return
            data, self.started = data.removeprefix(BOM), True
        cut = data.rfind(b"\n") + 1
        self.carry = data[cut:]
        if cut:
            self._lines(data[:cut])

    def _lines(self, text: bytes, normalised: bool = False) -> None:
        """Line-aligned text: normalised (once), its first line the header, the rest sorted."""
        ends = _line_ends(text, 0)
        if not normalised and len(ends) and not _canonical_text(text, 0, ends):
            text = _normalised(text)
            ends = _line_ends(text, 0)
        if self.header is None and len(ends):
            first = int(ends[0]) + 1
            self.header, text, ends = text[:first], text[first:], ends[1:] - first
        if len(ends):
            self.control = self.control or _has_control(text, 0)
            self.parts.append((text, ends))
            self.size += len(text)
            if self.size >= self.run_bytes:
                self._spill()

    def _joined(self) -> tuple[bytes, Any]:
        """The lines in hand as one text and its line ends; none are kept."""
        parts, self.parts, self.size = self.parts, [], 0
        bases = np.cumsum([0] + [len(t) for t, _ in parts])
        ends = np.concatenate([e + b for (_, e), b in zip(parts, bases, strict=False)]) \
            if parts else np.empty(0, np.int64)
        return b"".join(t for t, _ in parts), ends

    def _spill(self) -> None:
        """Sort the lines in hand into a run file."""
        if self.folder is None:
            if self.tmp_dir is not None:
                self.tmp_dir.mkdir(parents=True, exist_ok=True)
            self.folder = Path(tempfile.mkdtemp(prefix=self.prefix, dir=self.tmp_dir))
        data, ends = self._joined()
        path = self.folder / f"run-{len(self.runs):06d}"
        with path.open("wb") as out:
            for chunk in _sorted_lines(data, 0, ends):
                out.write(chunk)
        self.runs.append(path)

    def hexdigest(self) -> str:
        """The hash of everything given (the last line may lack its LF)."""
        rest, self.carry = self.carry, b""
        if not self.started:
            rest, self.started = rest.removeprefix(BOM), True
        if rest:  # the last line without its LF (a CR at its end stays)
            self._lines(_normalised(rest), normalised=True)
        if self.header is None:
            return hashlib.sha256(b"\n").hexdigest()
        digest = hashlib.sha256(self.header)
        if self.runs:
            if self.parts:
                self._spill()
            chunks: Iterable[memoryview] = _merged(self.runs, self.control)
        else:
            data, ends = self._joined()
            chunks = _sorted_lines(data, 0, ends) if len(ends) else ()
        for chunk in chunks:
            digest.update(chunk)
        return digest.hexdigest()

    def close(self) -> None:
        """Remove the run files."""
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder, self.runs = None, []


def canonical_csv_sha256_blocks(blocks: Iterable[bytes], tmp_dir: Path | None = None,
                                run_bytes: int | None = None,
                                prefix: str = "canonical-sort-") -> str:
    """`canonical_csv_sha256` of a CSV given in blocks; at most ``run_bytes`` of lines are held,
    larger tables are sorted in runs in a temporary folder in ``tmp_dir`` (removed after).
    ``run_bytes`` defaults to RUN_BYTES."""
    hasher = CanonicalHash(tmp_dir, run_bytes, prefix)
    try:
        for block in blocks:
            hasher.update(block)
        return hasher.hexdigest()
    finally:
        hasher.close()
