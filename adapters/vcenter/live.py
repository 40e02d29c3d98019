"""Cross-vCenter vMotion of one VM from the source adapter to the target adapter (see relocate.py): what
VCenterTarget's migrate.core.ports.LiveRelocation verbs do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pyVmomi import vim

from adapters.vcenter.lookup import find_named
from adapters.vcenter.relocate import describe_spec, relocate_spec, service_locator, validate_spec
from adapters.vcenter.source import VCenterSource
from migrate.core.errors import AdapterError
from migrate.core.ports import Operation, Relocation

if TYPE_CHECKING:
    from adapters.vcenter.target import VCenterTarget  # it delegates here

__all__ = ["describe_relocation", "start_relocation"]


def _spec(source: VCenterSource, target: VCenterTarget, vm_id: str, facts: Mapping[str, Any]) -> Any:
    moref = source.moref(vm_id)
    devices = source.ops.read(moref, ["config.hardware.device"], "read devices")["config.hardware.device"] or []
    place = facts["placement"]
    placement = target.placement(place.get("cluster"), place.get("folder"), place.get("resource_pool"))
    datastores = sorted({d["target_datastore"] for d in facts.get("disks", [])}) or [place["datastore"]]
    if len(datastores) != 1:
        raise AdapterError("vcenter", "relocate", f"live migration puts all disks on one datastore, the plan maps "
                                                  f"them to {datastores}", code="InvalidPlacement")
    datastore = target.client.call("find datastore", lambda si: find_named(si, vim.Datastore, datastores[0]))
    networks = target.networks(sorted({n["target_network"] for n in facts.get("nics", [])}))
    missing = [name for name, found in networks.items() if found is None]
    if datastore is None or missing:
        raise AdapterError("vcenter", "relocate", f"target lacks datastore {datastores[0]!r} or networks {missing}",
                           code="NotFound")
    return relocate_spec(list(devices), facts, service_locator(target.client), placement, datastore,
                         {k: v for k, v in networks.items() if v is not None})


def describe_relocation(source: VCenterSource, target: VCenterTarget, vm_id: str,
                        facts: Mapping[str, Any]) -> Relocation:
    """The RelocateSpec that would move the VM (without secrets) and what is wrong with it."""
    spec = _spec(source, target, vm_id, facts)
    return Relocation(spec=describe_spec(spec), problems=tuple(validate_spec(spec)))


def start_relocation(source: VCenterSource, target: VCenterTarget, vm_id: str,
                     facts: Mapping[str, Any]) -> Operation:
    """RelocateVM_Task with the ServiceLocator; the operation's result is empty (find the VM on the target)."""
    spec = _spec(source, target, vm_id, facts)
    problems = validate_spec(spec)
    if problems:
        raise AdapterError("vcenter", "relocate", "; ".join(problems), code="InvalidSpec")
    moref = source.moref(vm_id)
    return source.client.task("relocate", lambda si: source.ops.vm(moref).RelocateVM_Task(spec=spec))
