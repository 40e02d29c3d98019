"""Loading plugins from entry points: each one named, typed and unique, or an error naming its package."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from migrate.core.errors import OperationalError

__all__ = ["PluginRegistry", "load_plugins"]

T = TypeVar("T")


def _origin(point: EntryPoint) -> str:
    dist = point.dist
    package = f"{dist.name} {dist.version}" if dist is not None else "an unknown package"
    return f"entry point {point.name} = {point.value} ({point.group}, from {package})"


def load_plugins(group: str, kind: type[T], name_of: Callable[[T], str]) -> dict[str, T]:
    """Every object the entry points of `group` name, by name; OperationalError naming the entry point and
    its package when one does not import, is not a `kind`, declares another name, or takes a name twice."""
    found: dict[str, tuple[T, str]] = {}
    for point in entry_points(group=group):
        origin = _origin(point)
        try:
            value = point.load()
        except Exception as exc:  # a broken plugin: say which, not a traceback
            raise OperationalError(f"{origin} cannot be loaded: {type(exc).__name__}: {exc}") from exc
        if not isinstance(value, kind):
            raise OperationalError(f"{origin} is not a {kind.__name__} but a {type(value).__name__}")
        if name_of(value) != point.name:
            raise OperationalError(f"{origin} declares the name {name_of(value)!r}: the names must agree")
        if point.name in found:
            raise OperationalError(f"{origin} takes the name of {found[point.name][1]}: uninstall one of them")
        found[point.name] = (value, origin)
    return {name: value for name, (value, _) in found.items()}


class PluginRegistry(Generic[T]):
    """The plugins of one entry-point group, loaded on first use (once, whichever thread asks first)."""

    def __init__(self, group: str, kind: type[T], name_of: Callable[[T], str]) -> None:
        self._group, self._kind, self._name_of = group, kind, name_of
        self._lock = threading.Lock()
        self._loaded: dict[str, T] | None = None

    def __call__(self) -> Mapping[str, T]:
        with self._lock:
            if self._loaded is None:
                self._loaded = load_plugins(self._group, self._kind, self._name_of)
            return self._loaded
