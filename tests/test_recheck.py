"""A GENESIS table whose metadata says it is unchanged is not downloaded again (recheck_days).

Real HTTP against the replay server (tests/replay_server.py) serving the recorded 12411-01-01-4
answers (../shared): the metadata/table answer is asked first; the data download follows only
when its 'Updated' stamp, the request or the age of the last download ([settings] recheck_days)
says so. Where a test needs another 'Updated' stamp it edits a copy of the recorded metadata
answer here, in the test.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from replay_server import Answer, Replay

from opendata import config as config_mod
from opendata import pipeline, snapshot
from opendata.errors import ConfigError
from opendata.paths import Paths

pytestmark = pytest.mark.shared
TABLE = "12411-01-01-4"
SOURCE = "population_kreise"
UPDATED = "31.03.2025 11:18:07h"  # Object.Updated of the recorded answer
META_KEY = ("/genesisws/rest/2020/", "metadata/table", TABLE, "de")


@pytest.fixture
def setup(replay_registry: tuple[config_mod.Config, Paths]) -> tuple[config_mod.Config, Paths]:
    """The repository's registry pointed at the replay server (tests/conftest.py)."""
    return replay_registry


def fetch(cfg: config_mod.Config, paths: Paths, *, full: bool = False,
          src: config_mod.SourceConfig | None = None) -> pipeline.FetchResult:
    """One online fetch of the population source through the pipeline."""
    return pipeline.fetch_source(src or cfg.source(SOURCE), cfg, paths, online=True, full=full)


def counts(replay: Replay) -> tuple[int, int]:
    """Requests so far to data/tablefile and to metadata/table."""
    return len(replay.requests_to("data/tablefile")), len(replay.requests_to("metadata/table"))


def restamp(replay: Replay, tmp_path: Path, updated: str) -> None:
    """Serve the recorded metadata answer with another Object.Updated from now on (an edited
    copy in tmp_path; the recording itself is read-only)."""
    (old,) = {a.body: a for a in replay.answers[META_KEY]}.values()
    doc = json.loads(old.body.read_text(encoding="utf-8"))
    doc["Object"]["Updated"] = updated
    body = tmp_path / f"metadata-{len(list(tmp_path.glob('metadata-*')))}.json"
    body.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    replay.answers[META_KEY] = [Answer(old.status, old.headers, body)]


def test_unchanged_metadata_downloads_no_data(replay: Replay, setup: tuple) -> None:
    cfg, paths = setup
    first = fetch(cfg, paths)
    assert counts(replay) == (1, 1) and first.changed
    second = fetch(cfg, paths)
    assert counts(replay) == (1, 2)  # the metadata again, no data request
    assert (second.changed, second.mode, second.snapshot) == (False, "online", first.snapshot)
    assert second.info == (f"unchanged according to metadata Updated={UPDATED}, not downloaded "
                           f"(snapshot {first.snapshot.name})")  # type: ignore[union-attr]
    assert not second.note  # not a warning
    assert len(snapshot.candidates(paths.source_raw(SOURCE))) == 1


def test_metadata_is_asked_first_only_when_the_download_may_be_skipped(
        replay: Replay, setup: tuple, tmp_path: Path) -> None:
    cfg, paths = setup
    fetch(cfg, paths)  # nothing to keep: the data first, so a 104 is what a failure reports
    assert [r.endpoint for r in replay.received] == ["data/tablefile", "metadata/table"]
    restamp(replay, tmp_path, "15.04.2025 09:00:00h")
    fetch(cfg, paths)  # the metadata is not asked twice
    assert [r.endpoint for r in replay.received[2:]] == ["metadata/table", "data/tablefile"]


def test_full_fetch_downloads_although_metadata_is_unchanged(replay: Replay, setup: tuple) -> None:
    cfg, paths = setup
    first = fetch(cfg, paths)
    second = fetch(cfg, paths, full=True)
    assert counts(replay) == (2, 2)
    assert not second.changed and second.snapshot == first.snapshot and not second.info


def test_another_updated_stamp_downloads(replay: Replay, setup: tuple, tmp_path: Path) -> None:
    cfg, paths = setup
    first = fetch(cfg, paths)
    restamp(replay, tmp_path, "15.04.2025 09:00:00h")
    second = fetch(cfg, paths)
    assert counts(replay) == (2, 2)
    assert not second.changed and second.snapshot == first.snapshot  # same rows: same snapshot
    third = fetch(cfg, paths)  # the download confirmed the snapshot under the new stamp
    assert counts(replay) == (2, 3) and "Updated=15.04.2025 09:00:00h" in third.info


def test_an_empty_updated_stamp_always_downloads(replay: Replay, setup: tuple,
                                                 tmp_path: Path) -> None:
    cfg, paths = setup
    restamp(replay, tmp_path, "")
    fetch(cfg, paths)
    fetch(cfg, paths)
    assert counts(replay) == (2, 2)


def test_another_request_param_downloads(replay: Replay, setup: tuple) -> None:
    cfg, paths = setup
    src = cfg.source(SOURCE)
    fetch(cfg, paths, src=src)
    wider = replace(src, params={**src.params, "startyear": "2010"})
    second = fetch(cfg, paths, src=wider)
    assert counts(replay) == (2, 2) and not second.info
    assert replay.requests_to("data/tablefile")[-1].form["startyear"] == "2010"
    fetch(cfg, paths, src=wider)  # the new request is now the known one
    assert counts(replay) == (2, 3)


def test_credentials_do_not_count_as_another_request(replay: Replay, setup: tuple,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, paths = setup
    fetch(cfg, paths)
    monkeypatch.setenv("REGIONALSTATISTIK_TOKEN", "fake-regio-token-BEISPIEL")
    fetch(cfg, paths)
    assert counts(replay) == (1, 2)
    assert replay.requests_to("metadata/table")[-1].headers.get("username") \
        == "fake-regio-token-BEISPIEL"
    record = pipeline.STATE_DOWNLOADS
    assert "fake-regio-token" not in (paths.state / record / f"{SOURCE}.json").read_text("utf-8")


def _age(snap: Path, days: float) -> None:
    """Make a snapshot look ``days`` old, as it would be on disk after that time (fetched_at is
    not covered by the manifest's file hashes)."""
    from datetime import UTC, datetime, timedelta

    manifest = json.loads((snap / "manifest.json").read_text(encoding="utf-8"))
    manifest["fetched_at"] = (datetime.now(UTC) - timedelta(days=days)).strftime(pipeline.STAMP)
    (snap / "manifest.json").write_text(snapshot.dump_json(manifest), encoding="utf-8")


def test_recheck_days_exceeded_downloads(replay: Replay, setup: tuple, tmp_path: Path) -> None:
    cfg, paths = setup
    first = fetch(cfg, paths)
    assert first.snapshot is not None
    (paths.state / pipeline.STATE_DOWNLOADS / f"{SOURCE}.json").unlink()  # as before this change
    _age(first.snapshot, 8)  # recheck_days = 7 in config/opendata.toml
    second = fetch(cfg, paths)
    assert counts(replay) == (2, 2) and not second.changed and not second.info
    fetch(cfg, paths)  # that download restarted the 7 days
    assert counts(replay) == (2, 3)


def test_recheck_days_zero_always_downloads(replay: Replay, setup: tuple) -> None:
    cfg, paths = setup
    cfg = replace(cfg, settings={**cfg.settings, "recheck_days": 0})
    fetch(cfg, paths)
    fetch(cfg, paths)
    assert counts(replay) == (2, 2)


def test_a_download_record_of_another_snapshot_is_ignored(replay: Replay, setup: tuple,
                                                          tmp_path: Path) -> None:
    cfg, paths = setup
    first = fetch(cfg, paths)
    assert first.snapshot is not None
    record = paths.state / pipeline.STATE_DOWNLOADS / f"{SOURCE}.json"
    doc = json.loads(record.read_text(encoding="utf-8"))
    record.write_text(json.dumps(doc | {"snapshot": "20200101T000000Z"}), encoding="utf-8")
    _age(first.snapshot, 8)  # only the record of another snapshot is young
    fetch(cfg, paths)
    assert counts(replay) == (2, 2)


@pytest.mark.parametrize("value", [-1, "7", True, 50000])
def test_a_bad_recheck_days_is_a_config_error(tmp_path: Path, value: object) -> None:
    text = config_mod.CONFIG_FILE.read_text(encoding="utf-8")
    bad = tmp_path / "opendata.toml"
    bad.write_text(text.replace("recheck_days = 7 ", f"recheck_days = {json.dumps(value)} ", 1),
                   encoding="utf-8")
    with pytest.raises(ConfigError, match="'recheck_days' must be a number of days"):
        config_mod.load(bad)


def test_cli_fetch_skips_unchanged_tables_and_full_downloads_them(replay: Replay,
                                                                  tmp_path: Path) -> None:
    from helpers import opendata

    env = {f"OPENDATA_{api.upper()}_BASE_URL": replay.url(api)
           for api in ("genesis", "regionalstatistik", "zensus")}
    env |= {"OPENDATA_JOB_POLL_INTERVAL": "0", "REGIONALSTATISTIK_TOKEN": "fake-token-BEISPIEL"}
    args = ("fetch", "--online", "--data-dir", str(tmp_path / "data"))
    first = opendata(*args, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    sent = [(r.form["name"], r.form.get("job")) for r in replay.requests_to("data/tablefile")]
    second = opendata(*args, env=env)
    assert second.returncode == 0, second.stderr[-2000:]
    line = next(x for x in second.stdout.splitlines() if x.strip().startswith(SOURCE + ":"))
    assert "unchanged snapshot" in line and "not downloaded" in line and UPDATED in line
    again = [(r.form["name"], r.form.get("job")) for r in replay.requests_to("data/tablefile")]
    stored = {n for n, _ in sent} - {"12521-0040", "12711-01-03-4"}  # unverified, 404: no snapshot
    assert stored and not stored & {n for n, _ in again[len(sent):]}
    full = opendata(*args, "--full", env=env)
    assert full.returncode == 0, full.stderr[-2000:]
    assert "not downloaded" not in full.stdout
    assert [(r.form["name"], r.form.get("job"))
            for r in replay.requests_to("data/tablefile")[len(again):]] == sent
