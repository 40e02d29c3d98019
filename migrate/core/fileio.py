"""Reading input files with precise errors, and writing output files atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from migrate.core.errors import InputError, Problem

__all__ = [
    "atomic_write",
    "load_json_mapping",
    "load_yaml_mapping",
    "read_input_text",
    "validation_problems",
    "write_json",
    "write_yaml",
]

ModelT = TypeVar("ModelT", bound=BaseModel)
# libyaml when present: the pure-Python scanner takes quadratic time on deeply nested flow collections
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_input_text(path: Path, encoding: str = "utf-8") -> str:
    """The text of an input file; a missing or unreadable file is bad input naming it."""
    try:
        return path.read_text(encoding=encoding)
    except FileNotFoundError:
        raise InputError.single(str(path), "", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError.single(str(path), "", f"cannot read: {exc}") from None


def _parse_failure(exc: Exception) -> str:
    """Why a parser gave up on input it could not hold (too deep, a number of thousands of digits)."""
    if isinstance(exc, RecursionError):
        return "values nested too deeply"
    return f"a value out of range ({str(exc).split(':')[0]})"


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    """Parse a YAML file whose top level must be a mapping."""
    file = str(path)
    text = read_input_text(path)
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError.single(file, where, f"not valid YAML: {problem}") from None
    except (ValueError, OverflowError, RecursionError) as exc:
        raise InputError.single(file, "", f"not valid YAML: {_parse_failure(exc)}") from None
    if not isinstance(data, dict):
        raise InputError.single(file, "", "top level must be a mapping of keys to values")
    return data


def load_json_mapping(path: Path, expected: str) -> dict[str, Any]:
    """Parse a JSON file whose top level must be an object; `expected` says what it should hold."""
    file = str(path)
    text = read_input_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError.single(file, f"line {exc.lineno}, column {exc.colno}", f"not valid JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise InputError.single(file, "", f"not valid JSON: {_parse_failure(exc)}") from None
    if not isinstance(data, dict):
        raise InputError.single(file, "", f"top level must be a JSON object with {expected}")
    return data


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def validation_problems(model: type[ModelT], data: Any, file: str) -> ModelT:
    """Validate `data` as `model`; on failure raise InputError with one Problem per bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "missing":
                message = "required field is missing"
            elif err["type"] == "extra_forbidden":
                message = "unknown field"
            problems.append(Problem(file, _field_path(loc) or "(top level)", message))
        raise InputError(problems) from None


def atomic_write(path: Path, data: str | bytes, *, mode: int = 0o644) -> None:
    """Write to a temp file beside `path`, fsync, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, value: Any, *, mode: int = 0o644) -> None:
    atomic_write(path, json.dumps(value, indent=2, sort_keys=False) + "\n", mode=mode)


def write_yaml(path: Path, value: Any, *, mode: int = 0o644, header: str = "") -> None:
    text = yaml.safe_dump(value, sort_keys=False, default_flow_style=False)
    atomic_write(path, header + text, mode=mode)
