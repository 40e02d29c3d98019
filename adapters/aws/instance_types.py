"""EC2 instance-type specs from the DescribeInstanceTypes API, as plain dicts (never SDK objects)."""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from adapters.aws.session import aws_client, map_aws_error
from adapters.aws.settings import AwsSettings
from migrate.core.errors import InputError

__all__ = ["fetch_instance_types", "instance_type_record"]

_MAX_NAMES = 100   # DescribeInstanceTypes takes at most 100 InstanceTypes per call
_ACCELERATORS = (("GpuInfo", "gpu"), ("FpgaInfo", "fpga"), ("InferenceAcceleratorInfo", "inference"),
                 ("NeuronInfo", "neuron"), ("MediaAcceleratorInfo", "media"))


def instance_type_record(item: dict[str, Any]) -> dict[str, Any]:
    """One DescribeInstanceTypes entry as the plain record planners.instance_types.InstanceType reads."""
    vcpu = item.get("VCpuInfo", {})
    storage = item.get("InstanceStorageInfo") or {}
    network = item.get("NetworkInfo", {})
    return {
        "name": item["InstanceType"],
        "vcpus": int(vcpu.get("DefaultVCpus", 0)),
        "default_cores": vcpu.get("DefaultCores"),
        "threads_per_core": vcpu.get("DefaultThreadsPerCore"),
        "memory_mib": int(item.get("MemoryInfo", {}).get("SizeInMiB", 0)),
        "architectures": list(item.get("ProcessorInfo", {}).get("SupportedArchitectures", [])),
        "boot_modes": list(item.get("SupportedBootModes", [])),
        "hypervisor": item.get("Hypervisor"),
        "bare_metal": bool(item.get("BareMetal", False)),
        "current_generation": bool(item.get("CurrentGeneration", False)),
        "burstable": bool(item.get("BurstablePerformanceSupported", False)),
        "accelerators": [kind for key, kind in _ACCELERATORS if item.get(key)],
        "instance_storage_gb": storage.get("TotalSizeInGB"),
        "storage_disks": [{"count": int(d.get("Count", 0)), "size_gb": int(d.get("SizeInGB", 0)),
                           "type": d.get("Type")} for d in storage.get("Disks", [])],
        "storage_nvme": storage.get("NvmeSupport"),
        "network_performance": network.get("NetworkPerformance"),
        "ena_support": network.get("EnaSupport"),
    }


def fetch_instance_types(settings: AwsSettings, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Specs of the named types, or (names None or empty) of every current-generation type, sorted by name.

    Pages through DescribeInstanceTypes. A name the region does not offer is bad input (InputError);
    any other failure is an AdapterError mapped by error code.
    """
    endpoint = settings.endpoint_url or f"ec2.{settings.region}.amazonaws.com"
    wanted = sorted(set(names or []))
    requests: list[dict[str, Any]] = (
        [{"InstanceTypes": wanted[i:i + _MAX_NAMES]} for i in range(0, len(wanted), _MAX_NAMES)] if wanted
        else [{"Filters": [{"Name": "current-generation", "Values": ["true"]}]}])
    found: dict[str, dict[str, Any]] = {}
    try:
        paginator = aws_client(settings, "ec2").get_paginator("describe_instance_types")
        for kwargs in requests:
            for page in paginator.paginate(**kwargs, PaginationConfig={"PageSize": 100}):
                for item in page.get("InstanceTypes", []):
                    record = instance_type_record(item)
                    found[record["name"]] = record
    except botocore.exceptions.ClientError as exc:
        if wanted and exc.response.get("Error", {}).get("Code") == "InvalidInstanceType":
            raise InputError.single(f"EC2 {settings.region}", "instance types",
                                    f"not all of {', '.join(wanted)} exist in this region") from None
        raise map_aws_error(exc, "describe_instance_types", endpoint) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise map_aws_error(exc, "describe_instance_types", endpoint) from None
    return [found[name] for name in sorted(found)]
