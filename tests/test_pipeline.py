"""End to end: `opendata run` on a temporary data dir, as a real process with real Prefect."""

from __future__ import annotations

import json
from pathlib import Path

import frictionless
import pytest
from helpers import copy_config, copy_raw, edit_city_cell, opendata, tree_hashes

PACKAGES = ("integration_measures", "integration_statistics")


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """One full run and one rerun on the embedded data (shared by the tests of this module)."""
    data = copy_raw(tmp_path_factory.mktemp("run") / "data")
    first = opendata("run", "--data-dir", str(data))
    assert first.returncode == 0, first.stderr[-3000:]
    second = opendata("run", "--data-dir", str(data))
    assert second.returncode == 0, second.stderr[-3000:]
    return data, first.stdout + first.stderr, second.stdout + second.stderr


def test_run_publishes_both_packages(published: tuple[Path, str, str]) -> None:
    data, out, _ = published
    assert "offline: no API credentials configured" in out
    for pkg in PACKAGES:
        pkg_dir = data / "published" / pkg
        assert (pkg_dir / "latest").resolve() == (pkg_dir / "1.0.0").resolve()
        versions = json.loads((pkg_dir / "versions.json").read_text())
        assert versions["latest"] == "1.0.0"
        assert [v["version"] for v in versions["versions"]] == ["1.0.0"]
        assert f"{pkg}: published 1.0.0" in out


def test_published_packages_pass_frictionless(published: tuple[Path, str, str]) -> None:
    data, _, _ = published
    for pkg in PACKAGES:
        report = frictionless.Package(str(data / "published" / pkg / "1.0.0" / "datapackage.json")).validate()
        assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])[:10]


def test_each_resource_has_csv_json_and_hash(published: tuple[Path, str, str]) -> None:
    data, _, _ = published
    rel = data / "published" / "integration_statistics" / "1.0.0"
    desc = json.loads((rel / "datapackage.json").read_text())
    assert desc["version"] == "1.0.0"
    assert desc["licenses"][0]["name"] == "dl-de/by-2-0"
    assert any("12531-0043" in a and "Destatis" in a for a in desc["licenses"][0]["attribution"])
    for res in desc["resources"]:
        csv = rel / res["path"]
        assert csv.read_bytes().endswith(b"\n") and b"\r\n" not in csv.read_bytes()
        assert res["bytes"] == csv.stat().st_size
        assert (rel / "data" / f"{res['name']}.json").is_file()
        assert res["schema"]["primaryKey"]


def test_second_run_is_unchanged(published: tuple[Path, str, str]) -> None:
    data, _, again = published
    for pkg in PACKAGES:
        assert f"{pkg}: unchanged (1.0.0)" in again
        pkg_dir = data / "published" / pkg
        dirs = sorted(p.name for p in pkg_dir.iterdir() if p.is_dir() and not p.is_symlink())
        assert dirs == ["1.0.0"]


def test_summary_lists_row_counts(published: tuple[Path, str, str]) -> None:
    _, out, _ = published
    assert "rows: " in out and "measures " in out


def test_invalid_input_publishes_nothing(published: tuple[Path, str, str], tmp_path: Path) -> None:
    data, _, _ = published
    before = tree_hashes(data / "published")
    cfg = copy_config(tmp_path / "config")
    edit_city_cell(cfg, "status", "vielleicht")  # not a known status word
    res = opendata("run", "--data-dir", str(data), "--config", str(cfg))
    assert res.returncode == 1, res.stderr[-3000:]
    assert "nothing was published" in res.stderr
    assert "measures" in res.stderr and "row 1" in res.stderr and "status" in res.stderr
    assert tree_hashes(data / "published") == before
    report = json.loads((data / "state" / "reports" / "latest.json").read_text())
    assert report["valid"] is False
    issue = next(i for p in report["packages"] for i in p["issues"] if i["severity"] == "error")
    assert issue["source"] == "measures" and issue["row"] == 1 and issue["field"] == "status"


def test_corrupt_snapshot_is_refused(tmp_path: Path) -> None:
    data = copy_raw(tmp_path / "data")
    snap = sorted((data / "raw" / "population_kreise").iterdir())[-1]
    (snap / "data.zip").write_bytes(b"not the recorded bytes")
    res = opendata("validate", "--data-dir", str(data))
    assert res.returncode == 3
    assert "expected sha256" in res.stderr and "population_kreise" in res.stderr


def test_malformed_config_exit_2(tmp_path: Path) -> None:
    cfg = copy_config(tmp_path / "config")
    text = cfg.read_text(encoding="utf-8").replace('kind = "genesis"', 'kind = "gensis"', 1)
    cfg.write_text(text, encoding="utf-8")
    res = opendata("validate", "--config", str(cfg), "--data-dir", str(tmp_path / "d"))
    assert res.returncode == 2
    assert str(cfg) in res.stderr and "population_kreise" in res.stderr and "unknown kind" in res.stderr


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    data = copy_raw(tmp_path / "data")
    res = opendata("publish", "--dry-run", "--data-dir", str(data))
    assert res.returncode == 0, res.stderr[-2000:]
    assert '"would_release": "1.0.0"' in res.stdout
    assert not (data / "published").exists() or not any((data / "published").rglob("*.csv"))


def test_every_command_has_help() -> None:
    from flows.cli import COMMANDS, parser

    for name in COMMANDS:
        with pytest.raises(SystemExit) as exc:
            parser().parse_args([name, "--help"])
        assert exc.value.code == 0


def test_console_script_is_installed() -> None:
    import subprocess
    import sys

    script = Path(sys.executable).parent / "opendata"
    assert script.is_file(), "the `opendata` console script is not installed (pip install -e .)"
    res = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert "run" in res.stdout and "exit codes" in res.stdout


def test_run_applies_base_url_to_catalog(tmp_path: Path) -> None:
    data = copy_raw(tmp_path / "data")
    res = opendata("run", "--data-dir", str(data), "--base-url", "https://example.org/oda")
    assert res.returncode == 0, res.stderr[-2000:]
    catalog = (data / "published" / "catalog.ttl").read_text(encoding="utf-8")
    assert "https://example.org/oda/integration_statistics/1.0.0/" in catalog
    assert "opendata.example.org" not in catalog
