"""Through the real command line: a measures error exits 1 and leaves the previous release untouched."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import pytest
from test_measures import ERROR_CASES, FIELDS, GOOD, MEASURES_HEADER, make_config

from flows.cli import main


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file below root (symlinks by target), keyed by relative path."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "-> " + str(p.readlink())
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def cli(cfg: Path, data: Path, command: str) -> int:
    """Run one `opendata` command offline on the test registry and data dir."""
    return main([command, "--offline", "-q", "--config", str(cfg), "--data-dir", str(data)])


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A registry and data dir with one published release of the good test tables."""
    root = tmp_path_factory.mktemp("pipeline")
    make_config(root / "cfg", FIELDS, GOOD)
    cfg, data = root / "cfg" / "opendata.toml", root / "data"
    assert cli(cfg, data, "fetch") == 0
    assert cli(cfg, data, "publish") == 0
    assert (data / "published" / "integration_measures" / "latest" / "data" / "measures.csv").is_file()
    return cfg, data


@pytest.mark.parametrize(("code", "rows", "row", "field"), ERROR_CASES)
def test_error_exits_1_and_previous_release_is_untouched(
        released: tuple[Path, Path], code: str, rows: list[list[str]], row: int, field: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    cfg, data = released
    before = tree_digest(data / "published")
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([MEASURES_HEADER, *rows])
    (cfg.parent / "city" / "m.csv").write_text(buf.getvalue(), encoding="utf-8")
    assert cli(cfg, data, "fetch") == 0
    capsys.readouterr()
    assert cli(cfg, data, "publish") == 1
    err = capsys.readouterr().err
    assert f"[{code}]" in err and f"row {row}, field {field}" in err
    assert tree_digest(data / "published") == before
