"""The ffcsv reader on small fixtures (always) and on every recorded GENESIS ZIP (../shared)."""

from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from opendata.errors import InputError, TerminalFetchError
from opendata.ffcsv import MARKERS, csv_blocks, extract_csv, parse_values, read_ffcsv

FIX = Path(__file__).parent / "fixtures" / "ffcsv"
LAYOUT_1 = ["statistics_code", "statistics_label", "time_code", "time_label", "time", "reference_date",
            "dim1_variable_code", "dim1_variable_label", "dim1_code", "dim1_label",
            "value", "value_note", "value_q", "value_unit", "value_variable_code",
            "value_variable_label"]


def zipped(csv: bytes, name: str = "t_1_de_flat.csv") -> bytes:
    """A ZIP holding one CSV, like the GENESIS tablefile answer."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, csv)
    return buf.getvalue()


def row(df: pd.DataFrame, **match: str) -> pd.Series:
    """The single row whose columns equal ``match``."""
    sel = df
    for col, val in match.items():
        sel = sel[sel[col] == val]
    assert len(sel) == 1, f"{len(sel)} rows match {match}"
    return sel.iloc[0]


def test_excerpt_de_keys_values_and_markers() -> None:
    df = read_ffcsv((FIX / "12411-01-01-4_excerpt_de_flat.csv").read_bytes())
    assert list(df.columns) == LAYOUT_1[:10] + ["dim2_variable_code", "dim2_variable_label",
                                                "dim2_code", "dim2_label"] + LAYOUT_1[10:]
    total = row(df, dim1_code="16063", dim2_code="")
    assert total["value"] == 154957.0 and total["dim2_label"] == "Insgesamt"
    assert row(df, dim1_code="16063", dim2_code="GESW")["value"] == 78004.0
    eisenach = row(df, dim1_code="16056", dim2_code="")
    assert math.isnan(eisenach["value"]) and eisenach["value_note"] == MARKERS["-"]
    assert row(df, dim1_code="08222", dim2_code="GESW")["dim1_code"] == "08222"
    assert (df["time"] == "2024-12-31").all() and (df["reference_date"] == "2024-12-31").all()
    assert (df["value_q"] == "").all()
    assert df["value"].dtype == "float64"
    assert all(pd.api.types.is_string_dtype(df[c]) for c in df.columns if c != "value")


def test_excerpt_de_and_en_identical_values() -> None:
    de = read_ffcsv((FIX / "12411-01-01-4_excerpt_de_flat.csv").read_bytes())
    en = read_ffcsv((FIX / "12411-01-01-4_excerpt_en_flat.csv").read_bytes())
    keys = ["dim1_code", "dim2_code"]
    pd.testing.assert_frame_equal(de[keys + ["value", "value_note"]], en[keys + ["value", "value_note"]])
    assert en.loc[en["dim2_code"] == "", "dim2_label"].unique().tolist() == ["Total"]


def test_quality_flags_and_slash_marker() -> None:
    df = read_ffcsv((FIX / "12211-Z-11_excerpt_de_flat.csv").read_bytes())
    assert row(df, dim1_code="05120", dim2_code="FAMILIEN")["value_q"] == "()"
    wbk = row(df, dim1_code="16063", dim2_code="LB-INS")
    assert (wbk["value"], wbk["value_q"], wbk["value_unit"]) == (64.0, "e", "1000")
    fri = row(df, dim1_code="03455")
    assert math.isnan(fri["value"]) and fri["value_note"] == MARKERS["/"] and fri["value_q"] == ""
    assert (df["reference_date"] == "").all() and (df["time"] == "2019").all()


@pytest.mark.parametrize("lang", ["de", "en"])
def test_example_decimals_markers_dates(lang: str) -> None:
    df = read_ffcsv((FIX / f"example_decimal_{lang}_flat.csv").read_bytes())
    assert row(df, dim1_code="16063")["value"] == 1.5
    assert row(df, dim1_code="16")["value"] == 1234.25
    lub = row(df, dim1_code="01003")
    assert (lub["value"], lub["value_note"], lub["value_q"]) == (7.0, "limited reliability", "s")
    for code, marker in (("16056", "-"), ("01001", "..."), ("01002", "x"), ("", ".")):
        r = row(df, dim1_code=code)
        assert math.isnan(r["value"]) and r["value_note"] == MARKERS[marker]
    assert (df["reference_date"] == "2024-12-31").all()
    assert df["time"].iloc[0] == ("31.12.2024" if lang == "de" else "2024-12-31")


def test_zip_and_plain_csv_give_the_same_frame_with_or_without_bom() -> None:
    raw = (FIX / "12411-01-01-4_excerpt_de_flat.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    plain = read_ffcsv(raw)
    pd.testing.assert_frame_equal(plain, read_ffcsv(zipped(raw)))
    pd.testing.assert_frame_equal(plain, read_ffcsv(raw[3:]))
    assert extract_csv(zipped(raw), source="s") == raw


def test_plain_numbers_in_the_table_language() -> None:
    assert parse_values(pd.Series(["1,5", "7", "-2,25"]), "de")[0].tolist() == [1.5, 7.0, -2.25]
    assert parse_values(pd.Series(["1.5", "7"]), "en")[0].tolist() == [1.5, 7.0]
    assert parse_values(pd.Series(["1,5", "(7)", "-"]))[0].tolist()[:2] == [1.5, 7.0]
    assert parse_values(pd.Series(["1.5", "(7)"]))[0].tolist() == [1.5, 7.0]


@pytest.mark.parametrize(("values", "lang", "needle"), [
    (["154.957", "7"], "de", "line 2: '154.957'"),            # digit grouping: never in ffcsv
    (["1,234", "7"], "en", "line 2: '1,234'"),
    (["2.000.000"], "de", "line 2: '2.000.000'"),
    (["158789,0", "99097.0"], "de", "line 3: '99097.0'"),      # mixed decimal separators
    (["158789,0", "99097.0"], "", "mixed decimal separators"),
    (["1.234,5"], "", "line 2: '1.234,5'"),
    (["3", "abc"], "de", "line 3: 'abc'"),                      # unknown marker
    (["3", "?"], "de", "line 3: '?'"),
    (["3", "e"], "de", "line 3: 'e'"),                          # a quality letter is no value
    (["(x)", "1e5"], "en", "line 3: '1e5'"),
])
def test_a_value_that_is_not_plain_stops_with_its_line(values: list[str], lang: str,
                                                       needle: str) -> None:
    with pytest.raises(InputError, match="column value") as exc:
        parse_values(pd.Series(values), lang, source="pop", file="t_1_de_flat.csv")
    assert needle in str(exc.value) and "source 'pop'" in str(exc.value)
    assert "t_1_de_flat.csv" in str(exc.value) and exc.value.exit_code == 1


@pytest.mark.parametrize(("body", "needle"), [
    (b"a;b;c\n1;2;3\n", "missing column(s) statistics_code, time, value"),
    (b"statistics_code;time;value;1_variable_code;1_variable_label\nX;2024;1;A;B\n",
     "classifying variable 1 lacks 1_variable_attribute_code, 1_variable_attribute_label"),
    (b"<!DOCTYPE html><html><body>Wartung</body></html>", "HTML page"),
    (b'{"Status": {"Code": -1}}', "JSON document"),
    (b"\xff\xfe\x00s", "not UTF-8"),
    (b"statistics_code;time;value\n", "no data rows"),
    (b"", "the CSV is empty"),
    (b"statistics_code;time;value;value_q\n1;2024;5;z\n", "undocumented quality flag"),
])
def test_not_ffcsv_is_an_input_error(body: bytes, needle: str) -> None:
    with pytest.raises(InputError) as exc:
        read_ffcsv(body, source="pop")
    text = str(exc.value)
    assert needle in text and "'pop'" in text and exc.value.exit_code == 1
    assert not text.startswith("fetch failed")


def test_bad_zips_are_terminal() -> None:
    good = zipped((FIX / "12411-01-01-4_excerpt_de_flat.csv").read_bytes())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "no csv")
    cases = [(good[: len(good) // 2], "truncated or invalid ZIP"),
             (buf.getvalue(), r"holds no CSV file \(members: readme.txt\)")]
    for data, needle in cases:
        with pytest.raises(TerminalFetchError, match=needle):
            read_ffcsv(data, source="s")
    with pytest.raises(TerminalFetchError, match="exceeds the decompression limit of 100 bytes"):
        extract_csv(good, source="s", limit=100)


# --- every recorded ZIP in ../shared/genesis ------------------------------------------------

def recorded(shared: Path, table: str, lang: str = "") -> list[bytes]:
    """Bodies of the recorded ZIP downloads of one table (optionally of one language)."""
    import json
    folder = shared / "genesis" / table
    out = []
    for e in json.loads((folder / "interactions.json").read_text(encoding="utf-8")):
        if e["body"].endswith(".zip") and (not lang or e["form"].get("language", "de") == lang):
            out.append((folder / e["body"]).read_bytes())
    return out


@pytest.mark.shared
def test_every_recorded_zip_reads(shared: Path) -> None:
    zips = sorted((shared / "genesis").glob("*/bodies/*.zip"))
    assert len(zips) == 12
    for z in zips:
        if z.parts[-3] == "12531-0043":
            continue  # 33 MB, read once in its own test
        df = read_ffcsv(z.read_bytes(), source=z.parts[-3])
        assert len(df) > 0 and df.columns[:6].tolist() == LAYOUT_1[:6]
        assert df["statistics_code"].str.fullmatch(r"\d{4,5}[A-Z]?").all()


@pytest.mark.shared
def test_recorded_eisenach_municipality(shared: Path) -> None:
    for data in recorded(shared, "1000A-0000"):
        df = read_ffcsv(data)
        eis = row(df, dim1_code="160630105105")
        assert eis["value"] == 39931.0 and eis["reference_date"] == "2022-05-15"
        assert row(df, dim1_code="072325005218")["dim1_label"] == "Eisenach"  # Rhineland-Palatinate


@pytest.mark.shared
def test_recorded_12411_de_en_identical(shared: Path) -> None:
    de = read_ffcsv(recorded(shared, "12411-01-01-4", "de")[0])
    en = read_ffcsv(recorded(shared, "12411-01-01-4", "en")[0])
    assert row(de, dim1_code="16063", dim2_code="")["value"] == 154957.0
    assert len(de) == len(en) == 1467
    cols = ["dim1_code", "dim2_code", "value", "value_note"]
    pd.testing.assert_frame_equal(de[cols], en[cols])
    assert (de["value_note"] == MARKERS["-"]).sum() == 222


@pytest.mark.shared
def test_recorded_markers_and_quality(shared: Path) -> None:
    df = read_ffcsv(recorded(shared, "13111-01-03-4")[0])
    assert df["value_note"].value_counts().to_dict() == {MARKERS["-"]: 2898, "": 330,
                                                         MARKERS["."]: 72}
    q = read_ffcsv(recorded(shared, "1000A-2022")[0])
    assert q["value_q"].value_counts().to_dict() == {"e": 1003, "": 357}
    assert len(q.filter(like="_variable_code").columns) == 4  # 3 dims + value_variable_code


@pytest.mark.shared
def test_recorded_12531_four_classifying_variables(shared: Path) -> None:
    df = read_ffcsv(recorded(shared, "12531-0043")[0])
    assert len(df) == 116738
    assert [c for c in df.columns if c.endswith("_variable_code")] == [
        "dim1_variable_code", "dim2_variable_code", "dim3_variable_code", "dim4_variable_code",
        "value_variable_code"]
    assert "05166" in set(df["dim1_code"]) and df["dim1_code"].str.len().eq(5).all()
    assert df["dim4_variable_code"].unique().tolist() == ["STAAG5"]


def test_sort_is_total_when_a_cell_comes_in_two_units() -> None:
    # EXAMPLE rows (BEISPIEL): one cell given twice, as Anzahl and as Prozent, like the Zensus
    # tables 3000G-1008 and 4000W-2041; the server's row order must not decide the frame's order.
    head = ("statistics_code;statistics_label;time_code;time_label;time;1_variable_code;"
            "1_variable_label;1_variable_attribute_code;1_variable_attribute_label;value;"
            "value_unit;value_variable_code;value_variable_label")
    rows = ["99999;BEISPIEL;STAG;Stichtag;2022-05-15;GEODL1;Deutschland;DG;Deutschland;"
            f"{v};{u};BSP001;Beispiel" for v, u in (("1200", "Anzahl"), ("12,5", "Prozent"))]
    one = read_ffcsv("\n".join([head, *rows]).encode(), language="de")
    other = read_ffcsv("\n".join([head, *reversed(rows)]).encode(), language="de")
    pd.testing.assert_frame_equal(one, other)
    assert one["value_unit"].tolist() == ["Anzahl", "Prozent"]


# --- the block-by-block reader on hostile ZIPs ---------------------------------------------

def _big_excerpt(copies: int) -> bytes:
    """The real excerpt's header and rows, the rows repeated: several 2 MiB read blocks."""
    raw = (FIX / "12411-01-01-4_excerpt_de_flat.csv").read_bytes()
    head, _, rows = raw.partition(b"\n")
    return head + b"\n" + rows * copies


def test_invalid_utf8_deep_inside_a_zip_names_its_byte() -> None:
    csv = _big_excerpt(2_000)
    at = len(csv) - 100
    bad = csv[:at] + b"\xff" + csv[at + 1:]
    with pytest.raises(InputError, match=rf"not UTF-8 \(byte {at}\)"):
        read_ffcsv(zipped(bad), source="s")


def test_a_zip_that_lies_about_its_size_is_stopped_at_the_limit() -> None:
    """The member header claims a tiny size; the stream is cut at the limit all the same."""
    csv = _big_excerpt(50)
    data = bytearray(zipped(csv))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.infolist()[0]
    for offset in (info.header_offset + 22, data.rfind(b"PK\x01\x02") + 24):  # local, central
        data[offset:offset + 4] = (100).to_bytes(4, "little")  # uncompressed size: 100 bytes
    with pytest.raises(TerminalFetchError, match="exceeds the decompression limit|invalid ZIP"):
        read_ffcsv(bytes(data), source="s", limit=len(csv) // 2)


def _cut_member() -> bytes:
    """A ZIP whose member lost the second half of its compressed stream (the rest intact)."""
    data = zipped(_big_excerpt(2_000))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.infolist()[0]
    start = info.header_offset + 30 + len(info.filename.encode())
    return data[:start + info.compress_size // 2] + data[start + info.compress_size:]


def test_a_member_cut_off_mid_stream_is_terminal() -> None:
    with pytest.raises(TerminalFetchError, match="truncated or invalid ZIP"):
        read_ffcsv(_cut_member(), source="s")


def test_blocks_of_a_member_cut_off_mid_stream_are_terminal() -> None:
    """The fetch path (the content hash, block by block) fails the same clear way."""
    with pytest.raises(TerminalFetchError, match="truncated or invalid ZIP"):
        list(csv_blocks(_cut_member(), source="s", block=1 << 10))
    with pytest.raises(TerminalFetchError, match="truncated or invalid ZIP"):
        extract_csv(_cut_member(), source="s")


def test_csv_blocks_join_to_the_member() -> None:
    raw = (FIX / "12411-01-01-4_excerpt_de_flat.csv").read_bytes()
    parts = list(csv_blocks(zipped(raw), source="s", block=100))
    assert b"".join(parts) == raw and max(map(len, parts)) <= 100 and len(parts) > 3
    assert list(csv_blocks(raw, source="s")) == [raw]  # plain CSV bytes as they are
    with pytest.raises(TerminalFetchError, match="exceeds the decompression limit of 100 bytes"):
        list(csv_blocks(zipped(raw), source="s", limit=100))
    with pytest.raises(TerminalFetchError, match="truncated or invalid ZIP"):
        extract_csv(raw, source="s")  # not a ZIP
