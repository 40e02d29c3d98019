"""The live method reaches the target only through migrate.core.ports.LiveRelocation (no vCenter class)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from adapters.vcenter.settings import VCenterEndpoint
from adapters.vcenter.target import VCenterTarget
from migrate.core.errors import OperationalError
from migrate.core.ports import (
    Adapters,
    LiveRelocation,
    Operation,
    OperationState,
    OperationStatus,
    PowerState,
    Relocation,
    SourceInventory,
)
from migrate.engine.context import PhaseContext
from migrate.engine.live import LIVE
from migrate.engine.plan import VmFacts, WavePlan
from tests.unit.test_engine_helpers import FakeClock

VM = "uuid-web-01"
FACTS = {"name": "web-01", "disks": [{"key": 2000}], "nics": [{"mac": "00:50:56:00:00:01", "target_network": "seg"}]}


class _Done:
    id = "task-7"

    def poll(self) -> OperationStatus:
        return OperationStatus(OperationState.SUCCESS, 100)


class _Source:
    """A source that describes its one VM (the DiskSource verbs the live method does not use raise)."""

    name = "onprem"

    def describe_vm(self, vm_id: str) -> dict[str, Any]:
        return {"name": "web-01", "power_state": "poweredOn", "tools_running": True, "snapshots": 0,
                "devices": [], "disks": [{"key": 2000}], "nics": []}

    def vm_power_state(self, vm_id: str) -> PowerState:
        return "poweredOn"

    def power_off_vm(self, vm_id: str) -> Operation:
        raise NotImplementedError

    def power_on_vm(self, vm_id: str) -> Operation:
        raise NotImplementedError

    def is_marked_migrated(self, vm_id: str) -> bool:
        return False

    def mark_migrated(self, vm_id: str, note: str) -> None:
        raise NotImplementedError

    def unmark_migrated(self, vm_id: str) -> None:
        raise NotImplementedError

    def read_file(self, path: str) -> Iterator[bytes]:
        raise NotImplementedError

    def file_checksum(self, path: str) -> tuple[str, int] | None:
        raise NotImplementedError


class _Receiver:
    """A target that takes running VMs: records what it was asked."""

    name = "cloud"

    def __init__(self, problems: tuple[str, ...] = ()) -> None:
        self.problems = problems
        self.started: list[str] = []
        self.moved: set[str] = set()

    def describe_relocation(self, source: SourceInventory, vm_id: str, facts: Mapping[str, Any]) -> Relocation:
        return Relocation(spec={"vm": vm_id, "from": source.name}, problems=self.problems)

    def start_relocation(self, source: SourceInventory, vm_id: str, facts: Mapping[str, Any]) -> Operation:
        self.started.append(vm_id)
        self.moved.add(vm_id)
        return _Done()

    def find_relocated(self, source_id: str) -> str | None:
        return f"vm-{source_id}" if source_id in self.moved else None


class _ColdOnly:
    """A target without the LiveRelocation verbs."""

    name = "sddc"


def _ctx(target: Any, source: Any = None) -> PhaseContext:
    return PhaseContext(run_id="r", wave=WavePlan(id=1, vms=[VM], method="live"), vm=VmFacts(id=VM, facts=FACTS),
                        phase="p", attempt=1, key="k", adapters=Adapters(source=source or _Source(), target=target),
                        prior={}, log=None, clock=FakeClock())


def _phase(name: str) -> Any:
    return LIVE.phase(name).run


def test_the_phases_go_through_the_port() -> None:
    """The spec is journaled as plain data; relocate starts once and a repeat finds the moved VM."""
    target = _Receiver()
    assert _phase("precheck")(_ctx(target))["power_state"] == "poweredOn"
    assert _phase("build_relocate_spec")(_ctx(target)) == {"spec": {"vm": VM, "from": "onprem"}, "problems": []}
    assert _phase("relocate")(_ctx(target)) == {"target_id": f"vm-{VM}"}
    assert _phase("relocate")(_ctx(target)) == {"target_id": f"vm-{VM}"}
    assert target.started == [VM]


def test_a_spec_with_problems_blocks_the_precheck() -> None:
    with pytest.raises(OperationalError, match="relocate_spec: no shared vMotion network"):
        _phase("precheck")(_ctx(_Receiver(problems=("no shared vMotion network",))))


def test_a_target_that_cannot_receive_a_running_vm_is_named() -> None:
    with pytest.raises(OperationalError, match=r"target 'sddc' \(_ColdOnly\) cannot"):
        _phase("build_relocate_spec")(_ctx(_ColdOnly()))


def test_the_vcenter_target_offers_the_port_and_wants_a_vcenter_source() -> None:
    """VCenterTarget is a LiveRelocation; another kind of source is refused before any call (offline)."""
    target = VCenterTarget(VCenterEndpoint(name="cloud", url="https://sddc.example/sdk", username="u",
                                           password_env="P"))
    assert isinstance(target, LiveRelocation)
    with pytest.raises(OperationalError, match="needs a vCenter source, not onprem"):
        target.describe_relocation(_Source(), VM, FACTS)
    with pytest.raises(OperationalError, match="needs a vCenter source"):
        target.start_relocation(_Source(), VM, FACTS)
