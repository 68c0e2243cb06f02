"""Build the region registry config/regions/regions.csv from the recorded GENESIS tables.

Keys and names come from real answers of the statistical offices (../shared/genesis):

* Deutschland and the 16 Länder: 13111-01-03-4 (DINSG, DLAND);
* every Kreis key (5 digits; 8 digits for the few Kreis-level cities and Berlin's districts):
  12411-01-01-4 (KREISE), parent = the Land (first two digits);
* every municipality (ARS, 12 digits) of the Zensus 2022 territory: 1000A-0000 (GEOGM4),
  parent = its Kreis (first five digits), same_as_key = its AGS (8 digits).

Rows already in the file keep their hand-curated columns (validity, successor, notes) and any
row the recordings do not have (e.g. an AGS row) is kept as it is, so re-running only refreshes
keys and names. Territorial changes live in config/regions/changes.csv (curated, with sources).

    .venv/bin/python scripts/build_registry.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from opendata.ffcsv import read_ffcsv  # noqa: E402
from opendata.places import REGION_FILE, REGISTRY_COLUMNS, ars_to_ags  # noqa: E402

CURATED = ["valid_from", "valid_to", "successor_key", "same_as_key", "note", "note_de"]


def _table(shared: Path, table: str) -> pd.DataFrame:
    """The German-language ffcsv answer recorded for a table."""
    folder = shared / "genesis" / table
    for entry in json.loads((folder / "interactions.json").read_text(encoding="utf-8")):
        body = folder / str(entry.get("body", ""))
        if entry["url"].endswith(("data/tablefile", "data/resultfile")) and body.suffix == ".zip" \
                and entry.get("form", {}).get("language", "de") == "de":
            return read_ffcsv(body.read_bytes(), source=table)
    raise SystemExit(f"no German ffcsv answer recorded for {table} in {folder}")


def _regions(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["dim1_variable_code", "dim1_code", "dim1_label"]].drop_duplicates("dim1_code")


def generated(shared: Path) -> pd.DataFrame:
    """Registry rows from the recordings: country, Länder, Kreise, municipalities (ARS)."""
    top = _regions(_table(shared, "13111-01-03-4"))
    top = top[top["dim1_variable_code"].isin(["DINSG", "DLAND"])]
    kreise = _regions(_table(shared, "12411-01-01-4"))
    gem = _regions(_table(shared, "1000A-0000"))
    gem = gem[gem["dim1_variable_code"] == "GEOGM4"]
    parts = [
        pd.DataFrame({"key": top["dim1_code"], "name": top["dim1_label"],
                      "level": top["dim1_variable_code"].map({"DINSG": "country", "DLAND": "state"}),
                      "key_type": top["dim1_variable_code"].map({"DINSG": "country",
                                                                 "DLAND": "land"}),
                      "parent_key": top["dim1_code"].where(top["dim1_code"] == "DG", "DG")
                      .where(top["dim1_code"] != "DG", ""),
                      "source": "13111-01-03-4"}),
        pd.DataFrame({"key": kreise["dim1_code"], "name": kreise["dim1_label"], "level": "district",
                      "key_type": "kreis", "parent_key": kreise["dim1_code"].str.slice(0, 2),
                      "source": "12411-01-01-4"}),
        pd.DataFrame({"key": gem["dim1_code"], "name": gem["dim1_label"], "level": "municipality",
                      "key_type": "ars", "parent_key": gem["dim1_code"].str.slice(0, 5),
                      "same_as_key": ars_to_ags(gem["dim1_code"]), "source": "1000A-0000"}),
    ]
    out = pd.concat(parts, ignore_index=True).fillna("")
    return out.reindex(columns=REGISTRY_COLUMNS, fill_value="").astype(str)


def merge(new: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    """New keys and names; curated columns and rows unknown to the recordings kept from old."""
    old = old.set_index("key")
    new = new.set_index("key")
    for col in CURATED:
        kept = old[col].reindex(new.index).fillna("")
        new[col] = kept.where(kept != "", new[col])
    extra = old.loc[old.index.difference(new.index)]
    out = pd.concat([new, extra]).reset_index()
    return out[REGISTRY_COLUMNS].sort_values("key", kind="stable").reset_index(drop=True)


def main() -> None:
    """Write config/regions/regions.csv."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    args = ap.parse_args()
    rows = generated(args.shared)
    if REGION_FILE.is_file():
        rows = merge(rows, pd.read_csv(REGION_FILE, dtype=str, keep_default_na=False))
    REGION_FILE.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(REGION_FILE, index=False, lineterminator="\n")
    print(f"{REGION_FILE.relative_to(REPO)}: {len(rows):,} regions")


if __name__ == "__main__":
    main()
