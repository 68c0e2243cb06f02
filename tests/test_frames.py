"""Compact columns (opendata/frames.py) against plain pandas on example data with repeats,
missing values and unsorted texts: the same values, the same order, the same duplicates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opendata import frames

RNG = np.random.default_rng(14)
TEXTS = np.array(["16056", "16063", "", "Wartburgkreis", "=SUMME(A1)", "Ä", "a", "B"], dtype=object)


def _example(n: int = 2_000) -> pd.DataFrame:
    """Example rows (BEISPIEL): text with blanks and missing cells, integers with NA, floats."""
    text = pd.Series(TEXTS[RNG.integers(0, len(TEXTS), n)], dtype=object)
    text[RNG.random(n) < 0.05] = None
    year = pd.array(RNG.integers(2014, 2018, n), dtype="Int64")
    year[RNG.random(n) < 0.05] = pd.NA
    value = RNG.integers(0, 5, n).astype(float)
    value[RNG.random(n) < 0.05] = np.nan
    return pd.DataFrame({"text": text, "compact": frames.compact(text.fillna("")),
                         "year": year, "value": value})


def test_compact_keeps_values_and_sorts_categories() -> None:
    text = _example()["text"].fillna("")
    col = frames.compact(text)
    assert col.astype(str).tolist() == text.tolist()
    cats = list(col.cat.categories)
    assert cats == sorted(cats) and col.cat.codes.dtype == np.int8
    assert frames.distinct(col) == sorted(set(text))


def test_map_text_and_mask_run_per_distinct_value() -> None:
    col = frames.compact(_example()["text"].fillna(""))
    mapped = frames.map_text(col, {"16056": "Eisenach"}, default="?")
    assert mapped.astype(str).tolist() == ["Eisenach" if t == "16056" else "?" for t in col]
    mask = frames.mask_of(col, lambda v: v.str.startswith("1"))
    assert mask.tolist() == [str(t).startswith("1") for t in col]


def test_combine_gives_each_row_its_distinct_pair() -> None:
    df = _example()
    left, right = frames.compact(df["text"].fillna("")).rename("a"), df["compact"].rename("b")
    codes, joined = frames.combine([left, right], lambda rows: (rows["a"] + "|" + rows["b"]).to_numpy())
    assert [joined[c] for c in codes] == [f"{a}|{b}" for a, b in zip(left, right, strict=True)]
    assert len(joined) == len(set(zip(left, right, strict=True)))


@pytest.mark.parametrize("keys", [["text"], ["compact", "year"], ["year", "value"],
                                  ["compact", "text", "year", "value"]])
def test_duplicated_and_sort_frame_match_pandas(keys: list[str]) -> None:
    df = _example()
    plain = df.assign(compact=df["compact"].astype(object))
    assert frames.duplicated(df, keys).tolist() == plain.duplicated(subset=keys).tolist()
    got = frames.sort_frame(df, keys)
    want = plain.sort_values(keys, kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(got.assign(compact=got["compact"].astype(object)), want)
