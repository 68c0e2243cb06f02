"""One shared HTTP session: a User-Agent, a timeout on every call, bounded retries."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from opendata import __version__
from opendata.errors import DeadlineExceeded, TerminalFetchError, TransientFetchError

log = logging.getLogger(__name__)

USER_AGENT = f"eisenach-opendata/{__version__} (+https://www.eisenach.de)"
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry transient faults."""

    attempts: int = 4
    backoff: float = 1.0
    max_backoff: float = 30.0
    timeout: float = 60.0
    deadline: float | None = None  # epoch seconds: the source fails after this, whatever the retries
    budget: float = 0.0  # the source deadline in seconds ([settings] source_deadline), for messages

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None: no deadline)."""
        return None if self.deadline is None else self.deadline - time.time()

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        base = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        if retry_after is not None:
            return min(self.max_backoff, max(base, retry_after))
        return base


_SESSION: requests.Session | None = None


def session() -> requests.Session:
    """The process-wide session (created on first use)."""
    global _SESSION
    if _SESSION is None:
        _SESSION = requests.Session()
        _SESSION.headers["User-Agent"] = USER_AGENT
    return _SESSION


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def request(
    source: str,
    method: str,
    url: str,
    *,
    policy: RetryPolicy,
    data: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    sess: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> requests.Response:
    """Send one request; retry 429/5xx/connection errors/timeouts with backoff, within bounds."""
    sess = sess or session()
    last = ""
    for attempt in range(1, policy.attempts + 1):
        wait: float | None = None
        left = policy.remaining()
        if left is not None and left <= 0:
            raise DeadlineExceeded(source, policy.budget, last)
        try:
            resp = sess.request(method, url, data=data, headers=headers,
                                timeout=policy.timeout if left is None else min(policy.timeout, left))
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            last = f"{type(exc).__name__} on {url}"
        else:
            if resp.status_code not in RETRY_STATUS:
                if resp.status_code >= 400:
                    raise TerminalFetchError(source, f"HTTP {resp.status_code} from {url}")
                return resp
            last = f"HTTP {resp.status_code} from {url}"
            wait = _retry_after(resp)
        if attempt < policy.attempts:
            delay = policy.delay(attempt, wait)
            left = policy.remaining()
            if left is not None and left <= delay:
                raise DeadlineExceeded(source, policy.budget, last)
            log.warning("transient fault, retrying", extra={"source": source, "fault": last,
                                                            "attempt": attempt, "delay": delay})
            sleep(delay)
    raise TransientFetchError(
        source, f"{last}; gave up after {policy.attempts} attempts. "
        "The service may be down: try again later or raise retries in the config.")
