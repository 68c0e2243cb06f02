"""Unverified table codes (`verified = false`): configured, fetched when possible, never blocking.

The default registry has two of them (foreigners 12521-0040, migration 12711-01-03-4). No recorded
response exists for either, so the tests here use the recorded error answers of the replay
server, a real excerpt of another table, and an EXAMPLE ffcsv file (marked "BEISPIEL – keine
echten Daten" in its statistics label) written by the test itself.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from helpers import REPO, copy_config, copy_raw, opendata
from pytest_httpserver import HTTPServer
from replay_server import Replay

from opendata import config as config_mod
from opendata import pipeline, publish, snapshot, status
from opendata.errors import ConfigError, TerminalFetchError
from opendata.paths import Paths
from opendata.snapshot import FetchedFile, sha256_bytes
from opendata.sources import genesis_catalogue

HEADER = ("statistics_code;statistics_label;time_code;time_label;time;1_variable_code;"
          "1_variable_label;1_variable_attribute_code;1_variable_attribute_label;2_variable_code;"
          "2_variable_label;2_variable_attribute_code;2_variable_attribute_label;value;value_unit;"
          "value_variable_code;value_variable_label")
EXAMPLE_TOTAL = 5000  # example figure, not real data


def _example_foreigners() -> bytes:
    """An EXAMPLE ffcsv in the layout of a Kreis x sex table (values are not real)."""
    rows = [("16063", "Wartburgkreis", "", "Insgesamt", EXAMPLE_TOTAL),
            ("16063", "Wartburgkreis", "GESM", "männlich", 2600),
            ("16063", "Wartburgkreis", "GESW", "weiblich", 2400)]
    lines = [HEADER] + [  # the configured table's statistics code (12521), example values
        f"12521;BEISPIEL – keine echten Daten;STAG;Stichtag;31.12.2024;KREISE;Kreise;{key};{name};"
        f"GES;Geschlecht;{code};{label};{value};Anzahl;BSP002;Beispielzahl"
        for key, name, code, label, value in rows]
    return ("\ufeff" + "\n".join(lines) + "\n").encode("utf-8")


def _store(paths: Paths, source: str, csv: bytes) -> None:
    snapshot.store(paths.source_raw(source), source, "genesis",
                   [FetchedFile("data.csv", csv, "http://127.0.0.1/example", "data")],
                   sha256_bytes(csv))


def test_default_registry_marks_the_unconfirmed_codes() -> None:
    cfg = config_mod.load()
    unverified = {s.id: s.table for s in cfg.sources if not s.verified}
    assert unverified == {"foreigners": "12521-0040", "migration": "12711-01-03-4"}
    assert all(cfg.source(s).evidence for s in unverified)


def test_unverified_entry_without_evidence_is_a_config_error(tmp_path: Path) -> None:
    toml = copy_config(tmp_path / "config")
    text = toml.read_text(encoding="utf-8")
    start = text.index('evidence = "Used by two')
    toml.write_text(text[:start] + text[text.index("\n", start) + 1:], encoding="utf-8")
    with pytest.raises(ConfigError, match=r"id=foreigners.*needs 'evidence'"):
        config_mod.load(toml)


def test_offline_run_skips_them_and_publishes_the_rest(tmp_path: Path) -> None:
    paths = Paths(copy_raw(tmp_path / "data"))
    cfg = config_mod.load()
    fetched = {r.source: r for r in pipeline.fetch_all(cfg, paths, online=False)}
    for sid in ("foreigners", "migration"):
        assert fetched[sid].mode == "skipped" and fetched[sid].snapshot is None
        assert f"unverified table {cfg.source(sid).table}" in fetched[sid].note
    result = pipeline.publish_all(cfg, paths)
    assert all(r.valid for r in result.reports)
    rel = paths.package_dir("integration_statistics") / "1.0.0"
    names = {r["name"] for r in json.loads((rel / "datapackage.json").read_text())["resources"]}
    assert "population" in names and not names & {"foreigners", "migration"}
    readme = (rel / "README.md").read_text(encoding="utf-8")
    assert "foreigners (foreigners, table 12521-0040, code not yet verified): not fetched yet" in readme
    st = status.collect(cfg, paths)
    src = {s["source"]: s for p in st["packages"] for s in p["sources"]}
    assert src["foreigners"]["verified"] is False and src["foreigners"]["stale"] is False
    assert "unverified table code" in status.text(st)


def test_a_verified_source_without_snapshot_still_fails(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "data")
    cfg = config_mod.load()
    with pytest.raises(Exception, match="no raw snapshot for source 'population_kreise'"):
        pipeline.fetch_source(cfg.source("population_kreise"), cfg, paths, online=False)


def test_example_foreigners_table_builds_the_share(tmp_path: Path) -> None:
    paths = Paths(copy_raw(tmp_path / "data"))
    cfg = config_mod.load()
    _store(paths, "foreigners", _example_foreigners())
    cand = pipeline.candidate(cfg, paths, "integration_statistics")
    assert cand.report.valid, cand.report.summary()
    res = {r.name: r.frame for r in cand.build.resources}
    frg = res["foreigners"]
    assert sorted(frg["sex_code"]) == ["", "GESM", "GESW"] and set(frg["region_key"]) == {"16063"}
    pop = res["population"]
    den = pop[(pop.region_key == "16063") & (pop.reference_date == "2024-12-31")
              & (pop.sex_code == "")]["value"].item()
    der = res["derived_indicators"]
    share = der[der.indicator == "foreigners_share_azr"]
    assert len(share) == 1 and share["value"].item() == round(EXAMPLE_TOTAL / den * 100, 2)
    assert share["input_keys"].item().startswith("foreigners(region_key=16063")
    assert "foreigners_share_azr" in set(res["indicators"]["code"])
    publish.discard(cand.staged)


def test_unverified_table_that_does_not_fit_is_left_out_with_warnings(tmp_path: Path) -> None:
    paths = Paths(copy_raw(tmp_path / "data"))
    cfg = config_mod.load()
    real = (REPO / "tests" / "fixtures" / "ffcsv" / "12211-Z-11_excerpt_de_flat.csv").read_bytes()
    _store(paths, "migration", real)  # a real table of another statistics (12211, not 12711)
    result = pipeline.publish_all(cfg, paths)
    report = result.reports[[r.package for r in result.reports].index("integration_statistics")]
    assert report.valid
    warned = [i for i in report.warnings if i.source == "migration"]
    assert warned and all("unverified source: left out" in i.message for i in warned)
    assert any("the answer holds statistics ['12211']" in i.message for i in warned)
    rel = paths.package_dir("integration_statistics") / "1.0.0"
    assert not (rel / "data" / "migration.csv").exists()
    assert "left out, the fetched table does not fit its schema" in (rel / "README.md").read_text()


def test_online_rejection_of_an_unverified_code_is_a_warning(replay: Replay, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENDATA_GENESIS_BASE_URL", replay.url("genesis"))
    cfg = config_mod.load()
    paths = Paths(tmp_path / "data")
    bad = dataclasses.replace(cfg.source("foreigners"), table="61111-0021", params={"language": "de"})
    res = pipeline.fetch_source(bad, cfg, paths, online=True)
    assert res.mode == "skipped" and res.snapshot is None
    assert "server status -1" in res.note and "wurde kein Datenquader gefunden" in res.note
    with pytest.raises(TerminalFetchError, match="server status -1"):
        pipeline.fetch_source(dataclasses.replace(bad, verified=True), cfg, paths, online=True)


def test_tables_command_checks_codes_against_metadata(replay: Replay) -> None:
    env = {f"OPENDATA_{api.upper()}_BASE_URL": replay.url(api)
           for api in ("genesis", "regionalstatistik", "zensus")}
    res = opendata("tables", "--json", env=env)
    assert res.returncode == 1, res.stderr[-2000:]  # the two unverified codes are not recorded
    checks = {c["source"]: c for c in json.loads(res.stdout)}
    emp = checks["employees_nationality"]
    assert emp["ok"] and emp["title"].startswith("Sozialversicherungspflichtig Beschäftigte")
    assert emp["variables"] == ["KREISE", "NAT", "GES"] and emp["values"] == ["ERW032"]
    assert emp["schema_problems"] == []
    for sid in ("population_kreise", "protection_seekers", "census_immigration_history",
                "census_population"):  # the real metadata fits every verified schema
        assert checks[sid]["ok"] and checks[sid]["schema_problems"] == [], checks[sid]
    assert checks["census_population"]["variables"] == ["GEODL1", "GEOGM4"]
    assert checks["census_population"]["values"] == ["PRS001", "PRS018"]  # Zensus nests them
    for sid in ("foreigners", "migration"):
        assert not checks[sid]["ok"] and not checks[sid]["verified"]
        assert "HTTP 404" in checks[sid]["message"]
    assert len(replay.requests_to("metadata/table")) == 7


def _catalogue_answer(code: int, content: str, tables: list[dict[str, str]]) -> dict[str, object]:
    """A catalogue/tables answer in the documented GENESIS REST 2020 shape."""
    return {"Ident": {"Service": "catalogue", "Method": "tables"},
            "Status": {"Code": code, "Content": content, "Type": "Information"}, "List": tables}


def test_tables_find_lists_the_catalogue(httpserver: HTTPServer) -> None:
    example = [{"Code": "99999-0001", "Content": "BEISPIEL – keine echte\nTabelle", "Time": "2014-2024"}]
    httpserver.expect_ordered_request("/catalogue/tables", method="POST").respond_with_json(
        _catalogue_answer(0, "erfolgreich", example))
    httpserver.expect_ordered_request("/catalogue/tables", method="POST").respond_with_json(
        _catalogue_answer(104, "Es gibt keine Objekte zum angegebenen Selektionskriterium", []))
    env = {"OPENDATA_GENESIS_BASE_URL": httpserver.url_for("/"), "GENESIS_TOKEN": "fake-tok-9876"}
    found = opendata("tables", "--find", "12511*", "--json", env=env)
    assert found.returncode == 0, found.stderr[-2000:]
    assert json.loads(found.stdout) == [{"code": "99999-0001", "title": "BEISPIEL – keine echte "
                                         "Tabelle", "time": "2014-2024"}]
    none = opendata("tables", "--find", "99999*", env=env)
    assert none.returncode == 0 and "no tables match '99999*'" in none.stdout
    (first, _), (second, _) = httpserver.log
    assert first.form["selection"] == "12511*" and second.form["selection"] == "99999*"
    assert first.headers["username"] == "fake-tok-9876" and "username" not in first.form
    assert "fake-tok-9876" not in found.stdout + found.stderr + none.stdout + none.stderr
    bad = opendata("tables", "--find", "1*", "--api", "nosuch", env=env)
    assert bad.returncode == 2 and "apis.nosuch" in bad.stderr


def test_check_names_what_does_not_fit_the_schema(replay: Replay,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENDATA_REGIONALSTATISTIK_BASE_URL", replay.url("regionalstatistik"))
    cfg = config_mod.load()
    other = dataclasses.replace(cfg.source("migration"), table="12211-Z-11")  # real, other layout
    got = genesis_catalogue.check(other, cfg, policy=pipeline.policy(cfg))
    assert got.ok and got.title and "LBFORM01" in got.variables
    assert "variable LBFORM01 is not in opendata.transform.tidy.DIMENSIONS" in got.schema_problems
    assert "schema field sex_code has no variable in the table" in got.schema_problems
