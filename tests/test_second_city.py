"""A second municipality (Jena, config/jena/) and several municipalities in one data dir.

One module-scoped data dir: `opendata --config config/jena/opendata.toml run` (offline, on the
committed snapshots in data/raw/jena/), then `opendata run` (Eisenach) into the same data dir,
both as real processes with real Prefect. The checks read the files they wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from helpers import REPO, copy_raw, load_script, opendata, serve_folder
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF

from opendata import config, site, snapshot
from opendata.errors import ConfigError
from opendata.ffcsv import read_ffcsv
from opendata.paths import Paths

JENA = REPO / "config" / "jena" / "opendata.toml"
BASE = "https://opendata.example.org/integration/"  # the base URL both runs share (EXAMPLE)
GOLDEN = REPO / "tests" / "golden"
DCATDE = Namespace("http://dcat-ap.de/def/dcatde/")
JENA_KEYS = {"DG", "16", "16053", "16053000", "160530000000"}
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """Jena's run, then Eisenach's run, into one data dir holding both."""
    data = copy_raw(tmp_path_factory.mktemp("two") / "data")
    jena = opendata("--config", str(JENA), "run", "--data-dir", str(data), "--base-url", BASE)
    assert jena.returncode == 0, jena.stderr[-3000:]
    eisenach = opendata("run", "--data-dir", str(data), "--base-url", BASE)
    assert eisenach.returncode == 0, eisenach.stderr[-3000:]
    return data, jena.stdout + jena.stderr, eisenach.stdout + eisenach.stderr


def _jena() -> config.Config:
    cfg = config.load(JENA)
    cfg.catalog["base_url"] = BASE
    return cfg


def _eisenach() -> config.Config:
    cfg = config.load()
    cfg.catalog["base_url"] = BASE
    return cfg


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


# --- config and paths -----------------------------------------------------------------------


def test_jena_config_resolves_its_regions() -> None:
    cfg = config.load(JENA)
    town = cfg.municipality
    assert town is not None and (town.ags, town.ars, town.kreis, town.land) == (
        "16053000", "160530000000", "16053", "16")
    assert cfg.namespace == "jena" and list(cfg.packages) == ["integration_statistics"]
    assert cfg.source("population_kreise").params["regionalkey"] == ["16053"]
    assert cfg.source("employees_nationality").params["regionalkey"] == ["DG", "16", "16053"]
    assert cfg.source("census_population").params["regionalkey"] == ["DG", "160530000000"]
    assert "Beispielkonfiguration" in cfg.catalog["publisher_name"]
    assert not [s for s in cfg.sources if s.kind == "table"]  # no city tables: nothing invented


def test_paths_of_a_namespace(tmp_path: Path) -> None:
    top, jena = Paths(tmp_path), Paths(tmp_path, "jena")
    assert jena.source_raw("population_kreise") == tmp_path / "raw" / "jena" / "population_kreise"
    assert jena.package_dir("p") == tmp_path / "published" / "jena" / "p"
    assert jena.reports == tmp_path / "state" / "jena" / "reports"
    assert jena.published == top.published == tmp_path / "published"  # one site per data dir
    assert jena.lock_file == top.lock_file == tmp_path / "state" / "pipeline.lock"
    assert top.package_dir("p") == tmp_path / "published" / "p"
    assert config.load(JENA).paths(tmp_path) == jena and config.load().paths(tmp_path) == top


@pytest.mark.parametrize("bad", ["reports", "tmp", "downloads", "Jena", "integration_statistics",
                                 "../x", "a b", "7"])
def test_bad_namespace_is_a_config_error(tmp_path: Path, bad: str) -> None:
    text = JENA.read_text(encoding="utf-8").replace('id = "jena"', f'id = "{bad}"')
    path = tmp_path / "opendata.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="id must be a short lowercase slug"):
        config.load(path)
    res = opendata("status", "--config", str(path), "--data-dir", str(tmp_path / "data"))
    assert res.returncode == 2 and "id must be" in res.stderr and "Traceback" not in res.stderr


# --- embedded snapshots -------------------------------------------------------------------------


def test_committed_jena_snapshots_hold_only_its_regions() -> None:
    cfg = config.load(JENA)
    paths = cfg.paths(REPO / "data")
    sources = [s for s in cfg.sources if s.verified]
    assert sources
    for source in sources:
        snap = snapshot.latest(paths.source_raw(source.id), source.id)
        assert snap.path.parent.parent == REPO / "data" / "raw" / "jena"
        keys = set(read_ffcsv(snap.read("data"), source=source.id)["dim1_code"])
        assert keys and keys <= set(source.params["regionalkey"]), source.id
        assert "filtered by scripts/build_embedded.py" in snap.manifest["note"]
        assert len(snap.read("data")) < 10_000  # small: the rows of Jena's regions only


def test_build_embedded_for_jena_reproduces_the_commit(shared: Path, tmp_path: Path) -> None:
    script = load_script("build_embedded")
    first = script.run(shared, tmp_path, JENA)
    assert {p.parent.name for p in first} == {s.id for s in config.load(JENA).sources if s.verified}
    assert all(p.parent.parent == tmp_path / "raw" / "jena" for p in first)
    assert script.run(shared, tmp_path, JENA) == []  # idempotent
    for folder in first:
        committed = snapshot.latest(REPO / "data" / "raw" / "jena" / folder.parent.name,
                                    folder.parent.name)
        fresh = snapshot.verify(folder)
        assert fresh.manifest == committed.manifest
        assert fresh.read("data") == committed.read("data")


# --- two municipalities in one data dir ---------------------------------------------------------


def test_each_config_publishes_into_its_namespace(both: tuple[Path, str, str]) -> None:
    data, jena_out, eisenach_out = both
    assert "integration_statistics: published 1.0.0" in jena_out
    assert "integration_measures" not in jena_out  # Jena has no measures package
    jena = data / "published" / "jena"
    assert sorted(p.name for p in jena.iterdir()) == ["integration_statistics"]
    assert (jena / "integration_statistics" / "latest").resolve().name == "1.0.0"
    for pkg in ("integration_measures", "integration_statistics"):
        assert f"{pkg}: published 1.0.0" in eisenach_out
        assert (data / "published" / pkg / "latest").resolve().name == "1.0.0"
    assert (data / "state" / "jena" / "runs.jsonl").is_file()
    assert (data / "state" / "jena" / "reports" / "latest.json").is_file()
    assert (data / "state" / "runs.jsonl").is_file()  # Eisenach: the top level, as before
    runs = [json.loads(line) for line in
            (data / "state" / "jena" / "runs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["outcome"] for r in runs] == ["success"]
    # offline: no new snapshot in either namespace
    assert sorted(p.name for p in (data / "raw" / "jena").iterdir()) == sorted(
        p.name for p in (REPO / "data" / "raw" / "jena").iterdir())


def test_eisenach_outputs_unchanged_byte_for_byte(both: tuple[Path, str, str]) -> None:
    data, _, _ = both
    golden = sorted(p for p in GOLDEN.rglob("*") if p.is_file())
    assert golden
    for path in golden:
        rel = path.relative_to(GOLDEN)
        produced = data / "published" / rel.parts[0] / "1.0.0" / Path(*rel.parts[1:])
        assert produced.read_bytes() == path.read_bytes(), rel


def test_jena_package_passes_frictionless_validate(both: tuple[Path, str, str]) -> None:
    data, _, _ = both
    desc = data / "published" / "jena" / "integration_statistics" / "1.0.0" / "datapackage.json"
    tool = Path(sys.executable).parent / "frictionless"
    res = subprocess.run([str(tool), "validate", str(desc)], capture_output=True, text=True,
                         timeout=300, check=False)
    assert res.returncode == 0, res.stdout[-3000:]
    meta = json.loads(desc.read_text(encoding="utf-8"))["catalog"]
    assert meta["municipality"] == {"key": "16053000", "name": "Jena"}
    assert meta["publisher_name"] == "Stadt Jena (Beispielkonfiguration)"
    assert meta["political_geocoding"].endswith("/municipalityKey/16053000")


def test_jena_data_is_about_jena_and_its_comparison_regions(both: tuple[Path, str, str]) -> None:
    data, _, _ = both
    rel = data / "published" / "jena" / "integration_statistics" / "1.0.0"
    for csv in sorted((rel / "data").glob("*.csv")):
        frame = _csv(csv)
        if "region_key" in frame.columns:
            assert set(frame["region_key"]) <= JENA_KEYS, csv.name
    regions = _csv(rel / "data" / "regions.csv")
    assert set(regions["key"]) == JENA_KEYS
    assert _csv(rel / "data" / "series_breaks.csv").empty  # Jena had no territorial change
    readme = (rel / "README.md").read_text(encoding="utf-8")
    assert "city\\_figures: resource not built" not in readme  # not configured, so no gap


def test_jena_protection_seekers_per_1000_from_its_inputs(both: tuple[Path, str, str]) -> None:
    data, _, _ = both
    rel = data / "published" / "jena" / "integration_statistics" / "1.0.0" / "data"
    derived = _csv(rel / "derived_indicators.csv")
    row = derived[(derived["indicator"] == "protection_seekers_per_1000")
                  & (derived["region_key"] == "16053")]
    assert len(row) == 1
    date = row["reference_date"].iloc[0]
    seekers = _csv(rel / "protection_seekers.csv")
    top = seekers[(seekers["region_key"] == "16053") & (seekers["reference_date"] == date)
                  & seekers["protection_status_code"].isin(
                      ["SCHUTZST-OF", "SCHUTZST-AK-1", "SCHUTZST-X"])]
    population = _csv(rel / "population.csv")
    total = population[(population["region_key"] == "16053") & (population["sex_code"] == "")
                       & (population["reference_date"] == date)]
    num, den = top["value"].astype(float).sum(), float(total["value"].iloc[0])
    assert float(row["numerator"].iloc[0]) == num and float(row["denominator"].iloc[0]) == den
    assert float(row["value"].iloc[0]) == round(num / den * 1000, 2)


def _graph(data: Path) -> Graph:
    return Graph().parse(data / "published" / "catalog.ttl", format="turtle")


def test_catalog_lists_every_municipality(both: tuple[Path, str, str]) -> None:
    data, _, _ = both
    g = _graph(data)
    datasets = sorted(str(o) for o in g.objects(None, DCAT.dataset))
    assert datasets == [f"{BASE}integration_measures/#dataset",
                        f"{BASE}integration_statistics/#dataset",
                        f"{BASE}jena/integration_statistics/#dataset"]
    jena = URIRef(f"{BASE}jena/integration_statistics/#dataset")
    eisenach = URIRef(f"{BASE}integration_statistics/#dataset")
    names = {ds: str(g.value(g.value(ds, DCTERMS.publisher), FOAF.name)) for ds in (jena, eisenach)}
    assert names == {jena: "Stadt Jena (Beispielkonfiguration)", eisenach: "Stadt Eisenach"}
    assert str(g.value(jena, DCATDE.politicalGeocodingURI)).endswith("/16053000")
    assert str(g.value(eisenach, DCATDE.politicalGeocodingURI)).endswith("/16063105")
    assert (jena, DCTERMS.title, Literal(
        "Integration in Jena: Daten und Fakten (Beispielkonfiguration)", lang="de")) in g
    for dist in g.objects(jena, DCAT.distribution):
        url = str(g.value(dist, DCAT.downloadURL))
        assert url.startswith(f"{BASE}jena/integration_statistics/1.0.0/")
        local = data / "published" / url.removeprefix(BASE)
        assert int(g.value(dist, DCAT.byteSize)) == local.stat().st_size
        digest = str(g.value(g.value(dist, Namespace("http://spdx.org/rdf/terms#").checksum),
                             Namespace("http://spdx.org/rdf/terms#").checksumValue))
        assert digest == hashlib.sha256(local.read_bytes()).hexdigest()


def test_catalog_comes_from_the_published_files_alone(both: tuple[Path, str, str],
                                                       tmp_path: Path) -> None:
    data, _, _ = both
    copy = tmp_path / "data"
    shutil.copytree(data / "published", copy / "published", symlinks=True)
    paths = Paths(copy)
    site.regenerate(_jena(), paths)
    by_jena = (copy / "published" / "catalog.ttl").read_bytes()
    site.regenerate(_eisenach(), paths)  # whichever configuration runs last: the same catalog
    assert (copy / "published" / "catalog.ttl").read_bytes() == by_jena
    assert by_jena == (data / "published" / "catalog.ttl").read_bytes()
    assert (copy / "published" / "index.html").read_bytes() == \
        (data / "published" / "index.html").read_bytes()


def test_release_without_recorded_metadata(both: tuple[Path, str, str], tmp_path: Path) -> None:
    """A release made before datapackage.json recorded the catalog metadata (an old data dir)."""
    data, _, _ = both
    copy = tmp_path / "data"
    shutil.copytree(data / "published", copy / "published", symlinks=True)
    for pkg in ("integration_measures", "integration_statistics"):
        desc = copy / "published" / pkg / "1.0.0" / "datapackage.json"
        os.chmod(desc, 0o644)
        doc = json.loads(desc.read_text(encoding="utf-8"))
        del doc["catalog"]
        desc.write_text(json.dumps(doc), encoding="utf-8")
    paths = Paths(copy)
    site.regenerate(_eisenach(), paths)  # its own configuration knows the metadata
    g = _graph(copy)
    eisenach = URIRef(f"{BASE}integration_statistics/#dataset")
    assert str(g.value(g.value(eisenach, DCTERMS.publisher), FOAF.name)) == "Stadt Eisenach"
    assert len(set(g.objects(None, DCAT.dataset))) == 3
    site.regenerate(_jena(), paths)  # another one does not: left out, never half-described
    g = _graph(copy)
    assert sorted(str(o) for o in g.objects(None, DCAT.dataset)) == [
        f"{BASE}jena/integration_statistics/#dataset"]
    index = (copy / "published" / "index.html").read_text(encoding="utf-8")
    assert 'href="integration_statistics/index.html"' in index  # still on the page
    assert "<h3></h3>" not in index


def test_catalog_passes_the_govdata_shacl_check(both: tuple[Path, str, str], shared: Path) -> None:
    data, _, _ = both
    kit = shared / "dcat-ap-de"
    if not (kit / "validate_dcat.py").is_file():
        pytest.skip(f"{kit} has no validate_dcat.py: the offline DCAT-AP.de kit is absent")
    sys.path.insert(0, str(kit))
    import validate_dcat

    for name in ("catalog.ttl", "catalog.jsonld"):
        ok, results = validate_dcat.validate(str(data / "published" / name))
        violations = [f"{r['focus']} {r['path']}: {r['message']}" for r in results
                      if r["severity"] == "Violation"]
        assert ok and not violations, "\n".join(violations)


def test_landing_page_lists_both_and_says_what_is_missing(both: tuple[Path, str, str]) -> None:
    data, _, _ = both
    index = (data / "published" / "index.html").read_text(encoding="utf-8")
    for href in ("integration_measures/index.html", "integration_statistics/index.html",
                 "jena/integration_statistics/index.html"):
        assert f'href="{href}"' in index
    assert "<h3>Jena</h3>" in index and "<h3>Eisenach</h3>" in index
    assert index.count("Maßnahmen: noch nicht erfasst") == 1  # Jena's, not Eisenach's
    assert index.index("<h3>Jena</h3>") < index.index("Maßnahmen: noch nicht erfasst")
    page = (data / "published" / "jena" / "integration_statistics" / "index.html").read_text(
        encoding="utf-8")
    assert 'href="../../index.html"' in page and "Stadt Jena (Beispielkonfiguration)" in page
    assert f"{BASE}jena/integration_statistics/1.0.0/" in page  # how to cite / load


def test_status_per_configuration(both: tuple[Path, str, str]) -> None:
    data, _, _ = both
    jena = opendata("--config", str(JENA), "status", "--json", "--data-dir", str(data))
    doc = json.loads(jena.stdout)
    assert [p["package"] for p in doc["packages"]] == ["integration_statistics"]
    assert doc["packages"][0]["latest_version"] == "1.0.0"
    assert doc["last_success"]["command"] == "run" and doc["last_failure"] is None
    eisenach = json.loads(opendata("status", "--json", "--data-dir", str(data)).stdout)
    assert [p["package"] for p in eisenach["packages"]] == ["integration_measures",
                                                             "integration_statistics"]
    verify = opendata("verify", "--config", str(JENA), "--data-dir", str(data))
    assert verify.returncode == 0 and "integration_statistics: ok" in verify.stdout


# --- a real browser on the data dir holding both ------------------------------------------------


@pytest.fixture(scope="module")
def server(both: tuple[Path, str, str]) -> Iterator[str]:
    """The published folder served by http.server on 127.0.0.1."""
    with serve_folder(both[0] / "published") as url:
        yield url


@pytest.mark.browser
def test_pages_of_both_in_chromium(both: tuple[Path, str, str], server: str) -> None:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    data, _, _ = both
    published = data / "published"
    pages = [published / "index.html", *sorted(published.glob("*/index.html")),
             *sorted(published.glob("*/*/index.html"))]
    assert published / "jena" / "integration_statistics" / "index.html" in pages
    links: set[str] = set()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        for page_file in pages:
            rel = page_file.relative_to(published).as_posix()
            page = browser.new_page()
            errors: list[str] = []
            outside: list[str] = []
            page.on("console", lambda m, e=errors: e.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc, e=errors: e.append(str(exc)))
            page.on("request", lambda r, o=outside: None if r.url.startswith(server)
                    else o.append(r.url))
            response = page.goto(server + rel)
            assert response is not None and response.status == 200, rel
            assert not errors and not outside, (rel, errors, outside)
            for svg in page.locator("svg").all():
                box = svg.bounding_box()
                assert box and box["width"] > 0 and box["height"] > 0, rel
            links |= set(page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)"))
            page.close()
        browser.close()
    assert f"{server}jena/integration_statistics/index.html" in links
    assert f"{server}index.html" in links  # the way back from Jena's page
    for url in sorted(links):
        assert url.startswith(server), url
        with urllib.request.urlopen(url) as resp:  # noqa: S310 (127.0.0.1)
            assert resp.status == 200, url
