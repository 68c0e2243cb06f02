"""Bad and reordered GENESIS answers, built in each test from a real recorded table (../shared).

Every modification below is made here, in the test, on the recorded 12411-01-01-4 answer that the
replay server (tests/replay_server.py) serves: rows shuffled, a label made a formula, a value
made unreadable, a region removed, another statistics code. They run through the real fetch
(`pipeline.fetch_source` over HTTP on 127.0.0.1) or a whole `opendata run --online`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import copy_raw, opendata
from replay_server import Fault, Replay, shuffle_rows

from opendata import config as config_mod
from opendata import pipeline, snapshot
from opendata.errors import InputError
from opendata.paths import Paths
from opendata.sources import genesis

pytestmark = pytest.mark.shared
TABLE = "12411-01-01-4"
SOURCE = "population_kreise"
FAKE = {"GENESIS_USERNAME": "fake-genesis-user-4711", "GENESIS_PASSWORD": "fake-genesis-pw-0815",
        "REGIONALSTATISTIK_TOKEN": "fake-regio-token-a1b2c3d4", "ZENSUS_TOKEN": "fake-zensus-token-e5f6"}
FORMULA = '=HYPERLINK("http://example.org/BEISPIEL","klick")'


def edit(match: dict[str, str], column: str, value: str) -> Callable[[bytes], bytes]:
    """In-test modification: set ``column`` in every data line whose cells equal ``match``."""
    def fn(body: bytes) -> bytes:
        lines = body.decode("utf-8-sig").split("\n")
        head = lines[0].split(";")
        out = [lines[0]]
        for line in lines[1:]:
            cells = line.split(";")
            if line and all(cells[head.index(k)] == v for k, v in match.items()):
                cells[head.index(column)] = value
            out.append(";".join(cells))
        return "\n".join(out).encode("utf-8")
    return fn


def drop(region: str) -> Callable[[bytes], bytes]:
    """In-test modification: remove every data line of one region."""
    def fn(body: bytes) -> bytes:
        lines = body.split(b"\n")
        return b"\n".join([lines[0]] + [x for x in lines[1:] if f";{region};".encode() not in x])
    return fn


def replace_all(old: str, new: str) -> Callable[[bytes], bytes]:
    """In-test modification: replace a text everywhere in the CSV."""
    return lambda body: body.replace(old.encode(), new.encode())


@pytest.fixture
def setup(replay_registry: tuple[config_mod.Config, Paths]) -> tuple[config_mod.Config, Paths]:
    """The repository's registry with every API pointed at the replay server; an empty data dir."""
    return replay_registry


def fetch(cfg: config_mod.Config, paths: Paths, source: str = SOURCE) -> pipeline.FetchResult:
    """One online fetch of a configured source through the pipeline, downloading the data even
    when the metadata says it is unchanged (tests/test_recheck.py tests that skip)."""
    return pipeline.fetch_source(cfg.source(source), cfg, paths, online=True, full=True)


# --- issue 12: unchanged content stays unchanged; the manifest tells the stored size ---------

def test_same_rows_in_another_order_count_as_unchanged(replay: Replay, setup: tuple) -> None:
    cfg, paths = setup
    first = fetch(cfg, paths)
    replay.rewrite(TABLE, shuffle_rows)
    second = fetch(cfg, paths)
    data = replay.requests_to("data/tablefile")
    assert len(data) == 2 and first.changed and first.snapshot is not None
    assert not second.changed and second.snapshot == first.snapshot
    assert len(snapshot.candidates(paths.source_raw(SOURCE))) == 1


def test_changed_rows_still_make_a_new_snapshot(replay: Replay, setup: tuple) -> None:
    cfg, paths = setup
    first = fetch(cfg, paths)
    replay.rewrite(TABLE, edit({"1_variable_attribute_code": "16063", "2_variable_attribute_code": ""},
                               "value", "154958"))
    second = fetch(cfg, paths)
    assert second.changed and second.snapshot != first.snapshot


def test_manifest_records_the_stored_size_of_every_file(setup: tuple) -> None:
    cfg, paths = setup
    res = fetch(cfg, paths)
    assert res.snapshot is not None
    manifest = json.loads((res.snapshot / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        assert entry["bytes"] == (res.snapshot / entry["name"]).stat().st_size
        assert "Content-Length" not in entry["headers"], entry["name"]  # the server's, not ours


# --- issue 15: bad answers stop the run before anything is stored -----------------------------

TOTAL_16063 = {"1_variable_attribute_code": "16063", "2_variable_attribute_code": ""}
MALE_16063 = {"1_variable_attribute_code": "16063", "2_variable_attribute_code": "GESM"}
BAD_ANSWERS = [
    ([edit(TOTAL_16063, "value", "?")], "column value", "line"),
    ([edit(TOTAL_16063, "value", "154957,0"), edit(MALE_16063, "value", "76953.0")],
     "'76953.0'", "mixed decimal separators"),
    ([edit(TOTAL_16063, "value", "154.957")], "'154.957'", "digit grouping"),
    ([replace_all("12411;Fortschreibung", "12521;Fortschreibung")],
     "statistics ['12521']", "different table"),
    ([drop("16063")], "region 16063 (Wartburgkreis) is missing", "regionalkey"),
    ([lambda body: body.split(b"\n")[0] + b"\n"], "no data rows", "params"),
    ([lambda body: body.replace("männlich".encode(), "m\xe4nnlich".encode("latin-1"))],
     "not UTF-8", "ffcsv is always UTF-8"),
    ([replace_all(";value;", ";wert;")], "missing column(s) value", "format=ffcsv"),
]


@pytest.mark.parametrize(("rewrites", "needle", "hint"), BAD_ANSWERS)
def test_bad_answer_is_an_input_error_and_stores_nothing(
        replay: Replay, setup: tuple, rewrites: list[Callable[[bytes], bytes]], needle: str,
        hint: str) -> None:
    cfg, paths = setup
    good = fetch(cfg, paths)
    replay.rewrite(TABLE, *[_compose(rewrites)])
    with pytest.raises(InputError) as exc:
        fetch(cfg, paths)
    text = exc.value.message
    assert needle in text and hint in text, text
    assert text.startswith(f"input error in source '{SOURCE}'") and exc.value.exit_code == 1
    assert [p.name for p in snapshot.candidates(paths.source_raw(SOURCE))] == [good.snapshot.name]
    (kept,) = (paths.state / "failed" / SOURCE).iterdir()  # the bad body is kept for diagnosis
    assert needle in json.loads((kept / "info.json").read_text(encoding="utf-8"))["error"]


def _compose(fns: list[Callable[[bytes], bytes]]) -> Callable[[bytes], bytes]:
    def fn(body: bytes) -> bytes:
        for f in fns:
            body = f(body)
        return body
    return fn


def test_unknown_marker_names_line_and_column(replay: Replay, setup: tuple) -> None:
    cfg, paths = setup
    replay.rewrite(TABLE, edit(TOTAL_16063, "value", "#"))
    with pytest.raises(InputError) as exc:
        fetch(cfg, paths)
    lines = replay_csv(replay).split("\n")
    line = next(i + 1 for i, x in enumerate(lines) if ";16063;Wartburgkreis;GES;Geschlecht;;" in x)
    assert f"line {line}: '#'" in exc.value.message and "column value" in exc.value.message
    assert "12411-01-01-4_" in exc.value.message  # the CSV's name inside the ZIP


def replay_csv(replay: Replay) -> str:
    """The CSV of the recorded 12411 answer as the replay server selects it (unmodified)."""
    import zipfile

    from replay_server import select_regions
    key = ("/genesisws/rest/2020/", "data/tablefile", TABLE, "de", "false", "off")
    body = select_regions(replay.answers[key][0].body.read_bytes(), "16056,16063")
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        return zf.read(zf.namelist()[0]).decode("utf-8-sig")


def test_other_table_of_the_same_statistics_is_refused(replay: Replay, setup: tuple) -> None:
    cfg, paths = setup
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("12411-01-01-5_1773175772751_de_flat.csv", replay_csv(replay).encode())
    replay.inject(Fault("body", body=buf.getvalue(), content_type="application/zip",
                        endpoint="data/tablefile"))
    with pytest.raises(InputError, match="holds table 12411-01-01-5, not the configured table "
                                         "12411-01-01-4"):
        fetch(cfg, paths)


def test_unverified_source_with_a_bad_answer_is_skipped(replay: Replay, setup: tuple) -> None:
    cfg, paths = setup
    src = replace(cfg.source(SOURCE), verified=False, evidence="BEISPIEL")
    replay.rewrite(TABLE, drop("16063"))
    res = pipeline.fetch_source(src, cfg, paths, online=True)
    assert res.mode == "skipped" and "region 16063" in res.note and res.snapshot is None


def test_a_region_the_table_does_not_cover_may_be_absent(replay: Replay, setup: tuple) -> None:
    cfg, paths = setup
    replay.rewrite(TABLE, drop("16056"))  # dissolved 2021-06-30; the table is of 2024-12-31
    assert fetch(cfg, paths).changed


def test_a_stored_bad_snapshot_is_refused_when_read(replay: Replay, setup: tuple) -> None:
    cfg, paths = setup
    src = cfg.source(SOURCE)
    replay.rewrite(TABLE, drop("16063"))
    src_open = replace(src, params={**src.params, "regionalkey": ["16056"]})  # accepts the answer
    res = pipeline.fetch_source(src_open, cfg, paths, online=True)
    assert res.snapshot is not None
    with pytest.raises(InputError, match="region 16063 .* is missing"):
        genesis.read(src, snapshot.verify(res.snapshot))


# --- whole runs: exit codes, and no formula in any published file -----------------------------

def _run(replay: Replay, tmp_path: Path) -> tuple[Path, str, int]:
    data = tmp_path / "data"
    env = dict(FAKE) | {f"OPENDATA_{api.upper()}_BASE_URL": replay.url(api)
                        for api in ("genesis", "regionalstatistik", "zensus")}
    env |= {"OPENDATA_JOB_POLL_INTERVAL": "0", "PREFECT_HOME": str(tmp_path / "prefect-home")}
    res = opendata("run", "--data-dir", str(data), env=env)
    return data, res.stdout + res.stderr, res.returncode


def test_run_with_a_missing_region_exits_1_naming_it(replay: Replay, tmp_path: Path) -> None:
    copy_raw(tmp_path / "data")
    replay.rewrite(TABLE, drop("16063"))
    data, out, code = _run(replay, tmp_path)
    assert code == 1, out[-3000:]
    (error,) = [line for line in out.splitlines() if line.startswith("error: ")]
    assert error.startswith("error: input error in source 'population_kreise'"), out[-3000:]
    assert "region 16063 (Wartburgkreis) is missing" in error
    assert not (data / "published" / "integration_statistics").exists()
    runs = (data / "state" / "runs.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(runs[-1])["exit_code"] == 1


def test_formula_labels_are_published_neutralised(replay: Replay, tmp_path: Path) -> None:
    replay.rewrite(TABLE, _compose([edit(TOTAL_16063, "1_variable_attribute_label", FORMULA),
                                    edit(MALE_16063, "1_variable_attribute_label", FORMULA),
                                    edit(MALE_16063, "2_variable_attribute_label", "@SUM(A1)")]))
    data, out, code = _run(replay, tmp_path)
    assert code == 0, out[-3000:]
    report = json.loads((data / "state" / "reports" / "latest.json").read_text(encoding="utf-8"))
    found = [i for p in report["packages"] for i in p["issues"] if i["code"] == "formula-neutralised"]
    assert {i["field"] for i in found} == {"region_name", "sex_label"}
    assert {i["severity"] for i in found} == {"warning"} and report["valid"]
    release = data / "published" / "integration_statistics" / "1.0.0" / "data"
    seen = 0
    for name in ("population.csv", "derived_indicators.csv"):
        with (release / name).open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        cells = [v for r in rows for v in r.values()]
        assert not [v for v in cells if v[:1] in ("=", "+", "@")], name
        seen += sum(1 for v in cells if v == "'" + FORMULA)
        if name == "population.csv":
            assert "'@SUM(A1)" in cells
    assert seen >= 2  # population.csv and derived_indicators.csv both carry the label, neutralised
