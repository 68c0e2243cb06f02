"""The genesis source kind against the replay server (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import dataclasses
import io
import json
import time
import zipfile
from pathlib import Path

import pytest
from replay_server import Fault, Replay, count

from opendata import canonical
from opendata.canonical import canonical_csv_sha256
from opendata.config import ApiConfig, Config, PackageConfig, SourceConfig
from opendata.errors import InputError, TerminalFetchError, TransientFetchError
from opendata.ffcsv import extract_csv, read_ffcsv
from opendata.http import RetryPolicy
from opendata.snapshot import store
from opendata.sources import genesis

pytestmark = pytest.mark.shared
APIS = ("genesis", "regionalstatistik", "zensus")
POLICY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=30.0, timeout=5.0)
BASE = {"area": "all", "compress": "false", "quality": "off"}
TABLES = [  # table, api, params as recorded, one cell (dim codes, "" = total) and its recorded value
    ("12411-01-01-4", "regionalstatistik", {"language": "de"}, ("16063", ""), 154957.0),
    ("12411-01-01-4", "regionalstatistik", {"language": "en"}, ("16063", ""), 154957.0),
    ("1000A-0000", "zensus", {"language": "de"}, ("160630105105",), 39931.0),
    ("1000A-0000", "zensus", {"language": "en"}, ("160630105105",), 39931.0),
    ("1000A-2022", "zensus", {"language": "de", "quality": "on"}, ("DG", "", ""), 82719540.0),
    ("1000A-2022", "zensus", {"language": "de", "compress": "true"}, ("DG", "", ""), 82719540.0),
    ("11111-02-01-4", "regionalstatistik", {"language": "de"}, ("16063",), 30.0),
    ("12211-Z-11", "regionalstatistik", {"language": "de", "quality": "on"}, ("16063", "LB-INS"), 64.0),
    ("13111-01-03-4", "regionalstatistik", {"language": "de"}, ("DG", "", ""), 34885481.0),
]


def make_config(replay: Replay, **settings: object) -> Config:
    """A config whose three APIs point at the replay server."""
    apis = {a: ApiConfig(a, replay.url(a), a.upper()) for a in APIS}
    return Config(Path("test.toml"), [], {"p": PackageConfig("p", "statistics", {})}, apis,
                  dict(settings), {}, {})


def make_source(table: str, api: str, **params: object) -> SourceConfig:
    """A genesis source entry (schema not checked: built directly, not via config.load)."""
    return SourceConfig(id=f"t_{table}", kind="genesis", package="p", schema="p/r",
                        license="dl-de/by-2-0", attribution="Statistische Ämter", api=api,
                        table=table, params={**BASE, **params})


class Sleeps(list[float]):
    """An injected sleep that records delays instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(autouse=True)
def _no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for api in APIS:
        for suffix in ("TOKEN", "USERNAME", "PASSWORD"):
            monkeypatch.delenv(f"{api.upper()}_{suffix}", raising=False)
        monkeypatch.delenv(f"OPENDATA_{api.upper()}_BASE_URL", raising=False)
    monkeypatch.setenv("OPENDATA_JOB_POLL_INTERVAL", "0")


@pytest.mark.parametrize(("table", "api", "params", "codes", "value"), TABLES)
def test_every_recorded_table(replay: Replay, table: str, api: str, params: dict[str, str],
                              codes: tuple[str, ...], value: float) -> None:
    src = make_source(table, api, **params)
    got = genesis.fetch(src, make_config(replay), policy=POLICY, sleep=Sleeps())
    data, meta = got.files
    assert (data.name, data.role, meta.name, meta.role) == ("data.zip", "data", "metadata.json", "metadata")
    assert data.url == replay.url(api) + "data/tablefile" and data.status == 200
    assert data.params == {"name": table, "format": "ffcsv", **BASE, **params}
    assert set(data.headers) <= {"Content-Type", "Content-Length", "Content-Disposition", "Date"}
    assert data.headers["Content-Type"] == "application/zip"
    assert got.content_sha256 == canonical_csv_sha256(extract_csv(data.content, source="t"))
    assert got.meta["title"] and got.meta["table"] == table and got.meta["updated_iso"][:2] == "20"
    assert json.loads(meta.content)["Object"]["Code"] == table
    df = read_ffcsv(data.content)
    match = (df[[f"dim{i}_code" for i in range(1, len(codes) + 1)]] == list(codes)).all(axis=1)
    assert df.loc[match, "value"].tolist() == [value]
    assert ("value_q" in df.columns) and (df["value_q"].ne("").any() == (params.get("quality") == "on"))


def test_large_answer_hashed_in_sorted_runs(replay: Replay, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """An answer larger than RUN_BYTES is hashed in sorted runs on disk: the same hash as in
    memory, and the runs are gone afterwards."""
    monkeypatch.setattr(canonical, "RUN_BYTES", 1 << 12)
    monkeypatch.setattr(canonical, "MERGE_BYTES", 1 << 10)
    table, api, params = TABLES[0][:3]
    got = genesis.fetch(make_source(table, api, **params), make_config(replay), policy=POLICY,
                        sleep=Sleeps(), tmp_dir=tmp_path / "tmp")
    csv = extract_csv(got.files[0].content, source="t")
    assert len(csv) > 4 * (1 << 12)  # several runs
    assert got.content_sha256 == canonical_csv_sha256(csv)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_job_flow_replays_all_polls(replay: Replay, shared: Path) -> None:
    sleeps = Sleeps()
    src = make_source("12531-0043", "genesis", language="de", compress="true")
    got = genesis.fetch(src, make_config(replay), policy=POLICY, sleep=sleeps)
    polls = replay.requests_to("catalogue/results")
    assert len(polls) == count(shared / "genesis", "12531-0043", "catalogue/results") == 406
    assert {p.form["selection"] for p in polls} == {"12531-0043_175879554"}
    assert [r.form.get("job") for r in replay.requests_to("data/tablefile")] == [None, "true"]
    result = replay.requests_to("data/resultfile")
    assert len(result) == 1 and result[0].form["name"] == "12531-0043_175879554"
    assert got.files[0].url.endswith("/data/resultfile") and got.meta["job"] == "12531-0043_175879554"
    assert len(sleeps) == 405 and set(sleeps) == {0.0}
    assert got.meta["title"].startswith("Schutzsuchende: Kreise")


def test_a_confirmed_job_may_outlast_the_source_deadline(replay: Replay) -> None:
    """The source deadline bounds the source's own requests; a job adds job_max_wait."""
    def slow(seconds: float) -> None:
        time.sleep(0.005)  # 405 polls: about 2 s in all, four times the deadline below

    src = make_source("12531-0043", "genesis", language="de", compress="true")
    policy = dataclasses.replace(POLICY, deadline=time.time() + 0.5, budget=0.5)
    got = genesis.fetch(src, make_config(replay), policy=policy, sleep=slow)
    assert got.meta["job"] == "12531-0043_175879554"
    assert len(replay.requests_to("catalogue/results")) == 406


def test_job_max_wait_bounds_polling(replay: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENDATA_JOB_POLL_INTERVAL", "1")
    monkeypatch.setenv("OPENDATA_JOB_MAX_WAIT", "10")
    sleeps = Sleeps()
    src = make_source("12531-0043", "genesis", language="de", compress="true")
    with pytest.raises(TransientFetchError, match="12531-0043_175879554 not ready"):
        genesis.fetch(src, make_config(replay), policy=POLICY, sleep=sleeps)
    assert sum(sleeps[:-1]) < 10 <= sum(sleeps) and sleeps[1] == 1.5  # backoff grows
    assert len(replay.requests_to("catalogue/results")) == len(sleeps) + 1


@pytest.mark.parametrize("lang", ["de", "en"])
def test_status_104_names_the_selection(replay: Replay, lang: str) -> None:
    src = make_source("63121-0001", "genesis", language=lang)
    with pytest.raises(TerminalFetchError) as exc:
        genesis.fetch(src, make_config(replay), policy=POLICY, sleep=Sleeps())
    text = str(exc.value)
    assert "no data for this selection: table 63121-0001" in text and f"language={lang}" in text
    assert ("There are no objects" if lang == "en" else "Es gibt keine Objekte") in text
    assert len(replay.requests_to("data/tablefile")) == 1


@pytest.mark.parametrize("lang", ["de", "en"])
def test_status_minus_1_carries_server_message(replay: Replay, lang: str) -> None:
    src = make_source("61111-0021", "genesis", language=lang)
    with pytest.raises(TerminalFetchError, match="server status -1 for table 61111-0021") as exc:
        genesis.fetch(src, make_config(replay), policy=POLICY, sleep=Sleeps())
    assert "wurde kein Datenquader gefunden" in str(exc.value) and "t_61111-0021" in str(exc.value)


def fetch_12411(replay: Replay, policy: RetryPolicy = POLICY, **kw: object) -> tuple:
    """Fetch 12411-01-01-4 (de) with recorded sleeps; returns (Fetched, sleeps)."""
    sleeps = Sleeps()
    src = make_source("12411-01-01-4", "regionalstatistik", language="de")
    got = genesis.fetch(src, make_config(replay, **kw), policy=policy, sleep=sleeps,
                        diag_dir=kw.get("diag_dir"))  # type: ignore[arg-type]
    return got, sleeps


def test_500_then_success_is_retried(replay: Replay) -> None:
    replay.inject(Fault("status", 500, endpoint="data/tablefile"))
    got, sleeps = fetch_12411(replay)
    assert len(replay.requests_to("data/tablefile")) == 2 and len(sleeps) == 1
    assert got.files[0].content.startswith(b"PK")


def test_429_retry_after_is_honoured(replay: Replay) -> None:
    replay.inject(Fault("status", 429, retry_after="7", endpoint="data/tablefile"))
    got, sleeps = fetch_12411(replay)
    assert sleeps == [7.0] and len(replay.requests_to("data/tablefile")) == 2


def test_reset_is_retried_then_gives_up(replay: Replay) -> None:
    replay.inject(Fault("reset"))
    fetch_12411(replay)
    assert len(replay.requests_to("data/tablefile")) == 2
    replay.received.clear()
    replay.inject(*[Fault("reset", endpoint="data/tablefile")] * 3)
    with pytest.raises(TransientFetchError, match="gave up after 3 attempts"):
        fetch_12411(replay)
    assert len(replay.requests_to("data/tablefile")) == 3


def test_slow_response_times_out_and_gives_up(replay: Replay) -> None:
    fast = RetryPolicy(attempts=2, backoff=0.0, max_backoff=0.0, timeout=0.3)
    replay.inject(*[Fault("slow", seconds=1.0, endpoint="data/tablefile")] * 2)
    with pytest.raises(TransientFetchError, match="Timeout") as exc:
        fetch_12411(replay, fast)
    assert exc.value.exit_code == 3 and len(replay.requests_to("data/tablefile")) == 2


def test_connection_cut_mid_body_is_retried(replay: Replay) -> None:
    replay.inject(Fault("cut", endpoint="data/tablefile"))
    got, sleeps = fetch_12411(replay)
    assert len(replay.requests_to("data/tablefile")) == 2 and len(sleeps) == 1


def zip_of(name: str, content: bytes) -> bytes:
    """A ZIP holding one member."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, content)
    return buf.getvalue()


BAD_BODIES = [
    (Fault("truncate", endpoint="data/tablefile"), "truncated or invalid ZIP"),
    (Fault("body", endpoint="data/tablefile"), "answered an HTML page instead of a ZIP"),
    (Fault("body", body=zip_of("readme.txt", b"no table"), content_type="application/zip",
           endpoint="data/tablefile"), "holds no CSV file"),
    (Fault("body", body=b'{"Status": {"Code": 0, "Content": "erfolgreich"}}',
           content_type="application/json", endpoint="data/tablefile"), "answered JSON"),
]


@pytest.mark.parametrize(("fault", "needle"), BAD_BODIES)
def test_bad_bodies_are_terminal_and_kept(replay: Replay, tmp_path: Path, fault: Fault,
                                          needle: str) -> None:
    if fault.kind == "body" and not fault.body:
        fault.body = b"<!DOCTYPE html><html><title>Wartung</title></html>"
    replay.inject(fault)
    with pytest.raises(TerminalFetchError, match=needle) as exc:
        fetch_12411(replay, diag_dir=tmp_path)
    assert "t_12411-01-01-4" in str(exc.value)
    assert len(replay.requests_to("data/tablefile")) == 1
    (folder,) = (tmp_path / "t_12411-01-01-4").iterdir()
    info = json.loads((folder / "info.json").read_text(encoding="utf-8"))
    assert needle in info["error"] and (folder / "body.bin").stat().st_size == info["bytes"] > 0


def test_wrong_header_is_an_input_error_and_kept(replay: Replay, tmp_path: Path) -> None:
    replay.inject(Fault("body", body=zip_of("t_de_flat.csv", b"Region;Wert\n16063;1\n"),
                        content_type="application/zip", endpoint="data/tablefile"))
    with pytest.raises(InputError, match="not an ffcsv header: missing column") as exc:
        fetch_12411(replay, diag_dir=tmp_path)
    assert exc.value.exit_code == 1 and not exc.value.message.startswith("fetch failed")
    (folder,) = (tmp_path / "t_12411-01-01-4").iterdir()
    assert "missing column(s) statistics_code, time, value" in (folder / "info.json").read_text()


def test_oversized_csv_is_terminal(replay: Replay, tmp_path: Path) -> None:
    with pytest.raises(TerminalFetchError, match="exceeds the decompression limit of 1000 bytes"):
        fetch_12411(replay, max_csv_bytes=1000, diag_dir=tmp_path)
    assert len(replay.requests_to("data/tablefile")) == 1
    assert len(list((tmp_path / "t_12411-01-01-4").iterdir())) == 1


def test_same_content_gives_same_hash_although_zips_differ(replay: Replay) -> None:
    src = make_source("1000A-0000", "zensus", language="de")
    first = genesis.fetch(src, make_config(replay), policy=POLICY)
    second = genesis.fetch(src, make_config(replay), policy=POLICY)
    assert first.files[0].content != second.files[0].content
    assert first.content_sha256 == second.content_sha256


def test_read_returns_the_frame_of_a_stored_snapshot(replay: Replay, tmp_path: Path) -> None:
    src = make_source("12411-01-01-4", "regionalstatistik", language="en")
    got = genesis.fetch(src, make_config(replay), policy=POLICY)
    snap = store(tmp_path / src.id, src.id, "genesis", got.files, got.content_sha256)
    df = genesis.read(src, snap)
    assert df.loc[(df["dim1_code"] == "16063") & (df["dim2_code"] == ""), "value"].tolist() == [154957.0]


def test_base_url_env_overrides_config(replay: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_config(replay)
    config.apis["regionalstatistik"] = ApiConfig("regionalstatistik", "http://127.0.0.1:9/x/", "R")
    monkeypatch.setenv("OPENDATA_REGIONALSTATISTIK_BASE_URL", replay.url("regionalstatistik"))
    src = make_source("12411-01-01-4", "regionalstatistik", language="de")
    assert genesis.fetch(src, config, policy=POLICY).files[0].url.startswith(replay.url("regionalstatistik"))


def test_selection_parameters_arrive_as_form_fields(replay: Replay) -> None:
    src = make_source("12411-01-01-4", "regionalstatistik", language="de", regionalvariable="KREISE",
                      regionalkey=["16056", "16063*"], startyear=2020, endyear=2024)
    genesis.fetch(src, make_config(replay), policy=POLICY)  # the replay matches table + language only
    (sent,) = replay.requests_to("data/tablefile")
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert {k: sent.form[k] for k in ("regionalvariable", "regionalkey", "startyear", "endyear")} == {
        "regionalvariable": "KREISE", "regionalkey": "16056,16063*", "startyear": "2020", "endyear": "2024"}
