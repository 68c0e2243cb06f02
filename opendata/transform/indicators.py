"""The indicators code list and the derived integration indicators.

Derived values are computed only from rows of the same region and the same reference date,
so nothing is ever combined across the 2021 territorial break. What the embedded data cannot
support is listed by ``missing()``.
"""

from __future__ import annotations

import pandas as pd

_ZENSUS = "Persons on the Zensus 2022 reference date (15 May 2022)"

# code: (label_de, label_en, unit, kind, definition); the source comes from the data
INDICATORS: dict[str, tuple[str, str, str, str, str]] = {
    "BEVSTD": ("Bevölkerungsstand", "Population", "count", "official",
               "Population on the reference date (Fortschreibung des Bevölkerungsstandes)."),
    "BEV030": ("Schutzsuchende", "Protection seekers", "count", "official",
               "Protection seekers on the reference date (Statistik über Schutzsuchende); "
               "cells rounded to multiples of 5 by the source."),
    "ERW032": ("Sozialversicherungspflichtig Beschäftigte (Arbeitsort)",
               "Employees subject to social insurance (place of work)", "count", "official",
               "Employees subject to social insurance contributions, counted at their place of work."),
    "PRS001": ("Personen", "Persons", "count", "official", _ZENSUS + " (value variable PRS001)."),
    "PRS018": ("Personen", "Persons", "count", "official", _ZENSUS + " (value variable PRS018)."),
    "city_inhabitants": ("Einwohner (Angabe der Stadt)", "Inhabitants (reported by the city)",
                         "count", "city", "Inhabitants as reported by the city or the press."),
    "city_foreigners": ("Ausländer (Angabe der Stadt)", "Foreigners (reported by the city)", "count",
                        "city", "Foreign residents as reported by the city (countries "
                        "of origin as the city gives them; see the row's source)."),
    "city_asylum_seekers_refugees": ("Asylsuchende und Flüchtlinge (Angabe der Stadt)",
                                     "Asylum seekers and refugees (reported by the city)", "count",
                                     "city", "Asylum seekers and refugees as reported "
                                     "by the city."),
    "city_foreigners_share": ("Ausländeranteil (Angabe der Stadt)",
                              "Share of foreigners (reported by the city)", "percent", "city",
                              "Share of foreigners in the population, rounded, as reported by the city."),
    "city_foreigners_under_25_share": ("Anteil der unter 25-Jährigen an den Ausländern (Angabe der "
                                       "Stadt)", "Share of foreign residents younger than 25 "
                                       "(reported by the city)", "percent", "city",
                                       "Share of foreign residents younger than 25 among all foreign "
                                       "residents, as reported by the city."),
    "foreigners_share_employees": ("Ausländeranteil an den sozialversicherungspflichtig "
                                   "Beschäftigten", "Share of foreigners among employees subject "
                                   "to social insurance", "percent", "derived",
                                   "Foreign employees / all employees × 100 (place of work)."),
    "immigration_history_share": ("Anteil der Bevölkerung mit Einwanderungsgeschichte",
                                  "Share of the population with immigration history", "percent",
                                  "derived", "Persons 'mit Einwanderungsgeschichte' (WDGAT2) / all "
                                  "persons × 100, Zensus 2022."),
    "protection_seekers_per_1000": ("Schutzsuchende je 1.000 Einwohner",
                                    "Protection seekers per 1,000 inhabitants", "per_1000",
                                    "derived", "Protection seekers (sum of the top-level status "
                                    "categories, each cell rounded to 5 by the source) / population "
                                    "× 1,000, same region and reference date."),
    "foreigners_share_azr": ("Ausländeranteil an der Bevölkerung (Ausländerstatistik)",
                             "Share of foreigners in the population (statistics on foreigners)",
                             "percent", "derived", "Foreigners (Central Register of Foreigners) / "
                             "population (population update) × 100, same Kreis and reference date."),
    "foreigners_share_population": ("Ausländeranteil an der Bevölkerung",
                                    "Share of foreigners in the population", "percent", "derived",
                                    "Foreigners / inhabitants × 100."),
    "asylum_seekers_refugees_per_1000": ("Asylsuchende und Flüchtlinge je 1.000 Einwohner",
                                         "Asylum seekers and refugees per 1,000 inhabitants",
                                         "per_1000", "derived", "Asylum seekers and refugees / "
                                         "inhabitants × 1,000 (figures reported by the city)."),
}

PROTECTION_TOP_LEVEL = ("SCHUTZST-OF", "SCHUTZST-AK-1", "SCHUTZST-X")
"""Top-level protection status categories of 12531-0043 (open, recognised, without status).
The others are nested in them: AK-2 + AK-5 = AK-1, AK-3 + AK-4 = AK-2, AUSRPFL-* within X
(checked on the recorded table: the sums agree within the source's rounding to 5)."""

SOURCE_COLUMNS = ("source_table", "source")
"""Columns naming where a row comes from: a GENESIS table code, or a publication."""

INDICATOR_COLUMNS = ["code", "label_de", "label_en", "unit", "kind", "definition", "source"]
DERIVED_COLUMNS = ["region_key", "region_name", "region_level", "reference_date", "period",
                   "indicator", "value", "unit", "numerator", "denominator", "formula",
                   "input_keys", "topic", "note"]


def indicators_frame(codes: dict[str, set[str]]) -> pd.DataFrame:
    """The code list of the given codes (code → the tables or publications its rows come from)."""
    rows = []
    for code in sorted(codes):
        source = "; ".join(sorted(codes[code]))
        de, en, unit, kind, definition = INDICATORS.get(
            code, (code, code, "count", "official", f"Value variable {code} of {source or '?'}, "
                   "not yet documented here; see the table's metadata."))
        rows.append(dict(zip(INDICATOR_COLUMNS, (code, de, en, unit, kind, definition, source),
                             strict=True)))
    return pd.DataFrame(rows, columns=INDICATOR_COLUMNS, dtype=object)
