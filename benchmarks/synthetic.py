"""Synthetic statistics packages shaped like the embedded GENESIS tables, at any size (BEISPIEL data).

The layout is the published one (what `opendata validate` checks): `population` rows as the
Regionaldatenbank table 12411-01-01-4 gives them after tidying (region key, 31 December of each
year, sex GESM/GESW/total, indicator code, value), plus the `regions` and `indicators` resources
its foreign keys point to, with the real schemas from schemas/integration_statistics. Region keys
follow the official pattern (2-digit Land, 5-digit Kreis, 8-digit municipality), names say
BEISPIEL, values are random counts: clearly synthetic, never real statistics.

Usage: python benchmarks/synthetic.py ROWS OUT_DIR
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "schemas" / "integration_statistics"
YEARS = np.arange(1995, 2025)
SEXES = [("", "Insgesamt"), ("GESM", "männlich"), ("GESW", "weiblich")]
INDICATORS = ["BEVSTD", "BEV030", "ERW032", "PRS001"]  # codes as in the embedded tables


def _write(path: Path, table: pa.Table) -> str:
    """CSV as tables.py writes it (no cell here needs quotes, \\n); returns its sha256."""
    with path.open("wb") as fh:
        fh.write((",".join(table.column_names) + "\n").encode())
        pcsv.write_csv(table, fh, pcsv.WriteOptions(include_header=False, quoting_style="none",
                                                    eol="\n"))
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


def _const(value: str, rows: int) -> pa.Array:
    return pa.array([value]).take(pa.array(np.zeros(rows, dtype=np.int32)))


def _region_keys(count: int) -> list[str]:
    """Municipality keys (AGS, 8 digits): Land 01–16, Kreis 3 digits, municipality 3 digits."""
    i = np.arange(count)
    land, kreis, gemeinde = 1 + i % 16, (i // 16) % 1000, i // 16000
    return sorted(f"{a:02d}{b:03d}{c:03d}" for a, b, c in zip(land, kreis, gemeinde, strict=True))


def population(rows: int, keys: list[str], seed: int = 14) -> pa.Table:
    """`rows` rows of the population resource, sorted by its primary key."""
    per_region = len(YEARS) * len(SEXES) * len(INDICATORS)
    n_regions = -(-rows // per_region)
    region = np.repeat(np.arange(n_regions), per_region)[:rows]
    rest = np.tile(np.arange(per_region), n_regions)[:rows]
    year = YEARS[rest // (len(SEXES) * len(INDICATORS))]
    sex = (rest // len(INDICATORS)) % len(SEXES)
    ind = rest % len(INDICATORS)
    key_arr = pa.array(keys[:n_regions]).take(pa.array(region))
    order_ind = np.argsort(INDICATORS)  # tables.py sorts by key text: indicators in text order
    ind_codes = np.array(INDICATORS)[order_ind][ind]
    rng = np.random.default_rng(seed)
    sex_code = np.array([s for s, _ in SEXES])[sex]
    sex_label = np.array([lbl for _, lbl in SEXES])[sex]
    return pa.table({
        "region_key": key_arr,
        "region_name": pa.array([f"BEISPIEL Gemeinde {k}" for k in keys[:n_regions]]).take(
            pa.array(region)),
        "region_level": _const("municipality", rows),
        "reference_date": pa.array(np.char.add(year.astype(str), "-12-31")),
        "period": pa.array(year.astype(str)),
        "sex_code": pa.array(sex_code),
        "sex_label": pa.array(sex_label),
        "indicator": pa.array(ind_codes),
        "value": pa.array(rng.integers(0, 250_000, rows).astype(str)),
        "unit": _const("count", rows),
        "value_note": _const("", rows),
        "quality": _const("", rows),
        "source_table": _const("12411-01-01-4", rows),
    })


def regions(keys: list[str]) -> pa.Table:
    """The regions resource: Germany, the Länder and the synthetic municipalities."""
    lands = sorted({k[:2] for k in keys})
    all_keys = ["DG", *lands, *keys]
    level = ["country"] + ["state"] * len(lands) + ["municipality"] * len(keys)
    key_type = ["country"] + ["land"] * len(lands) + ["ags"] * len(keys)
    parent = [""] + ["DG"] * len(lands) + [k[:2] for k in keys]
    order = np.argsort(all_keys, kind="stable")
    n = len(all_keys)
    table = pa.table({
        "key": all_keys, "name": [f"BEISPIEL {k}" for k in all_keys], "level": level,
        "key_type": key_type, "valid_from": [""] * n, "valid_to": [""] * n,
        "successor_key": [""] * n, "parent_key": parent, "same_as_key": [""] * n,
        "note": ["synthetic example (BEISPIEL)"] * n, "note_de": ["BEISPIEL"] * n})
    return table.take(pa.array(order))


def indicators() -> pa.Table:
    """The indicators resource for the synthetic codes."""
    codes = sorted(INDICATORS)
    n = len(codes)
    return pa.table({"code": codes, "label_de": [f"BEISPIEL {c}" for c in codes],
                     "label_en": [f"EXAMPLE {c}" for c in codes], "unit": ["count"] * n,
                     "kind": ["official"] * n, "definition": ["synthetic example"] * n,
                     "source": ["benchmarks/synthetic.py"] * n})


def build(rows: int, out: Path) -> Path:
    """Write a package with `rows` population rows; return its datapackage.json."""
    (out / "data").mkdir(parents=True, exist_ok=True)
    per_region = len(YEARS) * len(SEXES) * len(INDICATORS)
    keys = _region_keys(-(-rows // per_region))
    tables = {"population": population(rows, keys), "regions": regions(keys),
              "indicators": indicators()}
    resources = []
    for name, table in tables.items():
        path = out / "data" / f"{name}.csv"
        digest = _write(path, table)
        schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
        resources.append({"name": name, "type": "table", "path": f"data/{name}.csv",
                          "format": "csv", "mediatype": "text/csv", "encoding": "utf-8",
                          "hash": f"sha256:{digest}", "bytes": path.stat().st_size,
                          "schema": schema})
    desc = out / "datapackage.json"
    desc.write_text(json.dumps({"name": "beispiel-synthetic", "resources": resources},
                               indent=1) + "\n", encoding="utf-8")
    return desc


if __name__ == "__main__":
    print(build(int(sys.argv[1]), Path(sys.argv[2])))
