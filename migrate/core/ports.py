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
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from migrate.core.errors import AdapterError, OperationalError

if TYPE_CHECKING:
    from migrate.core.block_progress import BlockProgress

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
    "ReplicaTarget",
    "ReplicationSource",
    "SnapshotChainTarget",
    "SnapshotDisk",
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


@runtime_checkable
class ColdTarget(MigrationTarget, Protocol):
    """A target that takes copied disk files and builds the VM around them (what the cold method needs)."""

    def find_all_vms(self, source_id: str) -> list[str]: ...
    def describe_vm(self, target_id: str) -> dict[str, Any]: ...
    def networks(self, names: Iterable[str]) -> dict[str, dict[str, Any] | None]: ...
    def datastores(self, names: Iterable[str]) -> dict[str, int | None]: ...
    def placement(self, cluster: str | None, folder: str | None, pool: str | None) -> tuple[Any, Any]: ...
    def name_taken(self, name: str) -> list[str]: ...
    def write_file(self, path: str, chunks: Iterable[bytes]) -> str: ...
    def file_checksum(self, path: str) -> tuple[str, int] | None: ...
    def delete_file(self, path: str) -> Operation: ...
    def destroy_vm(self, target_id: str) -> Operation: ...


@dataclass(frozen=True)
class SnapshotDisk:
    """One disk as a snapshot froze it: device key, the frozen file holding its data (read by ranges), its
    size, the change id (None without change tracking), the disk's capacity, and every file of the frozen
    disk (descriptor and extents, the data file among them) a replica needs."""

    key: int
    file: str
    size: int
    change_id: str | None
    capacity_bytes: int
    files: tuple[str, ...] = ()


@runtime_checkable
class ReplicationSource(DiskSource, Protocol):
    """A source whose running VMs can be replicated (the warm method): changed block tracking, snapshots
    named by the caller (so they are found again after a crash), changed extents, ranges of frozen files."""

    def enable_change_tracking(self, vm_id: str) -> bool:
        """Turn changed block tracking on; True if it was off (False: nothing changed)."""
        ...

    def disable_change_tracking(self, vm_id: str) -> None:
        """Turn changed block tracking off (rollback of a VM whose tracking the run turned on)."""
        ...

    def change_tracking_problems(self, vm_id: str) -> list[str]:
        """Why tracking cannot be used or turned on (empty: it can)."""
        ...

    def snapshots(self, vm_id: str) -> list[dict[str, Any]]:
        """Every snapshot of the VM: `id`, `name` (whoever took it)."""
        ...

    def create_snapshot(self, vm_id: str, name: str) -> Operation:
        """Take a snapshot without memory or quiescing; the operation's result is its id."""
        ...

    def remove_snapshot(self, snapshot_id: str) -> Operation:
        """Remove one snapshot, consolidating its delta into the parent; nothing if it is gone."""
        ...

    def snapshot_disks(self, vm_id: str, snapshot_id: str) -> list[SnapshotDisk]:
        """The VM's disks as the snapshot froze them."""
        ...

    def changed_extents(self, vm_id: str, snapshot_id: str, disk: SnapshotDisk,
                        since: str) -> Iterator[tuple[int, int]]:
        """(offset, length) of every area of `disk` written after change id `since` ("*": every allocated
        area) and held in the snapshot, in offset order."""
        ...

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        """`length` bytes of a datastore file from `offset` (short only at the file's end)."""
        ...


@runtime_checkable
class ReplicaTarget(ColdTarget, Protocol):
    """A target whose datastore files can be written in place, range by range (warm replicas)."""

    def write_range(self, path: str, offset: int, data: bytes, total: int) -> None:
        """Write `data` at `offset` of a datastore file, creating it; the file is then at least `total` long."""
        ...

    def file_size(self, path: str) -> int | None:
        """Size of a datastore file, None if it does not exist."""
        ...

    def ranged_write_problems(self, datastore: str) -> list[str]:
        """Why ranged writes do not work on `datastore` (a probe file written and read back; empty: they do)."""
        ...

    def copy_file(self, source_path: str, target_path: str) -> Operation:
        """Copy a datastore file on the target to another path there, replacing it (test copies of replicas)."""
        ...

    def find_test_vms(self, source_id: str) -> list[str]:
        """The test copies of `source_id` (created with `test: True` in the spec: never found by `find_vm`)."""
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


@runtime_checkable
class ReplatformTarget(Replatformer, Protocol):
    """A cloud that takes disks as block snapshots, images and instances (what the replatform method needs)."""

    @property
    def progress(self) -> BlockProgress: ...
    def launch_problems(self, *, vm: str, instance_type: str, architecture: str, boot_mode: str | None,
                        nics: list[dict[str, Any]]) -> list[str]: ...
    def instances_of(self, source_id: str) -> list[dict[str, Any]]: ...
    def find_sealed_snapshot(self, key: str) -> str | None: ...
    def find_pending_snapshot(self, key: str) -> str | None: ...
    def start_disk_snapshot(self, *, owner: Mapping[str, str], key: str, volume_gib: int,
                            description: str) -> str: ...
    def upload_disk(self, chunks: Iterable[bytes], size_bytes: int, *, owner: Mapping[str, str], key: str,
                    volume_gib: int, description: str, resume_snapshot: str | None = None,
                    done: frozenset[int] = frozenset(), on_block: Any = None) -> dict[str, Any]: ...
    def verify_disk(self, snapshot_id: str, chunks: Iterable[bytes], size_bytes: int) -> dict[str, Any]: ...
    def register_image(self, *, owner: Mapping[str, str], key: str, vm_name: str, firmware: str | None,
                       guest_id: str | None, disks: list[Mapping[str, Any]]) -> dict[str, Any]: ...
    def launch(self, *, owner: Mapping[str, str], key: str, vm: str, image: Mapping[str, Any],
               disks: list[Mapping[str, Any]], instance_type: str, nics: list[dict[str, Any]]) -> dict[str, Any]: ...
    def wait_ready(self, instance_id: str) -> dict[str, Any]: ...
    def describe_instance(self, instance_id: str) -> dict[str, Any] | None: ...
    def remove(self, owner: Mapping[str, str]) -> dict[str, Any]: ...


@runtime_checkable
class SnapshotChainTarget(ReplatformTarget, Protocol):
    """A cloud that also takes a disk as a line of block snapshots, each a child of the last holding only the
    blocks that changed, and launches test instances kept apart from the real one (warm re-platform)."""

    def start_disk_snapshot(self, *, owner: Mapping[str, str], key: str, volume_gib: int, description: str,
                            parent_id: str | None = None) -> str: ...
    def upload_blocks(self, blocks: Iterable[tuple[int, bytes]], *, snapshot_id: str, volume_gib: int,
                      total_blocks: int, done: frozenset[int] = frozenset(), skip_zero: bool = False,
                      on_block: Any = None) -> dict[str, Any]: ...
    def verify_chain(self, snapshot_id: str, chunks: Iterable[bytes], size_bytes: int) -> dict[str, Any]: ...
    def sealed_checksum(self, snapshot_id: str) -> str | None: ...
    def prune_snapshots(self, owner: Mapping[str, str], key_prefix: str, keep: Iterable[str]) -> list[str]: ...
    def register_image(self, *, owner: Mapping[str, str], key: str, vm_name: str, firmware: str | None,
                       guest_id: str | None, disks: Sequence[Mapping[str, Any]],
                       test: bool = False) -> dict[str, Any]: ...
    def launch(self, *, owner: Mapping[str, str], key: str, vm: str, image: Mapping[str, Any],
               disks: Sequence[Mapping[str, Any]], instance_type: str, nics: Sequence[Mapping[str, Any]],
               test: bool = False) -> dict[str, Any]: ...
    def remove_tests(self, owner: Mapping[str, str]) -> dict[str, Any]: ...


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

    def test_network_of(self, portgroup: str) -> NetworkPlacement | None:
        """The isolated placement test migrations use for the port group, or None when there is none."""
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
    """The adapters a run's phases use (None where a method does not need that role).

    A site with several sources (site.yaml `sources:`) has them all in `sources` by name, `source` being the
    first; `for_source` gives the adapters a VM of one of them uses (its facts name it: `facts["source"]`).
    """

    source: SourceInventory | None = None
    target: MigrationTarget | None = None
    replatformer: Replatformer | None = None
    sources: Mapping[str, SourceInventory] = field(default_factory=dict)

    def for_source(self, name: str | None) -> Adapters:
        """These adapters with `source` the source called `name` (unchanged when None)."""
        if name is None:
            return self
        found = self.sources.get(name)
        if found is None:
            known = ", ".join(sorted(self.sources)) or "none"
            raise OperationalError(f"the VM comes from source {name!r}, which site.yaml `sources` does not list "
                                   f"(it lists: {known})")
        return self if found is self.source else replace(self, source=found)


def missing_port(adapter: object, port: str, role: str, method: str) -> OperationalError:
    """The error for a site whose `role` adapter does not offer `port`, which `method` needs."""
    if adapter is None:
        return OperationalError(f"the {method} method needs a {role} (site.yaml `{role}`)")
    return OperationalError(f"the {method} method needs a {role} that offers {port}; the {role} driver gives "
                            f"a {type(adapter).__name__}")
