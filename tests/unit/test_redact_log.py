"""Secrets never reach log output or CLI JSON."""

from __future__ import annotations

import json

import pytest
import structlog

from migrate.core.log import bind_run, configure_logging, get_logger
from migrate.core.redact import REDACTED, redact, register_secret


def test_secret_keys_and_values_are_masked() -> None:
    """Fields named like secrets, and registered secret values anywhere, are replaced."""
    register_secret("s3cr3t-value-123")
    data = {"password": "whatever", "password_env": "PW_VAR", "note": "login with s3cr3t-value-123 failed",
            "nested": [{"api_key": "k"}, "s3cr3t-value-123"]}
    out = redact(data)
    assert out["password"] == REDACTED
    assert out["password_env"] == "PW_VAR"
    assert out["note"] == f"login with {REDACTED} failed"
    assert out["nested"] == [{"api_key": REDACTED}, REDACTED]


def test_logs_are_json_with_run_id_and_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    """Piped logs are JSON lines, carry run_id, and mask secrets."""
    register_secret("another-secret-999")
    configure_logging("info", json_logs=True)
    bind_run("run-42", wave=3)
    try:
        get_logger("test").info("connecting", password="another-secret-999", url="https://x/sdk",
                                detail="pw another-secret-999")
    finally:
        structlog.contextvars.clear_contextvars()
    line = capsys.readouterr().err.strip().splitlines()[-1]
    event = json.loads(line)
    assert event["run_id"] == "run-42" and event["wave"] == 3
    assert "another-secret-999" not in line
    assert event["password"] == REDACTED


def test_short_values_are_not_registered() -> None:
    """Very short strings are not treated as secrets (they would mask ordinary text)."""
    register_secret("ab")
    assert redact("abc") == "abc"
