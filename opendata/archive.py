"""The release ZIP: deterministic, streamed, and deflated on every core for large members.

A large member is cut into blocks that are deflated in parallel, each primed with the last
32 KiB of the block before (so back references reach across blocks, as in one stream) and
ended with a sync flush; the last block ends the stream. This is pigz's method: the
concatenation is one valid deflate stream, the same for the same bytes on every machine.
Small members use zlib's own single stream, byte for byte what ``zipfile`` writes.
"""

from __future__ import annotations

import os
import shutil
import zipfile
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

ZIP_DATE = (2020, 10, 13, 0, 0, 0)  # fixed ZIP member time: the concept's adoption date
COPY_BLOCK = 1 << 20  # bytes copied into a ZIP member at a time
DEFLATE_BLOCK = 1 << 22  # bytes deflated by one worker at a time (members of 2+ blocks)
LEVEL = 6  # zlib's default, what zipfile uses
WINDOW = 1 << 15  # deflate's window: the priming dictionary of a block


def _deflate(data: bytes, primer: bytes, last: bool) -> bytes:
    """Raw deflate of one block, primed with the previous block's tail, sync-flushed or final."""
    comp = zlib.compressobj(LEVEL, zlib.DEFLATED, -15, zdict=primer) if primer \
        else zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    return comp.compress(data) + comp.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


class ParallelDeflate:
    """A compressor with zlib's ``compress``/``flush`` interface that deflates blocks on a pool."""

    def __init__(self, pool: ThreadPoolExecutor, workers: int) -> None:
        self.pool, self.ahead = pool, 2 * workers
        self.buf = bytearray()
        self.primer = b""
        self.pending: deque[Future[bytes]] = deque()

    def _submit(self, block: bytes, last: bool) -> None:
        self.pending.append(self.pool.submit(_deflate, block, self.primer, last))
        self.primer = block[-WINDOW:]

    def compress(self, data: bytes | memoryview) -> bytes:
        """Take data; return the deflated blocks that are ready, in order."""
        self.buf += data
        while len(self.buf) >= DEFLATE_BLOCK:
            self._submit(bytes(self.buf[:DEFLATE_BLOCK]), last=False)
            del self.buf[:DEFLATE_BLOCK]
        out = []
        while self.pending and (self.pending[0].done() or len(self.pending) > self.ahead):
            out.append(self.pending.popleft().result())
        return b"".join(out)

    def flush(self) -> bytes:
        """Deflate the rest as the final block; return everything not yet returned."""
        self._submit(bytes(self.buf), last=True)
        self.buf = bytearray()
        out = b"".join(f.result() for f in self.pending)
        self.pending.clear()
        return out


def write_zip(src: Path, dest: Path, prefix: str, workers: int | None = None) -> None:
    """ZIP every file of ``src`` (listed before ``dest`` exists) under ``prefix/``, streamed.

    Fixed date and permissions; each file is copied into its member in blocks (never whole in
    memory). The size is set before the member is opened, so headers (and Zip64 for large
    files) are decided exactly as ``writestr`` decides them.
    """
    files = sorted(p for p in src.rglob("*") if p.is_file())
    workers = max(1, workers or os.cpu_count() or 1)
    with ThreadPoolExecutor(workers, "deflate") as pool, \
            zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in files:
            info = zipfile.ZipInfo(f"{prefix}/{p.relative_to(src).as_posix()}", ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with p.open("rb") as fh:
                info.file_size = os.fstat(fh.fileno()).st_size
                with zf.open(info, "w") as member:
                    if info.file_size >= 2 * DEFLATE_BLOCK and workers > 1:
                        # zipfile keeps CRC and sizes of the raw bytes; only the deflate differs
                        member._compressor = ParallelDeflate(pool, workers)  # type: ignore[attr-defined]
                    shutil.copyfileobj(fh, member, COPY_BLOCK)
