"""The straight path: fetch → build → validate → publish, as plain functions."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opendata import canonical, publish, snapshot, store, timings
from opendata.config import Config, SourceConfig
from opendata.errors import (
    InputError,
    MassRemovalError,
    SnapshotError,
    TerminalFetchError,
    ValidationFailed,
)
from opendata.frames import release_memory
from opendata.http import RetryPolicy
from opendata.model import Build
from opendata.paths import REPO_ROOT, SCHEMAS_DIR, Paths, release_ref
from opendata.sources import kind_module
from opendata.versioning import Changes, mass_removals, summary

if TYPE_CHECKING:  # frictionless takes 0.2 s to import: only a run that validates needs it
    from opendata.validate import Report

log = logging.getLogger(__name__)
DEFAULT_SOURCE_DEADLINE = 300.0
DEFAULT_RECHECK_DAYS = 7.0
STATE_DOWNLOADS = "downloads"  # state/<namespace>/downloads/<source>.json: last full downloads
STAMP = "%Y-%m-%dT%H:%M:%SZ"  # the manifest's fetched_at, a download record's downloaded_at


@dataclass
class FetchResult:
    """The snapshot a source will be built from, and whether it is new."""

    source: str
    snapshot: Path | None  # None: an unverified source that has no snapshot yet
    changed: bool
    mode: str  # online | offline | local | skipped (unverified source, see note)
    note: str = ""  # a warning (skipped source)
    info: str = ""  # not a warning: e.g. "unchanged according to metadata …, not downloaded"


@dataclass
class Candidate:
    """A built, staged and validated package candidate."""

    build: Build
    staged: publish.Staged
    report: Report


@dataclass
class RunResult:
    """What one run did."""

    fetched: list[FetchResult] = field(default_factory=list)
    outcomes: list[publish.Outcome] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)
    report_path: Path | None = None


def source_deadline(config: Config) -> float:
    """Seconds one source may take, all retries included ([settings] source_deadline)."""
    return float(config.settings.get("source_deadline", DEFAULT_SOURCE_DEADLINE))


def policy(config: Config, deadline: float | None = None) -> RetryPolicy:
    """The retry policy from [settings], with an overall deadline (epoch seconds) if given."""
    s = config.settings
    return RetryPolicy(attempts=int(s.get("retries", 4)), backoff=float(s.get("backoff", 1.0)),
                       timeout=float(s.get("timeout", 60.0)), deadline=deadline,
                       budget=source_deadline(config))


def is_local(src: SourceConfig) -> bool:
    """A table source at a local path can always be read, even offline."""
    return src.kind == "table" and not src.location.startswith(("http://", "https://"))


def _skipped(src: SourceConfig, paths: Paths, why: str) -> FetchResult:
    """An unverified source that could not be fetched: keep its newest snapshot, if any."""
    found = snapshot.candidates(paths.source_raw(src.id))
    note = (f"unverified table {src.table} of source {src.id}: {why}. The run goes on without "
            "new data from it; check the code with 'opendata tables' and fix config/opendata.toml")
    log.warning(note)
    return FetchResult(src.id, found[-1] if found else None, False, "skipped", note)


_SLOTS: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()


@contextmanager
def api_slot(config: Config, src: SourceConfig) -> Iterator[float]:
    """Hold one of the ``[settings] api_concurrency`` request slots of the source's API (per
    process: polite to the services when sources are fetched in parallel); yields the seconds
    spent waiting for it."""
    limit = max(1, int(config.settings.get("api_concurrency", 2)))
    with _SLOTS_LOCK:
        slot = _SLOTS.setdefault((src.api or src.kind, limit), threading.BoundedSemaphore(limit))
    start = time.time()
    with slot:
        yield time.time() - start


def fetch_source(src: SourceConfig, config: Config, paths: Paths, *, online: bool,
                 deadline: float | None = None, full: bool = False) -> FetchResult:
    """Fetch one source (online or local) and snapshot it if its content changed.

    The source fails with DeadlineExceeded after ``deadline`` (epoch seconds; default: now plus
    [settings] source_deadline), whatever the retries. An unverified source never stops a run: a
    terminal fetch fault, an unusable answer (InputError) or (offline) a missing snapshot is
    logged and reported, and the run goes on without it. A GENESIS table whose metadata says it
    is unchanged is not downloaded again within [settings] recheck_days, unless ``full``.
    """
    try:
        with api_slot(config, src) as waited:  # waiting for a slot does not count
            deadline = time.time() + source_deadline(config) if deadline is None \
                else deadline + waited
            with timings.stage("fetch"):
                return _fetch_source(src, config, paths, online=online, deadline=deadline,
                                     full=full)
    except (TerminalFetchError, InputError) as exc:
        if src.verified:
            raise
        return _skipped(src, paths, exc.message)
    except SnapshotError:
        if src.verified or snapshot.candidates(paths.source_raw(src.id)):
            raise  # a damaged snapshot is never skipped
        return _skipped(src, paths, "no snapshot yet (run online with credentials)")


def _fetch_source(src: SourceConfig, config: Config, paths: Paths, *, online: bool,
                  deadline: float, full: bool = False) -> FetchResult:
    src_dir = paths.source_raw(src.id)
    if not online and not is_local(src):
        snap = snapshot.latest(src_dir, src.id)
        return FetchResult(src.id, snap.path, False, "offline")
    kind = kind_module(src.kind)
    mode = "local" if is_local(src) else "online"
    found = snapshot.candidates(src_dir)
    last = snapshot.verify(found[-1]) if found else None
    kwargs: dict[str, Any] = {"policy": policy(config, deadline)}
    if src.kind == "genesis":
        kwargs["diag_dir"], kwargs["tmp_dir"] = paths.state / "failed", paths.tmp
        canonical.clean_runs(paths.tmp, src.id)  # what an interrupted fetch left
        if last is not None and not full and _recheckable(config, paths, last):
            kwargs["previous"], kwargs["confirmed"] = last, _download_record(paths, src.id)
    elif last is not None:
        kwargs["stored"] = last.content_sha256  # the same bytes are not parsed again
    fetched = kind.fetch(src, config, **kwargs)
    if fetched.not_downloaded and last is not None:
        log.info("%s: %s", src.id, fetched.not_downloaded)
        return FetchResult(src.id, last.path, False, mode, info=fetched.not_downloaded)
    if last is not None and last.content_sha256 == fetched.content_sha256:
        snap, changed = last, False
    else:
        snap, changed = snapshot.store(src_dir, src.id, src.kind, fetched.files,
                                       fetched.content_sha256), True
        log.info("new snapshot %s", snap.path)
    if src.kind == "genesis":
        _downloaded(paths, src.id, snap, fetched.meta)
    return FetchResult(src.id, snap.path, changed, mode)


def recheck_days(config: Config) -> float:
    """Days a GENESIS table whose metadata says 'unchanged' goes without a download
    ([settings] recheck_days, default 7; 0 = download every time)."""
    return float(config.settings.get("recheck_days", DEFAULT_RECHECK_DAYS))


def _record_path(paths: Paths, source: str) -> Path:
    return paths.state / STATE_DOWNLOADS / f"{source}.json"


def _download_record(paths: Paths, source: str) -> dict[str, Any]:
    """The source's last full download: snapshot, time, metadata 'Updated' stamp and request."""
    try:
        doc = json.loads(_record_path(paths, source).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _downloaded(paths: Paths, source: str, snap: snapshot.Snapshot, meta: dict[str, Any]) -> None:
    """Record that a full download found ``snap``'s content (restarts recheck_days)."""
    path = _record_path(paths, source)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"snapshot": snap.path.name, "downloaded_at": datetime.now(UTC).strftime(STAMP),
              "updated": str(meta.get("updated") or ""), "request": meta.get("request") or {}}
    store.atomic_write(path, snapshot.dump_json(record), paths.tmp)


def last_download(paths: Paths, snap: snapshot.Snapshot) -> datetime:
    """When ``snap``'s content was last downloaded: stored, or later found again by a download."""
    record = _download_record(paths, snap.source)
    times = [str(snap.manifest.get("fetched_at", ""))]
    if record.get("snapshot") == snap.path.name:
        times.append(str(record.get("downloaded_at", "")))
    found = [_parse_time(t) for t in times]
    return max((t for t in found if t is not None), default=datetime.min.replace(tzinfo=UTC))


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def _recheckable(config: Config, paths: Paths, snap: snapshot.Snapshot) -> bool:
    """Whether ``snap``'s last download is younger than recheck_days (the source may then skip
    the download when its metadata says the table is unchanged)."""
    days = recheck_days(config)
    if days <= 0:
        return False
    age = (datetime.now(UTC) - last_download(paths, snap)).total_seconds()
    if age >= days * 86400:
        log.info("%s: last download %.1f days ago (recheck_days %g): downloading in full",
                 snap.source, age / 86400, days)
        return False
    return True


def fetch_all(config: Config, paths: Paths, *, online: bool, full: bool = False
              ) -> list[FetchResult]:
    """Fetch every configured source, in registry order (``full``: download every table)."""
    results = []
    for i, src in enumerate(config.sources, 1):
        log.info("[%d/%d] fetching %s (%s)", i, len(config.sources), src.id, src.kind)
        results.append(fetch_source(src, config, paths, online=online, full=full))
    return results


def snapshots_for(config: Config, paths: Paths, package: str) -> dict[str, snapshot.Snapshot]:
    """The newest verified snapshot of every source of a package (unverified sources may lack one)."""
    return {s.id: snapshot.latest(paths.source_raw(s.id), s.id)
            for s in config.sources_for(package)
            if s.verified or snapshot.candidates(paths.source_raw(s.id))}


Snapshots = dict[str, snapshot.Snapshot]


def build_package(config: Config, paths: Paths, package: str,
                  snaps: Snapshots | None = None) -> Build:
    """Run the package's builder on the newest snapshots (verified here unless passed in)."""
    from opendata.transform import builder

    pkg = config.packages[package]
    pkg_dir = paths.package_dir(package)
    store.recover(pkg_dir)
    if snaps is None:
        snaps = snapshots_for(config, paths, package)
    return builder(pkg.builder)(pkg, config, snaps, store.latest_dir(pkg_dir))


def candidate(config: Config, paths: Paths, package: str,
              snaps: Snapshots | None = None) -> Candidate:
    """Build, stage and validate one package."""
    from opendata.validate import validate

    with timings.stage("build"):
        build = build_package(config, paths, package, snaps)
    with timings.stage("serialise"):
        staged = publish.stage(build, config.packages[package], config, paths.package_dir(package))
    with timings.stage("validate"):
        report = validate(build, staged.descriptor)
    return Candidate(build, staged, report)


def _hash_tree(root: Path, pattern: str) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob(pattern)):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def input_key(config: Config, paths: Paths, package: str, *, snaps: Snapshots | None = None,
              code_dir: Path | None = None, schemas_dir: Path | None = None) -> str:
    """Hash of everything a release depends on: snapshots, code, schemas, config."""
    if snaps is None:
        snaps = snapshots_for(config, paths, package)
    parts = {"snapshots": {k: v.content_sha256 for k, v in sorted(snaps.items())},
             "code": _hash_tree(code_dir or REPO_ROOT / "opendata", "*.py"),
             "schemas": _hash_tree(schemas_dir or SCHEMAS_DIR, "*.json"),
             "config": hashlib.sha256(config.path.read_bytes()).hexdigest()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _cache(paths: Paths) -> dict[str, str]:
    f = paths.state / "cache.json"
    return dict(json.loads(f.read_text(encoding="utf-8"))) if f.is_file() else {}


def _save_cache(paths: Paths, cache: dict[str, str]) -> None:
    paths.state.mkdir(parents=True, exist_ok=True)
    store.atomic_write(paths.state / "cache.json", snapshot.dump_json(cache), paths.tmp)


def write_report(paths: Paths, reports: list[Report], run_id: str) -> Path:
    """Write the run's JSON validation report (and latest.json beside it)."""
    paths.reports.mkdir(parents=True, exist_ok=True)
    ts = datetime.now(UTC).strftime(snapshot.TS_FORMAT)
    body = snapshot.dump_json({"run_id": run_id, "created": ts,
                               "valid": all(r.valid for r in reports),
                               "packages": [r.as_dict() for r in reports]})
    path = paths.reports / f"{ts}-validation.json"
    store.atomic_write(path, body, paths.tmp)
    store.atomic_write(paths.reports / "latest.json", body, paths.tmp)
    return path


def _latest_counts(pkg_dir: Path) -> dict[str, int]:
    """Rows of the latest release as versions.json records them (never counted again here)."""
    return store.recorded_rows(pkg_dir) or {}


def _unchanged(pkg: str, pkg_dir: Path, why: str) -> publish.Outcome:
    return publish.Outcome(pkg, None, store.latest_version(pkg_dir), why, _latest_counts(pkg_dir))


Decision = tuple[Changes, str | None, str | None]


def _guard(cands: list[Candidate], decided: list[Decision], share: float) -> None:
    """Stop before anything is published when a run would remove too many rows."""
    found = [f"{c.build.package} {line}" for c, (changes, _, version) in zip(cands, decided,
                                                                            strict=True)
             if version is not None for line in mass_removals(changes, share)]
    if found:
        for c in cands:
            publish.discard(c.staged)
        raise MassRemovalError(
            f"nothing was published: this run would remove more than {share:.0%} of the rows of "
            f"a resource ({'; '.join(found)}). If a city table lost its rows by mistake (e.g. a "
            "header without rows), restore it; if the removal is intended, run again with "
            "--allow-mass-removal (limit: max_removed_share in [settings])")


def _release(cand: Candidate, config: Config, paths: Paths, *, dry_run: bool,
             run_id: str, decided: Decision) -> publish.Outcome:
    pkg = cand.build.package
    changes, previous, version = decided
    counts = publish.built_rows(cand.build)  # one CSV record per row: no need to read them
    text = summary(changes)
    if dry_run or version is None:
        publish.discard(cand.staged)
        return publish.Outcome(pkg, version, previous, text, counts, changes)
    publish.finalize(cand.staged, cand.build, config.packages[pkg], config, changes, version, run_id)
    publish.index_release(paths.package_dir(pkg), version, counts)
    log.info("published %s %s: %s", pkg, version, text)
    return publish.Outcome(pkg, version, previous, text, counts, changes, published=True)


def _candidates(config: Config, paths: Paths, packages: list[str],
                snaps: dict[str, Snapshots]) -> list[Candidate]:
    """Build, stage and validate independent packages in parallel ([settings] build_workers)."""
    def one(pkg: str) -> Candidate:
        log.info("building and validating %s", pkg)
        return candidate(config, paths, pkg, snaps.get(pkg))

    workers = max(1, min(len(packages), int(config.settings.get("build_workers", 2))))
    if workers == 1:
        return [one(p) for p in packages]
    with ThreadPoolExecutor(workers, thread_name_prefix="build") as pool:
        futures = [pool.submit(one, p) for p in packages]
    done = [f.result() for f in futures if f.exception() is None]
    failed = [f.exception() for f in futures if f.exception() is not None]
    if failed:
        for c in done:
            publish.discard(c.staged)
        raise failed[0]  # type: ignore[misc]
    return done


def validate_all(config: Config, paths: Paths, packages: list[str] | None = None,
                 run_id: str = "", snaps: dict[str, Snapshots] | None = None
                 ) -> tuple[list[Candidate], RunResult]:
    """Build, stage and validate packages; write the report. Staging folders are kept."""
    result = RunResult()
    cands = _candidates(config, paths, list(config.packages) if packages is None else packages,
                        snaps or {})
    result.reports = [c.report for c in cands]
    if cands:
        result.report_path = write_report(paths, result.reports, run_id)
    return cands, result


def _fail(cands: list[Candidate], result: RunResult) -> ValidationFailed:
    for c in cands:
        publish.discard(c.staged)
    text = "\n".join(r.summary() for r in result.reports if not r.valid)
    return ValidationFailed(f"validation failed, nothing was published "
                            f"(report: {result.report_path}):\n{text}", result)


def publish_all(config: Config, paths: Paths, *, packages: list[str] | None = None,
                dry_run: bool = False, run_id: str = "", force: bool = False,
                allow_mass_removal: bool = False) -> RunResult:
    """Validate every package; publish only if all are valid. Unchanged inputs are skipped.

    A package that would lose more than ``max_removed_share`` of a resource's rows stops the
    run before anything is published, unless ``allow_mass_removal``.
    """
    cache = _cache(paths)
    todo, skipped, snaps = [], [], {}
    for pkg in list(config.packages) if packages is None else packages:
        with timings.stage("inputs"):
            store.recover(paths.package_dir(pkg))
            snaps[pkg] = snapshots_for(config, paths, pkg)  # verified once, used for key and build
            key = input_key(config, paths, pkg, snaps=snaps[pkg])
        if not force and cache.get(pkg) == key and store.latest_version(paths.package_dir(pkg)):
            with timings.stage("release"):  # the row counts of the latest release
                skipped.append(_unchanged(pkg, paths.package_dir(pkg), "inputs unchanged"))
        else:
            todo.append((pkg, key))
    cands, result = validate_all(config, paths, [p for p, _ in todo], run_id, snaps)
    if not all(r.valid for r in result.reports):
        raise _fail(cands, result)
    result.outcomes = list(skipped)
    with timings.stage("diff"):
        release_memory()  # the build's freed heap, before the diff reads two releases
        decided = [publish.decide(c.staged, paths.package_dir(c.build.package)) for c in cands]
    if not allow_mass_removal:
        _guard(cands, decided, config.limits.max_removed_share)
    for (pkg, key), cand, dec in zip(todo, cands, decided, strict=True):
        with timings.stage("release"):  # row counts, finalize (README, checksums, ZIP), index
            result.outcomes.append(_release(cand, config, paths, dry_run=dry_run, run_id=run_id,
                                            decided=dec))
        if not dry_run:
            cache[pkg] = key
    if not dry_run:
        _save_cache(paths, cache)
        with timings.stage("site"):
            ensure_site(config, paths)
    result.outcomes.sort(key=lambda o: o.package)
    return result


def _site_stamp(config: Config, paths: Paths) -> dict[str, Any]:
    """Every package of every namespace in the data dir: its live releases and latest."""
    from opendata.site import package_dirs

    found = {release_ref(ns, d.name): d for ns, d in package_dirs(paths)}
    live = {ref: [e["version"] for e in store.read_versions(d)["versions"] if not e.get("removed")]
            for ref, d in found.items()}
    return {"base_url": config.catalog.get("base_url", ""), "releases": live,
            "latest": {ref: store.latest_version(d) for ref, d in found.items()},
            "code": _hash_tree(REPO_ROOT / "opendata", "*.py")}


def ensure_site(config: Config, paths: Paths) -> bool:
    """Regenerate catalog and pages unless they were built for exactly these releases and code.

    Checking a stamp (not "did this run publish") means a run killed between publishing and
    writing the site is repaired by the next run, even when that run publishes nothing. The
    site covers every namespace of the data dir, so the stamp does too.
    """
    stamp = _site_stamp(config, paths)
    if not any(stamp["latest"].values()):
        return False
    path = paths.site_stamp
    if path.is_file() and json.loads(path.read_text(encoding="utf-8")) == stamp \
            and (paths.published / "catalog.ttl").is_file():
        return False
    regenerate_site(config, paths)
    paths.state_root.mkdir(parents=True, exist_ok=True)
    store.atomic_write(path, snapshot.dump_json(stamp), paths.tmp)
    return True


def regenerate_site(config: Config, paths: Paths) -> None:
    """Rebuild the catalog and pages from the published packages."""
    from opendata import site

    site.regenerate(config, paths)

