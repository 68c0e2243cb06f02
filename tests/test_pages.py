"""Landing pages from a real published tree: structure and links, then a real headless Chromium."""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
from helpers import serve_folder

from opendata import charts, config, pipeline, site
from opendata.config import Config
from opendata.paths import REPO_ROOT, Paths

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Paths]:
    """A real publish of every package into a temporary data dir (calls regenerate_site)."""
    tmp = tmp_path_factory.mktemp("pages")
    shutil.copytree(REPO_ROOT / "data" / "raw", tmp / "raw")
    cfg, paths = config.load(), Paths(tmp)
    pipeline.fetch_all(cfg, paths, online=False)
    pipeline.publish_all(cfg, paths)
    return cfg, paths


def _pages(paths: Paths) -> list[Path]:
    return [paths.published / "index.html", *sorted(paths.published.glob("*/index.html"))]


class _Html(HTMLParser):
    """Collects tags with their attributes, and the text of the first h1."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.h1 = ""
        self._in_h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_h1 = tag == "h1" and not self.h1

    def handle_data(self, data: str) -> None:
        if self._in_h1:
            self.h1 += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "h1":
            self._in_h1 = False


def _parse(path: Path) -> _Html:
    parser = _Html()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_index_and_one_page_per_package(tree: tuple[Config, Paths]) -> None:
    cfg, paths = tree
    hrefs = [a["href"] for t, a in _parse(paths.published / "index.html").tags if t == "a"]
    for pkg in cfg.packages:
        assert f"{pkg}/index.html" in hrefs
        page = _parse(paths.package_dir(pkg) / "index.html")
        desc = json.loads((paths.package_dir(pkg) / "latest" / "datapackage.json").read_text())
        assert page.h1 == desc["title"]  # German first, as released
        assert page.h1.startswith(cfg.packages[pkg].meta["title_de"])


def test_links_are_relative_and_resolve_to_files(tree: tuple[Config, Paths]) -> None:
    _, paths = tree
    for page in _pages(paths):
        for tag, attrs in _parse(page).tags:
            ref = attrs.get("href") or attrs.get("src")
            if tag in ("a", "link", "script", "img") and ref:
                assert not urlparse(ref).scheme, f"{page}: absolute link {ref}"
                assert (page.parent / ref).resolve().is_file(), f"{page}: broken link {ref}"


def test_pages_are_offline_and_accessible(tree: tuple[Config, Paths]) -> None:
    _, paths = tree
    for page in _pages(paths):
        text = page.read_text(encoding="utf-8")
        tags = _parse(page).tags
        assert '<html lang="de">' in text
        assert not [t for t, _ in tags if t in ("script", "link", "iframe", "img")]
        for t, attrs in tags:
            if t == "th":
                assert attrs.get("scope") in ("col", "row"), page
            if t == "svg":
                assert attrs.get("role") == "img" and attrs.get("aria-labelledby"), page
        assert text.count("<table") == text.count("<caption")
        assert text.count("<svg") == text.count("<title id=") == text.count("<desc id=")


def test_package_page_content(tree: tuple[Config, Paths]) -> None:
    _, paths = tree
    text = (paths.package_dir("integration_measures") / "index.html").read_text(encoding="utf-8")
    index = json.loads((paths.package_dir("integration_measures") / "versions.json").read_text())
    version = index["latest"]
    for needle in (f'href="{version}/data/measures.csv"', f'href="{version}/data/measures.json"',
                   f'href="{version}/integration_measures-{version}.zip"',
                   f'href="{version}/datapackage.json"', "in progress",  # an allowed value
                   "Zitieren", "pd.read_csv", "read.csv", "frictionless.Package",
                   'id="chart-measures-status"', "5 von 30 Maßnahmen",
                   "Integrationskonzept der Stadt Eisenach ist online"):
        assert needle in text, needle
    assert "Integrationsmanagement" not in text  # the office did not publish the measures
    stats = (paths.package_dir("integration_statistics") / "index.html").read_text("utf-8")
    assert 'id="chart-protection"' in stats and 'id="chart-immigration_history_share"' in stats


def test_missing_chart_data_gives_a_sentence_not_a_chart() -> None:
    chart = charts.protection_chart(None)
    assert chart.svg is None and "Keine Daten" in chart.note
    shares = charts.share_charts([], None)
    assert len(shares) == 1 and shares[0].svg is None
    assert all(c.svg is None for c in charts.measure_charts(None))


def test_site_with_only_one_package(tree: tuple[Config, Paths], tmp_path: Path) -> None:
    cfg, paths = tree
    shutil.copytree(paths.package_dir("integration_measures"),
                    tmp_path / "published" / "integration_measures", symlinks=True)
    one = Paths(tmp_path)
    site.regenerate(cfg, one)
    index = (one.published / "index.html").read_text(encoding="utf-8")
    assert "integration_measures/index.html" in index
    assert "integration_statistics" not in index
    assert (one.published / "catalog.ttl").read_text("utf-8").count("a dcat:Dataset") == 1


# --- a real browser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tree: tuple[Config, Paths]) -> Iterator[str]:
    """The published folder served by http.server on 127.0.0.1."""
    _, paths = tree
    with serve_folder(paths.published) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's chromium driven by Playwright; skips when it is not installed."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.mark.browser
def test_pages_in_chromium(tree: tuple[Config, Paths], server: str, browser: object) -> None:
    _, paths = tree
    ARTIFACTS.mkdir(exist_ok=True)
    links: set[str] = set()
    for page_file in _pages(paths):
        rel = page_file.relative_to(paths.published).as_posix()
        page = browser.new_page()  # type: ignore[attr-defined]
        errors: list[str] = []
        outside: list[str] = []
        page.on("console", lambda m, e=errors: e.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc, e=errors: e.append(str(exc)))
        page.on("request", lambda r, o=outside: None if r.url.startswith(server) else o.append(r.url))
        response = page.goto(server + rel)
        assert response.status == 200, rel
        assert not errors, f"{rel}: console errors {errors}"
        assert not outside, f"{rel}: requests outside the local server {outside}"
        for svg in page.locator("svg").all():
            box = svg.bounding_box()
            assert box and box["width"] > 0 and box["height"] > 0, rel
        links |= set(page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)"))
        page.screenshot(path=str(ARTIFACTS / f"{rel.replace('/', '_')}.png"), full_page=True)
        page.close()
    assert len(links) > 20
    for url in sorted(links):
        assert url.startswith(server), url
        with urllib.request.urlopen(urljoin(server, url)) as resp:  # noqa: S310 (127.0.0.1)
            assert resp.status == 200, url
