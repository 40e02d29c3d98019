"""EC2 instance-type specs as data (instance-types.json), so sizing and right-sizing work offline.

The records come from the EC2 DescribeInstanceTypes API (adapters.aws.instance_types); nothing here
knows any instance type's numbers. The file is versioned and written atomically.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from migrate.core.errors import InputError
from migrate.core.fileio import load_json_mapping, validation_problems, write_json
from migrate.core.models.base import FrozenModel
from migrate.core.models.inventory import MAX_MEMORY_MB, MAX_VCPUS

__all__ = [
    "INSTANCE_TYPES_VERSION",
    "InstanceType",
    "InstanceTypesFile",
    "StorageDisk",
    "find_instance_type",
    "load_instance_types",
    "save_instance_types",
]

INSTANCE_TYPES_VERSION: Literal[1] = 1
MAX_STORAGE_GB = 2**32          # instance storage of one type, decimal GB (AWS's largest is about 120,000)
MAX_STORAGE_DISKS = 1024



class StorageDisk(FrozenModel):
    """A group of identical local instance-store disks."""

    count: int = Field(..., ge=0, le=MAX_STORAGE_DISKS)
    size_gb: int = Field(..., ge=0, le=MAX_STORAGE_GB, description="per disk, decimal GB as the API reports")
    type: str | None = Field(None, description="ssd or hdd")


class InstanceType(FrozenModel):
    """One EC2 instance type, as DescribeInstanceTypes describes it."""

    name: str = Field(..., min_length=1)
    vcpus: int = Field(..., ge=0, le=MAX_VCPUS, description="VCpuInfo.DefaultVCpus")
    default_cores: int | None = Field(None, ge=0, le=MAX_VCPUS, description="physical cores, VCpuInfo.DefaultCores")
    threads_per_core: int | None = Field(None, ge=0, le=MAX_VCPUS)
    memory_mib: int = Field(..., ge=0, le=MAX_MEMORY_MB)
    architectures: list[str] = Field(default_factory=list, description="x86_64, arm64, i386, ...")
    boot_modes: list[str] = Field(default_factory=list, description="SupportedBootModes: legacy-bios, uefi")
    hypervisor: str | None = None
    bare_metal: bool = False
    current_generation: bool = False
    burstable: bool = False
    accelerators: list[str] = Field(default_factory=list, description="gpu, fpga, inference, neuron, media")
    instance_storage_gb: int | None = Field(None, ge=0, le=MAX_STORAGE_GB,
                                            description="InstanceStorageInfo.TotalSizeInGB (decimal GB)")
    storage_disks: list[StorageDisk] = Field(default_factory=list)
    storage_nvme: str | None = Field(None, description="InstanceStorageInfo.NvmeSupport")
    network_performance: str | None = None
    ena_support: str | None = None

    @property
    def family(self) -> str:
        """The letters before the generation digit: m7i.large -> m, u-6tb1.metal -> u-."""
        prefix = self.name.split(".", 1)[0]
        letters = ""
        for char in prefix:
            if char.isdigit():
                break
            letters += char
        return letters


class InstanceTypesFile(FrozenModel):
    """The whole instance-types.json."""

    version: Literal[1] = INSTANCE_TYPES_VERSION
    region: str | None = None
    endpoint_url: str | None = None
    fetched_at: datetime | None = None
    instance_types: list[InstanceType] = Field(default_factory=list)


def save_instance_types(records: Iterable[dict[str, Any] | InstanceType], path: str | Path, *,
                        region: str | None = None, endpoint_url: str | None = None,
                        fetched_at: datetime | None = None) -> InstanceTypesFile:
    """Validate the records and write instance-types.json atomically; returns what was written."""
    types = [r if isinstance(r, InstanceType) else InstanceType.model_validate(r) for r in records]
    data = InstanceTypesFile(region=region, endpoint_url=endpoint_url, fetched_at=fetched_at,
                             instance_types=sorted(types, key=lambda t: t.name))
    write_json(Path(path), data.model_dump(mode="json"))
    return data


def load_instance_types(path: str | Path) -> InstanceTypesFile:
    """Read instance-types.json; InputError names every bad field (e.g. instance_types[3].vcpus)."""
    path = Path(path)
    raw = load_json_mapping(path, "an `instance_types` list")
    return validation_problems(InstanceTypesFile, raw, str(path))


def find_instance_type(types: Sequence[InstanceType], name: str, *, source: str, field: str) -> InstanceType:
    """The type called `name`; otherwise InputError naming `field` and saying which types do exist."""
    for item in types:
        if item.name == name:
            return item
    metal = sorted(t.name for t in types if t.bare_metal and t.instance_storage_gb and "x86_64" in t.architectures)
    close = difflib.get_close_matches(name, [t.name for t in types], n=3)
    hint = f"; closest names: {', '.join(close)}" if close else ""
    shown = ", ".join(metal[:40]) + (f", and {len(metal) - 40} more" if len(metal) > 40 else "")
    listing = (f"x86_64 bare-metal types with local storage: {shown}" if metal
               else "it holds no x86_64 bare-metal type with local storage")
    raise InputError.single(source, field, f"{name!r} is not in the data ({len(types)} types); {listing}{hint}")
