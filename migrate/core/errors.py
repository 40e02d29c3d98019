"""The one error tree of the project; every error maps to a CLI exit code."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "AdapterError",
    "InputError",
    "LabError",
    "MigrateError",
    "OperationalError",
    "Problem",
]

EXIT_OK = 0
EXIT_OPERATIONAL = 1
EXIT_BAD_INPUT = 2


class MigrateError(Exception):
    """Base of every error the tool raises on purpose."""

    exit_code = EXIT_OPERATIONAL

    def to_dict(self) -> dict[str, object]:
        return {"error": type(self).__name__, "message": str(self)}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: which file, which field, what is wrong."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"file": self.file, "field": self.field, "message": self.message}


class InputError(MigrateError):
    """Bad input; lists every problem found, not just the first."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        if not self.problems:
            raise ValueError("InputError needs at least one problem")
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, file: str, field: str, message: str) -> InputError:
        return cls([Problem(file, field, message)])

    def to_dict(self) -> dict[str, object]:
        return {
            "error": type(self).__name__,
            "message": f"{len(self.problems)} problem(s) in the input",
            "problems": [p.to_dict() for p in self.problems],
        }


class AdapterError(MigrateError):
    """A provider call failed; `retryable` tells the engine whether to try again."""

    def __init__(self, provider: str, op: str, message: str, *, retryable: bool = False,
                 endpoint: str | None = None, code: str | None = None, exhausted: bool = False) -> None:
        self.provider = provider
        self.op = op
        self.retryable = retryable
        # retried already until its deadline (the endpoint stayed down): outer layers try it once more at most
        self.exhausted = exhausted
        self.endpoint = endpoint
        self.code = code          # the provider's fault type or error code, for mapping by type
        where = f" at {endpoint}" if endpoint else ""
        super().__init__(f"{provider} {op} failed{where}: {message}")

    def to_dict(self) -> dict[str, object]:
        return {
            "error": type(self).__name__,
            "message": str(self),
            "provider": self.provider,
            "op": self.op,
            "retryable": self.retryable,
            "exhausted": self.exhausted,
            "endpoint": self.endpoint,
            "code": self.code,
        }


class OperationalError(MigrateError):
    """Something in the environment stopped the work (not the user's input)."""


class LabError(OperationalError):
    """The built-in lab could not be built, started or stopped."""
