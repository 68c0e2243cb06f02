"""The release store of one package: versions.json, the `latest` alias, recovery, verify, prune."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from opendata.paths import Paths
from opendata.snapshot import dump_json, sha256_file

VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
CHECKSUMS = "checksums.sha256"
ENOSPC_ENV = "OPENDATA_TEST_ENOSPC_AT"  # tests: writing a file of this name fails as on a full disk


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def release_dirs(pkg_dir: Path) -> list[str]:
    """Version folders present on disk, oldest first."""
    if not pkg_dir.is_dir():
        return []
    found = [p.name for p in pkg_dir.iterdir() if p.is_dir() and not p.is_symlink()
             and VERSION_RE.match(p.name)]
    return sorted(found, key=_key)


def read_versions(pkg_dir: Path) -> dict[str, Any]:
    """versions.json, or an empty index."""
    path = pkg_dir / "versions.json"
    if not path.is_file():
        return {"package": pkg_dir.name, "latest": None, "versions": []}
    return dict(json.loads(path.read_text(encoding="utf-8")))


PUBLIC_DIR = 0o755
PUBLIC_FILE = 0o644


def make_public(root: Path) -> None:
    """Make a folder tree world-readable (folders 0755, files 0644), whatever the umask."""
    os.chmod(root, PUBLIC_DIR if root.is_dir() else PUBLIC_FILE)
    if root.is_dir():
        for base, dirs, files in os.walk(root):
            for d in dirs:
                os.chmod(os.path.join(base, d), PUBLIC_DIR)
            for f in files:
                os.chmod(os.path.join(base, f), PUBLIC_FILE)


def public_mkdir(path: Path) -> None:
    """Create a folder and its missing parents world-readable (0755), whatever the umask."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for p in missing:
        os.chmod(p, PUBLIC_DIR)


def _tmp_name(tmp_dir: Path, name: str) -> Path:
    tmp_dir.mkdir(parents=True, exist_ok=True)
    return tmp_dir / f"{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"


def atomic_write(path: Path, text: str, tmp_dir: Path) -> None:
    """Write a world-readable file via a temporary file in ``tmp_dir`` (private, same file
    system) and a rename: readers never see half of it, no temporary file appears beside it."""
    tmp = _tmp_name(tmp_dir, path.name)
    data = text.encode("utf-8")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # mode as write_text
        with os.fdopen(fd, "wb") as fh:
            if os.environ.get(ENOSPC_ENV) == path.name:
                fh.write(data[:len(data) // 2])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            fh.write(data)
        os.chmod(tmp, PUBLIC_FILE)  # world-readable, whatever the umask
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is None:  # a failed write() names no file: say which one
            exc.filename = str(path)
        raise


def write_versions(pkg_dir: Path, index: dict[str, Any]) -> None:
    """Write versions.json atomically, newest release first."""
    index["versions"].sort(key=lambda e: _key(e["version"]), reverse=True)
    live = [e["version"] for e in index["versions"] if not e.get("removed")]
    index["latest"] = live[0] if live else None
    atomic_write(pkg_dir / "versions.json", dump_json(index), Paths.of_package(pkg_dir).tmp)


def set_latest(pkg_dir: Path, version: str) -> None:
    """Point the `latest` alias (a relative symlink) at a version, atomically."""
    tmp = _tmp_name(Paths.of_package(pkg_dir).tmp, f"latest-{pkg_dir.name}")
    os.symlink(version, tmp)
    try:
        os.replace(tmp, pkg_dir / "latest")
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def staging_dir(pkg_dir: Path) -> Path:
    """A new, empty staging folder for a candidate release of this package (outside the served
    tree, on the same file system, so the finished release moves in with one rename)."""
    tmp = Paths.of_package(pkg_dir).tmp
    tmp.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"staging-{pkg_dir.name}.", dir=tmp))


def clean_tmp(pkg_dir: Path) -> None:
    """Remove what an interrupted run left: this package's staging folders, temporary files
    (also those that older versions wrote into the served tree)."""
    tmp = Paths.of_package(pkg_dir).tmp
    leftovers = list(tmp.iterdir()) if tmp.is_dir() else []
    leftovers = [p for p in leftovers if p.name.startswith(f"staging-{pkg_dir.name}.")
                 or p.name.endswith(".tmp")]
    for folder in (pkg_dir, pkg_dir.parent):  # left in the served tree by older code
        if folder.is_dir():
            leftovers += [p for p in folder.iterdir() if p.name.startswith(".staging-")
                          or (p.name.startswith(".") and p.name.endswith(".tmp"))]
    for p in leftovers:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def latest_version(pkg_dir: Path) -> str | None:
    """The newest live release according to versions.json."""
    return read_versions(pkg_dir).get("latest")


def latest_dir(pkg_dir: Path) -> Path | None:
    """Folder of the newest release, or None."""
    version = latest_version(pkg_dir)
    return pkg_dir / version if version else None


def entry_for(pkg_dir: Path, version: str, rows: dict[str, int] | None = None) -> dict[str, Any]:
    """The versions.json entry describing a finished release folder (with ``rows``, its rows
    per resource: what a run that publishes nothing reports without counting them again)."""
    rel = pkg_dir / version
    changes = json.loads((rel / "changes.json").read_text(encoding="utf-8"))
    prov = json.loads((rel / "provenance.json").read_text(encoding="utf-8"))
    zip_path = rel / f"{pkg_dir.name}-{version}.zip"
    entry = {"version": version, "date": prov.get("created", ""),
             "summary": changes.get("summary", ""), "bump": changes.get("bump"),
             "zip": f"{version}/{zip_path.name}", "zip_sha256": sha256_file(zip_path),
             "checksums_sha256": sha256_file(rel / CHECKSUMS)}
    return entry | ({"rows": dict(sorted(rows.items()))} if rows is not None else {})


def csv_records(path: Path, block: int = 1 << 22) -> int:
    """CSV records in a file (header included), read in blocks: line breaks outside quotes.

    A quoted cell may hold line breaks; they end no record. Counted with numpy per block: a
    '\\n' ends a record when the quotes before it are balanced ('""' inside quotes counts twice).
    """
    records, inside, last = 0, False, b"\n"
    with path.open("rb") as fh:
        while chunk := fh.read(block):
            arr = np.frombuffer(chunk, dtype=np.uint8)
            quotes = np.cumsum(arr == ord('"')) + inside
            records += int(np.count_nonzero((arr == ord("\n")) & (quotes % 2 == 0)))
            inside, last = bool(quotes[-1] % 2), chunk[-1:]
    return records + (last != b"\n")


def release_rows(rel: Path) -> dict[str, int]:
    """Rows per resource of a release (or staged) folder: CSV records without the header.

    Reads every data file: done when a release is made (``entry_for`` records the result),
    never again for a run that publishes nothing."""
    return {p.stem: max(0, csv_records(p) - 1) for p in sorted((rel / "data").glob("*.csv"))}


def recorded_rows(pkg_dir: Path) -> dict[str, int] | None:
    """Rows per resource of the latest release as versions.json records them; None when there is
    no release or its entry lacks them (``recover`` completes such an entry)."""
    index = read_versions(pkg_dir)
    entry: dict[str, Any] = next((e for e in index["versions"]
                                  if e["version"] == index.get("latest")), {})
    rows = entry.get("rows")
    return {str(k): int(v) for k, v in rows.items()} if isinstance(rows, dict) else None


def recover(pkg_dir: Path) -> list[str]:
    """Finish interrupted publishes: drop staging folders, index finished releases, fix latest;
    record the rows of a latest release indexed without them."""
    clean_tmp(pkg_dir)
    if not pkg_dir.is_dir():
        return []
    index = read_versions(pkg_dir)
    known = {e["version"] for e in index["versions"]}
    added = [v for v in release_dirs(pkg_dir) if v not in known]
    for v in added:
        index["versions"].append(entry_for(pkg_dir, v, release_rows(pkg_dir / v)))
    counted = _record_rows(pkg_dir, index)
    if added or counted or not (pkg_dir / "versions.json").exists():
        write_versions(pkg_dir, index)
    latest = index.get("latest")
    link = pkg_dir / "latest"
    if latest and (not link.is_symlink() or os.readlink(link) != latest):
        set_latest(pkg_dir, latest)
    return added


def _record_rows(pkg_dir: Path, index: dict[str, Any]) -> bool:
    """Count the rows of the latest live release once if its entry lacks them (a release
    indexed before they were recorded); True when the entry was completed."""
    live = [e for e in index["versions"] if not e.get("removed")]
    newest = max(live, key=lambda e: _key(e["version"]), default=None)
    if newest is None or "rows" in newest or not (pkg_dir / newest["version"]).is_dir():
        return False
    newest["rows"] = release_rows(pkg_dir / newest["version"])
    return True


def verify_release(rel: Path, entry: dict[str, Any] | None) -> list[str]:
    """Re-check every file of a release against the hashes recorded at release time."""
    problems: list[str] = []
    entry = entry or {}
    expected_checksums_sha = entry.get("checksums_sha256")
    zip_name = f"{rel.parent.name}-{rel.name}.zip"
    zip_path = rel / zip_name
    if entry.get("zip_sha256") and (not zip_path.is_file()
                                    or sha256_file(zip_path) != entry["zip_sha256"]):
        problems.append(f"{zip_path}: missing or differs from the sha256 in versions.json")
    sums = rel / CHECKSUMS
    if not sums.is_file():
        return [f"{rel}: {CHECKSUMS} is missing"]
    if expected_checksums_sha and sha256_file(sums) != expected_checksums_sha:
        problems.append(f"{sums}: differs from the hash recorded in versions.json")
    listed = set()
    for line in sums.read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ", 1)
        listed.add(name)
        path = rel / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif sha256_file(path) != digest:
            problems.append(f"{path}: modified (expected sha256 {digest}, got {sha256_file(path)})")
    for path in sorted(rel.rglob("*")):
        name = path.relative_to(rel).as_posix()
        if path.is_file() and name not in listed and name not in (CHECKSUMS, zip_name):
            problems.append(f"{path}: not part of the release (added after publication)")
    return problems


def verify_package(pkg_dir: Path) -> list[str]:
    """Verify every live release listed in versions.json, plus the latest alias."""
    index = read_versions(pkg_dir)
    problems: list[str] = []
    for entry in index["versions"]:
        rel = pkg_dir / entry["version"]
        if entry.get("removed"):
            if rel.exists():
                problems.append(f"{rel}: marked removed in versions.json but still present")
            continue
        if not rel.is_dir():
            problems.append(f"{rel}: listed in versions.json but missing")
            continue
        problems += verify_release(rel, entry)
    link = pkg_dir / "latest"
    if index.get("latest") and (not link.is_symlink() or os.readlink(link) != index["latest"]) \
            and not _link_lags(pkg_dir, index):
        problems.append(f"{link}: does not point at {index['latest']}")
    return problems


def _link_lags(pkg_dir: Path, index: dict[str, Any]) -> bool:
    """True when `latest` is missing or points at an older live release than versions.json names:
    a publish was killed between writing versions.json and swapping the link; recover() (every
    later run) finishes it. Readers that follow versions.json already see the new release."""
    link, latest = pkg_dir / "latest", index.get("latest")
    if not latest or not (pkg_dir / latest).is_dir():
        return False
    if not link.is_symlink():
        return not link.exists()
    target = os.readlink(link)
    live = {e["version"] for e in index["versions"] if not e.get("removed")}
    return target in live and VERSION_RE.match(target) is not None and _key(target) < _key(latest)


def pending(pkg_dir: Path) -> list[str]:
    """What an interrupted publish left that the next run completes (verify reports it as a note)."""
    index = read_versions(pkg_dir)
    known = {e["version"] for e in index["versions"]}
    notes = [f"{pkg_dir / v}: complete release not yet in versions.json; the next run indexes it"
             for v in release_dirs(pkg_dir) if v not in known]
    if _link_lags(pkg_dir, index):
        notes.append(f"{pkg_dir / 'latest'}: still points at the previous release, versions.json "
                     f"names {index['latest']}; the next run swaps the link")
    return notes


def prune(pkg_dir: Path, keep: int) -> list[str]:
    """Remove all but the newest ``keep`` releases; versions.json keeps them marked removed."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    index = read_versions(pkg_dir)
    live = [e for e in index["versions"] if not e.get("removed")]
    live.sort(key=lambda e: _key(e["version"]), reverse=True)
    removed = []
    for entry in live[keep:]:
        entry["removed"] = True
        write_versions(pkg_dir, index)
        shutil.rmtree(pkg_dir / entry["version"], ignore_errors=True)
        removed.append(entry["version"])
    return removed
