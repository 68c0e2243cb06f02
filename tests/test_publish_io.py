"""Release I/O that must not grow with the data: the streamed ZIP (byte-identical to the in-memory
one it replaced), record counts, and the site reading only the columns and rows it draws."""

from __future__ import annotations

import csv
import io
import random
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO

from opendata import archive, publish, site, store
from opendata.paths import Paths

GOLDEN = REPO / "tests" / "golden"


def _ref_zip(src: Path, dest: Path, prefix: str) -> None:
    """The release ZIP before issue 14 (whole files in memory): the reference."""
    files = sorted(p for p in src.rglob("*") if p.is_file())
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in files:
            info = zipfile.ZipInfo(f"{prefix}/{p.relative_to(src).as_posix()}", archive.ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, p.read_bytes())


def _example_release(root: Path) -> Path:
    """Golden data files plus a large example file (several ZIP blocks), an empty one, nested."""
    rel = root / "rel"
    shutil.copytree(GOLDEN / "integration_statistics", rel)
    rng = random.Random(14)
    words = ["BEISPIEL", "16056", "Eisenach", "2024-12-31", "männlich", "0.1", "\n", ","]
    text = "".join(rng.choice(words) for _ in range(700_000))  # ~5 MB, compressible
    (rel / "data" / "beispiel_gross.csv").write_text(text, encoding="utf-8")
    (rel / "data" / "leer.csv").write_bytes(b"")
    (rel / "a" / "b").mkdir(parents=True)
    (rel / "a" / "b" / "zufall.bin").write_bytes(rng.randbytes(3 * archive.COPY_BLOCK + 17))
    return rel


def test_streamed_zip_is_byte_identical(tmp_path: Path) -> None:
    rel = _example_release(tmp_path)
    archive.write_zip(rel, tmp_path / "new.zip", "pkg-1.0.0")
    _ref_zip(rel, tmp_path / "old.zip", "pkg-1.0.0")
    assert (tmp_path / "new.zip").read_bytes() == (tmp_path / "old.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "new.zip") as zf:
        assert zf.testzip() is None
        big = zf.read("pkg-1.0.0/a/b/zufall.bin")
    assert big == (rel / "a" / "b" / "zufall.bin").read_bytes()


def test_zip_of_a_release_inside_itself_lists_files_first(tmp_path: Path) -> None:
    rel = _example_release(tmp_path)
    archive.write_zip(rel, rel / "pkg.zip", "pkg")  # as finalize does: the ZIP lives in the release
    with zipfile.ZipFile(rel / "pkg.zip") as zf:
        names = zf.namelist()
    assert "pkg/pkg.zip" not in names and names == sorted(names)


def test_large_members_are_deflated_in_parallel_blocks(tmp_path: Path) -> None:
    """A member of several deflate blocks: valid, the same bytes on every run, as small as one
    stream; with one worker the ZIP is byte for byte the single-stream reference."""
    rel = tmp_path / "rel"
    rel.mkdir()
    rng = random.Random(41)
    words = ["BEISPIEL", "16056", "Eisenach", "2024-12-31", "männlich", "0.1", "\n", ","]
    text = "".join(rng.choice(words) for _ in range(3_000_000))  # ~22 MB: 5+ blocks
    (rel / "gross.json").write_text(text, encoding="utf-8")
    (rel / "klein.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    archive.write_zip(rel, tmp_path / "a.zip", "p", workers=2)
    archive.write_zip(rel, tmp_path / "b.zip", "p", workers=2)
    archive.write_zip(rel, tmp_path / "one.zip", "p", workers=1)
    _ref_zip(rel, tmp_path / "ref.zip", "p")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "ref.zip").read_bytes()
    assert (tmp_path / "a.zip").read_bytes() != (tmp_path / "ref.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.zip") as zf, zipfile.ZipFile(tmp_path / "ref.zip") as ref:
        assert zf.testzip() is None
        assert zf.read("p/gross.json") == (rel / "gross.json").read_bytes()
        par, one = zf.getinfo("p/gross.json"), ref.getinfo("p/gross.json")
        assert par.CRC == one.CRC and par.file_size == one.file_size
        assert par.compress_size < one.compress_size * 1.01


CSV_CASES = ["a,b\n1,2\n", "a,b\n", "", "a,b\n1,2", 'a,b\n"x\ny",2\n"z""\n",3\n',
             'a\n"\r\n"\n"\n\n"\n', 'a,b\n"q"",""\n,\n",4\n5,6\n']


@pytest.mark.parametrize("text", CSV_CASES)
def test_csv_records_counts_records_not_lines(text: str, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode("utf-8"))
    want = sum(1 for _ in csv.reader(io.StringIO(text, newline="")))
    for block in (1, 2, 3, 7, 1 << 22):  # quotes and line breaks split across blocks
        assert store.csv_records(path, block) == want, (text, block)


def test_row_counts_of_golden_release(tmp_path: Path) -> None:
    rel = tmp_path / "rel"
    shutil.copytree(GOLDEN / "integration_measures", rel)
    counts = store.release_rows(rel)
    for name, n in counts.items():
        with (rel / "data" / f"{name}.csv").open(encoding="utf-8", newline="") as fh:
            assert n == sum(1 for _ in csv.DictReader(fh)), name
    assert counts["measures"] == 5


# --- the site reads only what it draws -------------------------------------------------------------

def _published(tmp_path: Path) -> tuple[Paths, site.Published]:
    paths = Paths(tmp_path / "data")
    rel = paths.package_dir("integration_statistics") / "1.0.0"
    shutil.copytree(GOLDEN / "integration_statistics", rel)
    names = sorted(p.stem for p in (rel / "data").glob("*.csv"))
    desc: dict[str, Any] = {"resources": [{"name": n} for n in names]}
    return paths, site.Published("integration_statistics", {}, [{"version": "1.0.0"}], desc, {})


def _dict_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_read_rows_with_columns_and_filter(tmp_path: Path) -> None:
    paths, pub = _published(tmp_path)
    path = paths.package_dir(pub.id) / "1.0.0" / "data" / "protection_seekers.csv"
    everything = site.read_rows(paths, pub, "protection_seekers")
    assert everything == _dict_rows(path)
    cols = ("protection_status_code", "value", "no_such_column")
    some = site.read_rows(paths, pub, "protection_seekers", cols,
                          {"protection_status_code": {"SCHUTZST-OF"}})
    want = [{"protection_status_code": r["protection_status_code"], "value": r["value"]}
            for r in everything or [] if r["protection_status_code"] == "SCHUTZST-OF"]
    assert some == want and want
    assert site.read_rows(paths, pub, "protection_seekers", cols, {"no_such_column": {"x"}}) == []
    assert site.read_rows(paths, pub, "no_such_resource") is None


def test_built_rows_are_the_records_of_the_staged_csvs(tmp_path: Path) -> None:
    """The summary counts rows from the build: exactly the records the staged CSVs hold."""
    from helpers import copy_raw

    from opendata import config, pipeline

    cfg = config.load()
    paths = cfg.paths(copy_raw(tmp_path / "data"))
    for pkg in sorted(cfg.packages):
        cand = pipeline.candidate(cfg, paths, pkg)
        try:
            counts = publish.built_rows(cand.build)
            assert counts == store.release_rows(cand.staged.path) and sum(counts.values()) > 0
        finally:
            publish.discard(cand.staged)
