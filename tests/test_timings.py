"""Stage timings (opendata/timings.py), `--timings FILE` of the CLI as a real process, and a smoke
run of `make bench`'s driver (benchmarks/bench.py) at its smallest size. Shapes only, no speeds."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO, copy_raw, opendata

from opendata import timings

PUBLISH_STAGES = {"inputs", "build", "serialise", "validate", "diff", "release", "site"}


@pytest.fixture
def clean() -> Iterator[None]:
    """No stages from other tests in this process, before and after."""
    timings.reset()
    yield
    timings.reset()


def test_stage_adds_seconds_and_records_peak_rss(clean: None) -> None:
    with timings.stage("validate"):
        time.sleep(0.01)
    with timings.stage("build"):
        pass
    first = timings.snapshot()["validate"]
    with timings.stage("validate"):
        time.sleep(0.01)
    found = timings.snapshot()
    assert list(found) == ["build", "validate"]  # pipeline order, not call order
    assert found["validate"] > first > 0
    peaks = timings.peaks()
    assert set(peaks) == {"build", "validate"}
    assert 0 < peaks["validate"] <= timings.peak_rss_mb()


def test_a_failing_block_still_counts_and_reset_forgets(clean: None) -> None:
    with pytest.raises(ValueError), timings.stage("release"):
        raise ValueError("boom")
    with timings.stage("zz-extra"):
        pass
    assert list(timings.snapshot()) == ["release", "zz-extra"]  # unknown names after STAGES
    timings.reset()
    assert timings.snapshot() == {} and timings.peaks() == {}


def test_parallel_threads_lose_no_time(clean: None) -> None:
    """Blocks in 8 threads add up: the total is at least the time measured inside every block."""
    inner: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(25):
            with timings.stage("build"):
                start = time.perf_counter()
                time.sleep(0.0005)
                took = time.perf_counter() - start
            with lock:
                inner.append(took)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(inner) == 200
    assert timings.snapshot()["build"] >= sum(inner)


@pytest.fixture(scope="module")
def fetched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The committed raw snapshots fetched (city tables) with --timings; data dir and its JSON."""
    root = tmp_path_factory.mktemp("timings")
    data = copy_raw(root / "data")
    res = opendata("fetch", "-q", "--data-dir", str(data), "--timings", str(root / "fetch.json"))
    assert res.returncode == 0, res.stderr[-2000:]
    return data, json.loads((root / "fetch.json").read_text(encoding="utf-8"))


def _shape(doc: dict[str, Any], command: str, code: int | None) -> None:
    assert doc["command"] == command and doc["exit_code"] == code
    assert isinstance(doc["wall_seconds"], float) and doc["wall_seconds"] >= 0  # a shape, no timing
    assert isinstance(doc["process_peak_rss_mb"], float) and doc["process_peak_rss_mb"] > 0


def test_fetch_writes_its_stage(fetched: tuple[Path, dict[str, Any]]) -> None:
    _, doc = fetched
    _shape(doc, "fetch", 0)
    assert list(doc["seconds"]) == ["fetch"] and doc["seconds"]["fetch"] > 0


def test_publish_writes_every_stage(fetched: tuple[Path, dict[str, Any]],
                                    tmp_path: Path) -> None:
    data, _ = fetched
    out = tmp_path / "publish.json"
    res = opendata("publish", "-q", "--data-dir", str(data), "--timings", str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads(out.read_text(encoding="utf-8"))
    _shape(doc, "publish", 0)
    seconds, peaks = doc["seconds"], doc["peak_rss_mb"]
    assert set(seconds) == PUBLISH_STAGES == set(peaks)
    assert all(isinstance(v, float) and v >= 0 for v in seconds.values())
    assert all(seconds[s] > 0 for s in ("build", "serialise", "validate", "release"))
    assert all(0 < v <= doc["process_peak_rss_mb"] for v in peaks.values())
    assert sum(seconds.values()) <= doc["wall_seconds"] * 2  # build_workers = 2 threads at most


def test_a_failed_command_still_writes_its_timings(tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    res = opendata("publish", "--config", str(tmp_path / "missing.toml"), "--data-dir",
                   str(tmp_path / "data"), "--timings", str(out))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    _shape(doc, "publish", 2)
    assert doc["seconds"] == {}


def test_an_unwritable_timings_file_only_warns(tmp_path: Path) -> None:
    target = tmp_path / "no-such-folder" / "t.json"
    res = opendata("publish", "--config", str(tmp_path / "missing.toml"), "--data-dir",
                   str(tmp_path / "data"), "--timings", str(target))
    assert res.returncode == 2  # the command's own exit code stays
    assert f"could not write the timings to {target}" in res.stderr
    assert "Traceback" not in res.stderr


def test_bench_driver_prints_one_table(tmp_path: Path) -> None:
    """benchmarks/bench.py at its smallest size (one citizenship: ~52 k rows), frictionless on
    2,000 of them, served nights under `opendata serve`: one markdown table with one row per
    size, and the results file."""
    res = subprocess.run([sys.executable, "benchmarks/bench.py", "--sizes", "1000",
                          "--frictionless-max", "2000", "--results", str(tmp_path)],
                         cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = [line for line in res.stdout.splitlines() if line.startswith("|")]
    assert len(rows) == 3, res.stdout
    head = [c.strip() for c in rows[0].strip("|").split("|")]
    cells = [c.strip() for c in rows[2].strip("|").split("|")]
    assert head[:9] == ["rows", "fetch s", "inputs s", "build s", "serialise s", "validate s",
                        "diff s", "release s", "site s"]
    assert len(cells) == len(head) and "(first 2,000 rows)" in cells[head.index(
        "frictionless rows/s")]
    assert "fetch (nothing changed)" in res.stderr  # progress, one line per step
    (found,) = tmp_path.glob("*-bench.json")
    result = json.loads(found.read_text(encoding="utf-8"))["results"][0]
    assert result["frictionless"]["valid"] is True and result["frictionless"]["rows"] == 2000
    assert result["resource_rows"]["protection_seekers"] == result["input_rows"]
    assert float(cells[1]) > 0  # a real download over HTTP took time
    served = result["served"]  # `opendata serve` on a local Prefect server: a full, two quiet runs
    assert len(served["quiet"]) == 2 and served["cold_starts"] == 0
    # Prefect's floor: the same flow shape without work (benchmarks/floor_flow.py), served alike
    assert 0 < served["floor_s"] < served["full"]["seconds"] and served["floor_cold_starts"] == 0
    assert re.fullmatch(r"[\d.]+ s / [\d.]+ s \(\d+%\); floor [\d.]+ s \(\d+%\)",
                        cells[head.index("served: full / quiet")])
