"""DCAT-AP.de catalog built from a real published tree: content, versions, base URL, SHACL kit."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest
from rdflib import Graph, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF

from opendata import catalog, config, pipeline, site
from opendata.config import Config
from opendata.paths import CONFIG_FILE, REPO_ROOT, Paths

SPDX = Namespace("http://spdx.org/rdf/terms#")
DCAT3 = Namespace(str(DCAT))
LICENSE = URIRef("http://dcat-ap.de/def/licenses/dl-by-de/2.0")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Paths]:
    """Both packages published once, then integration_measures a second time.

    The second release comes from a copy of the registry whose measure table lacks its last
    row (a test edit in a temporary folder: the measure is then kept with removed = true).
    """
    tmp = tmp_path_factory.mktemp("catalog")
    shutil.copytree(REPO_ROOT / "data" / "raw", tmp / "data" / "raw")
    shutil.copytree(CONFIG_FILE.parent, tmp / "config")
    cfg = config.load(tmp / "config" / CONFIG_FILE.name)
    paths = Paths(tmp / "data")
    pipeline.fetch_all(cfg, paths, online=False)
    pipeline.publish_all(cfg, paths)
    table = tmp / "config" / "city" / "massnahmen.csv"
    lines = table.read_text(encoding="utf-8").splitlines()
    table.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    pipeline.fetch_all(cfg, paths, online=False)
    pipeline.publish_all(cfg, paths, packages=["integration_measures"])
    return cfg, paths


def _graph(paths: Paths, name: str = "catalog.ttl") -> Graph:
    fmt = "json-ld" if name.endswith(".jsonld") else "turtle"
    return Graph().parse(paths.published / name, format=fmt)


def _main_datasets(g: Graph) -> list[URIRef]:
    return sorted(o for o in g.objects(None, DCAT.dataset) if isinstance(o, URIRef))


def test_one_dataset_per_published_package(tree: tuple[Config, Paths]) -> None:
    cfg, paths = tree
    g = _graph(paths)
    base = cfg.catalog["base_url"]
    assert _main_datasets(g) == [URIRef(f"{base}{p}/#dataset") for p in sorted(cfg.packages)]
    for ds in _main_datasets(g):
        assert (ds, RDF.type, DCAT.Dataset) in g
        assert {lit.language for lit in g.objects(ds, DCTERMS.title)} == {"de", "en"}


def test_every_distribution_has_licence_checksum_and_size(tree: tuple[Config, Paths]) -> None:
    cfg, paths = tree
    g = _graph(paths)
    dists = list(g.subjects(RDF.type, DCAT.Distribution))
    assert len(dists) > 10
    for d in dists:
        assert (d, DCTERMS.license, LICENSE) in g
        url = str(g.value(d, DCAT.downloadURL))
        rel = url.removeprefix(cfg.catalog["base_url"])
        local = paths.published / rel
        assert int(g.value(d, DCAT.byteSize)) == local.stat().st_size, rel
        ck = g.value(d, SPDX.checksum)
        assert g.value(ck, SPDX.algorithm) == SPDX.checksumAlgorithm_sha256
        assert str(g.value(ck, SPDX.checksumValue)) == hashlib.sha256(local.read_bytes()).hexdigest()


def test_resource_distributions_conform_to_published_schema(tree: tuple[Config, Paths]) -> None:
    cfg, paths = tree
    g = _graph(paths)
    csvs = [d for d in g.subjects(RDF.type, DCAT.Distribution)
            if str(g.value(d, DCAT.downloadURL)).endswith(".csv")]
    assert csvs
    for d in csvs:
        schema = str(g.value(d, DCTERMS.conformsTo))
        assert schema.endswith(".schema.json")
        assert (paths.published / schema.removeprefix(cfg.catalog["base_url"])).is_file()


def test_versions_and_earlier_releases(tree: tuple[Config, Paths]) -> None:
    cfg, paths = tree
    g = _graph(paths)
    ds = URIRef(f"{cfg.catalog['base_url']}integration_measures/#dataset")
    index = json.loads((paths.package_dir("integration_measures") / "versions.json").read_text())
    versions = [v["version"] for v in index["versions"]]
    assert len(versions) == 2
    assert str(g.value(ds, DCAT3["version"])) == versions[0]
    previous = g.value(ds, DCAT3["previousVersion"])
    assert str(g.value(previous, DCAT3["version"])) == versions[1]
    assert (ds, DCAT3["hasVersion"], previous) in g
    assert "measures" in str(g.value(ds, Namespace("http://www.w3.org/ns/adms#").versionNotes))


def test_temporal_from_the_data(tree: tuple[Config, Paths]) -> None:
    cfg, paths = tree
    g = _graph(paths)
    ds = URIRef(f"{cfg.catalog['base_url']}integration_statistics/#dataset")
    period = g.value(ds, DCTERMS.temporal)
    start, end = str(g.value(period, DCAT.startDate)), str(g.value(period, DCAT.endDate))
    pub = site.read_package(cfg, paths.package_dir("integration_statistics"))
    assert pub is not None
    dates = [r["reference_date"] for r in site.read_rows(paths, pub, "population") or []]
    assert start <= min(dates) and end >= max(dates)


def test_base_url_override_applies_to_every_link(tree: tuple[Config, Paths]) -> None:
    cfg, paths = tree
    other = dataclasses.replace(cfg, catalog={**cfg.catalog, "base_url": "https://example.org/od/"})
    g = catalog.build_graph(other, paths, site.published_packages(other, paths))
    urls = [str(o) for o in g.objects(None, DCAT.downloadURL)]
    assert urls and all(u.startswith("https://example.org/od/") for u in urls)
    assert "opendata.example.org" not in g.serialize(format="turtle")


def test_no_contributor_id_unless_configured(tree: tuple[Config, Paths]) -> None:
    cfg, paths = tree
    dcatde = Namespace("http://dcat-ap.de/def/dcatde/")
    assert not list(_graph(paths).objects(None, dcatde.contributorID))
    cid = "http://dcat-ap.de/def/contributors/stadtFrankfurtAmMain"  # a real id from the list
    other = dataclasses.replace(cfg, catalog={**cfg.catalog, "contributor_id": cid})
    g = catalog.build_graph(other, paths, site.published_packages(other, paths))
    assert set(g.objects(None, dcatde.contributorID)) == {URIRef(cid)}


def test_jsonld_has_inline_context_and_same_graph(tree: tuple[Config, Paths]) -> None:
    _, paths = tree
    data = json.loads((paths.published / "catalog.jsonld").read_text(encoding="utf-8"))
    assert isinstance(data["@context"], dict)
    assert _graph(paths, "catalog.jsonld").isomorphic(_graph(paths))


def test_catalog_output_is_deterministic(tree: tuple[Config, Paths]) -> None:
    cfg, paths = tree
    before = (paths.published / "catalog.ttl").read_bytes()
    site.regenerate(cfg, paths)
    assert (paths.published / "catalog.ttl").read_bytes() == before


def _kit(shared: Path) -> object:
    kit = shared / "dcat-ap-de"
    if not (kit / "validate_dcat.py").is_file():
        pytest.skip(f"{kit} has no validate_dcat.py: the offline DCAT-AP.de kit is absent")
    sys.path.insert(0, str(kit))
    import validate_dcat

    return validate_dcat


def _violations(results: list[dict[str, str]]) -> list[str]:
    return [f"{r['focus']} {r['path']}: {r['message']}" for r in results
            if r["severity"] == "Violation"]


def test_catalog_is_accepted_by_govdata_profile(tree: tuple[Config, Paths], shared: Path) -> None:
    _, paths = tree
    kit = _kit(shared)
    for name in ("catalog.ttl", "catalog.jsonld"):
        ok, results = kit.validate(str(paths.published / name))  # type: ignore[attr-defined]
        assert ok and not _violations(results), "\n".join(_violations(results))


def test_catalog_without_licence_fails_the_check(tree: tuple[Config, Paths], shared: Path) -> None:
    _, paths = tree
    kit = _kit(shared)
    g = _graph(paths)
    g.remove((None, DCTERMS.license, None))
    ok, results = kit.validate(g)  # type: ignore[attr-defined]
    assert not ok
    assert any("license" in r["path"] for r in results if r["severity"] == "Violation")
