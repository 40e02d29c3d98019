"""Cross-field checks that report each problem at its own field path, like pydantic's own errors."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

__all__ = ["Loc", "raise_problems"]

Loc = tuple[int | str, ...]


def raise_problems(title: str, problems: Sequence[tuple[Loc, str]]) -> None:
    """Raise one ValidationError holding every (location, message) in `problems`; nothing if empty."""
    if not problems:
        return
    details = [
        InitErrorDetails(type=PydanticCustomError("semantic", "{message}", {"message": message}), loc=loc, input=None)
        for loc, message in problems
    ]
    raise ValidationError.from_exception_data(title, details)
