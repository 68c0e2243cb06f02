"""Unchanged inputs are not built or validated again; code, schemas or data changes rebuild."""

from __future__ import annotations

import shutil
from pathlib import Path

from helpers import REPO, copy_config, copy_raw

from opendata import config, pipeline
from opendata.paths import SCHEMAS_DIR, Paths


def test_unchanged_inputs_skip_build_and_validation(tmp_path: Path) -> None:
    cfg, paths = config.load(), Paths(copy_raw(tmp_path / "data"))
    first = pipeline.publish_all(cfg, paths)
    assert {r.package for r in first.reports} == set(cfg.packages)
    again = pipeline.publish_all(cfg, paths)
    assert again.reports == []  # nothing was built or validated
    assert {o.summary for o in again.outcomes} == {"inputs unchanged"}
    assert all(not o.published and o.previous == "1.0.0" for o in again.outcomes)
    assert all(o.row_counts for o in again.outcomes)


def test_changed_city_table_rebuilds_only_its_package(tmp_path: Path) -> None:
    paths = Paths(copy_raw(tmp_path / "data"))
    cfg_path = copy_config(tmp_path / "config")
    pipeline.publish_all(config.load(cfg_path), paths)
    csv = cfg_path.parent / "city" / "massnahmen.csv"
    csv.write_text(csv.read_text(encoding="utf-8").replace("Frauenfrühstück", "Frauen-Frühstück", 1),
                   encoding="utf-8")
    cfg = config.load(cfg_path)
    for src in cfg.sources_for("integration_measures"):
        pipeline.fetch_source(src, cfg, paths, online=False)
    result = pipeline.publish_all(cfg, paths)
    assert [r.package for r in result.reports] == ["integration_measures"]
    by_pkg = {o.package: o for o in result.outcomes}
    assert by_pkg["integration_measures"].published
    assert by_pkg["integration_statistics"].summary == "inputs unchanged"


def test_code_and_schema_changes_invalidate_the_key(tmp_path: Path) -> None:
    cfg, paths = config.load(), Paths(copy_raw(tmp_path / "data"))
    code, schemas = tmp_path / "code", tmp_path / "schemas"
    shutil.copytree(REPO / "opendata", code)
    shutil.copytree(SCHEMAS_DIR, schemas)
    key = pipeline.input_key(cfg, paths, "integration_statistics", code_dir=code, schemas_dir=schemas)
    assert key == pipeline.input_key(cfg, paths, "integration_statistics")
    (code / "transform" / "tidy.py").write_text("# changed\n", encoding="utf-8")
    changed_code = pipeline.input_key(cfg, paths, "integration_statistics", code_dir=code,
                                      schemas_dir=schemas)
    assert changed_code != key
    shutil.rmtree(code)
    shutil.copytree(REPO / "opendata", code)
    schema = schemas / "integration_statistics" / "population.schema.json"
    schema.write_text(schema.read_text(encoding="utf-8").replace('"title"', '"title" ', 1),
                      encoding="utf-8")
    assert pipeline.input_key(cfg, paths, "integration_statistics", code_dir=code,
                              schemas_dir=schemas) != key


def test_site_is_repaired_by_a_run_that_publishes_nothing(tmp_path: Path) -> None:
    cfg, paths = config.load(), Paths(copy_raw(tmp_path / "data"))
    pipeline.publish_all(cfg, paths)
    catalog = paths.published / "catalog.ttl"
    assert catalog.is_file() and (paths.published / "index.html").is_file()
    catalog.unlink()  # as if the process died after publishing, before writing the site
    (paths.published / "index.html").unlink()
    again = pipeline.publish_all(cfg, paths)
    assert not any(o.published for o in again.outcomes)
    assert catalog.is_file() and (paths.published / "index.html").is_file()
    assert pipeline.ensure_site(cfg, paths) is False  # current: not written again
    cfg.catalog["base_url"] = "https://example.org/mirror/"
    assert pipeline.ensure_site(cfg, paths) is True
    assert "https://example.org/mirror/" in catalog.read_text(encoding="utf-8")
