"""Base classes of every file model: unknown keys are errors (so a typo is reported, not ignored)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["FrozenModel", "StrictModel"]


class StrictModel(BaseModel):
    """A model that refuses unknown fields."""

    model_config = ConfigDict(extra="forbid")


class FrozenModel(StrictModel):
    """A strict model whose instances cannot change after validation."""

    model_config = ConfigDict(extra="forbid", frozen=True)
