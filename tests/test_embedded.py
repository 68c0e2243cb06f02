"""scripts/build_embedded.py: reproducible, idempotent, and equal to the committed snapshots."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from types import ModuleType

from helpers import load_script

from opendata import canonical, snapshot
from opendata.config import load
from opendata.ffcsv import read_ffcsv
from opendata.paths import REPO_ROOT, Paths

PKG = "integration_statistics"


def _script() -> ModuleType:
    return load_script("build_embedded")


def test_committed_snapshots_hold_only_configured_regions() -> None:
    config = load()
    for source in (s for s in config.sources_for(PKG) if s.verified):
        snap = snapshot.latest(Paths(REPO_ROOT / "data").source_raw(source.id), source.id)
        if source.kind != "genesis":
            assert snap.manifest["files"][0]["url"] == f"file:{source.location}"
            continue
        data = snap.read("data")
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            (info,) = zf.infolist()
            csv_bytes = zf.read(info)
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert csv_bytes.startswith(b"\xef\xbb\xbf") and b"\r" not in csv_bytes
        assert snap.content_sha256 == canonical.canonical_csv_sha256(csv_bytes)
        keys = set(read_ffcsv(data, source=source.id)["dim1_code"])
        assert keys and keys <= set(source.params["regionalkey"]), source.id
        assert "filtered by scripts/build_embedded.py" in snap.manifest["note"]
        assert json.loads(snap.read("metadata"))["Object"]["Code"] == source.table


def test_rerun_is_idempotent_and_reproduces_the_commit(shared: Path, tmp_path: Path) -> None:
    script = _script()
    first = script.run(shared, tmp_path)
    assert len(first) == len([s for s in load().sources_for(PKG) if s.verified])
    assert script.run(shared, tmp_path) == []
    for folder in first:
        source = folder.parent.name
        committed = snapshot.latest(REPO_ROOT / "data" / "raw" / source, source)
        fresh = snapshot.verify(folder)
        assert fresh.content_sha256 == committed.content_sha256
        if fresh.manifest["kind"] == "genesis":
            assert fresh.path.name == committed.path.name  # the recording's Date header
            assert fresh.read("data") == committed.read("data")
            assert fresh.manifest == committed.manifest


def test_protection_seekers_shrink_to_the_kreise(shared: Path) -> None:
    config = load()
    source = config.source("protection_seekers")
    files, sha, recorded, note = _script().genesis_files(source, shared / "genesis" / source.table)
    assert recorded.isoformat() == "2026-03-10T20:57:05+00:00"
    assert len(files[0].content) < 10_000
    assert note.startswith("249 rows of regions 16056,16063")
