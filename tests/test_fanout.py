"""Fan-out (issue 14): fetches in parallel but polite per API, packages built in parallel, and
the nightly flow on a local Dask cluster with two worker processes through prefect-dask."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from helpers import copy_config, copy_raw, opendata

from opendata import config as config_mod
from opendata import pipeline
from opendata.errors import ConfigError


def _settings(cfg: Path, **values: object) -> None:
    text = cfg.read_text(encoding="utf-8")
    for key, value in values.items():
        shown = f'"{value}"' if isinstance(value, str) else str(value)
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {shown}", text)
        assert n == 1, key
    cfg.write_text(text, encoding="utf-8")


def test_one_api_serves_at_most_api_concurrency_fetches_at_once(tmp_path: Path) -> None:
    cfg_path = copy_config(tmp_path / "c")
    _settings(cfg_path, api_concurrency=2)
    cfg = config_mod.load(cfg_path)
    same_api = [s for s in cfg.sources if s.api == "regionalstatistik"][:3]
    assert len(same_api) == 3
    inside, release, entered = [], threading.Event(), threading.Event()

    def fetch(src: config_mod.SourceConfig) -> None:
        with pipeline.api_slot(cfg, src):
            inside.append(src.id)
            entered.set()
            release.wait(30)

    first = [threading.Thread(target=fetch, args=(s,)) for s in same_api[:2]]
    for t in first:
        t.start()
    while len(inside) < 2:
        entered.wait(1)
    third = threading.Thread(target=fetch, args=(same_api[2],))
    third.start()
    third.join(0.5)
    assert inside == [s.id for s in same_api[:2]] or sorted(inside) == sorted(
        s.id for s in same_api[:2])  # the third waits while two requests of the API run
    other = next(s for s in cfg.sources if s.api == "zensus")
    other_done = threading.Thread(target=fetch, args=(other,))
    other_done.start()
    while other.id not in inside:  # another API is not held up by this one
        entered.wait(1)
    release.set()
    for t in [*first, third, other_done]:
        t.join(30)
    assert len(inside) == 4 and inside[-1] in (same_api[2].id, other.id)


def test_unknown_task_runner_is_a_config_error(tmp_path: Path) -> None:
    from flows.nightly import task_runner

    cfg_path = copy_config(tmp_path / "c")
    _settings(cfg_path, task_runner="cluster")
    with pytest.raises(ConfigError, match="task_runner must be 'threads' or 'dask'"):
        task_runner(config_mod.load(cfg_path))


@pytest.mark.slow
def test_nightly_on_a_local_dask_cluster_with_two_workers(tmp_path: Path) -> None:
    data = copy_raw(tmp_path / "data")
    cfg = copy_config(tmp_path / "c")
    _settings(cfg, task_runner="dask", dask_workers=2, build_workers=2)
    out = opendata("run", "--config", str(cfg), "--data-dir", str(data), timeout=600)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    assert "task runner: dask, local cluster with 2 worker processes" in text
    assert len(re.findall(r"Register worker addr", text)) == 2  # two Dask worker processes
    assert "Traceback" not in text
    for pkg in ("integration_statistics", "integration_measures"):
        assert (data / "published" / pkg / "latest" / "datapackage.json").is_file()
    servers = set(re.findall(r"Starting temporary server on (\S+)", text))
    assert len(servers) == 1  # the workers report to the run's server, not their own
