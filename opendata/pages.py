"""Landing pages (index.html and one page per package): German first, English second, offline."""

from __future__ import annotations

import logging
from html import escape
from typing import Any

from opendata import charts, store
from opendata.config import Config
from opendata.paths import Paths
from opendata.site import Published, column_sums, read_rows, release_dir, temporal
from opendata.text import md_unescape

log = logging.getLogger(__name__)
CSS = """body{font-family:system-ui,sans-serif;max-width:62rem;margin:0 auto;padding:1rem;
color:#1a1a1a;background:#fff;line-height:1.5}a{color:#0b4f8a}a:focus{outline:3px solid #b35c00}
table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border:1px solid #767676;padding:.25rem
.5rem;text-align:left;vertical-align:top}caption{text-align:left;font-weight:bold}
.en{color:#3d3d3d}pre{background:#f3f3f3;padding:.5rem;overflow-x:auto}figure{margin:1rem 0}
svg{max-width:100%;height:auto}"""


def e(text: Any) -> str:
    """HTML-escape any value."""
    return escape(str(text))


def page(title: str, body: list[str]) -> str:
    """A complete HTML document with inline CSS and no external resources."""
    return ("<!DOCTYPE html>\n<html lang=\"de\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
            + "\n".join(b for b in body if b) + "\n</main>\n</body>\n</html>\n")


def _en(text: str) -> str:
    return f'<p class="en" lang="en">{e(text)}</p>' if text else ""


def _size(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} B"


KINDS = {"statistics": ("Statistik (Daten und Fakten)", "statistics (data and facts)"),
         "measures": ("Maßnahmen", "measures")}
"""Package builders by the part of an integration concept they publish (German, English)."""


def _groups(pubs: list[Published]) -> dict[str, list[Published]]:
    """Published packages by namespace (configuration), top level first."""
    out: dict[str, list[Published]] = {}
    for pub in sorted(pubs, key=lambda p: (p.namespace, p.id)):
        out.setdefault(pub.namespace, []).append(pub)
    return out


def _place(group: list[Published]) -> str:
    """The municipality a group of packages is about, as its releases record it."""
    for pub in group:
        town = pub.meta.get("municipality") or {}
        if town.get("name"):
            return str(town["name"])
    return str(group[0].meta.get("publisher_name") or group[0].namespace
               or "Weitere Datenpakete / other data packages")


def _not_yet(group: list[Published]) -> list[str]:
    """A line per part not published for this municipality (when every release says its part)."""
    kinds = {p.meta.get("builder") for p in group}
    if None in kinds:
        return []
    return [f"<p>{e(de)}: noch nicht erfasst <span lang=\"en\">/ {e(en)}: not published yet"
            "</span></p>" for kind, (de, en) in KINDS.items() if kind not in kinds]


def _group_html(group: list[Published], heading: bool) -> list[str]:
    body = [f"<h3>{e(_place(group))}</h3>"] if heading else []
    body.append("<ul>")
    for pub in group:
        body.append(f'<li><a href="{e(pub.ref)}/index.html">{e(pub.meta.get("title_de", pub.id))}'
                    f'</a> <span lang="en">({e(pub.meta.get("title_en", ""))})</span> – '
                    f"Version {e(pub.latest)}, {e(str(pub.versions[0]['date'])[:10])}</li>")
    return body + ["</ul>"] + _not_yet(group)


def _publishers(config: Config, pubs: list[Published]) -> str:
    names = [str(p.meta.get("publisher_name", "")) for g in _groups(pubs).values() for p in g[:1]]
    return ", ".join(dict.fromkeys(n for n in names if n)) or \
        str(config.catalog.get("publisher_name", ""))


def index_html(config: Config, pubs: list[Published]) -> str:
    """The start page of the data dir: every municipality's packages and the DCAT catalog."""
    publisher = _publishers(config, pubs)
    body = [f"<h1>Offene Daten: Integration – {e(publisher)}</h1>",
            _en(f"Open data on integration – {publisher}"),
            f"<p>Versionierte Datenpakete, veröffentlicht von {e(publisher)}. Alle Dateien "
            "stehen unter der Datenlizenz Deutschland – Namensnennung – Version 2.0.</p>",
            _en(f"Versioned data packages published by {publisher}, licensed under the "
                "Data licence Germany – attribution – version 2.0."),
            "<h2>Datenpakete <span lang=\"en\">/ Data packages</span></h2>"]
    if not pubs:
        body.append("<p>Noch nichts veröffentlicht. <span lang=\"en\">Nothing published yet."
                    "</span></p>")
    groups = _groups(pubs)
    for group in groups.values():
        body += _group_html(group, heading=len(groups) > 1)
    body += ["<h2>Katalog <span lang=\"en\">/ Catalog</span></h2>",
             '<p>DCAT-AP.de 3.0: <a href="catalog.ttl">catalog.ttl</a> (Turtle), '
             '<a href="catalog.jsonld">catalog.jsonld</a> (JSON-LD).</p>']
    return page(f"Offene Daten: Integration – {publisher}", body)


def _downloads(pub: Published) -> list[str]:
    v = pub.latest
    rows = ['<table><caption>Dateien der Version ' + e(v) + ' <span lang="en">/ Files of '
            'version ' + e(v) + '</span></caption>',
            '<tr><th scope="col">Ressource / Resource</th><th scope="col">CSV</th>'
            '<th scope="col">JSON</th><th scope="col">Schema</th></tr>']
    for res in pub.descriptor.get("resources", []):
        n = res["name"]
        csv_info, json_info = pub.files[f"data/{n}.csv"], pub.files[f"data/{n}.json"]
        rows.append(f'<tr><th scope="row">{e(res.get("title", n))} (<code>{e(n)}</code>)</th>'
                    f'<td><a href="{e(v)}/data/{e(n)}.csv">{e(n)}.csv</a> '
                    f'({_size(csv_info.size)})</td><td><a href="{e(v)}/data/{e(n)}.json">'
                    f'{e(n)}.json</a> ({_size(json_info.size)})</td><td><a href="{e(v)}/schemas/'
                    f'{e(n)}.schema.json">{e(n)}.schema.json</a></td></tr>')
    rows.append("</table>")
    zip_name = f"{pub.id}-{v}.zip"
    rows.append(f'<ul><li>Alles als ZIP / everything as ZIP: <a href="{e(v)}/{e(zip_name)}">'
                f'{e(zip_name)}</a> ({_size(pub.files[zip_name].size)}, SHA-256 '
                f'<code>{e(pub.files[zip_name].sha256)}</code>)</li>'
                f'<li>Data Package: <a href="{e(v)}/datapackage.json">datapackage.json</a></li>'
                f'<li><a href="{e(v)}/README.md">README.md</a>, '
                f'<a href="{e(v)}/CHANGELOG.md">CHANGELOG.md</a>, '
                f'<a href="{e(v)}/checksums.sha256">checksums.sha256</a></li></ul>')
    return rows


def _allowed(field: dict[str, Any]) -> str:
    c = field.get("constraints", {})
    parts = [", ".join(str(x) for x in c["enum"])] if "enum" in c else []
    if "pattern" in c:
        parts.append(f"Muster / pattern {c['pattern']}")
    if "minimum" in c:
        parts.append(f"≥ {c['minimum']}")
    return "; ".join(parts)


def _codebook(pub: Published) -> list[str]:
    out = ['<h2>Codebuch <span lang="en">/ Codebook</span></h2>']
    for res in pub.descriptor.get("resources", []):
        schema = res.get("schema", {})
        out.append(f'<h3><code>{e(res["name"])}</code> – {e(res.get("title", ""))}</h3>')
        out.append(f'<p lang="en">{e(res.get("description", ""))}</p>')
        out.append(f'<table><caption>Felder von {e(res["name"])} <span lang="en">/ Fields'
                   '</span></caption><tr><th scope="col">Feld / field</th><th scope="col">Typ / '
                   'type</th><th scope="col">Einheit / unit</th><th scope="col">Beschreibung / '
                   'description</th><th scope="col">Erlaubte Werte / allowed values</th></tr>')
        for f in schema.get("fields", []):
            out.append(f'<tr><th scope="row"><code>{e(f["name"])}</code></th>'
                       f'<td>{e(f.get("type", "string"))}</td><td>{e(f.get("unit", ""))}</td>'
                       f'<td lang="en">{e(f.get("description", ""))}</td>'
                       f"<td>{e(_allowed(f))}</td></tr>")
        out.append("</table>")
    return out


def _history(pub: Published, paths: Paths) -> list[str]:
    out = ['<h2>Versionen <span lang="en">/ Version history</span></h2>',
           '<table><caption>Alle Versionen <span lang="en">/ All versions</span></caption>'
           '<tr><th scope="col">Version</th><th scope="col">Datum / date</th>'
           '<th scope="col">Änderungen / changes</th><th scope="col">Download</th></tr>']
    for entry in pub.versions:
        v = str(entry["version"])
        notes = pub.changelog.get(v) or str(entry.get("summary", ""))
        items = "".join(f"<li>{e(md_unescape(line.lstrip('- ')))}</li>"
                        for line in notes.splitlines() if line.strip())
        zip_rel = f"{v}/{pub.id}-{v}.zip"
        link = (f'<a href="{e(zip_rel)}">{e(pub.id)}-{e(v)}.zip</a>'
                if (release_dir(paths, pub) / zip_rel).is_file() else "entfernt / removed")
        out.append(f'<tr><th scope="row">{e(v)}</th><td>{e(str(entry["date"])[:10])}</td>'
                   f'<td lang="en"><ul>{items}</ul></td><td>{link}</td></tr>')
    out.append("</table>")
    return out


def _usage(config: Config, pub: Published) -> list[str]:
    v, publisher = pub.latest, pub.meta.get("publisher_name", "")
    url = f"{str(config.catalog.get('base_url', '')).rstrip('/')}/{pub.ref}/{v}/"
    first = pub.descriptor["resources"][0]["name"] if pub.descriptor.get("resources") else "data"
    cite = (f"{publisher}: {pub.meta.get('title_de', pub.id)}, Version {v} "
            f"({str(pub.versions[0]['date'])[:10]}). {url}")
    return ['<h2>Zitieren <span lang="en">/ How to cite</span></h2>', f"<p>{e(cite)}</p>",
            '<h2>Laden <span lang="en">/ How to load</span></h2>',
            "<h3>pandas (Python)</h3>",
            f'<pre><code>import pandas as pd\ndf = pd.read_csv("{e(url)}data/'
            f'{e(first)}.csv", dtype=str, keep_default_na=False)</code></pre>', "<h3>R</h3>",
            f'<pre><code>df &lt;- read.csv("{e(url)}data/{e(first)}.csv", '
            'colClasses = "character", encoding = "UTF-8")</code></pre>', "<h3>frictionless</h3>",
            f'<pre><code>import frictionless\npkg = frictionless.Package("{e(url)}'
            f'datapackage.json")\nrows = pkg.get_resource("{e(first)}").read_rows()'
            "</code></pre>"]


def _figure(chart: charts.Chart) -> list[str]:
    head = f'<h3>{e(chart.title_de)} <span lang="en">/ {e(chart.title_en)}</span></h3>'
    if chart.svg is None:
        return [head, f"<p>{e(chart.note)}</p>"]
    return [head, f"<figure>{chart.svg}<figcaption>{e(chart.note)}</figcaption></figure>"]


def package_charts(paths: Paths, pub: Published) -> list[charts.Chart]:
    """The charts of a package, from the CSVs of its latest release."""
    names = {r["name"] for r in pub.descriptor.get("resources", [])}
    found: list[charts.Chart] = []
    if names & {"derived_indicators", "protection_seekers"}:  # only what is drawn, or its sums
        found += charts.share_charts(
            read_rows(paths, pub, "derived_indicators", charts.SHARE_COLUMNS, {"unit": {"percent"}}),
            read_rows(paths, pub, "indicators", ("code", "label_de", "label_en")))
        found.append(charts.protection_chart(column_sums(
            paths, pub, "protection_seekers", charts.PROTECTION_BY,
            {"protection_status_code": set(charts.PROTECTION_TOP_LEVEL)},
            latest="reference_date")))
    if "measure_summary" in names:  # a small summary table: read whole
        found += charts.measure_charts(read_rows(paths, pub, "measure_summary"))
    return found


def package_html(config: Config, paths: Paths, pub: Published) -> str:
    """The landing page of one package."""
    m, publisher = pub.meta, pub.meta.get("publisher_name", "")
    span = temporal(pub)
    up = "../" * pub.ref.count("/")
    body = [f'<p><a href="{up}../index.html">Alle Datenpakete / all data packages</a></p>',
            f"<h1>{e(m.get('title_de', pub.id))}</h1>", _en(str(m.get("title_en", ""))),
            f"<p>{e(m.get('description_de', ''))}</p>", _en(str(m.get("description_en", ""))),
            f"<p>Zeitraum / time coverage: <time>{e(span[0])}</time> – <time>{e(span[1])}</time>"
            "</p>" if span else "",
            f"<p>Herausgeber / publisher: {e(publisher)}. Lizenz / licence: Datenlizenz "
            "Deutschland – Namensnennung – Version 2.0. Namensnennung / attribution:</p><ul>"]
    body += [f"<li>{e(a)}</li>" for a in pub.attribution]
    body += ["</ul>", f'<h2>Aktuelle Version {e(pub.latest)} <span lang="en">/ Latest version'
             "</span></h2>"] + _downloads(pub)
    chart_list = package_charts(paths, pub)
    if chart_list:
        body.append('<h2>Grafiken <span lang="en">/ Charts</span></h2>')
        for chart in chart_list:
            body += _figure(chart)
    body += _codebook(pub) + _history(pub, paths) + _usage(config, pub)
    return page(str(m.get("title_de", pub.id)), body)


def write_all(config: Config, paths: Paths, pubs: list[Published]) -> None:
    """Write index.html and every package's index.html atomically."""
    store.atomic_write(paths.published / "index.html", index_html(config, pubs), paths.tmp)
    for pub in pubs:
        store.atomic_write(release_dir(paths, pub) / "index.html",
                           package_html(config, paths, pub), paths.tmp)
