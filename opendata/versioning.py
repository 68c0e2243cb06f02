"""Semantic versions from diffs: compare a candidate with the latest release by primary key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from opendata.frames import release_memory
from opendata.tables import primary_key

BUMPS = ("major", "minor", "patch")
VOLATILE_KEYS = ("version", "created", "hash", "bytes")  # differ by design, not a change


@dataclass
class ResourceChanges:
    """What changed in one resource."""

    added: list[list[str]] = field(default_factory=list)
    removed: list[list[str]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)  # key, field, old, new
    schema: list[str] = field(default_factory=list)
    status: str = "same"  # same | new | removed | changed
    old_rows: int = 0  # rows of the resource in the previous release

    @property
    def retired(self) -> int:
        """Rows removed, plus rows newly marked ``removed = true`` (kept rows of gone records)."""
        flagged = sum(1 for c in self.changed if c["field"] == "removed"
                      and str(c["new"]).lower() == "true")
        return len(self.removed) + flagged

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"status": self.status, "schema_changes": self.schema,
                "added_keys": self.added, "removed_keys": self.removed,
                "changed_cells": self.changed}


@dataclass
class Changes:
    """The diff of a candidate against the latest release."""

    resources: dict[str, ResourceChanges]
    bump: str | None
    metadata_changed: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (changes.json)."""
        return {"bump": self.bump, "metadata_changed": self.metadata_changed,
                "resources": {k: v.as_dict() for k, v in sorted(self.resources.items())}}


def _resources(release: Path) -> dict[str, dict[str, Any]]:
    dp = json.loads((release / "datapackage.json").read_text(encoding="utf-8"))
    return {r["name"]: r for r in dp["resources"]}


def _schema_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], str | None]:
    of = {f["name"]: f.get("type", "string") for f in old["fields"]}
    nf = {f["name"]: f for f in new["fields"]}
    notes: list[str] = []
    bump: str | None = None
    for name, typ in of.items():
        if name not in nf:
            notes.append(f"field '{name}' removed")
            bump = "major"
        elif nf[name].get("type", "string") != typ:
            notes.append(f"field '{name}' retyped {typ} -> {nf[name].get('type', 'string')}")
            bump = "major"
    for name, f in nf.items():
        if name not in of:
            required = f.get("constraints", {}).get("required", False)
            notes.append(f"field '{name}' added" + (" (required)" if required else ""))
            bump = "major" if required or bump == "major" else "minor"
    if primary_key(old) != primary_key(new):
        notes.append(f"primary key {primary_key(old)} -> {primary_key(new)}")
        bump = "major"
    if bump is None and old != new:
        notes.append("schema metadata changed")
        bump = "patch"
    return notes, bump


BLOCK_BYTES = 1 << 24  # bytes of a published CSV parsed at a time when diffing
_HASH_KEYS = ("opendata-diff-k1", "opendata-diff-k2")  # two 64-bit hashes: 128-bit keys
_ROW_KEY = "opendata-diff-rw"


def _header(path: Path) -> list[str]:
    return list(pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8",
                            nrows=0).columns)


def _batches(path: Path) -> Iterator[Any]:
    """A published CSV in record batches (pyarrow, block by block), every cell as its
    published text ('' for empty), never one Python object per cell."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    names = _header(path)
    with pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=BLOCK_BYTES),
                       parse_options=pcsv.ParseOptions(newlines_in_values=True),
                       convert_options=pcsv.ConvertOptions(
                           column_types=dict.fromkeys(names, pa.string()),
                           strings_can_be_null=False, quoted_strings_can_be_null=False)) as reader:
        yield from reader


class _Texts:
    """The text columns of one batch, each dictionary-encoded once (distinct texts and codes)."""

    def __init__(self, batch: Any) -> None:
        self.batch, self.rows = batch, batch.num_rows
        self.encoded: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def hashed(self, name: str, hash_key: str) -> np.ndarray:
        """64-bit hash of every cell of a column, computed once per distinct text ('' for a
        column the file lacks)."""
        import pyarrow.compute as pc

        if name not in self.batch.schema.names:
            empty = pd.util.hash_array(np.array([""], dtype=object), hash_key=hash_key)[0]
            return np.full(self.rows, empty, dtype=np.uint64)
        if name not in self.encoded:
            enc = pc.dictionary_encode(self.batch.column(name))
            self.encoded[name] = (enc.dictionary.to_numpy(zero_copy_only=False),
                                  enc.indices.to_numpy(zero_copy_only=False))
        texts, codes = self.encoded[name]
        return pd.util.hash_array(texts, hash_key=hash_key, categorize=False)[codes]

    def row_hash(self, columns: list[str], hash_key: str) -> np.ndarray:
        """One 64-bit hash of the given columns of every row, combined as pandas combines the
        columns of a frame."""
        out = np.full(self.rows, 0x345678, dtype=np.uint64)
        mult = np.uint64(1000003)
        for i, name in enumerate(columns):
            out = (out ^ self.hashed(name, hash_key)) * mult
            mult += np.uint64(82520 + 2 * (len(columns) - i - 1))
        return out + np.uint64(97531)


Hashes = dict[str, np.ndarray]
"""Per distinct key (the last row of a repeated key), sorted by key hash: k1, k2 (the 128-bit
key hash), row (64-bit hash of the common columns), pos (row number in the file)."""


def _hashes(path: Path, key: list[str], common: list[str]) -> Hashes:
    """Per row: 128-bit hash of the key, 64-bit hash of the common columns, row number; sorted
    by the key hash, only the last row of a repeated key (as when rows were collected in a dict).
    """
    k1s, k2s, rows = [], [], []
    for batch in _batches(path):
        texts = _Texts(batch)
        k1s.append(texts.row_hash(key, _HASH_KEYS[0]))
        k2s.append(texts.row_hash(key, _HASH_KEYS[1]))
        rows.append(texts.row_hash(common, _ROW_KEY) if common
                    else np.zeros(batch.num_rows, dtype=np.uint64))
    release_memory()  # the parsed blocks are gone: hand their heap back before the sort
    k1, k2 = _joined(k1s), _joined(k2s)
    order = _key_order(k1, k2)
    k1, k2 = k1[order], k2[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = (k1[1:] != k1[:-1]) | (k2[1:] != k2[:-1])
    keep = order[last]
    return {"k1": k1[last], "k2": k2[last], "row": _joined(rows)[keep], "pos": keep}


def _key_order(k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
    """Rows sorted by (k1, k2), rows of the same key in file order. A stable sort by k1 alone,
    then (k1, k2) only where k1 repeats (a repeated key or a 64-bit collision: rare): the same
    order as ``np.lexsort((k2, k1))`` at less than half its cost."""
    order = np.argsort(k1, kind="stable")
    same = k1[order[1:]] == k1[order[:-1]]
    if same.any():
        dup = np.zeros(len(order), dtype=bool)
        dup[1:] |= same
        dup[:-1] |= same
        slots = np.flatnonzero(dup)  # runs of equal k1, each in file order
        rows = order[slots]
        order[slots] = rows[np.lexsort((k2[rows], k1[rows]))]
    return order


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """The per-chunk arrays as one, the chunks freed as soon as they are copied."""
    out = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
    parts.clear()
    return out


def _join(old: Hashes, new: Hashes) -> tuple[np.ndarray, np.ndarray]:
    """For each new key, the index of the same key among the old ones (-1: none), and the
    matched flags of the old keys. Both sides are sorted by key: a binary search, no hash table."""
    at = np.searchsorted(old["k1"], new["k1"], side="left")
    inside = np.minimum(at, max(len(old["k1"]) - 1, 0))
    found = np.full(len(new["k1"]), -1, dtype=np.int64)
    if len(old["k1"]):
        hit = (at < len(old["k1"])) & (old["k1"][inside] == new["k1"])
        exact = hit & (old["k2"][inside] == new["k2"])
        found[exact] = at[exact]
        for i in np.flatnonzero(hit & ~exact):  # same k1, other k2: a 64-bit collision, rare
            j = int(at[i])
            while j < len(old["k1"]) and old["k1"][j] == new["k1"][i]:
                if old["k2"][j] == new["k2"][i]:
                    found[i] = j
                    break
                j += 1
    matched = np.zeros(len(old["k1"]), dtype=bool)
    matched[found[found >= 0]] = True
    return found, matched


def _rows_at(path: Path, positions: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """The rows at the sorted positions: the given columns named 0..n-1 by position (a column
    the file lacks is empty). Only these rows become Python objects."""
    import pyarrow as pa

    wanted = np.zeros(int(positions.max()) + 1 if len(positions) else 0, dtype=bool)
    wanted[positions] = True
    parts, start = [], 0
    for batch in _batches(path) if len(positions) else ():
        sel = np.zeros(batch.num_rows, dtype=bool)
        sel[:max(0, min(batch.num_rows, len(wanted) - start))] = wanted[start:start + batch.num_rows]
        start += batch.num_rows
        if sel.any():
            picked = batch.filter(pa.array(sel))
            parts.append(pd.DataFrame({i: picked.column(c).to_numpy(zero_copy_only=False)
                                       if c in picked.schema.names else
                                       np.full(picked.num_rows, "", dtype=object)
                                       for i, c in enumerate(columns)}))
        if start >= len(wanted):
            break
    if not parts:
        return pd.DataFrame({i: pd.Series([], dtype=object) for i in range(len(columns))})
    return pd.concat(parts).reset_index(drop=True)


def _sorted_keys(path: Path, positions: np.ndarray, key: list[str]) -> list[list[str]]:
    """The keys of the rows at the positions, in key order (tuple order of their texts)."""
    rows = _rows_at(path, np.sort(positions), key)
    if len(rows) and key:
        rows = rows.sort_values(by=list(range(len(key))), kind="mergesort")
    return [[str(v) for v in r] for r in rows.values.tolist()]


def _changed_cells(old: Path, new: Path, pairs: pd.DataFrame, key: list[str],
                   common: list[str]) -> list[dict[str, Any]]:
    """Cells that differ between rows with the same key: key order, then column order."""
    pairs = pairs.sort_values("pos_new")
    b = _rows_at(new, pairs["pos_new"].to_numpy(), [*key, *common])
    a = _rows_at(old, np.sort(pairs["pos_old"].to_numpy()), common)
    a.index = np.sort(pairs["pos_old"].to_numpy())
    a = a.loc[pairs["pos_old"].to_numpy()].reset_index(drop=True)  # aligned with b's rows
    nk = len(key)
    order = b.sort_values(by=list(range(nk)), kind="mergesort").index.to_numpy() if nk \
        else np.arange(len(b))
    a, b = a.iloc[order].reset_index(drop=True), b.iloc[order].reset_index(drop=True)
    found = []
    for ci in range(len(common)):
        nv, ov = b[nk + ci].to_numpy(dtype=object), a[ci].to_numpy(dtype=object)
        rows = np.flatnonzero(nv != ov)
        found.append(pd.DataFrame({"row": rows, "col": ci, "old": ov[rows], "new": nv[rows]}))
    cells = pd.concat(found, ignore_index=True).sort_values(["row", "col"], kind="mergesort")
    keys = b.iloc[cells["row"].to_numpy(), :nk].values.tolist()
    return [{"key": [str(v) for v in k], "field": common[c], "old": str(o), "new": str(n)}
            for k, c, o, n in zip(keys, cells["col"].tolist(), cells["old"].tolist(),
                                  cells["new"].tolist(), strict=True)]


def _data_changes(old: Path, new: Path, key: list[str], rc: ResourceChanges) -> str | None:
    """Added, removed and changed rows by primary key, from row hashes (no row held in memory).

    Two chunked passes per file: hash every row's key and content, join the hashes on the key,
    then read back only the rows that were added, removed or changed.
    """
    head_old, head_new = _header(old), _header(new)
    key_old, key_new = key or head_old, key or head_new
    common = [c for c in head_new if c in head_old]
    ha = _hashes(old, key_old, common)
    hb = _hashes(new, key_new, common)
    rc.old_rows = len(ha["k1"])
    found, matched = _join(ha, hb)
    added = hb["pos"][found < 0]
    removed = ha["pos"][~matched]
    both = np.flatnonzero(found >= 0)
    differ = both[ha["row"][found[both]] != hb["row"][both]]
    rc.added = _sorted_keys(new, added, key_new)
    rc.removed = _sorted_keys(old, removed, key_old)
    pairs = pd.DataFrame({"pos_old": ha["pos"][found[differ]].astype(np.int64),
                          "pos_new": hb["pos"][differ].astype(np.int64)})
    rc.changed = _changed_cells(old, new, pairs, key_new, common) if len(pairs) else []
    if rc.added or rc.removed:
        return "minor"
    return "patch" if rc.changed else None


def _max(*bumps: str | None) -> str | None:
    found = [b for b in bumps if b]
    return min(found, key=BUMPS.index) if found else None


def _strip(meta: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in meta.items() if k not in VOLATILE_KEYS and k != "resources"}
    out["resources"] = [{k: v for k, v in r.items() if k not in VOLATILE_KEYS}
                        for r in meta.get("resources", [])]
    return out


def diff(old: Path | None, new: Path) -> Changes:
    """Compare two release folders (old may be None for the first release)."""
    new_res = _resources(new)
    if old is None:
        res = {n: ResourceChanges(status="new") for n in new_res}
        return Changes(res, "major")
    old_res = _resources(old)
    result: dict[str, ResourceChanges] = {}
    bump: str | None = None
    for name in sorted(set(old_res) | set(new_res)):
        rc = ResourceChanges()
        if name not in new_res:
            rc.status, bump = "removed", _max(bump, "major")
        elif name not in old_res:
            rc.status, bump = "new", _max(bump, "minor")
        else:
            rc.schema, sb = _schema_changes(old_res[name]["schema"], new_res[name]["schema"])
            db = _data_changes(old / old_res[name]["path"], new / new_res[name]["path"],
                               primary_key(new_res[name]["schema"]), rc)
            rc.status = "changed" if (sb or db) else "same"
            bump = _max(bump, sb, db)
        result[name] = rc
    old_meta = json.loads((old / "datapackage.json").read_text(encoding="utf-8"))
    new_meta = json.loads((new / "datapackage.json").read_text(encoding="utf-8"))
    meta_changed = _strip(old_meta) != _strip(new_meta)
    if meta_changed:
        bump = _max(bump, "patch")
    return Changes(result, bump, meta_changed)


def mass_removals(changes: Changes, share: float) -> list[str]:
    """Resources of both releases that would lose more than ``share`` of their rows, as text."""
    out = []
    for name, rc in sorted(changes.resources.items()):
        if rc.old_rows and rc.retired / rc.old_rows > share:
            out.append(f"{name}: {rc.retired:,} of {rc.old_rows:,} rows removed "
                       f"({rc.retired / rc.old_rows:.0%})")
    return out


def next_version(current: str | None, bump: str) -> str:
    """Apply a bump to a semantic version; the first release is 1.0.0."""
    if current is None:
        return "1.0.0"
    major, minor, patch = (int(x) for x in current.split("."))
    if bump == "major":
        return f"{major + 1}.0.0"
    if bump == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def summary(changes: Changes) -> str:
    """One line for people, e.g. 'population: 12 rows added; 3 values revised'."""
    parts = []
    for name, rc in sorted(changes.resources.items()):
        if rc.status == "new":
            parts.append(f"{name}: new resource")
        elif rc.status == "removed":
            parts.append(f"{name}: resource removed")
        elif rc.status == "changed":
            bits = [f"{len(rc.added)} rows added"] if rc.added else []
            bits += [f"{len(rc.removed)} rows removed"] if rc.removed else []
            bits += [f"{len(rc.changed)} values revised"] if rc.changed else []
            bits += rc.schema
            parts.append(f"{name}: {', '.join(bits)}")
    if changes.metadata_changed:
        parts.append("metadata updated")
    return "; ".join(parts) or "no changes"
