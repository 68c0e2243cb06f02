"""API credentials from the environment (or, opt-in, a Prefect Secret block) and redaction.

Per API with ``credentials = "PREFIX"`` in the config:

* ``PREFIX_TOKEN``: an API token, sent as the ``username`` header with an empty ``password``;
* or ``PREFIX_USERNAME`` and ``PREFIX_PASSWORD``;
* or, only when ``OPENDATA_USE_PREFECT_SECRETS=1``, a Prefect Secret block ``prefix-token``.
"""

from __future__ import annotations

import importlib
import logging
import os
import re

from opendata.config import ApiConfig, Config

log = logging.getLogger(__name__)

PREFECT_OPT_IN = "OPENDATA_USE_PREFECT_SECRETS"
MASK = "***"
_SECRET_ENV = re.compile(r"^[A-Z0-9_]+_(TOKEN|USERNAME|PASSWORD)$")
_MIN_LEN = 3  # shorter values would mask ordinary text
_KNOWN: set[str] = set()  # values loaded from Prefect blocks, masked as well


def _prefix(api: ApiConfig) -> str:
    return re.sub(r"\W", "_", api.credentials.strip()).upper()


def _prefect_token(block: str) -> str | None:
    """The value of a Prefect Secret block, or None when Prefect or the block is missing."""
    try:
        system = importlib.import_module("prefect.blocks.system")
    except ImportError:
        return None
    try:
        value = str(system.Secret.load(block).get())
    except ValueError:  # Prefect raises ValueError when no block has that name
        return None
    _KNOWN.add(value)
    return value


def credentials(api: ApiConfig) -> tuple[str, str] | None:
    """(username, password) for one API; a token is (token, ""); None when nothing is configured."""
    prefix = _prefix(api)
    token = os.environ.get(f"{prefix}_TOKEN", "")
    if token:
        return token, ""
    user = os.environ.get(f"{prefix}_USERNAME", "")
    if user:
        return user, os.environ.get(f"{prefix}_PASSWORD", "")
    if os.environ.get(PREFECT_OPT_IN) == "1":
        block = _prefect_token(f"{prefix.lower().replace('_', '-')}-token")
        if block:
            return block, ""
    return None


def has_credentials(config: Config) -> bool:
    """True when every API used by a genesis source of the config has credentials."""
    used = {s.api for s in config.sources if s.kind == "genesis"}
    return bool(used) and all(credentials(config.apis[a]) is not None for a in sorted(used))


def secret_values() -> list[str]:
    """Every known credential value, longest first (env ``*_TOKEN/_USERNAME/_PASSWORD`` + blocks)."""
    found = {v for k, v in os.environ.items() if _SECRET_ENV.match(k) and len(v) >= _MIN_LEN}
    found |= {v for v in _KNOWN if len(v) >= _MIN_LEN}
    return sorted(found, key=lambda v: (-len(v), v))


def redact(text: str) -> str:
    """``text`` with every known credential value replaced by ``***``."""
    for value in secret_values():
        text = text.replace(value, MASK)
    return text


def redact_bytes(data: bytes) -> bytes:
    """Like :func:`redact` for raw bytes (UTF-8 encoded credential values)."""
    for value in secret_values():
        data = data.replace(value.encode("utf-8"), MASK.encode())
    return data


class RedactingFilter(logging.Filter):
    """A logging filter that masks credential values in the formatted message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Format the message with its own arguments (so %d stays a number), then mask it;
        rewrite the record in place; never drops it."""
        if not secret_values():
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed call: keep its parts, masked, not the error
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
