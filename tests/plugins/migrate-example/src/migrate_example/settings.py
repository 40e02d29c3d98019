"""Settings of the dirtarget driver: site.yaml `target: {driver: dirtarget, path: ...}`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field

from migrate.core.config import DriverSettings
from migrate.core.errors import Problem

__all__ = ["DirTargetSettings"]


class DirTargetSettings(DriverSettings):
    """A directory VMs are archived into, one folder per VM."""

    driver: Literal["dirtarget"] = "dirtarget"
    name: str | None = Field(None, min_length=1, description="short label used in logs and reports (default: path)")
    path: Path = Field(..., description="an existing, writable directory (relative: to site.yaml's folder)")

    def relative_to(self, base: Path) -> DirTargetSettings:
        return self if self.path.is_absolute() else self.model_copy(update={"path": base / self.path})

    def file_problems(self, file: str, field: str, env: dict[str, str]) -> list[Problem]:
        if not self.path.is_dir():
            return [Problem(file, f"{field}.path", f"no such directory: {self.path}")]
        if not os.access(self.path, os.W_OK | os.X_OK):
            return [Problem(file, f"{field}.path", f"cannot write into {self.path}")]
        return []
