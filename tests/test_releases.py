"""Release guarantees as real processes: atomic under SIGKILL, one run at a time, verify, prune,
and byte-identical output for the same inputs (apart from the documented volatile fields)."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import REPO, copy_config, copy_raw, opendata, tree_hashes

from opendata import config as config_mod
from opendata import pipeline, store
from opendata.paths import Paths

PKG = "integration_measures"
CHECKPOINTS = ("stage-partial", "finalize-partial", "before-rename", "before-index", "before-latest")


def _add_example_measure(cfg_path: Path) -> None:
    path = cfg_path.parent / "city" / "massnahmen.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    rows.append(["T01", "", "Testmaßnahme (Beispiel, nur im Test)"] + [""] * (len(rows[0]) - 3))
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """fetched: raw snapshots only; v1: 1.0.0 of both packages plus a pending changed snapshot."""
    root = tmp_path_factory.mktemp("rel")
    cfg_same, cfg_edit = copy_config(root / "config"), copy_config(root / "config2")
    _add_example_measure(cfg_edit)
    fetched = copy_raw(root / "fetched")
    pipeline.fetch_all(config_mod.load(cfg_same), Paths(fetched), online=False)
    v1 = root / "v1"
    shutil.copytree(fetched, v1, symlinks=True)
    pipeline.publish_all(config_mod.load(cfg_same), Paths(v1))
    pipeline.fetch_all(config_mod.load(cfg_edit), Paths(v1), online=False)
    return {"fetched": fetched, "v1": v1, "cfg": cfg_edit}


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest


# --- crash at every checkpoint --------------------------------------------------------------------

@pytest.fixture(scope="module")
def killed(base: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, int]]:
    """For each checkpoint a copy of v1 whose `publish` was SIGKILLed there (run in parallel)."""
    root = tmp_path_factory.mktemp("kill")
    procs = {}
    for point in CHECKPOINTS:
        data = _copy(base["v1"], root / point)
        env = dict(os.environ, OPENDATA_TEST_KILL_AT=point)
        procs[point] = (data, subprocess.Popen(
            [sys.executable, "-m", "flows", "publish", "-q", "--data-dir", str(data),
             "--config", str(base["cfg"])], cwd=REPO, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return {p: (data, proc.wait(timeout=300)) for p, (data, proc) in procs.items()}


def _assert_consistent(pkg_dir: Path) -> None:
    """No partial release visible, versions.json parses, `latest` valid."""
    index = json.loads((pkg_dir / "versions.json").read_text(encoding="utf-8"))
    for name in store.release_dirs(pkg_dir):
        assert store.verify_release(pkg_dir / name, None) == [], f"partial release {name}"
    present = {p.name for p in pkg_dir.iterdir()}  # no staging folder, no temporary file
    assert present <= {"versions.json", "latest", "index.html", *store.release_dirs(pkg_dir)}
    assert not [p for p in pkg_dir.parent.iterdir() if p.name.startswith(".")]
    link = pkg_dir / "latest"
    assert link.is_symlink() and (link.resolve() / store.CHECKSUMS).is_file()
    assert index["latest"] in store.release_dirs(pkg_dir)


@pytest.mark.parametrize("point", CHECKPOINTS)
def test_crash_leaves_no_partial_release(point: str, killed: dict[str, tuple[Path, int]],
                                         base: dict[str, Path]) -> None:
    data, code = killed[point]
    assert code == -9, f"the publish was not killed at {point} (exit {code})"
    pkg_dir = data / "published" / PKG
    _assert_consistent(pkg_dir)
    assert os.readlink(pkg_dir / "latest") in ("1.0.0", "1.1.0")
    assert store.verify_package(pkg_dir) == []  # no crash leaves a state that verify rejects
    checked = opendata("verify", "--data-dir", str(data), "--config", str(base["cfg"]))
    assert checked.returncode == 0, checked.stdout
    if point == "before-latest":  # versions.json names 1.1.0, the link still 1.0.0
        assert json.loads((pkg_dir / "versions.json").read_text())["latest"] == "1.1.0"
        assert "note: " in checked.stdout and "the next run swaps the link" in checked.stdout
    again = opendata("publish", "-q", "--data-dir", str(data), "--config", str(base["cfg"]))
    assert again.returncode == 0, again.stderr[-2000:]
    _assert_consistent(pkg_dir)
    assert store.release_dirs(pkg_dir) == ["1.0.0", "1.1.0"]
    assert os.readlink(pkg_dir / "latest") == "1.1.0"
    assert not [p for p in pkg_dir.iterdir() if p.name.startswith(".staging-")]
    assert not list((data / "state" / "tmp").iterdir())  # the rerun removed what the crash left
    index = json.loads((pkg_dir / "versions.json").read_text())
    assert [e["version"] for e in index["versions"]] == ["1.1.0", "1.0.0"]
    assert store.verify_package(pkg_dir) == []


# --- one run at a time ----------------------------------------------------------------------------

HOLD = """import sys, time
from pathlib import Path
from opendata.lock import pipeline_lock
with pipeline_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_second_run_is_refused_while_the_lock_is_held(base: dict[str, Path], tmp_path: Path) -> None:
    data = _copy(base["v1"], tmp_path / "data")
    before = tree_hashes(data / "published")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(Paths(data).lock_file)], cwd=REPO,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        res = opendata("publish", "--data-dir", str(data), "--config", str(base["cfg"]))
        assert res.returncode == 2
        assert f"another opendata run (pid {holder.pid})" in res.stderr
        assert "did nothing" in res.stderr
        assert tree_hashes(data / "published") == before
    finally:
        holder.communicate("", timeout=30)  # closing stdin ends the holder
    res = opendata("publish", "-q", "--data-dir", str(data), "--config", str(base["cfg"]))
    assert res.returncode == 0 and "published 1.1.0" in res.stdout  # the lock is free again


# --- verify ---------------------------------------------------------------------------------------

def _tamper_csv(rel: Path) -> str:
    path = rel / "data" / "measures.csv"
    path.write_bytes(path.read_bytes().replace(b"A01", b"A99", 1))
    return "data/measures.csv"


def _add_file(rel: Path) -> str:
    (rel / "data" / "extra.csv").write_text("a\n1\n", encoding="utf-8")
    return "data/extra.csv"


def _tamper_zip(rel: Path) -> str:
    zpath = rel / f"{PKG}-1.0.0.zip"
    with zipfile.ZipFile(zpath, "a") as zf:
        zf.writestr("integration_measures-1.0.0/data/extra.csv", "a\n1\n")
    return zpath.name


@pytest.mark.parametrize("tamper", [_tamper_csv, _add_file, _tamper_zip])
def test_verify_detects_changes(base: dict[str, Path], tmp_path: Path, tamper: object) -> None:
    data = _copy(base["v1"], tmp_path / "data")
    ok = opendata("verify", "--data-dir", str(data))
    assert ok.returncode == 0, ok.stdout
    name = tamper(data / "published" / PKG / "1.0.0")  # type: ignore[operator]
    res = opendata("verify", "--data-dir", str(data))
    assert res.returncode == 1
    assert f"{PKG}/1.0.0/{name}" in res.stdout
    assert f"{PKG}: 1 problem(s)" in res.stdout and "integration_statistics: ok" in res.stdout


# --- prune ----------------------------------------------------------------------------------------

def test_prune_keeps_versions_json_truthful(base: dict[str, Path], tmp_path: Path) -> None:
    data = _copy(base["v1"], tmp_path / "data")
    assert opendata("publish", "-q", "--data-dir", str(data), "--config", str(base["cfg"])).returncode == 0
    pkg_dir = data / "published" / PKG
    old = next(e for e in json.loads((pkg_dir / "versions.json").read_text())["versions"]
               if e["version"] == "1.0.0")
    res = opendata("prune", "--keep", "1", "--data-dir", str(data))
    assert res.returncode == 0 and f"{PKG}: removed 1.0.0" in res.stdout
    assert store.release_dirs(pkg_dir) == ["1.1.0"]
    after = json.loads((pkg_dir / "versions.json").read_text())
    entry = next(e for e in after["versions"] if e["version"] == "1.0.0")
    assert entry["removed"] is True and entry["zip_sha256"] == old["zip_sha256"]
    assert after["latest"] == "1.1.0" and os.readlink(pkg_dir / "latest") == "1.1.0"
    assert opendata("verify", "--data-dir", str(data)).returncode == 0
    catalog = (data / "published" / "catalog.ttl").read_text(encoding="utf-8")
    assert f"{PKG}/1.1.0/" in catalog and f"{PKG}/1.0.0/" not in catalog  # no dead links
    assert 'href="1.0.0/' not in (pkg_dir / "index.html").read_text(encoding="utf-8")


# --- determinism ----------------------------------------------------------------------------------

VOLATILE_JSON = {"datapackage.json": ("created",), "provenance.json": ("created", "flow_run_id")}
VOLATILE_ENTRY = ("date", "zip_sha256", "checksums_sha256")
DATE_RE = re.compile(rb"\d{4}-\d{2}-\d{2}")


def _normalised(path: Path) -> bytes:
    """File bytes with the documented volatile fields blanked (see docs/operations.md)."""
    raw = path.read_bytes()
    if path.name in VOLATILE_JSON:
        doc = json.loads(raw)
        return json.dumps({k: v for k, v in doc.items() if k not in VOLATILE_JSON[path.name]}).encode()
    if path.name == "versions.json":
        doc = json.loads(raw)
        doc["versions"] = [{k: v for k, v in e.items() if k not in VOLATILE_ENTRY} for e in doc["versions"]]
        return json.dumps(doc).encode()
    if path.name == "CHANGELOG.md":
        return DATE_RE.sub(b"DATE", raw)
    if path.name == "index.html":  # the package page shows each release's ZIP hash and date
        for entry in json.loads((path.parent / "versions.json").read_text())["versions"]:
            for key in VOLATILE_ENTRY:
                raw = raw.replace(str(entry[key]).encode(), b"VOLATILE")
        return DATE_RE.sub(b"DATE", raw)
    if path.name == store.CHECKSUMS:
        keep = [ln for ln in raw.splitlines() if not ln.endswith((b"datapackage.json", b"provenance.json",
                                                                  b"CHANGELOG.md"))]
        return b"\n".join(keep)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            return repr(sorted((i.filename, i.date_time, zf.read(i) if Path(i.filename).name
                                not in (*VOLATILE_JSON, "CHANGELOG.md", store.CHECKSUMS) else b"")
                               for i in zf.infolist())).encode()
    return raw


def test_same_inputs_give_identical_releases(base: dict[str, Path], tmp_path: Path) -> None:
    trees = []
    for name in ("a", "b"):
        data = _copy(base["fetched"], tmp_path / name)
        res = opendata("publish", "-q", "--data-dir", str(data))
        assert res.returncode == 0, res.stderr[-2000:]
        trees.append(data / "published")
    for pkg in ("integration_measures", "integration_statistics"):
        a, b = trees[0] / pkg, trees[1] / pkg
        assert tree_hashes(a).keys() == tree_hashes(b).keys()
        files = [p.relative_to(a) for p in sorted(a.rglob("*")) if p.is_file() and not p.is_symlink()]
        assert any(f.name == "measures.csv" or f.name == "population.csv" for f in files)
        for rel in files:
            assert _normalised(a / rel) == _normalised(b / rel), f"{pkg}/{rel} differs"


def test_checksums_taken_while_writing_match_the_files(base: dict[str, Path]) -> None:
    """checksums.sha256 uses the hashes taken as the data files were written: they are right."""
    import hashlib

    for pkg in ("integration_measures", "integration_statistics"):
        rel = base["v1"] / "published" / pkg / "1.0.0"
        lines = (rel / "checksums.sha256").read_text(encoding="utf-8").splitlines()
        listed = dict(reversed(line.split("  ", 1)) for line in lines)
        data = [p for p in (rel / "data").iterdir() if p.suffix in (".csv", ".json")]
        assert data and all(f"data/{p.name}" in listed for p in data)
        for name, sha in listed.items():
            assert hashlib.sha256((rel / name).read_bytes()).hexdigest() == sha, name
