"""The DCAT-AP.de 3.0 catalog (catalog.ttl, catalog.jsonld) of the published packages."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, OWL, RDF, XSD

from opendata import store
from opendata.config import Config
from opendata.paths import Paths
from opendata.site import Published, temporal

log = logging.getLogger(__name__)
ADMS = Namespace("http://www.w3.org/ns/adms#")
DCATDE = Namespace("http://dcat-ap.de/def/dcatde/")
SPDX = Namespace("http://spdx.org/rdf/terms#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
EU = "http://publications.europa.eu/resource/authority/"
IANA = "https://www.iana.org/assignments/media-types/"
DEU = URIRef(EU + "language/DEU")
DCAT3 = Namespace(str(DCAT))  # plain namespace: rdflib 7 warns on DCAT 3 terms
DCAT_VERSION = DCAT3["version"]
PUBLISHER_TYPE = URIRef("http://purl.org/adms/publishertype/LocalAuthority")
FORMATS = {"csv": ("CSV", "text/csv"), "json": ("JSON", "application/json"),
           "zip": ("ZIP", "application/zip")}
PREFIXES = {"adms": ADMS, "dcat": DCAT, "dcatde": DCATDE, "dct": DCTERMS, "foaf": FOAF,
            "owl": OWL, "spdx": SPDX, "vcard": VCARD, "xsd": XSD}


class _Ctx:
    """The graph under construction plus the catalog-wide nodes."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.base = str(config.catalog.get("base_url", "")).rstrip("/") + "/"
        self.g = Graph()
        for prefix, ns in PREFIXES.items():
            self.g.bind(prefix, ns)

    def add(self, s: URIRef | BNode, p: URIRef, o: URIRef | BNode | Literal) -> None:
        """Add one triple."""
        self.g.add((s, p, o))

    def agent(self, namespace: str, kind: str) -> URIRef:
        """The publisher or contact node of one namespace (its configuration)."""
        return URIRef(f"{self.base}{namespace + '/' if namespace else ''}#{kind}")


def _when(value: str) -> Literal:
    return Literal(value, datatype=XSD.dateTime)


def _agents(ctx: _Ctx, namespace: str, meta: dict[str, Any]) -> None:
    """Publisher and contact point of a namespace, from its released metadata."""
    name = str(meta.get("publisher_name", ""))
    publisher, contact = ctx.agent(namespace, "publisher"), ctx.agent(namespace, "contact")
    ctx.add(publisher, RDF.type, FOAF.Agent)
    ctx.add(publisher, FOAF.name, Literal(name, lang="de"))
    ctx.add(publisher, DCTERMS.type, PUBLISHER_TYPE)
    if meta.get("publisher_url"):
        ctx.add(publisher, FOAF.homepage, URIRef(str(meta["publisher_url"])))
    ctx.add(contact, RDF.type, VCARD.Organization)
    ctx.add(contact, VCARD.fn, Literal(name, lang="de"))
    url = meta.get("contact_url") or meta.get("publisher_url")
    if url:
        ctx.add(contact, VCARD.hasURL, URIRef(str(url)))


def listable(pubs: list[Published]) -> list[Published]:
    """Packages whose publisher and licence are known; the others are logged and left out.

    Only a release of another configuration made before datapackage.json recorded its catalog
    metadata lacks them; the next run of that configuration publishes it with them.
    """
    for pub in pubs:
        if not (pub.meta.get("publisher_name") and pub.meta.get("license_url")):
            log.warning("catalog: %s left out: its release %s does not record publisher and "
                        "licence (datapackage.json property 'catalog'); run its configuration "
                        "once (`opendata --config … publish`) to release it with them",
                        pub.ref, pub.latest)
    return [p for p in pubs if p.meta.get("publisher_name") and p.meta.get("license_url")]


def publishers(config: Config, pubs: list[Published]) -> dict[str, dict[str, Any]]:
    """Namespace → the released metadata naming its publisher (the newest release's).

    Without any release, the running configuration's namespace and [catalog].
    """
    found: dict[str, dict[str, Any]] = {}
    for pub in sorted(pubs, key=lambda p: (p.namespace, str(p.versions[0]["date"]), p.id)):
        found[pub.namespace] = pub.meta
    return found or {config.namespace: dict(config.catalog)}


def _checksum(ctx: _Ctx, dist: URIRef, sha256: str) -> None:
    node = BNode("checksum" + hashlib.sha256(str(dist).encode()).hexdigest()[:32])
    ctx.add(dist, SPDX.checksum, node)
    ctx.add(node, RDF.type, SPDX.Checksum)
    ctx.add(node, SPDX.algorithm, SPDX.checksumAlgorithm_sha256)
    ctx.add(node, SPDX.checksumValue, Literal(sha256, datatype=XSD.hexBinary))


def _distribution(ctx: _Ctx, pub: Published, version: str, rel: str, title: str,
                  conforms: str | None) -> URIRef:
    """One dcat:Distribution for a file of a release (rel: path inside the release)."""
    info = pub.files[rel]
    url = f"{ctx.base}{pub.ref}/{version}/{rel}"
    dist = URIRef(url + "#distribution")
    fmt, media = FORMATS[rel.rsplit(".", 1)[1]]
    ctx.add(dist, RDF.type, DCAT.Distribution)
    ctx.add(dist, DCTERMS.title, Literal(f"{title} ({fmt})"))
    ctx.add(dist, DCAT.downloadURL, URIRef(url))
    ctx.add(dist, DCAT.accessURL, URIRef(f"{ctx.base}{pub.ref}/"))
    ctx.add(dist, DCTERMS.license, URIRef(str(pub.meta.get("license_url"))))
    attribution = "; ".join(pub.attribution)
    ctx.add(dist, DCATDE.licenseAttributionByText, Literal(attribution, lang="de"))
    ctx.add(dist, DCTERMS.format, URIRef(f"{EU}file-type/{fmt}"))
    ctx.add(dist, DCAT.mediaType, URIRef(IANA + media))
    ctx.add(dist, DCAT.byteSize, Literal(info.size, datatype=XSD.nonNegativeInteger))
    _checksum(ctx, dist, info.sha256)
    if conforms:
        ctx.add(dist, DCTERMS.conformsTo, URIRef(conforms))
    ctx.add(dist, DCTERMS.language, DEU)
    ctx.add(dist, ADMS.status, URIRef(EU + "distribution-status/COMPLETED"))
    ctx.add(dist, DCTERMS.modified, _when(str(pub.versions[0]["date"])))
    return dist


def _distributions(ctx: _Ctx, pub: Published) -> list[URIRef]:
    v = pub.latest
    out = []
    for res in pub.descriptor.get("resources", []):
        schema = f"{ctx.base}{pub.ref}/{v}/schemas/{res['name']}.schema.json"
        title = str(res.get("title") or res["name"])
        for ext in ("csv", "json"):
            out.append(_distribution(ctx, pub, v, f"data/{res['name']}.{ext}", title, schema))
    profile = pub.descriptor.get("$schema")
    out.append(_distribution(ctx, pub, v, "datapackage.json", "Data Package descriptor", profile))
    out.append(_distribution(ctx, pub, v, f"{pub.id}-{v}.zip", f"{pub.id} {v}", None))
    return out


def _describe(ctx: _Ctx, ds: URIRef, pub: Published, entry: dict[str, Any]) -> None:
    """Properties every dataset node (latest or earlier release) carries."""
    m, version = pub.meta, str(entry["version"])
    ctx.add(ds, RDF.type, DCAT.Dataset)
    for key, lang in (("title_de", "de"), ("title_en", "en")):
        if m.get(key):
            ctx.add(ds, DCTERMS.title, Literal(str(m[key]), lang=lang))
    for key, lang in (("description_de", "de"), ("description_en", "en")):
        if m.get(key):
            ctx.add(ds, DCTERMS.description, Literal(str(m[key]), lang=lang))
    ctx.add(ds, DCTERMS.publisher, ctx.agent(pub.namespace, "publisher"))
    ctx.add(ds, DCAT.contactPoint, ctx.agent(pub.namespace, "contact"))
    ctx.add(ds, DCAT_VERSION, Literal(version))
    ctx.add(ds, OWL.versionInfo, Literal(version))
    notes = pub.changelog.get(version) or str(entry.get("summary", ""))
    if notes:
        ctx.add(ds, ADMS.versionNotes, Literal(notes, lang="en"))
    ctx.add(ds, DCTERMS.issued, _when(pub.first_date))
    ctx.add(ds, DCTERMS.modified, _when(str(entry["date"])))


def _spatial(ctx: _Ctx, ds: URIRef, meta: dict[str, Any]) -> None:
    """Political geocoding as released; the contributor id of whoever runs the catalog."""
    if meta.get("political_geocoding"):
        geo = URIRef(str(meta["political_geocoding"]))
        ctx.add(ds, DCTERMS.spatial, geo)
        ctx.add(ds, DCATDE.politicalGeocodingURI, geo)
    if meta.get("political_geocoding_level"):
        ctx.add(ds, DCATDE.politicalGeocodingLevelURI, URIRef(str(meta["political_geocoding_level"])))
    cid = ctx.config.catalog.get("contributor_id")
    if cid:
        ctx.add(ds, DCATDE.contributorID, URIRef(str(cid)))


def _temporal(ctx: _Ctx, ds: URIRef, span: tuple[str, str] | None) -> None:
    if span is None:
        return
    node = BNode(f"temporal-{span[0]}-{span[1]}")
    ctx.add(ds, DCTERMS.temporal, node)
    ctx.add(node, RDF.type, DCTERMS.PeriodOfTime)
    ctx.add(node, DCAT.startDate, Literal(span[0], datatype=XSD.date))
    ctx.add(node, DCAT.endDate, Literal(span[1], datatype=XSD.date))


def _earlier(ctx: _Ctx, ds: URIRef, pub: Published) -> None:
    """Earlier releases as their own datasets, linked by hasVersion / previousVersion."""
    nodes = [URIRef(f"{ctx.base}{pub.ref}/{e['version']}/#dataset") for e in pub.versions]
    for i, entry in enumerate(pub.versions[1:], 1):
        node = nodes[i]
        _describe(ctx, node, pub, entry)
        ctx.add(node, DCAT.landingPage, URIRef(f"{ctx.base}{pub.ref}/{entry['version']}/"))
        ctx.add(node, DCAT3["isVersionOf"], ds)
        ctx.add(ds, DCAT3["hasVersion"], node)
        ctx.add(nodes[i - 1] if i > 1 else ds, DCAT3["previousVersion"], node)


def _dataset(ctx: _Ctx, pub: Published) -> URIRef:
    ds = URIRef(f"{ctx.base}{pub.ref}/#dataset")
    m = pub.meta
    _describe(ctx, ds, pub, pub.versions[0])
    ctx.add(ds, DCTERMS.identifier, Literal(str(ds)))
    for kw in m.get("keywords", []):
        ctx.add(ds, DCAT.keyword, Literal(str(kw), lang="de"))
    for theme in m.get("themes", []):
        ctx.add(ds, DCAT.theme, URIRef(f"{EU}data-theme/{theme}"))
    if m.get("accrual_periodicity"):
        ctx.add(ds, DCTERMS.accrualPeriodicity, URIRef(f"{EU}frequency/{m['accrual_periodicity']}"))
    ctx.add(ds, DCTERMS.language, DEU)
    ctx.add(ds, DCTERMS.accessRights, URIRef(EU + "access-right/PUBLIC"))
    ctx.add(ds, DCAT.landingPage, URIRef(f"{ctx.base}{pub.ref}/"))
    _spatial(ctx, ds, m)
    _temporal(ctx, ds, temporal(pub))
    for dist in _distributions(ctx, pub):
        ctx.add(ds, DCAT.distribution, dist)
    _earlier(ctx, ds, pub)
    return ds


def build_graph(config: Config, paths: Paths, pubs: list[Published]) -> Graph:
    """The catalog graph: one dcat:Dataset per published package (its latest release).

    Every namespace of the data dir is listed; each dataset names the publisher its release
    records. The catalog's own publisher is the first namespace's (the top level when it
    has releases), so the catalog does not depend on which configuration ran last.
    """
    ctx = _Ctx(config)
    cat = config.catalog
    pubs = listable(pubs)
    agents = publishers(config, pubs)
    names = list(dict.fromkeys(str(m.get("publisher_name", "")) for m in agents.values()))
    publisher = ", ".join(n for n in names if n)
    node = URIRef(ctx.base + "#catalog")
    ctx.add(node, RDF.type, DCAT.Catalog)
    ctx.add(node, DCTERMS.title, Literal(str(cat.get("title", f"Offene Daten: Integration "
                                                      f"({publisher})")), lang="de"))
    ctx.add(node, DCTERMS.description, Literal(str(cat.get(
        "description", f"Versionierte offene Datenpakete zu Integration und Migration, "
        f"veröffentlicht von {publisher}.")), lang="de"))
    ctx.add(node, DCTERMS.publisher, ctx.agent(next(iter(agents)), "publisher"))
    ctx.add(node, DCTERMS.language, DEU)
    ctx.add(node, FOAF.homepage, URIRef(ctx.base))
    if pubs:
        ctx.add(node, DCTERMS.modified, _when(max(str(p.versions[0]["date"]) for p in pubs)))
    for namespace, meta in agents.items():
        _agents(ctx, namespace, meta)
    for pub in pubs:
        ctx.add(node, DCAT.dataset, _dataset(ctx, pub))
    return ctx.g


def jsonld_context() -> dict[str, str]:
    """The inline JSON-LD @context (prefixes only, so no remote context is ever fetched)."""
    return {prefix: str(ns) for prefix, ns in sorted(PREFIXES.items())}


def write(config: Config, paths: Paths, pubs: list[Published]) -> None:
    """Write catalog.ttl and catalog.jsonld atomically."""
    g = build_graph(config, paths, pubs)
    ttl = g.serialize(format="turtle")
    data = json.loads(g.serialize(format="json-ld", context=jsonld_context(), auto_compact=True))
    store.atomic_write(paths.published / "catalog.ttl", ttl, paths.tmp)
    store.atomic_write(paths.published / "catalog.jsonld",
                       json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                       paths.tmp)
    log.info("catalog: %d triples, %d dataset(s)", len(g), len(set(g.objects(None, DCAT.dataset))))
