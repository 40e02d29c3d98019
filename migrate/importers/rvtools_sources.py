"""Find and read RVTools exports: xlsx workbooks, and per-tab CSV files (RVTools_tabvInfo.csv, ...).

An export is one workbook, or the tab CSV files of one directory. Paths given may be workbooks, CSV files
(those of one directory form one export) or directories (its tab CSV files form one export; without any,
each workbook in it is one). A file that cannot be read is a problem naming it; the others are still read.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

import openpyxl  # type: ignore[import-untyped]
from openpyxl.utils.exceptions import InvalidFileException  # type: ignore[import-untyped]

from migrate.importers.rvtools_columns import SHEETS, SheetSpec
from migrate.importers.rvtools_table import Problems, Table, find_sheet, read_table

__all__ = ["Export", "read_exports"]

_UNREADABLE = (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, TypeError, EOFError, OSError,
               zlib.error, ParseError)
_TAB_CSV = re.compile(r"(?:^|[_\-\s.])tab(?P<sheet>[A-Za-z_]+)\.csv$", re.IGNORECASE)
_MAX_CSV_FIELD = 10 * 2**20  # a cell of up to 10 MiB (annotations can be long); csv's default is 128 KiB


@dataclass
class Export:
    """One export read: where it came from, its sheets (None when absent or unusable), its file time."""

    path: Path
    tables: dict[str, Table | None]
    mtime: float | None

    @property
    def label(self) -> str:
        return self.path.name


def read_exports(paths: Sequence[Path], problems: Problems) -> list[Export]:
    """Every export the paths name, read; the problems of each go to `problems` under its own file."""
    exports: list[Export] = []
    csv_groups: dict[Path, list[Path]] = {}
    for path in paths:
        file = problems.for_file(str(path))
        if not path.exists():
            file.add("", "no such file")
        elif path.is_dir():
            tabs = [p for p in sorted(path.iterdir()) if p.is_file() and _csv_sheet(p) is not None]
            books = [p for p in sorted(path.iterdir()) if p.is_file() and p.suffix.lower() in (".xlsx", ".xlsm")]
            if tabs:
                csv_groups.setdefault(path, []).extend(tabs)
            elif books:
                exports.extend(e for b in books if (e := _read_workbook(b, problems.for_file(str(b)))))
            else:
                file.add("", "no RVTools export in this directory (no RVTools_tab<sheet>.csv, no .xlsx)")
        elif path.suffix.lower() == ".csv":
            csv_groups.setdefault(path.parent, []).append(path)
        elif (export := _read_workbook(path, file)) is not None:
            exports.append(export)
    for directory, files in csv_groups.items():
        if (export := _read_csv_export(directory, files, problems)) is not None:
            exports.append(export)
    return exports


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _read_workbook(path: Path, problems: Problems) -> Export | None:
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except _UNREADABLE as exc:
        problems.add("", f"not an xlsx workbook (RVTools export): {exc}")
        return None
    tables: dict[str, Table | None] = {}
    try:
        for spec in SHEETS:
            name = find_sheet(workbook.sheetnames, spec.name)
            if name is None:
                _absent(spec, problems)
                tables[spec.name] = None
                continue
            tables[spec.name] = read_table(workbook[name].iter_rows(values_only=True), spec, problems)
    except _UNREADABLE as exc:
        problems.add("", f"cannot read the workbook: {exc}")
        return None
    finally:
        workbook.close()
    return Export(path, tables, _mtime(path))


def _absent(spec: SheetSpec, problems: Problems, hint: str = "") -> None:
    if spec.required:
        problems.add(f'sheet "{spec.name}"', f"required sheet is missing{hint}")


def _csv_sheet(path: Path) -> SheetSpec | None:
    """The sheet a CSV file holds, by its name: RVTools_tab<sheet>.csv (or plain <sheet>.csv)."""
    match = _TAB_CSV.search(path.name)
    name = match["sheet"] if match else path.stem
    return next((spec for spec in SHEETS if spec.name.casefold() == name.casefold()), None)


def _read_csv_export(directory: Path, files: list[Path], problems: Problems) -> Export | None:
    by_sheet: dict[str, Path] = {}
    for given in dict.fromkeys(files):
        spec = _csv_sheet(given)
        if spec is None and _TAB_CSV.search(given.name):
            continue  # a tab this importer does not read (vSource, vPartition, ...)
        if spec is None:
            problems.for_file(str(given)).add("", "not an RVTools tab CSV: its name should be RVTools_tab<sheet>.csv, "
                                                 "e.g. RVTools_tabvInfo.csv")
        elif spec.name in by_sheet:
            problems.for_file(str(given)).add("", f"a second {spec.name} CSV for this export "
                                                  f"(also {by_sheet[spec.name].name})")
        else:
            by_sheet[spec.name] = given
    if not by_sheet:
        return None
    tables: dict[str, Table | None] = {}
    for spec in SHEETS:
        path = by_sheet.get(spec.name)
        if path is None:
            _absent(spec, problems.for_file(str(directory)), f" (no RVTools_tab{spec.name}.csv)")
            tables[spec.name] = None
            continue
        file = problems.for_file(str(path))
        try:
            rows = list(_csv_rows(path.read_bytes()))
        except (OSError, csv.Error) as exc:
            file.add("", f"cannot read the CSV file: {exc}")
            tables[spec.name] = None
            continue
        tables[spec.name] = read_table(iter(rows), spec, file)
    mtimes = [m for p in by_sheet.values() if (m := _mtime(p)) is not None]
    return Export(directory, tables, min(mtimes) if mtimes else None)


def _csv_rows(data: bytes) -> Iterator[tuple[Any, ...]]:
    """Records of a CSV export: UTF-8 (with or without BOM) or Windows-1252; comma, semicolon or tab."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    if "\x00" in text:
        raise csv.Error("NUL byte in the file: not a text CSV")
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    csv.field_size_limit(_MAX_CSV_FIELD)
    for record in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
        yield tuple(record)
