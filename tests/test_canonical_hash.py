"""canonical.canonical_csv_sha256 (sorted by pyarrow on offsets) and its streamed form
(CanonicalHash: blocks, sorted runs on disk, merged) equal the definition.

The definition below is the original implementation, kept here as the specification: existing
snapshots' manifests record this hash, so it must never change. Inputs are made in the tests:
sorted, shuffled, CRLF, BOM, empty lines, control bytes, bytes above 0x7F, random byte soups,
and the recorded GENESIS answers of ../shared when present.
"""

from __future__ import annotations

import hashlib
import random
import zipfile
from pathlib import Path

import pytest

from opendata import canonical
from opendata.canonical import canonical_csv_sha256, canonical_csv_sha256_blocks

BOM = b"\xef\xbb\xbf"
HEAD = b"statistics_code;time;1_variable_attribute_code;value"


def definition(csv: bytes) -> str:
    """The hash as defined (and as every stored manifest has it)."""
    lines = csv.removeprefix(BOM).replace(b"\r\n", b"\n").split(b"\n")
    lines = [line for line in lines if line]
    canonical = b"\n".join(lines[:1] + sorted(lines[1:])) + b"\n"
    return hashlib.sha256(canonical).hexdigest()


def rows(n: int, seed: int = 1) -> list[bytes]:
    """BEISPIEL data lines: keys and values of different lengths, some lines prefixes of others."""
    rng = random.Random(seed)
    out = [b"12411;%d;%05d;%d" % (2000 + rng.randint(0, 24), rng.randint(0, 99999),
                                  rng.randint(0, 10 ** rng.randint(0, 7))) for _ in range(n)]
    return out + [line[: len(line) // 2] for line in out[: n // 10]]


def join(lines: list[bytes], sep: bytes = b"\n", end: bytes = b"\n") -> bytes:
    return sep.join(lines) + end


SHUFFLED = rows(500)
CASES = {
    "empty": b"",
    "only newlines": b"\n\r\n\n",
    "only a BOM": BOM,
    "header only": HEAD,
    "header and LF": HEAD + b"\n",
    "sorted": join([HEAD, *sorted(SHUFFLED)]),
    "shuffled": join([HEAD, *SHUFFLED]),
    "reversed": join([HEAD, *sorted(SHUFFLED, reverse=True)]),
    "no final LF": join([HEAD, *SHUFFLED], end=b""),
    "CRLF": join([HEAD, *SHUFFLED], b"\r\n", b"\r\n"),
    "BOM + CRLF": BOM + join([HEAD, *SHUFFLED], b"\r\n", b"\r\n"),
    "BOM not at the start": HEAD + b"\n" + BOM + b"x\n",
    "CR without LF stays": join([HEAD, b"a\rb", b"a", b"a\r", b"\r"], end=b"\r"),
    "CR CR LF": join([HEAD, b"a\r\r", b"a\r", b"a"], b"\r\n"),
    "empty lines": b"\n\n" + join([HEAD, b"", *SHUFFLED[:50], b"", b""], b"\n\n") + b"\n\n\n",
    "empty lines CRLF": b"\r\n" + join([HEAD, *SHUFFLED[:50]], b"\r\n\r\n\n"),
    "duplicates": join([HEAD, *SHUFFLED[:40], *SHUFFLED[:40]]),
    "tab and NUL after a prefix": join([HEAD, b"a", b"a\tb", b"a\x00", b"a\x00b", b"ab", b"a\x09"]),
    "bytes above 0x7f": join([HEAD, "Köln".encode(), b"K\xff", b"K\x80", b"Ko", b"K"]),
    "not UTF-8": join([HEAD, "männlich".encode("latin-1"), b"m"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_same_hash_as_the_definition(name: str) -> None:
    assert canonical_csv_sha256(CASES[name]) == definition(CASES[name])


def test_order_and_line_ends_do_not_change_the_hash() -> None:
    same = {canonical_csv_sha256(CASES[k]) for k in ("sorted", "shuffled", "reversed", "no final LF",
                                                      "CRLF", "BOM + CRLF")}
    assert len(same) == 1 and canonical_csv_sha256(CASES["duplicates"]) not in same


def test_random_byte_soups() -> None:
    rng = random.Random(14)
    parts = [b"a", b"b", b";", b"\r", b"\n", b"\t", b"\x00", b"\x01", b"\xff", b"\xc3\xa4", b"\n\n",
             b"\r\n", b"ab", b"a;", BOM]
    for _ in range(3000):
        soup = b"".join(rng.choice(parts) for _ in range(rng.randint(0, 40)))
        assert canonical_csv_sha256(soup) == definition(soup), soup


def test_blocks_and_chunks_of_any_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scans and hashing go block by block; tiny blocks cross every line boundary."""
    monkeypatch.setattr(canonical, "_SCAN_BYTES", 7)
    monkeypatch.setattr(canonical, "_TAKE_ROWS", 3)
    for name in ("shuffled", "CRLF", "empty lines", "tab and NUL after a prefix", "no final LF"):
        assert canonical_csv_sha256(CASES[name]) == definition(CASES[name]), name


def test_many_lines() -> None:
    big = join([HEAD, *rows(200_000, seed=2)], b"\r\n")  # several chunks of sorted lines
    assert canonical_csv_sha256(big) == definition(big)


def test_recorded_answers(shared: Path) -> None:
    seen = 0
    for path in sorted((shared / "genesis").glob("*/bodies/*.zip")):
        with zipfile.ZipFile(path) as zf:
            csv = zf.read(zf.namelist()[0])
        assert canonical_csv_sha256(csv) == definition(csv), path
        seen += 1
    assert seen >= 5


def blocks(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)] or [b""]


@pytest.mark.parametrize("name", list(CASES))
def test_streamed_in_blocks_and_runs(name: str, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks cut anywhere (also inside a BOM or a CR LF), lines sorted in runs of a few bytes
    on disk and merged reading a few bytes at a time: the same hash, and no run file left."""
    monkeypatch.setattr(canonical, "MERGE_BYTES", 5)
    want = definition(CASES[name])
    for size, run_bytes in ((1, canonical.RUN_BYTES), (2, 200), (3, 13), (7, 1), (64, 1),
                            (64, 200), (1 << 20, 1), (1 << 20, 13), (1 << 20, canonical.RUN_BYTES)):
        got = canonical_csv_sha256_blocks(blocks(CASES[name], size), tmp_path, run_bytes)
        assert got == want, (size, run_bytes)
    assert list(tmp_path.iterdir()) == []


def test_streamed_byte_soups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(canonical, "MERGE_BYTES", 3)
    rng = random.Random(15)
    parts = [b"a", b"b", b";", b"\r", b"\n", b"\t", b"\x00", b"\x01", b"\xff", b"\n\n", b"\r\n",
             b"ab", BOM]
    for _ in range(1500):
        soup = b"".join(rng.choice(parts) for _ in range(rng.randint(0, 60)))
        got = canonical_csv_sha256_blocks(blocks(soup, rng.randint(1, 9)), tmp_path,
                                          rng.randint(1, 30))
        assert got == definition(soup), soup


def test_streamed_many_lines_in_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """200 k lines in runs of about 0.5 MB: many runs, merged 64 KiB at a time."""
    monkeypatch.setattr(canonical, "MERGE_BYTES", 1 << 16)
    big = join([HEAD, *rows(200_000, seed=3)], b"\r\n")
    runs = tmp_path / "state" / "tmp"
    hasher = canonical.CanonicalHash(runs, run_bytes=1 << 19)
    try:
        for part in blocks(big, 1 << 16):
            hasher.update(part)
        assert hasher.hexdigest() == definition(big)
        assert len(hasher.runs) > 5 and all(p.parent.parent == runs for p in hasher.runs)
    finally:
        hasher.close()
    assert list(runs.iterdir()) == []  # run files go with the hasher


def test_runs_left_by_an_interrupted_fetch_are_removed(tmp_path: Path) -> None:
    """A fetch killed while sorting leaves its runs; the next fetch of that source removes them,
    and only those."""
    left = tmp_path / (canonical.run_prefix("protection_seekers") + "x1")
    other = tmp_path / (canonical.run_prefix("population") + "x2")
    for folder in (left, other):
        folder.mkdir()
        (folder / "run-000000").write_bytes(b"a\n")
    canonical.clean_runs(tmp_path, "protection_seekers")
    assert not left.exists() and other.is_dir()
    canonical.clean_runs(tmp_path / "missing", "protection_seekers")  # no tmp dir yet: nothing to do
