"""Eisenach is one configuration, not the code (issue 13): the region registry, [municipality],
derived request selections, computed coverage notes, and no municipality named in the code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from helpers import REPO, copy_config

from opendata import config as config_mod
from opendata import places
from opendata.errors import ConfigError
from opendata.municipality import resolve

NAMES = re.compile(r"Eisenach|16056|16063")


def _docstring_lines(path: Path) -> set[int]:
    """Line numbers covered by docstrings (module, class, function) of a Python file."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                lines |= set(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
    return lines


def test_no_municipality_is_named_in_the_code_but_in_docstring_examples() -> None:
    hits = []
    for path in sorted([*(REPO / "opendata").rglob("*.py"), *(REPO / "flows").rglob("*.py")]):
        allowed = _docstring_lines(path)
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if NAMES.search(line) and no not in allowed:
                hits.append(f"{path.relative_to(REPO)}:{no}: {line.strip()}")
    assert hits == []


def test_the_default_config_derives_its_selections_from_the_municipality() -> None:
    cfg = config_mod.load()
    town = cfg.municipality
    assert town is not None
    assert (town.ags, town.ars, town.kreis, town.land, town.former) == (
        "16063105", "160630105105", "16063", "16", ("16056",))
    # exactly the selections the sources had before they were derived
    want = {"population_kreise": ["16056", "16063"], "protection_seekers": ["16056", "16063"],
            "employees_nationality": ["DG", "16", "16056", "16063"],
            "census_immigration_history": ["DG", "16"],
            "census_population": ["DG", "160630105105"]}
    got = {s.id: s.params["regionalkey"] for s in cfg.sources if s.id in want}
    assert got == want


@pytest.mark.parametrize(("key", "ags", "ars", "kreis"), [
    ("16053000", "16053000", "160530000000", "16053"),   # Jena by its AGS
    ("16053", "16053000", "160530000000", "16053"),      # ... by its Kreis key (kreisfreie Stadt)
    ("160530000000", "16053000", "160530000000", "16053"),  # ... by its ARS
])
def test_any_municipality_resolves_from_the_registry(key: str, ags: str, ars: str,
                                                     kreis: str) -> None:
    town = resolve(key)
    assert (town.ags, town.ars, town.kreis, town.land, town.former) == (ags, ars, kreis, "16", ())
    assert town.selection(["country", "state", "district"]) == ["DG", "16", kreis]
    assert town.selection(["country", "municipality"], "ars") == ["DG", ars]


def test_unknown_key_and_missing_publisher_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="99999999.*not in the region registry"):
        resolve("99999999")
    cfg = copy_config(tmp_path / "c")
    text = cfg.read_text(encoding="utf-8")
    cfg.write_text(re.sub(r'(?m)^publisher_name = .*$', "", text), encoding="utf-8")
    with pytest.raises(ConfigError, match="publisher_name"):
        config_mod.load(cfg)
    cfg.write_text(text.replace('key = "16063105"', 'key = "12345678"'), encoding="utf-8")
    with pytest.raises(ConfigError, match="12345678"):
        config_mod.load(cfg)


def test_registry_closure_and_breaks_come_from_data() -> None:
    reg = places.load()
    assert len(reg.regions) > 11_000  # Germany, Länder, Kreise, every Zensus municipality
    assert set(reg.closure(["160630105105"])) == {"16", "16056", "16063", "16063105",
                                                  "160630105105", "DG"}
    breaks = reg.breaks(["16056", "16063", "16063105"])
    assert list(breaks["change"]) == ["dissolved", "territory_enlarged", "new_key"]
    assert all(s for s in reg.changes["source"])  # every territorial change names its source
    assert reg.breaks(["16053"]).empty  # Jena: no territorial change recorded
