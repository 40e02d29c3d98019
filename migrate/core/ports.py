"""The small interfaces the engine drives, one per role (libcloud style); providers implement them.

Only what the engine's phases need so far is here. Rules for implementations:

- ids are plain strings: a source VM is its instanceUuid, a target VM is whatever `find_vm` returns;
- every verb is safe to call again (phases re-run after a crash): powering off an off VM, tagging a
  tagged VM or marking a marked VM does nothing;
- `MigrationTarget.create_vm` records the source id on the new VM atomically with its creation (e.g.
  in the ConfigSpec's extraConfig), so `find_vm` finds a VM whose creation was interrupted before it
  was tagged, and never a second one;
- long operations return an `Operation` the engine polls (`migrate.engine.context.wait_operation`);
- failures raise migrate.core.errors.AdapterError, retryable when trying again may help (timeouts, dropped
  connections, busy objects), mapped from SDK fault types, never from message text;
- verbs only one provider has are prefixed `ex_` and are not part of these interfaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

from migrate.core.errors import AdapterError

__all__ = [
    "Adapters",
    "CloudLedger",
    "DiskSource",
    "LiveRelocation",
    "MarkLedger",
    "MigrationTarget",
    "NetworkPlacement",
    "Operation",
    "OperationState",
    "OperationStatus",
    "PowerState",
    "Relocation",
    "ReplatformCatalog",
    "Replatformer",
    "SourceInventory",
    "TargetLedger",
]

PowerState = Literal["poweredOn", "poweredOff", "suspended"]


class OperationState(StrEnum):
    """Where a long operation is."""

    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"


@dataclass(frozen=True)
class OperationStatus:
    """One poll of an operation: its state, progress (percent), result (plain data) or error."""

    state: OperationState
    progress: int | None = None
    result: Any = None
    error: AdapterError | None = None


@runtime_checkable
class Operation(Protocol):
    """A long operation (a vCenter task, an EC2 import...) that the engine polls until it ends."""

    @property
    def id(self) -> str:
        """Provider id of the operation (e.g. task-123), for logs and the journal."""
        ...

    def poll(self) -> OperationStatus:
        """The operation's current status (raises AdapterError if the provider cannot be asked)."""
        ...


@runtime_checkable
class SourceInventory(Protocol):
    """The on-prem vCenter the VMs leave."""

    @property
    def name(self) -> str:
        """Provider label for logs and errors (e.g. `onprem`)."""
        ...

    def vm_power_state(self, vm_id: str) -> PowerState:
        """Current power state of a source VM."""
        ...

    def power_off_vm(self, vm_id: str) -> Operation:
        """Power a source VM off (guest shutdown first where the provider can); nothing if already off."""
        ...

    def is_marked_migrated(self, vm_id: str) -> bool:
        """True if the source VM carries the migrated mark."""
        ...

    def mark_migrated(self, vm_id: str, note: str) -> None:
        """Mark a source VM as migrated (rename or tag) and leave it off for rollback; nothing if marked."""
        ...


@runtime_checkable
class DiskSource(SourceInventory, Protocol):
    """A source whose VMs' disk files can be read (the cold and replatform methods), and restored on rollback."""

    def describe_vm(self, vm_id: str) -> dict[str, Any]:
        """Live facts: power, tools, snapshots, devices, disks with every file, NICs."""
        ...

    def read_file(self, path: str) -> Iterator[bytes]:
        """Stream one of the VM's datastore files ('[ds] dir/file')."""
        ...

    def file_checksum(self, path: str) -> tuple[str, int] | None:
        """sha256 and size of a datastore file, or None if it does not exist."""
        ...

    def power_on_vm(self, vm_id: str) -> Operation:
        """Power a source VM on (rollback); nothing if on."""
        ...

    def unmark_migrated(self, vm_id: str) -> None:
        """Take the migrated mark off (rollback); nothing if not marked."""
        ...


@runtime_checkable
class MigrationTarget(Protocol):
    """The cloud SDDC vCenter the VMs arrive in."""

    @property
    def name(self) -> str:
        """Provider label for logs and errors (e.g. `cloud`)."""
        ...

    def find_vm(self, source_id: str) -> str | None:
        """The target VM created for `source_id` (by the id recorded at creation or its tag), or None."""
        ...

    def create_vm(self, source_id: str, spec: Mapping[str, Any]) -> Operation:
        """Create the target VM from `spec` (plain data), recording `source_id` on it atomically.

        The operation's result is the new VM's id.
        """
        ...

    def is_tagged(self, target_id: str, source_id: str) -> bool:
        """True if the target VM carries the tag naming `source_id`."""
        ...

    def tag_vm(self, target_id: str, source_id: str) -> None:
        """Tag the target VM with the source instanceUuid; nothing if tagged."""
        ...

    def vm_power_state(self, target_id: str) -> PowerState:
        """Current power state of a target VM."""
        ...

    def power_on_vm(self, target_id: str) -> Operation:
        """Power a target VM on; nothing if already on."""
        ...


@dataclass(frozen=True)
class Relocation:
    """What moving a running VM to a target would do: the spec as plain data (no secrets) and what is wrong
    with it (empty: the target accepts it)."""

    spec: dict[str, Any]
    problems: tuple[str, ...] = ()


@runtime_checkable
class LiveRelocation(Protocol):
    """A target that can receive a running VM from a source (the `live` method: cross-vCenter vMotion).

    The source is the run's source adapter; a target that cannot take VMs from that kind of source raises
    OperationalError. A relocated VM keeps the source id it is found by.
    """

    @property
    def name(self) -> str:
        """Provider label for logs and errors."""
        ...

    def describe_relocation(self, source: SourceInventory, vm_id: str, facts: Mapping[str, Any]) -> Relocation:
        """The relocation that would move `vm_id` with its planned `facts` (read-only)."""
        ...

    def start_relocation(self, source: SourceInventory, vm_id: str, facts: Mapping[str, Any]) -> Operation:
        """Start moving the running VM; AdapterError if its relocation has problems. The result is empty."""
        ...

    def find_relocated(self, source_id: str) -> str | None:
        """The target VM that `source_id` became, or None."""
        ...


@runtime_checkable
class Replatformer(Protocol):
    """Moves VMs from the cloud vCenter to native EC2 instances; its verbs arrive with re-platforming."""

    @property
    def name(self) -> str:
        """Provider label for logs and errors (e.g. `aws`)."""
        ...


@dataclass(frozen=True)
class NetworkPlacement:
    """Where the NICs on one source port group land when re-platformed: subnet, security groups, kept IP."""

    subnet_id: str
    security_group_ids: tuple[str, ...] = ()
    keep_private_ip: bool = False


@runtime_checkable
class ReplatformCatalog(Protocol):
    """What a re-platform plan is fixed from, read-only and before any change: the instance types the
    replatformer offers and the network placement site.yaml maps each port group to."""

    @property
    def region(self) -> str:
        """Where the types are offered, for messages (e.g. `us-east-1`)."""
        ...

    def instance_types(self, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Records of the named types (planners.instance_types.InstanceType fields), or of every
        current-generation type when `names` is None; InputError when a named type is not offered."""
        ...

    def network_of(self, portgroup: str) -> NetworkPlacement | None:
        """The placement mapped for the port group, or None when there is none."""
        ...


# -- read-only lookups for `migrate reconcile` (what exists, compared with what a journal says) ------------

@runtime_checkable
class MarkLedger(Protocol):
    """A source that can report, in bulk and read-only, which of its VMs carry the migrated mark."""

    def migration_marks(self, vm_ids: Iterable[str]) -> dict[str, dict[str, Any] | None]:
        """Per VM id: {name, power_state, mark (original name, note) or None, marked}, or None if not found."""
        ...


@runtime_checkable
class TargetLedger(Protocol):
    """A target that can list, in bulk and read-only, the VMs recording a source id."""

    def source_records(self) -> dict[str, list[dict[str, Any]]]:
        """source id -> target VMs recording it, each {id, name, power_state, tagged}."""
        ...


@runtime_checkable
class CloudLedger(Protocol):
    """A re-platform provider that can list, read-only, the resources carrying our tags."""

    def tagged_resources(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Live resources with our tags: {kind, id, state, source_id, run_id, wave, key, sealed}."""
        ...


@dataclass(frozen=True)
class Adapters:
    """The adapters a run's phases use (None where a method does not need that role)."""

    source: SourceInventory | None = None
    target: MigrationTarget | None = None
    replatformer: Replatformer | None = None
