"""`opendata`: a thin command line over the library; maps errors to exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opendata import config as config_mod
from opendata import notify, pipeline, runlog, store, timings
from opendata.errors import ConfigError, LockError, OpendataError, StorageError, is_file_error
from opendata.lock import pipeline_lock
from opendata.paths import Paths, default_data_dir

log = logging.getLogger("opendata")
EPILOG = """exit codes: 0 published or unchanged, 1 validation failed or unusable input (nothing
published), 2 usage or config error, 3 fetch failed, 4 file system error (disk full, read-only,
permissions).
examples:
  opendata run                      # the nightly job on ./data (offline without credentials)
  opendata publish --dry-run        # which version would be released, and why
  opendata status --json            # for monitoring
  opendata --config config/jena/opendata.toml run   # another municipality, same data dir"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, default=None,
                   help="holds raw/ and published/ (env OPENDATA_DATA_DIR, default ./data)")
    p.add_argument("--config", type=Path, default=None, help="source registry (TOML)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--offline", dest="online", action="store_false", default=None,
                      help="use the newest raw snapshot of each source (default without credentials)")
    mode.add_argument("--online", dest="online", action="store_true",
                      help="fetch from the APIs (default when credentials are configured)")
    p.add_argument("--base-url", default=None, help="public URL of data/published/ for links")
    p.add_argument("-q", "--quiet", action="store_true", help="only the summary and errors")


def parser() -> argparse.ArgumentParser:
    """The argument parser with all subcommands."""
    top = argparse.ArgumentParser(prog="opendata", description=__doc__, epilog=EPILOG,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--config", dest="top_config", type=Path, default=None,
                     help="source registry (TOML), also accepted after the command")
    top.add_argument("--data-dir", dest="top_data_dir", type=Path, default=None,
                     help="data dir, also accepted after the command")
    sub = top.add_subparsers(dest="command", required=True, metavar="command")
    helps = {"run": "the whole nightly flow: fetch, validate, publish (as a Prefect flow)",
             "fetch": "fetch every source and snapshot new content under raw/",
             "validate": "build and validate every package; write a JSON report",
             "publish": "validate and publish new releases of changed packages",
             "status": "what is published and when; last runs; stale sources",
             "verify": "re-check every file of every release against its recorded hashes",
             "prune": "remove old releases (versions.json keeps them, marked removed)",
             "serve": "register the nightly deployment and run scheduled runs",
             "tables": "check every configured GENESIS table code against the live catalogue "
                       "(metadata/table), or search the catalogue with --find",
             "init": "write a configuration directory for a municipality from the region "
                     "registry (standard sources, settings and APIs as in --config)"}
    for name, text in helps.items():
        p = sub.add_parser(name, help=text, description=text, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _common(p)
        if name in ("publish", "run"):
            p.add_argument("--dry-run", action="store_true",
                           help="print the version that would be released and the diff; write nothing")
            p.add_argument("--allow-mass-removal", action="store_true",
                           help="publish even if more than max_removed_share ([settings], default "
                                "50%%) of a resource's rows would be removed")
        if name in ("fetch", "run"):
            p.add_argument("--full", action="store_true",
                           help="download every GENESIS table, even when its metadata says it is "
                                "unchanged and the last download is younger than recheck_days")
        if name in TIMED:
            p.add_argument("--timings", type=Path, default=None, metavar="FILE",
                           help="write wall seconds and peak RSS per stage (fetch, inputs, build, "
                                "serialise, validate, diff, release, site) to FILE as JSON, also "
                                "when the command fails")
        if name == "status":
            p.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "prune":
            p.add_argument("--keep", type=int, required=True, help="releases to keep per package")
        if name == "tables":
            p.add_argument("--find", metavar="SELECTION", default=None,
                           help="list catalogue tables matching SELECTION, e.g. '12511*'")
            p.add_argument("--api", default="genesis",
                           help="API to search with --find (genesis, regionalstatistik, zensus)")
            p.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "init":
            p.add_argument("--municipality", required=True, metavar="KEY",
                           help="8-digit AGS, 5-digit key of a kreisfreie Stadt, or 12-digit ARS")
            p.add_argument("--dir", type=Path, default=None,
                           help="directory to write (default config/<name>/)")
            p.add_argument("--name", default="", help="name to show (default from the registry)")
            p.add_argument("--force", action="store_true",
                           help="replace opendata.toml and the city tables in an existing directory")
        if name == "serve":
            p.add_argument("--cron", default=None, help="cron expression (default from config)")
            p.add_argument("--timezone", default=None, help="IANA timezone (default Europe/Berlin)")
    return top


TIMED = ("fetch", "validate", "publish")  # commands that accept --timings FILE


def _setup_logging(quiet: bool) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "prefect", "frictionless", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from opendata.secrets import RedactingFilter

    for handler in logging.getLogger().handlers:  # belt and braces: mask any credential value
        handler.addFilter(KnownErrorsFilter())
        handler.addFilter(RedactingFilter())


class KnownErrorsFilter(logging.Filter):
    """No traceback for an error the CLI reports itself with a clear message (Prefect's engines
    log every failed task and flow with one); the log line itself stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop the traceback of an OpendataError or a file system OSError; never drops a record."""
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and (isinstance(exc, OpendataError) or is_file_error(exc)):
            record.exc_info, record.exc_text = None, None
        return True


def _context(args: argparse.Namespace) -> tuple[config_mod.Config, Paths]:
    cfg = config_mod.load(args.config)
    if args.base_url:
        cfg.catalog["base_url"] = args.base_url.rstrip("/") + "/"
    return cfg, cfg.paths(args.data_dir or default_data_dir())


def _online(args: argparse.Namespace, cfg: config_mod.Config) -> bool:
    if args.online is not None:
        return bool(args.online)
    from opendata.secrets import has_credentials

    if has_credentials(cfg):
        return True
    print("offline: no API credentials configured (see README, 'Credentials'); "
          "using the newest raw snapshot of each source", file=sys.stderr)
    return False


def _summary(result: pipeline.RunResult) -> None:
    print("summary:")
    for o in result.outcomes:
        rows = ", ".join(f"{k} {v}" for k, v in sorted(o.row_counts.items()))
        if o.published:
            state = f"published {o.version} (previous {o.previous or '-'}): {o.summary}"
        elif o.version:
            state = f"would publish {o.version} (dry run): {o.summary}"
        else:
            state = f"unchanged ({o.previous or 'nothing published'})"
        print(f"  {o.package}: {state}\n    rows: {rows or '-'}")
    for f in result.fetched:
        if f.note:
            print(f"  warning: {f.note}")


def cmd_run(args: argparse.Namespace, cfg: config_mod.Config, paths: Paths) -> int:
    """Run the nightly Prefect flow."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # a first start creates the ephemeral server's database; allow for a slow, busy machine
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    online = _online(args, cfg)
    from flows.nightly import nightly, task_runner
    from flows.tempserver import for_child_processes, start_temporary_server

    api_url = start_temporary_server()  # dies with this process, even when it is killed
    flow = nightly.with_options(task_runner=task_runner(cfg))
    with for_child_processes(api_url):
        result = flow(data_dir=str(paths.data_dir), config_path=str(cfg.path), online=online,
                      dry_run=args.dry_run, base_url=args.base_url or "",
                      allow_mass_removal=args.allow_mass_removal, full=args.full)
    _summary(result)
    return 0


def cmd_fetch(args: argparse.Namespace, cfg: config_mod.Config, paths: Paths) -> int:
    """Fetch every source."""
    for r in pipeline.fetch_all(cfg, paths, online=_online(args, cfg), full=args.full):
        snap = r.snapshot.name if r.snapshot else "none"
        print(f"  {r.source}: {'new' if r.changed else 'unchanged'} snapshot {snap} ({r.mode})"
              + (f": {r.info}" if r.info else ""))
        if r.note:
            print(f"    warning: {r.note}")
    return 0


def cmd_validate(args: argparse.Namespace, cfg: config_mod.Config, paths: Paths) -> int:
    """Build and validate; publish nothing."""
    from opendata import publish

    cands, result = pipeline.validate_all(cfg, paths)
    for c in cands:
        publish.discard(c.staged)
    for r in result.reports:
        print(r.summary())
    print(f"report: {result.report_path}")
    return 0 if all(r.valid for r in result.reports) else 1


def cmd_publish(args: argparse.Namespace, cfg: config_mod.Config, paths: Paths) -> int:
    """Validate and publish (or dry run)."""
    result = pipeline.publish_all(cfg, paths, dry_run=args.dry_run, run_id=f"cli-{uuid.uuid4()}",
                                  force=args.dry_run, allow_mass_removal=args.allow_mass_removal)
    if args.dry_run:
        for o in result.outcomes:
            if o.changes is not None:
                print(json.dumps({"package": o.package, "would_release": o.version,
                                  "previous": o.previous, "summary": o.summary}, ensure_ascii=False))
    else:
        notify.releases(result.outcomes, cfg.published_url)
    _summary(result)
    return 0


def cmd_status(args: argparse.Namespace, cfg: config_mod.Config, paths: Paths) -> int:
    """Print the status; non-zero when failing or stale."""
    from opendata import status

    st = status.collect(cfg, paths)
    print(json.dumps(st, ensure_ascii=False, indent=2, sort_keys=True) if args.json else status.text(st))
    return 0 if st["healthy"] else 1


def cmd_verify(args: argparse.Namespace, cfg: config_mod.Config, paths: Paths) -> int:
    """Verify every release."""
    problems = []
    for pkg in sorted(cfg.packages):
        found = store.verify_package(paths.package_dir(pkg))
        print(f"{pkg}: {'ok' if not found else f'{len(found)} problem(s)'}")
        for note in store.pending(paths.package_dir(pkg)):
            print(f"  note: {note}")  # an interrupted publish that the next run completes
        problems += found
    for p in problems:
        print(f"  {p}")
    return 1 if problems else 0


def cmd_prune(args: argparse.Namespace, cfg: config_mod.Config, paths: Paths) -> int:
    """Remove old releases."""
    for pkg in sorted(cfg.packages):
        removed = store.prune(paths.package_dir(pkg), args.keep)
        print(f"{pkg}: removed {', '.join(removed) or 'nothing'}")
    pipeline.ensure_site(cfg, paths)  # no links to removed releases in catalog and pages
    return 0


def cmd_serve(args: argparse.Namespace, cfg: config_mod.Config, paths: Paths) -> int:
    """Serve the nightly deployment on its schedule."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.serve import serve

    serve(cfg, paths, cron=args.cron, timezone=args.timezone, online=args.online,
          base_url=args.base_url or "")
    return 0


def _print_check(c: Any) -> None:
    flag = "ok  " if c.ok and not c.schema_problems else "FAIL" if not c.ok else "WARN"
    state = "verified" if c.verified else "unverified"
    print(f"{flag} {c.source:<28} {c.api:<17} {c.table:<14} ({state}) {c.message}")
    if c.title:
        print(f"       {c.title} (updated {c.updated or '?'})")
    if c.variables:
        print(f"       variables {', '.join(c.variables)}; values {', '.join(c.values) or '-'}")
    for problem in c.schema_problems:
        print(f"       schema: {problem}")


def cmd_tables(args: argparse.Namespace, cfg: config_mod.Config, paths: Paths) -> int:
    """Check configured table codes (exit 1 if one is unknown), or search the catalogue."""
    from opendata.secrets import credentials
    from opendata.sources import genesis_catalogue as cat

    pol = pipeline.policy(cfg)
    if args.find:
        if args.api not in cfg.apis:
            raise ConfigError(str(cfg.path), f"apis.{args.api}",
                              f"no such API; use one of {', '.join(sorted(cfg.apis))}")
        found = cat.find(args.api, cfg, args.find, policy=pol)
        print(json.dumps(found, ensure_ascii=False, indent=2) if args.json else
              "\n".join(f"{t['code']:<16} {t['time']:<12} {t['title']}" for t in found)
              or f"no tables match {args.find!r}")
        return 0
    checks = []
    genesis = [s for s in cfg.sources if s.kind == "genesis"]
    for api in sorted({s.api for s in genesis}):
        if credentials(cfg.apis[api]) is None:
            print(f"note: no credentials for API {api}; asking anonymously", file=sys.stderr)
    for src in genesis:
        checks.append(cat.check(src, cfg, policy=pol))
        if not args.json:
            _print_check(checks[-1])
    if args.json:
        print(json.dumps([c.as_dict() for c in checks], ensure_ascii=False, indent=2))
    return 0 if all(c.ok for c in checks) else 1


def cmd_init(args: argparse.Namespace, cfg: config_mod.Config, paths: Paths) -> int:
    """Write a configuration for a municipality; the standard sources come from --config."""
    from opendata import scaffold

    done = scaffold.write(args.municipality, args.dir, name=args.name, force=args.force, base=cfg)
    print(scaffold.report(done))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace, config_mod.Config, Paths], int]] = {
    "run": cmd_run, "fetch": cmd_fetch, "validate": cmd_validate, "publish": cmd_publish,
    "status": cmd_status, "verify": cmd_verify, "prune": cmd_prune, "serve": cmd_serve,
    "tables": cmd_tables, "init": cmd_init}
LOCKED = ("fetch", "validate", "publish", "prune")  # `run`: inside the flow (serve runs too)


def _record(paths: Paths, args: argparse.Namespace, started: str, code: int, error: str) -> None:
    if args.command not in ("run", "publish") or args.dry_run:
        return
    entry = {"command": args.command, "started": started, "finished": runlog.now_iso(),
             "outcome": "success" if code == 0 else "failed", "exit_code": code, "error": error[:500]}
    if code == 0:
        runlog.append(paths, entry)
    else:
        runlog.append_failure(paths, entry)  # never hides the original error


def _failed(paths: Paths, args: argparse.Namespace, started: str, exc: OpendataError) -> int:
    """Print the error, record it (run log, webhook) unless the flow did, return its exit code."""
    from opendata.secrets import redact

    msg = redact(exc.message)
    print(f"error: {msg}", file=sys.stderr)
    if not isinstance(exc, LockError) and not getattr(exc, "opendata_recorded", False):
        _record(paths, args, started, exc.exit_code, msg)  # a run's flow records its own
        if args.command in ("run", "publish") and not args.dry_run:
            notify.failure(msg, args.command, exc.exit_code)
    return exc.exit_code


def write_timings(path: Path, command: str, code: int | None, wall: float) -> None:
    """The stage timings of this process as JSON (``--timings``); a write error only warns."""
    doc = {"command": command, "exit_code": code, "wall_seconds": round(wall, 3),
           "seconds": {k: round(v, 3) for k, v in timings.snapshot().items()},
           "peak_rss_mb": {k: round(v, 1) for k, v in timings.peaks().items()},
           "process_peak_rss_mb": round(timings.peak_rss_mb(), 1)}
    try:
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        print(f"warning: could not write the timings to {path}: {exc.strerror or exc}; "
              "check that its folder exists and is writable", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `opendata` command."""
    args = parser().parse_args(argv)
    args.config = args.config or args.top_config  # `opendata --config X run` = `run --config X`
    args.data_dir = args.data_dir or args.top_data_dir
    _setup_logging(args.quiet)
    target = getattr(args, "timings", None)
    if target is None:
        return _main(args)
    timings.reset()
    start, code = time.perf_counter(), None
    try:
        code = _main(args)
        return code
    finally:  # also after a failure; exit_code null: an unexpected exception escaped
        write_timings(target, args.command, code, time.perf_counter() - start)


def _main(args: argparse.Namespace) -> int:
    """Run the command; every known failure becomes its exit code."""
    started = runlog.now_iso()
    paths = Paths(args.data_dir or default_data_dir())
    try:
        cfg, paths = _context(args)
        if args.command in LOCKED:
            with pipeline_lock(paths.lock_file):
                code = COMMANDS[args.command](args, cfg, paths)
        else:
            code = COMMANDS[args.command](args, cfg, paths)
        if args.command != "run":  # a run's flow records its own outcome
            _record(paths, args, started, code, "")
    except OpendataError as exc:
        return _failed(paths, args, started, exc)
    except OSError as exc:
        if not is_file_error(exc):
            raise
        return _failed(paths, args, started, StorageError.from_oserror(exc, paths.data_dir))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code
