"""Helpers of the input fuzz tests: valid base files, hypothesis mutations, and running a verb under tracemalloc.

A mutation picks a place in a parsed document (any key or list item, at any depth) and drops it,
replaces it with a hostile value (huge, negative, NaN/inf, long or unicode strings and paths, deep
nesting, wrong types), adds an unknown key or repeats a list item. The text may then be truncated,
emptied or garbled. The verb runs in-process (click's CliRunner) under tracemalloc.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from migrate.cli.graph_cmd import graph
from migrate.cli.import_cmd import import_group
from migrate.cli.plan_cmd import plan
from migrate.cli.size_cmd import size
from migrate.cli.validate_cmd import validate

__all__ = [
    "BIGINT",
    "DEEP",
    "EVIL",
    "FUZZ_EXAMPLES",
    "MEMORY_BASE",
    "MEMORY_PER_BYTE",
    "Outcome",
    "check_outcome",
    "csv_text",
    "fuzz_settings",
    "invoke",
    "json_text",
    "mutated",
    "mutated_rows",
    "text_damage",
    "yaml_text",
]

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0"))   # > 0: a bigger campaign by hand
FUZZ_SHRINK = os.environ.get("FUZZ_SHRINK", "1") != "0"      # 0: report failures as found (faster campaigns)
DEEP = "__FUZZ_DEEP__"          # replaced by 50,000 nested lists in the file's text
BIGINT = "__FUZZ_BIGINT__"      # replaced by a 5,000-digit number in the file's text
MEMORY_BASE = 50 * 2**20        # peak allocation allowed: this + MEMORY_PER_BYTE x input bytes
MEMORY_PER_BYTE = 1000
SECONDS = 60.0                  # no single run of a verb may take longer

EVIL: list[Any] = [
    None, True, False, 0, -1, 1, 2, 10**30, -(10**30), 2**63, 1e308, -1e308, 0.5, float("nan"), float("inf"),
    float("-inf"), "", " ", "x" * 5000, "a/" * 3000, "/" + "b" * 5000, "é☃😀\u202e\u0000", "-1", "1e30", "nan",
    "inf", "app:", "2025-13-45T99:00:00Z", "0x1F", [], {}, [1, "a", None], {"k": "v"}, {"k": [{"k": {}}]},
    DEEP, BIGINT,
]


@click.group()
def cli() -> None:
    """The offline verbs of `migrate` (as migrate.cli.main registers them)."""


for _command in (graph, plan, validate, size, import_group):
    cli.add_command(_command)


def fuzz_settings(ci_examples: int) -> settings:
    """Deterministic, no deadline, small in CI; FUZZ_EXAMPLES=N for a bigger campaign."""
    phases = list(Phase) if FUZZ_SHRINK else [Phase.explicit, Phase.generate]
    return settings(max_examples=FUZZ_EXAMPLES or ci_examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck), print_blob=True, phases=phases)


def _places(doc: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _places(value, (*at, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += _places(value, (*at, i))
    return out


def _get(doc: Any, at: tuple[Any, ...]) -> Any:
    for part in at:
        doc = doc[part]
    return doc


@st.composite
def mutated(draw: st.DrawFn, base: Any, extra: Sequence[Any] = ()) -> Any:
    """`base` (parsed JSON/YAML data, not changed) with one to three hostile edits."""
    doc = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        places = _places(doc)
        at = places[draw(st.integers(0, len(places) - 1))]
        if not at:
            continue
        parent, key = _get(doc, at[:-1]), at[-1]
        op = draw(st.sampled_from(["replace", "replace", "replace", "drop", "add", "repeat"]))
        if op == "replace":   # copies: EVIL's lists and dicts must not change
            parent[key] = copy.deepcopy(draw(st.sampled_from([*EVIL, *extra])))
        elif op == "drop":
            del parent[key]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["colour", "x" * 300, "é"]))] = copy.deepcopy(draw(st.sampled_from(EVIL)))
        elif op == "repeat" and isinstance(parent, list):
            parent.extend([parent[key]] * draw(st.integers(1, 300)))
    return doc


def _expand(text: str, quote: str) -> str:
    deep = "[" * 50_000 + "]" * 50_000
    return text.replace(f"{quote}{DEEP}{quote}", deep).replace(f"{quote}{BIGINT}{quote}", "9" * 5000)


def json_text(doc: Any) -> str:
    return _expand(json.dumps(doc), '"')


def yaml_text(doc: Any) -> str:
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=10**6)
    return _expand(_expand(text, "'"), "")


@st.composite
def mutated_rows(draw: st.DrawFn, base: list[list[str]]) -> list[list[str]]:
    """CSV rows with one to three hostile edits: cells, whole rows, the header."""
    rows = [list(r) for r in base]
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(rows) - 1)) if rows else 0
        op = draw(st.sampled_from(["cell", "cell", "cell", "drop_cell", "add_cell", "drop_row", "repeat_row"]))
        if not rows:
            rows.append([])
        row = rows[i]
        j = draw(st.integers(0, max(len(row) - 1, 0)))
        value = draw(st.sampled_from(EVIL))
        cell = "9" * 5000 if value == BIGINT else "[" * 50_000 if value == DEEP else str(value)
        if op == "cell" and row:
            row[j] = cell
        elif op == "drop_cell" and row:
            del row[j]
        elif op == "add_cell":
            row.append(cell)
        elif op == "drop_row":
            del rows[i]
        elif op == "repeat_row":
            rows.extend([row] * draw(st.integers(1, 300)))
    return rows


def csv_text(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


@st.composite
def text_damage(draw: st.DrawFn, text: str) -> bytes:
    """The file's bytes, mostly intact; sometimes truncated, emptied, garbled or not UTF-8."""
    data = text.encode("utf-8", "surrogatepass")
    op = draw(st.sampled_from(["keep"] * 6 + ["truncate", "empty", "garble", "latin1"]))
    if op == "truncate":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if op == "empty":
        return b""
    if op == "garble":
        at = draw(st.integers(0, len(data)))
        junk = draw(st.sampled_from([b"\xff\xfe", b"\x00", b"{[\"'", b"&a *a", b"\r\n\t", b"%"]))
        return data[:at] + junk + data[at:]
    if op == "latin1":
        return data + b"\xe9\xff"
    return data


@dataclass
class Outcome:
    """What one run of a verb did."""

    result: Result
    peak: int
    seconds: float
    input_bytes: int


def invoke(args: Sequence[str | Path], inputs: Sequence[Path]) -> Outcome:
    """Run `migrate ARGS` in-process under tracemalloc; `inputs` are the files it reads (for the memory bound)."""
    size = sum(p.stat().st_size for p in inputs if p.is_file())
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return Outcome(result, peak, time.monotonic() - started, size)


def check_outcome(outcome: Outcome, names: Sequence[str | Path], allowed: Callable[[int], bool] | None = None) -> None:
    """Exit 0, 1 or 2, never an internal error; exit 2 names a file in `names`; memory and time bounded."""
    result = outcome.result
    output = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (repr(result.exception), output)
    assert result.exit_code in (0, 1, 2), output[-3000:]
    assert "internal error" not in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    if result.exit_code == 2:
        assert any(str(name) in output for name in names), output[-3000:]
    if allowed is not None:
        assert allowed(result.exit_code), output[-3000:]
    bound = MEMORY_BASE + MEMORY_PER_BYTE * outcome.input_bytes
    assert outcome.peak < bound, f"peak {outcome.peak / 2**20:.1f} MiB for {outcome.input_bytes} input bytes"
    assert outcome.seconds < SECONDS, f"took {outcome.seconds:.1f} s"
