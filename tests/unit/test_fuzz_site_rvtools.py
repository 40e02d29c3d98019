"""Fuzzing site.yaml (load_site_config, as `check`, `run` and `size --config` read it) and RVTools exports
(xlsx workbooks and per-tab CSV files).

site.yaml is loaded through the library (the verbs that read it go on to the network); path fields get
paths the OS refuses (too long, a file used as a folder, a symlink loop, a folder, a NUL byte).
"""

from __future__ import annotations

import copy
import io
import os
import tempfile
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl.utils.exceptions import IllegalCharacterError  # type: ignore[import-untyped]

from migrate.config import load_site_config
from migrate.core.errors import InputError
from tests.unit.fuzz_bases import bases
from tests.unit.fuzz_support import (
    BIGINT,
    DEEP,
    EVIL,
    MEMORY_BASE,
    MEMORY_PER_BYTE,
    check_outcome,
    fuzz_settings,
    invoke,
    mutated,
    text_damage,
    yaml_text,
)
from tests.unit.rvtools_fixture import build_workbook, write_csv

BAD_PATHS = ["p" * 5000, "pw.txt/inside", "loop", ".", "dir/", "bad\x00path", "/proc/self/nonexistent", ""]
ENV = {"FUZZ_PW": "secret"}


@contextmanager
def site_dir() -> Iterator[Path]:
    """A folder with the files the base site.yaml names, a folder and a symlink loop."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pw.txt").write_text("secret\n")
        (root / "pw.txt").chmod(0o600)
        (root / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
        (root / "dir").mkdir()
        (root / "loop").symlink_to(root / "loop")
        yield root


def load_checked(path: Path) -> None:
    """load_site_config returns or raises InputError naming the file; memory stays bounded."""
    size = path.stat().st_size
    tracemalloc.start()
    try:
        try:
            load_site_config(path, env=ENV)
        except InputError as exc:
            assert all(p.file for p in exc.problems)
            assert any(str(path) in str(p) for p in exc.problems), exc
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BASE + MEMORY_PER_BYTE * size


def test_base_site_loads() -> None:
    """The unmutated site.yaml is valid."""
    with site_dir() as root:
        path = root / "site.yaml"
        path.write_text(yaml_text(bases().site))
        assert load_site_config(path, env=ENV).source.password_file == root / "pw.txt"


@pytest.mark.parametrize("field", ["password_file", "ca_file", "credentials_file"])
@pytest.mark.parametrize("bad", BAD_PATHS)
def test_paths_the_os_refuses_name_the_field(field: str, bad: str) -> None:
    """A path field the OS cannot use (too long, not a folder, a loop, a folder, NUL) is exit-2 input naming it."""
    doc = copy.deepcopy(bases().site)
    where = {"password_file": (doc["source"], "source.password_file"),
             "ca_file": (doc["source"]["tls"], "source.tls.ca_file"),
             "credentials_file": (doc["aws"], "aws.credentials_file")}
    section, name = where[field]
    section[field] = bad
    with site_dir() as root:
        path = root / "site.yaml"
        path.write_text(yaml_text(doc))
        with pytest.raises(InputError) as info:
            load_site_config(path, env=ENV)
    assert any(p.field in (name, f"source.{field}", "source") for p in info.value.problems), info.value
    assert all(len(p.message) < 400 for p in info.value.problems)


@fuzz_settings(ci_examples=50)
@given(data=st.data())
def test_fuzz_site(data: st.DataObject) -> None:
    """Mutated site.yaml: a SiteConfig or an InputError naming the file, nothing else."""
    doc = data.draw(mutated(bases().site, extra=BAD_PATHS))
    with site_dir() as root:
        path = root / "site.yaml"
        path.write_bytes(data.draw(text_damage(yaml_text(doc))))
        load_checked(path)


def _cell_value(value: Any) -> Any:
    if value == BIGINT:
        return "9" * 5000
    if value == DEEP or isinstance(value, list | dict):
        return str(value)[:100]
    return value


@st.composite
def workbook_bytes(draw: st.DrawFn) -> bytes:
    """The RVTools fixture with one to four hostile cells, header cells or dropped rows."""
    wb = build_workbook(draw(st.sampled_from(["MiB", "MB"])))
    for _ in range(draw(st.integers(1, 4))):
        sheet = wb[draw(st.sampled_from(wb.sheetnames))]
        row = draw(st.integers(1, max(sheet.max_row, 1)))
        column = draw(st.integers(1, max(sheet.max_column, 1) + 1))
        if draw(st.integers(0, 9)) == 0:
            sheet.delete_rows(row)
            continue
        try:
            sheet.cell(row=row, column=column, value=_cell_value(draw(st.sampled_from(EVIL))))
        except (IllegalCharacterError, ValueError, TypeError):
            continue
    buffer = io.BytesIO()
    wb.save(buffer)
    data = buffer.getvalue()
    # a fraction, not a length: saved workbooks carry the time, so their length varies between runs
    return data[: len(data) * draw(st.integers(0, 999)) // 1000] if draw(st.integers(0, 9)) == 0 else data


@fuzz_settings(ci_examples=15)
@given(data=workbook_bytes())
def test_fuzz_rvtools(data: bytes) -> None:
    """A mutated RVTools export: `migrate import rvtools` gives exit 0 or 2 naming the file, in bounded memory."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.xlsx"
        path.write_bytes(data)
        outcome = invoke(["import", "rvtools", path, "--out", Path(tmp) / "inventory.json"], [path])
        if os.environ.get("FUZZ_LOG") and outcome.result.exit_code not in (0, 2):
            with Path(os.environ["FUZZ_LOG"]).open("a") as log:
                log.write(f"FAIL rvtools: {outcome.result.output[-600:]}\n")
            return
        check_outcome(outcome, [path], allowed=lambda code: code in (0, 2))


_CSV_EXPORT: dict[str, bytes] = {}


def _csv_export() -> dict[str, bytes]:
    """The fixture's 4.x export as tab CSV files (name -> bytes), written once."""
    if not _CSV_EXPORT:
        with tempfile.TemporaryDirectory() as tmp:
            directory = write_csv(Path(tmp) / "export")
            _CSV_EXPORT.update({p.name: p.read_bytes() for p in sorted(directory.iterdir())})
    return _CSV_EXPORT


@fuzz_settings(ci_examples=15)
@given(data=st.data())
def test_fuzz_rvtools_csv(data: st.DataObject) -> None:
    """A per-tab CSV export with one tab damaged: exit 0 or 2 naming a file of the export, in bounded memory."""
    files = dict(_csv_export())
    name = data.draw(st.sampled_from(sorted(files)))
    files[name] = data.draw(text_damage(files[name].decode("utf-8-sig")))
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "export"
        directory.mkdir()
        for file, content in files.items():
            (directory / file).write_bytes(content)
        outcome = invoke(["import", "rvtools", directory, "--out", Path(tmp) / "inventory.json"],
                         sorted(directory.iterdir()))
        check_outcome(outcome, [directory], allowed=lambda code: code in (0, 2))
