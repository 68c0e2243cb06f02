"""Semantic versions from diffs: every bump kind, on crafted release folders and on real publishes."""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers import REPO, copy_config, copy_raw, opendata, tree_hashes

from opendata import config as config_mod
from opendata import pipeline, store, versioning
from opendata.paths import Paths
from opendata.versioning import ResourceChanges, diff, next_version, summary

PKG = "integration_measures"

# --- crafted release folders: schema changes cannot be made with the repo's schemas/ -----------

FIELDS = [{"name": "id", "type": "string"}, {"name": "year", "type": "integer"},
          {"name": "value", "type": "number"}]
ROWS = [["a", "2020", "1.5"], ["b", "2021", "2"]]


def _schema(fields: list[dict[str, Any]] | None = None, pk: list[str] | None = None) -> dict[str, Any]:
    return {"fields": fields if fields is not None else [dict(f) for f in FIELDS],
            "primaryKey": pk if pk is not None else ["id"]}


def release(root: Path, resources: dict[str, tuple[dict[str, Any], list[list[str]]]],
            title: str = "Example package (test)") -> Path:
    """A minimal release folder: datapackage.json + data/<name>.csv per resource."""
    (root / "data").mkdir(parents=True)
    res = []
    for name, (schema, rows) in resources.items():
        with (root / "data" / f"{name}.csv").open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow([f["name"] for f in schema["fields"]])
            w.writerows(rows)
        res.append({"name": name, "path": f"data/{name}.csv", "schema": schema})
    dp = {"name": "example", "title": title, "version": "0.0.0", "created": "", "resources": res}
    (root / "datapackage.json").write_text(json.dumps(dp), encoding="utf-8")
    return root


@pytest.fixture
def old(tmp_path: Path) -> Path:
    return release(tmp_path / "old", {"t": (_schema(), ROWS)})


def _new(tmp_path: Path, schema: dict[str, Any] | None = None, rows: list[list[str]] | None = None,
         extra: dict[str, Any] | None = None, title: str = "Example package (test)") -> Path:
    res = {"t": (schema or _schema(), rows if rows is not None else ROWS)}
    return release(tmp_path / "new", res | (extra or {}), title)


def test_identical_is_no_change(old: Path, tmp_path: Path) -> None:
    changes = diff(old, _new(tmp_path))
    assert changes.bump is None and summary(changes) == "no changes"


@pytest.mark.parametrize("mutate, note", [
    (lambda s: s["fields"].pop(2), "field 'value' removed"),
    (lambda s: s["fields"][1].update(type="string"), "field 'year' retyped integer -> string"),
    (lambda s: s["fields"][2].update(name="amount"), "field 'value' removed"),  # a rename
    (lambda s: s.update(primaryKey=["id", "year"]), "primary key ['id'] -> ['id', 'year']"),
    (lambda s: s["fields"].append({"name": "x", "type": "string", "constraints": {"required": True}}),
     "field 'x' added (required)"),
])
def test_breaking_schema_change_is_major(old: Path, tmp_path: Path, mutate: Any, note: str) -> None:
    schema = _schema()
    mutate(schema)
    names = [f["name"] for f in schema["fields"]]
    rows = [r[:len(names)] + [""] * (len(names) - len(r)) for r in ROWS]
    changes = diff(old, _new(tmp_path, schema, rows))
    assert changes.bump == "major"
    assert note in changes.resources["t"].schema


def test_resource_removed_is_major(tmp_path: Path) -> None:
    old = release(tmp_path / "old", {"t": (_schema(), ROWS), "u": (_schema(), ROWS)})
    changes = diff(old, _new(tmp_path))
    assert changes.bump == "major" and changes.resources["u"].status == "removed"


def test_new_rows_are_minor(old: Path, tmp_path: Path) -> None:
    changes = diff(old, _new(tmp_path, rows=[*ROWS, ["c", "2022", "3"]]))
    assert changes.bump == "minor" and changes.resources["t"].added == [["c"]]
    assert next_version("1.4.2", "minor") == "1.5.0"


def test_new_resource_is_minor(old: Path, tmp_path: Path) -> None:
    changes = diff(old, _new(tmp_path, extra={"u": (_schema(), ROWS)}))
    assert changes.bump == "minor" and changes.resources["u"].status == "new"


def test_new_optional_field_is_minor(old: Path, tmp_path: Path) -> None:
    schema = _schema([*FIELDS, {"name": "note", "type": "string"}])
    changes = diff(old, _new(tmp_path, schema, [[*r, ""] for r in ROWS]))
    assert changes.bump == "minor" and "field 'note' added" in changes.resources["t"].schema


def test_corrected_value_is_patch(old: Path, tmp_path: Path) -> None:
    changes = diff(old, _new(tmp_path, rows=[ROWS[0], ["b", "2021", "2.5"]]))
    assert changes.bump == "patch"
    assert changes.resources["t"].changed == [{"key": ["b"], "field": "value", "old": "2", "new": "2.5"}]
    assert "1 values revised" in summary(changes)
    assert next_version("1.4.2", "patch") == "1.4.3" and next_version("1.4.2", "major") == "2.0.0"


def test_metadata_only_is_patch(old: Path, tmp_path: Path) -> None:
    changes = diff(old, _new(tmp_path, title="Example package (test), new title"))
    assert changes.bump == "patch" and changes.metadata_changed
    assert all(rc.status == "same" for rc in changes.resources.values())


def test_first_release_is_1_0_0(tmp_path: Path) -> None:
    changes = diff(None, _new(tmp_path))
    assert changes.bump == "major" and next_version(None, "major") == "1.0.0"


# --- real publishes on a temp data dir with an edited copy of config/ ---------------------------

@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with integration_measures 1.0.0 published from an unmodified config copy."""
    root = tmp_path_factory.mktemp("ver")
    cfg_path = copy_config(root / "config")
    data = copy_raw(root / "data")
    cfg, paths = config_mod.load(cfg_path), Paths(data)
    pipeline.fetch_all(cfg, paths, online=False)
    result = pipeline.publish_all(cfg, paths, packages=[PKG])
    assert [o.version for o in result.outcomes] == ["1.0.0"]
    return root


def _edit_measures(cfg_path: Path, edit: Any) -> None:
    path = cfg_path.parent / "city" / "massnahmen.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    edit(rows)
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def _republish(base: Path, tmp_path: Path, edit: Any = None, toml_edit: Any = None) -> Any:
    shutil.copytree(base, tmp_path / "w", symlinks=True)
    cfg_path = tmp_path / "w" / "config" / "opendata.toml"
    if edit:
        _edit_measures(cfg_path, edit)
    if toml_edit:
        cfg_path.write_text(toml_edit(cfg_path.read_text(encoding="utf-8")), encoding="utf-8")
    cfg, paths = config_mod.load(cfg_path), Paths(tmp_path / "w" / "data")
    pipeline.fetch_all(cfg, paths, online=False)
    return pipeline.publish_all(cfg, paths, packages=[PKG]).outcomes[0], paths.package_dir(PKG)


def test_publish_new_row_is_minor(base: Path, tmp_path: Path) -> None:
    def add(rows: list[list[str]]) -> None:
        rows.append(["T01", "", "Testmaßnahme (Beispiel, nur im Test)"] + [""] * (len(rows[0]) - 3))

    outcome, pkg_dir = _republish(base, tmp_path, add)
    assert outcome.published and outcome.version == "1.1.0" and outcome.previous == "1.0.0"
    changes = json.loads((pkg_dir / "1.1.0" / "changes.json").read_text())
    assert changes["bump"] == "minor"
    assert ["T01"] in changes["resources"]["measures"]["added_keys"]
    assert store.latest_version(pkg_dir) == "1.1.0"
    assert "1.1.0" in (pkg_dir / "1.1.0" / "CHANGELOG.md").read_text()


def test_publish_corrected_value_is_patch(base: Path, tmp_path: Path) -> None:
    def fix(rows: list[list[str]]) -> None:
        rows[1][rows[0].index("titel")] += " (korrigiert, Beispiel im Test)"

    outcome, pkg_dir = _republish(base, tmp_path, fix)
    assert outcome.version == "1.0.1"
    cells = json.loads((pkg_dir / "1.0.1" / "changes.json").read_text())["resources"]["measures"]
    assert cells["changed_cells"][0]["key"] == ["A01"] and cells["changed_cells"][0]["field"] == "title"
    assert cells["changed_cells"][0]["new"].endswith("(korrigiert, Beispiel im Test)")


def test_publish_metadata_only_is_patch(base: Path, tmp_path: Path) -> None:
    outcome, pkg_dir = _republish(base, tmp_path, toml_edit=lambda t: t.replace(
        'keywords = ["Integration", "Integrationskonzept"', 'keywords = ["Integration", "Test"', 1))
    assert outcome.version == "1.0.1" and "metadata updated" in outcome.summary
    assert json.loads((pkg_dir / "1.0.1" / "changes.json").read_text())["metadata_changed"] is True


def test_publish_identical_is_no_release(base: Path, tmp_path: Path) -> None:
    outcome, pkg_dir = _republish(base, tmp_path, toml_edit=lambda t: t + "\n# a comment only\n")
    assert not outcome.published and outcome.version is None
    assert store.release_dirs(pkg_dir) == ["1.0.0"]


def test_dry_run_prints_version_and_writes_nothing(base: Path, tmp_path: Path) -> None:
    shutil.copytree(base, tmp_path / "w", symlinks=True)
    cfg_path, data = tmp_path / "w" / "config" / "opendata.toml", tmp_path / "w" / "data"
    _edit_measures(cfg_path, lambda rows: rows.pop())  # the last measure withdrawn: rows removed
    assert opendata("fetch", "--data-dir", str(data), "--config", str(cfg_path)).returncode == 0
    before = tree_hashes(data)
    res = opendata("publish", "--dry-run", "--data-dir", str(data), "--config", str(cfg_path))
    assert res.returncode == 0, res.stderr[-2000:]
    line = next(json.loads(x) for x in res.stdout.splitlines() if f'"{PKG}"' in x)
    assert line["would_release"] == "1.1.0" and line["previous"] == "1.0.0"
    assert "measures:" in line["summary"]
    after = tree_hashes(data)
    assert {k: v for k, v in after.items() if not k.startswith("state/")} == \
        {k: v for k, v in before.items() if not k.startswith("state/")}
    assert not any(p.name.startswith(".staging-") for p in (data / "published" / PKG).iterdir())
    assert not [p for p in (data / "state" / "tmp").glob("*") if "staging" in p.name]  # discarded


# --- the columnar diff against the dict-of-rows diff it replaced (kept here as the reference) -----

def _ref_rows(path: Path, key: list[str]) -> dict[tuple[str, ...], dict[str, str]]:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    cols = key or list(frame.columns)
    return {tuple(r[c] for c in cols): r for r in frame.to_dict("records")}


def _ref_data_changes(old: Path, new: Path, key: list[str], rc: ResourceChanges) -> str | None:
    a, b = _ref_rows(old, key), _ref_rows(new, key)
    rc.added = [list(k) for k in sorted(set(b) - set(a))]
    rc.removed = [list(k) for k in sorted(set(a) - set(b))]
    for k in sorted(set(a) & set(b)):
        for col, val in b[k].items():
            if col in a[k] and a[k][col] != val:
                rc.changed.append({"key": list(k), "field": col, "old": a[k][col], "new": val})
    if rc.added or rc.removed:
        return "minor"
    return "patch" if rc.changed else None


VALUES = ["BEISPIEL", "", "Komma, Text", 'Zitat "x"', "Zeile\nzwei", "ä", "Ä", "z", "10", "9", "-0",
          "1e20", " ", "a"]


def _random_table(rng: random.Random, names: list[str], n: int) -> list[list[str]]:
    return [[f"id{rng.randrange(n * 2):03d}" if c == "id" else rng.choice(VALUES) for c in names]
            for _ in range(n)]


def _write_csv(path: Path, names: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(names)
        w.writerows(rows)
    return path


@pytest.mark.parametrize("seed", range(40))
def test_columnar_diff_equals_reference(seed: int, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Random example tables (duplicate keys, reordered/added/dropped columns, no key, hostile
    text), parsed in blocks of 512 bytes: the same added, removed and changed cells, in the same
    order."""
    monkeypatch.setattr(versioning, "BLOCK_BYTES", 512)
    rng = random.Random(seed)
    old_names = ["id", "year", "value", "note"]
    new_names = rng.choice([old_names, ["year", "id", "note", "value"], [*old_names, "extra"],
                            ["id", "year", "value"], ["note", "value", "year", "id"]])
    key = rng.choice([["id"], ["id", "year"], ["year", "id"], [], ["value"]])
    old_rows = _random_table(rng, old_names, rng.randrange(0, 25))
    by_name = [dict(zip(old_names, r, strict=True)) for r in old_rows]
    new_rows = []
    for r in by_name:
        if rng.random() < 0.15:
            continue  # removed
        if rng.random() < 0.3:
            r = {**r, rng.choice(old_names[1:]): rng.choice(VALUES)}  # revised cell
        new_rows.append([r.get(c, rng.choice(VALUES)) for c in new_names])
    new_rows += _random_table(rng, new_names, rng.randrange(0, 6))  # added (maybe duplicate keys)
    rng.shuffle(new_rows)
    a = _write_csv(tmp_path / "old.csv", old_names, old_rows)
    b = _write_csv(tmp_path / "new.csv", new_names, new_rows)
    want, got = ResourceChanges(), ResourceChanges()
    assert versioning._data_changes(a, b, key, got) == _ref_data_changes(a, b, key, want)
    assert got.as_dict() == want.as_dict()


def test_columnar_diff_on_real_release_against_edited_copy(tmp_path: Path) -> None:
    """A published-style CSV with a revised, an added and a removed row, in chunks."""
    src = REPO / "tests" / "golden" / "integration_statistics" / "data" / "protection_seekers.csv"
    frame = pd.read_csv(src, dtype=str, keep_default_na=False)
    edited = frame.drop(index=[3, 40]).copy()
    edited.loc[5, "value"] = "12345"
    edited = pd.concat([edited, frame.iloc[[7]].assign(indicator="BEISPIEL")])
    edited.to_csv(tmp_path / "new.csv", index=False, lineterminator="\n")
    key = ["region_key", "reference_date", "protection_status_code", "sex_code", "citizenship_code",
           "indicator"]
    want, got = ResourceChanges(), ResourceChanges()
    assert versioning._data_changes(src, tmp_path / "new.csv", key, got) == "minor"
    _ref_data_changes(src, tmp_path / "new.csv", key, want)
    assert got.as_dict() == want.as_dict()
    assert len(got.added) == 1 and len(got.removed) == 2 and len(got.changed) == 1


def test_join_of_key_hashes_handles_a_64_bit_collision() -> None:
    """Keys are matched on both 64-bit halves: the same k1 with another k2 is another key."""
    import numpy as np

    from opendata.versioning import _join

    u = np.uint64
    old = {"k1": np.array([1, 5, 5, 9], dtype=u), "k2": np.array([7, 1, 3, 2], dtype=u)}
    new = {"k1": np.array([5, 5, 8, 9], dtype=u), "k2": np.array([3, 4, 1, 2], dtype=u)}
    found, matched = _join(old, new)
    assert found.tolist() == [2, -1, -1, 3]  # (5,3) is old[2], not old[1]; (5,4) and (8,1) new
    assert matched.tolist() == [False, False, True, True]
    empty = {"k1": np.zeros(0, dtype=u), "k2": np.zeros(0, dtype=u)}
    assert _join(empty, new)[0].tolist() == [-1] * 4 and len(_join(new, empty)[0]) == 0


def test_key_order_equals_lexsort() -> None:
    """The cheaper key order is the stable (k1, k2) order, also with repeated keys and
    64-bit collisions (same k1, other k2)."""
    import numpy as np

    from opendata.versioning import _key_order

    rng = np.random.default_rng(3)
    for n in (0, 1, 2, 50, 2_000):
        k1 = rng.integers(0, 6 if n > 40 else 3, n).astype(np.uint64)  # many repeats of k1
        k2 = rng.integers(0, 3, n).astype(np.uint64)
        assert _key_order(k1, k2).tolist() == np.lexsort((k2, k1)).tolist()
        k1 = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)  # distinct
        assert _key_order(k1, k2).tolist() == np.lexsort((k2, k1)).tolist()
