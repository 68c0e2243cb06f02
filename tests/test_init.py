"""`opendata init`: a configuration for another municipality from the region registry (issue 13).

Nothing here runs the pipeline: the tests check the written files and the request selections
that loading the generated configuration derives.
"""

from __future__ import annotations

import csv
import tomllib
from pathlib import Path

import pytest
from helpers import REPO, copy_config, opendata

from opendata import config, places, scaffold
from opendata.errors import ConfigError
from opendata.municipality import resolve

BASE = REPO / "config" / "opendata.toml"
PUBLISHER = 'publisher_name = "BEISPIEL: Stadtverwaltung"'


def _fill_publisher(cfg: Path) -> None:
    text = cfg.read_text(encoding="utf-8")
    assert text.count('publisher_name = ""') == 1
    cfg.write_text(text.replace('publisher_name = ""', PUBLISHER), encoding="utf-8")


def _selections(cfg: config.Config) -> dict[str, list[str]]:
    return {s.id: s.params["regionalkey"] for s in cfg.sources if s.kind == "genesis"}


def _ags(name: str) -> str:
    """The AGS of a municipality row of the registry, looked up by its exact name."""
    regions = places.load().regions
    rows = regions[(regions["name"] == name) & (regions["key_type"] == "ars")]
    assert len(rows) == 1, name
    return str(rows["same_as_key"].iloc[0])


def _header(path: Path, delimiter: str = ",", encoding: str = "utf-8") -> list[str]:
    with path.open(encoding=encoding, newline="") as fh:
        return next(csv.reader(fh, delimiter=delimiter))


def test_init_kreisfreie_stadt_derives_the_selections(tmp_path: Path) -> None:
    out = tmp_path / "weimar"
    res = opendata("init", "--municipality", "16055", "--dir", str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Weimar" in res.stdout and "publisher_name" in res.stdout and "fetch --online" in res.stdout
    cfg_path = out / "opendata.toml"
    raw = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    assert raw["municipality"] == {"key": "16055000", "name": "Weimar", "id": "weimar"}
    assert raw["catalog"]["publisher_name"] == ""
    _fill_publisher(cfg_path)
    cfg = config.load(cfg_path)
    assert cfg.municipality is not None and cfg.municipality.ars == "160550000000"
    assert _selections(cfg) == {
        "population_kreise": ["16055"], "protection_seekers": ["16055"],
        "employees_nationality": ["DG", "16", "16055"], "foreigners": ["16055"],
        "migration": ["16055"], "census_immigration_history": ["DG", "16"],
        "census_population": ["DG", "160550000000"]}
    meta = cfg.packages["integration_statistics"].meta
    assert meta["title_de"] == "Integration in Weimar: Daten und Fakten"
    assert "Weimar" in cfg.packages["integration_measures"].meta["description_en"]
    assert cfg.catalog["political_geocoding"].endswith("/municipalityKey/16055000")
    text = cfg_path.read_text(encoding="utf-8")
    for other in ("Eisenach", "16056", "16063"):
        assert other not in text, other


def test_init_copies_the_standard_sources_of_the_base_config(tmp_path: Path) -> None:
    done = scaffold.write("16055", tmp_path / "w", base=config.load(BASE))
    _fill_publisher(done.directory / "opendata.toml")
    new, base = config.load(done.directory / "opendata.toml"), config.load(BASE)
    fields = ("api", "table", "schema", "package", "verified", "evidence", "region_levels",
              "region_key_type", "attribution", "title")
    genesis = [s for s in base.sources if s.kind == "genesis"]
    assert [tuple(getattr(s, f) for f in fields) for s in genesis] == \
        [tuple(getattr(s, f) for f in fields) for s in new.sources if s.kind == "genesis"]
    assert any(not s.verified and s.evidence for s in new.sources)  # unverified ones kept
    assert new.settings == base.settings and new.raw["apis"] == base.raw["apis"]
    assert new.raw["schedule"] == base.raw["schedule"]
    assert {s.id for s in new.sources} == {s.id for s in base.sources}
    assert set(new.packages) == set(base.packages)


def test_init_city_tables_are_empty_with_the_template_columns(tmp_path: Path) -> None:
    done = scaffold.write("16055000", tmp_path / "w", base=config.load(BASE))
    city = done.directory / "city"
    for table in ("massnahmen", "handlungsfelder", "kennzahlen"):
        template = REPO / "templates" / f"{table}_vorlage.csv"
        assert _header(city / f"{table}.csv") == _header(template, ";", "utf-8-sig")
        assert len((city / f"{table}.csv").read_text(encoding="utf-8").splitlines()) == 1
    # the city figures template has the columns the embedded Eisenach table is read with
    assert _header(REPO / "templates" / "kennzahlen_vorlage.csv", ";", "utf-8-sig") == \
        _header(REPO / "config" / "city" / "kennzahlen.csv")


def test_init_kreisangehoerige_gemeinde(tmp_path: Path) -> None:
    ags = _ags("Bad Salzungen, Stadt")
    assert ags.startswith("16063")  # Wartburgkreis
    done = scaffold.write(ags, tmp_path / "bs", base=config.load(BASE))
    assert done.slug == "bad-salzungen"
    cfg_path = done.directory / "opendata.toml"
    _fill_publisher(cfg_path)
    cfg = config.load(cfg_path)
    ars = resolve(ags).ars
    assert len(ars) == 12 and ars.startswith("16063")
    assert _selections(cfg) == {
        "population_kreise": ["16063"], "protection_seekers": ["16063"],
        "employees_nationality": ["DG", "16", "16063"], "foreigners": ["16063"],
        "migration": ["16063"], "census_immigration_history": ["DG", "16"],
        "census_population": ["DG", ars]}
    assert "Wartburgkreis, Thüringen und Deutschland" in \
        cfg.packages["integration_statistics"].meta["description_de"]


def test_init_for_eisenach_derives_the_selections_of_the_shipped_config(tmp_path: Path) -> None:
    done = scaffold.write("16063105", tmp_path / "e", base=config.load(BASE))
    _fill_publisher(done.directory / "opendata.toml")
    assert _selections(config.load(done.directory / "opendata.toml")) == \
        _selections(config.load(BASE))


def test_unfilled_publisher_is_the_clear_config_error(tmp_path: Path) -> None:
    done = scaffold.write("16055", tmp_path / "w", base=config.load(BASE))
    cfg_path = done.directory / "opendata.toml"
    with pytest.raises(ConfigError, match="publisher_name"):
        config.load(cfg_path)
    res = opendata("validate", "--config", str(cfg_path), "--data-dir", str(tmp_path / "d"))
    assert res.returncode == 2
    assert "missing 'publisher_name'" in res.stderr and "Traceback" not in res.stderr


def test_unknown_key_exits_2_naming_it(tmp_path: Path) -> None:
    res = opendata("init", "--municipality", "16999999", "--dir", str(tmp_path / "x"))
    assert res.returncode == 2
    assert "'16999999' is not in the region registry" in res.stderr
    assert "regions.csv" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("key", ["16063", "16", "DG"])
def test_a_region_that_is_not_one_municipality_is_refused(key: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not one municipality"):
        scaffold.write(key, tmp_path / "x", base=config.load(BASE))
    assert not (tmp_path / "x").exists()


def test_a_dissolved_key_names_its_successor(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ended on 2021-06-30; use its successor 16063105"):
        scaffold.write("16056", tmp_path / "x", base=config.load(BASE))


def test_force_is_needed_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "weimar"
    assert opendata("init", "--municipality", "16055", "--dir", str(out)).returncode == 0
    table = out / "city" / "massnahmen.csv"
    table.write_text("BEISPIEL: edited\n", encoding="utf-8")
    res = opendata("init", "--municipality", "16055", "--dir", str(out))
    assert res.returncode == 2 and "--force" in res.stderr and str(out) in res.stderr
    assert table.read_text(encoding="utf-8") == "BEISPIEL: edited\n"
    res = opendata("init", "--municipality", "16055", "--dir", str(out), "--force")
    assert res.returncode == 0, res.stderr[-2000:]
    assert table.read_text(encoding="utf-8").startswith("id,handlungsfeld,titel,")


def test_name_is_escaped_or_refused(tmp_path: Path) -> None:
    base = config.load(BASE)
    name = 'BEISPIEL "Stadt" \\ Süd'
    done = scaffold.write("16055", tmp_path / "w", name=name, base=base)
    raw = tomllib.loads((done.directory / "opendata.toml").read_text(encoding="utf-8"))
    assert raw["municipality"]["name"] == name and raw["municipality"]["id"] == "beispiel-stadt-sued"
    assert raw["packages"]["integration_measures"]["keywords"][-1] == name
    with pytest.raises(ConfigError, match="one line"):
        scaffold.write("16055", tmp_path / "v", name="Weimar\nx = 1", base=base)


def test_a_standard_source_must_not_name_the_base_municipality(tmp_path: Path) -> None:
    cfg_path = copy_config(tmp_path / "config")
    text = cfg_path.read_text(encoding="utf-8")
    cfg_path.write_text(text.replace('title = "Ausländer: Kreise, Stichtag, Geschlecht"',
                                     'title = "Ausländer in Eisenach"'), encoding="utf-8")
    with pytest.raises(ConfigError, match="'title' names the municipality"):
        scaffold.write("16055", tmp_path / "w", base=config.load(cfg_path))


def test_toml_values_round_trip() -> None:
    values = ['a "b" \\ c', "tab\tnew\nline\x7fdel\x01", "Ümlaut €", 1, 2.5, True,
              ["x", 3], {"k": "v", "a b": [1]}]
    for value in values:
        assert tomllib.loads(f"v = {scaffold.toml_value(value)}")["v"] == value


def test_slug() -> None:
    assert scaffold.slug("Bad Salzungen") == "bad-salzungen"
    assert scaffold.slug("Halle (Saale)") == "halle-saale"
    assert scaffold.slug("Görlitz") == "goerlitz"
