"""Fuzz: a real journal damaged at random gives `migrate status` exit 0 or 2, never an internal error, and no change.

~100 examples in CI (a few seconds); FUZZ_EXAMPLES=5000 for a real campaign by hand.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.journal_damage_support import build_journal, damage, digest, status
from tests.unit.test_engine_helpers import _quiet_logs

__all__ = ["_quiet_logs"]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0")) or 100
BASES: dict[bool, Path] = {}


@pytest.fixture(scope="module", autouse=True)
def _bases() -> Iterator[None]:
    """A checkpointed journal and one with its records in the -wal, built once for every example."""
    root = Path(tempfile.mkdtemp(prefix="journal-fuzz-"))
    BASES.update({wal: build_journal(root / f"base-{int(wal)}.db", in_wal=wal) for wal in (False, True)})
    yield
    shutil.rmtree(root, ignore_errors=True)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 100,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), in_wal=st.booleans())
def test_damaged_journal_is_exit_0_or_2(seed: int, in_wal: bool) -> None:
    """Flipped bytes, truncation or edited rows: status and status --json exit 0 or 2, and change nothing."""
    with tempfile.TemporaryDirectory() as tmp:
        journal = Path(tmp) / "run.db"
        for suffix in ("", "-wal"):
            if Path(f"{BASES[in_wal]}{suffix}").exists():
                shutil.copyfile(f"{BASES[in_wal]}{suffix}", f"{journal}{suffix}")
        done = damage(journal, random.Random(seed))
        before = digest(journal)
        for extra in ((), ("--json",)):
            result = status(journal, *extra)
            where = f"{done} -> exit {result.exit_code}: {result.output[-2000:]}"
            assert result.exception is None or isinstance(result.exception, SystemExit), where
            assert result.exit_code in (0, 2), where
            assert "internal error" not in result.output and "Traceback" not in result.output, where
            if result.exit_code == 2:
                assert str(journal) in result.output, where
            assert digest(journal) == before, where
