"""Sheets of an RVTools workbook as tables of rows, with cell parsing that records every problem."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from migrate.core.errors import Problem
from migrate.core.models.inventory import MAX_COUNT
from migrate.importers.rvtools_columns import SheetSpec, normalise_header

__all__ = ["Problems", "Row", "Table", "find_sheet", "read_table"]

_TRUE = frozenset({"true", "yes", "1", "on", "enabled"})
_FALSE = frozenset({"false", "no", "0", "off", "disabled"})
# RVTools writes local time without a zone, in the format of the exporting machine's locale
_DATE_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S",
                 "%d.%m.%Y %H:%M:%S", "%d-%m-%Y %H:%M:%S")


class Problems:
    """Collects the problems of one input file into a list that several files' collectors can share."""

    def __init__(self, file: str, items: list[Problem] | None = None) -> None:
        self.file = file
        self.items: list[Problem] = [] if items is None else items

    def for_file(self, file: str) -> Problems:
        """A collector for another file, adding to the same list."""
        return Problems(file, self.items)

    def add(self, field: str, message: str) -> None:
        self.items.append(Problem(self.file, field, message))

    def __bool__(self) -> bool:
        return bool(self.items)


@dataclass
class Table:
    """One sheet: its header, where each logical column is, and its raw rows (Excel row number, values)."""

    spec: SheetSpec
    headers: list[str]
    columns: dict[str, tuple[int, str]]  # logical key -> (index, header as written)
    raw_rows: list[tuple[int, tuple[Any, ...]]]
    problems: Problems

    @property
    def file(self) -> str:
        return self.problems.file

    def has(self, key: str) -> bool:
        return key in self.columns

    def index_of(self, header: str) -> int | None:
        wanted = normalise_header(header)
        return next((i for i, h in enumerate(self.headers) if normalise_header(h) == wanted), None)

    def rows(self) -> Iterator[Row]:
        for number, values in self.raw_rows:
            yield Row(self, number, values)


class Row:
    """One data row; the typed getters return None for empty cells and record a problem for bad ones."""

    def __init__(self, table: Table, number: int, values: tuple[Any, ...]) -> None:
        self.table = table
        self.number = number
        self.values = values

    def field(self, key: str) -> str:
        header = self.table.columns[key][1] if key in self.table.columns else key
        return self.field_of(header)

    def field_of(self, header: str) -> str:
        return f'{self.table.spec.name} row {self.number}, column "{header}"'

    def bad(self, key: str, message: str) -> None:
        self.table.problems.add(self.field(key), message)

    def at(self, index: int) -> Any:
        return self.values[index] if index < len(self.values) else None

    def raw(self, key: str) -> Any:
        column = self.table.columns.get(key)
        return None if column is None else self.at(column[0])

    def text(self, key: str) -> str | None:
        return cell_text(self.raw(key))

    def integer(self, key: str, *, minimum: int | None = 0, maximum: int = MAX_COUNT) -> int | None:
        value = self.raw(key)
        if cell_text(value) is None:
            return None
        number = _as_number(value)
        if number is None or (isinstance(number, float) and not (math.isfinite(number) and number.is_integer())):
            self.bad(key, f"not a whole number: {_shown(value)!r}")
            return None
        return int(number) if self._in_range(key, number, minimum, maximum) else None

    def decimal(self, key: str, *, minimum: float | None = 0, maximum: float = float(MAX_COUNT)) -> float | None:
        value = self.raw(key)
        if cell_text(value) is None:
            return None
        number = _as_number(value)
        if number is None or not math.isfinite(number):
            self.bad(key, f"not a number: {_shown(value)!r}")
            return None
        return float(number) if self._in_range(key, number, minimum, maximum) else None

    def _in_range(self, key: str, number: float, minimum: float | None, maximum: float) -> bool:
        if minimum is not None and number < minimum:
            self.bad(key, f"must be at least {minimum:g}, got {number:g}")
            return False
        if number > maximum:
            self.bad(key, f"must be at most {maximum:g}, got {number:g}")
            return False
        return True

    def date(self, key: str) -> datetime | None:
        """A date and time cell (a real xlsx date, or text in one of RVTools' formats), taken as UTC."""
        value = self.raw(key)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        text = cell_text(value)
        if text is None:
            return None
        for pattern in _DATE_FORMATS:
            try:
                return datetime.strptime(text, pattern).replace(tzinfo=UTC)
            except ValueError:
                continue
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            self.bad(key, f"not a date and time: {_shown(value)!r}")
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    def flag(self, key: str) -> bool | None:
        value = self.raw(key)
        if isinstance(value, bool):
            return value
        text = cell_text(value)
        if text is None:
            return None
        if text.casefold() in _TRUE:
            return True
        if text.casefold() in _FALSE:
            return False
        self.bad(key, f"not true or false: {text!r}")
        return None


def cell_text(value: Any) -> str | None:
    """A cell as stripped text; None for empty cells."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def _shown(value: Any) -> str:
    text = cell_text(value) or ""
    return text if len(text) <= 40 else f"{text[:40]}... ({len(text)} characters)"


def _as_number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    try:
        return float(str(value).strip().replace(",", ""))
    except (ValueError, OverflowError):
        return None


def find_sheet(sheetnames: list[str], name: str) -> str | None:
    """The workbook's name for a sheet: exact, any case, or with the "tab" prefix of RVTools' CSV names."""
    wanted = {name.casefold(), f"tab{name}".casefold()}
    return name if name in sheetnames else next((s for s in sheetnames if s.casefold() in wanted), None)


def read_table(rows: Iterator[tuple[Any, ...]], spec: SheetSpec, problems: Problems) -> Table | None:
    """Build a table from a sheet's rows (header first); None if the header lacks a required column."""
    header_row = next(rows, None)
    headers = [cell_text(h) or "" for h in (header_row or ())]
    if not any(headers):
        problems.add(f'sheet "{spec.name}"', "sheet is empty: no header row")
        return None
    positions: dict[str, int] = {}
    for index, header in enumerate(headers):
        if header:
            positions.setdefault(normalise_header(header), index)
    columns: dict[str, tuple[int, str]] = {}
    for key, names in spec.columns.items():
        found = next((n for n in names if normalise_header(n) in positions), None)
        if found is not None:
            index = positions[normalise_header(found)]
            columns[key] = (index, headers[index])
    missing = [k for k in spec.required_columns if k not in columns]
    for key in missing:
        names = spec.columns[key]
        also = f" (nor {' or '.join(repr(n) for n in names[1:])})" if len(names) > 1 else ""
        problems.add(f'{spec.name}, column "{names[0]}"', f"required column is missing{also}")
    raw_rows = [(number, tuple(values)) for number, values in enumerate(rows, start=2)
                if any(cell_text(v) is not None for v in values)]
    return None if missing else Table(spec, headers, columns, raw_rows, problems)
