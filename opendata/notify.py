"""Optional webhook notifications (env OPENDATA_WEBHOOK_URL) on a new release and on failure.

The JSON body carries a ``text`` key, which Mattermost and Slack incoming webhooks display, plus
``event``, ``package``, ``version``, ``summary`` and ``error`` for generic receivers. Sending never
raises into the pipeline: a failed POST is logged as a warning and the run goes on.
"""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import urlsplit

import requests

from opendata.secrets import redact

log = logging.getLogger(__name__)
WEBHOOK_ENV = "OPENDATA_WEBHOOK_URL"
TIMEOUT_ENV = "OPENDATA_WEBHOOK_TIMEOUT"
DEFAULT_TIMEOUT = 10.0
MAX_ERROR = 1000


def webhook_url() -> str:
    """The configured webhook URL, or '' when notifications are off."""
    return os.environ.get(WEBHOOK_ENV, "").strip()


def _where(url: str) -> str:
    """Scheme and host of the webhook only: its path often holds a secret token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def release_payload(package: str, version: str, summary: str, previous: str | None = None,
                    url: str = "") -> dict[str, Any]:
    """The JSON body announcing a new release."""
    text = f"opendata: {package} {version} published"
    text += f" (previous {previous})" if previous else " (first release)"
    text += f": {summary}" + (f" {url}" if url else "")
    return {"text": redact(text), "event": "release", "package": package, "version": version,
            "previous": previous, "summary": redact(summary), "url": url, "error": None}


def failure_payload(error: str, command: str = "run", package: str | None = None,
                    exit_code: int | None = None) -> dict[str, Any]:
    """The JSON body reporting a failed run (the error text is redacted and shortened)."""
    err = redact(error)[:MAX_ERROR]
    text = f"opendata {command} FAILED" + (f" (exit code {exit_code})" if exit_code else "")
    text += f": {err}"
    return {"text": text, "event": "failure", "package": package, "version": None,
            "summary": None, "command": command, "exit_code": exit_code, "error": err}


def send(payload: dict[str, Any], url: str | None = None, timeout: float | None = None) -> bool:
    """POST a payload to the webhook; True when it answered 2xx. Never raises."""
    url = webhook_url() if url is None else url
    if not url:
        return False
    wait = timeout if timeout is not None else float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
    try:
        resp = requests.post(url, json=payload, timeout=wait)
    except (requests.RequestException, ValueError) as exc:
        log.warning("webhook %s not reached (%s); notification %s dropped", _where(url),
                    redact(type(exc).__name__), payload.get("event"))
        return False
    if not 200 <= resp.status_code < 300:
        log.warning("webhook %s answered HTTP %s; notification %s dropped", _where(url),
                    resp.status_code, payload.get("event"))
        return False
    return True


def releases(outcomes: list[Any], base_url: str = "", url: str | None = None) -> int:
    """Announce every published outcome (publish.Outcome); returns how many were delivered."""
    sent = 0
    for o in outcomes:
        if getattr(o, "published", False) and o.version:
            link = f"{base_url}{o.package}/{o.version}/" if base_url else ""
            sent += send(release_payload(o.package, o.version, o.summary, o.previous, link), url)
    return sent


def failure(error: str, command: str = "run", exit_code: int | None = None,
            url: str | None = None) -> bool:
    """Report a failed run; returns True when delivered."""
    return send(failure_payload(error, command, exit_code=exit_code), url)
