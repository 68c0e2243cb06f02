"""Form parameters and base URLs of the genesis kind (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opendata.config import ApiConfig, Config, PackageConfig, SourceConfig
from opendata.sources import genesis


def source(**kw: object) -> SourceConfig:
    """A Regionalstatistik source with the given extra fields."""
    base = {"id": "pop", "kind": "genesis", "package": "p", "schema": "p/r", "license": "dl-de/by-2-0",
            "attribution": "Statistische Ämter", "api": "regionalstatistik", "table": "12411-01-01-4"}
    return SourceConfig(**{**base, **kw})  # type: ignore[arg-type]


def config() -> Config:
    """A config with the real Regionalstatistik base URL (never contacted here)."""
    api = ApiConfig("regionalstatistik", "https://www.regionalstatistik.de/genesisws/rest/2020/",
                    "REGIONALSTATISTIK")
    return Config(Path("t.toml"), [], {"p": PackageConfig("p", "statistics", {})},
                  {"regionalstatistik": api}, {}, {}, {})


def test_form_joins_lists_and_keeps_wildcards() -> None:
    src = source(params={"regionalvariable": "KREISE", "regionalkey": ["16056", "16063*", "16"],
                         "startyear": 2015, "endyear": 2024, "classifyingvariable1": "GES",
                         "classifyingkey1": ["GESM", "GESW"], "quality": True, "language": "en",
                         "password": "never-sent"})
    assert genesis.form_params(src) == {
        "name": "12411-01-01-4", "format": "ffcsv", "regionalvariable": "KREISE",
        "regionalkey": "16056,16063*,16", "startyear": "2015", "endyear": "2024",
        "classifyingvariable1": "GES", "classifyingkey1": "GESM,GESW", "quality": "true",
        "language": "en"}


def test_base_url_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENDATA_REGIONALSTATISTIK_BASE_URL", raising=False)
    assert genesis.base_url(source(), config()) == "https://www.regionalstatistik.de/genesisws/rest/2020/"
    mirror = source(options={"base_url": "http://127.0.0.1:8080/mirror"})
    assert genesis.base_url(mirror, config()) == "http://127.0.0.1:8080/mirror/"
    monkeypatch.setenv("OPENDATA_REGIONALSTATISTIK_BASE_URL", "http://127.0.0.1:9999/r/")
    assert genesis.base_url(mirror, config()) == "http://127.0.0.1:9999/r/"
