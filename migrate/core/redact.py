"""Keep secrets out of every output: logs, errors, files the tool writes."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "is_secret_key", "redact", "redact_text", "register_secret"]

REDACTED = "***"
_SECRET_KEY = re.compile(r"pass(word)?|secret|token|credential|api[_-]?key|private[_-]?key", re.I)
_lock = threading.Lock()
_secrets: set[str] = set()
_longest_first: tuple[str, ...] = ()   # rebuilt on registration; read without a lock (one atomic load)


def register_secret(value: str | None) -> None:
    """Remember a secret value so that it is masked wherever it would be printed."""
    global _longest_first
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)
            _longest_first = tuple(sorted(_secrets, key=len, reverse=True))


def is_secret_key(key: str) -> bool:
    """True for field names that hold secrets (but not for references like `password_env`)."""
    return bool(_SECRET_KEY.search(key)) and not key.endswith(("_env", "_file"))


def redact_text(text: str) -> str:
    """Mask every registered secret inside a string."""
    for secret in _longest_first:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact(value: Any) -> Any:
    """Return a copy of a JSON-like value with secret fields and registered secrets masked."""
    kind = type(value)
    if kind is str:
        return redact_text(value)
    if kind in (int, float, bool) or value is None:      # the common leaves, without ABC checks
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_key(k) and v else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
