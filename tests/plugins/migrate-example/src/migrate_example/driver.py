"""The dirtarget driver: a directory as the target role, holding one folder per archived VM."""

from __future__ import annotations

from typing import Any

from migrate.core.drivers import ConnectOptions, Driver, Role
from migrate_example.settings import DirTargetSettings
from migrate_example.target import DirTarget

__all__ = ["DIRTARGET"]


def _connect(role: Role, settings: DirTargetSettings, options: ConnectOptions) -> DirTarget:
    return DirTarget(settings)


def _check(settings: DirTargetSettings) -> dict[str, Any]:
    """`migrate check`: the directory answers, with its archives and free space."""
    target = DirTarget(settings)
    archives, free = target.ex_archives(), target.free_bytes()
    return {"path": str(settings.path), "archives": len(archives), "free_bytes": free,
            "summary": f"{settings.path}  {len(archives)} archive(s), {free / 2**30:.1f} GiB free"}


DIRTARGET = Driver(
    name="dirtarget",
    description="A directory: each VM archived into a folder of its own (disk files and a JSON manifest)",
    roles=frozenset({Role.TARGET}),
    settings=DirTargetSettings,
    connect=_connect,
    check=_check,
)
