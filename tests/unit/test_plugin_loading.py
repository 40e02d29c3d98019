"""Entry points that cannot serve as plugins are refused with a message naming the entry point, not a traceback."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

import migrate.core.plugins as plugins
from migrate.core.drivers import Driver
from migrate.core.errors import OperationalError

GROUP = "migrate.drivers"


def _load(monkeypatch: pytest.MonkeyPatch, *points: tuple[str, str]) -> dict[str, Driver]:
    found = [EntryPoint(name, value, GROUP) for name, value in points]
    monkeypatch.setattr(plugins, "entry_points", lambda group: [p for p in found if p.group == group])
    return plugins.load_plugins(GROUP, Driver, lambda d: d.name)


def test_good_entry_points_load_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = _load(monkeypatch, ("vcenter", "adapters.vcenter.driver:VCENTER"),
                   ("noop", "adapters.noop.driver:NOOP_DRIVER"))
    assert sorted(loaded) == ["noop", "vcenter"]


@pytest.mark.parametrize(("points", "says"), [
    ([("gone", "no_such_package.driver:X")], "gone = no_such_package.driver:X (migrate.drivers, from an unknown "
                                             "package) cannot be loaded: ModuleNotFoundError"),
    ([("vcenter", "adapters.vcenter.settings:VCenterEndpoint")], "is not a Driver but a ModelMetaclass"),
    ([("other", "adapters.vcenter.driver:VCENTER")], "declares the name 'vcenter': the names must agree"),
    ([("vcenter", "adapters.vcenter.driver:VCENTER")] * 2, "takes the name of entry point vcenter"),
])
def test_bad_entry_points_are_named(monkeypatch: pytest.MonkeyPatch, points: list[tuple[str, str]], says: str) -> None:
    with pytest.raises(OperationalError) as caught:
        _load(monkeypatch, *points)
    assert says in str(caught.value)
