"""Launch the re-platformed instance: checks before launch, idempotent run_instances, wait for status ok."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from adapters.aws.common import TAG_KEY, AwsClients, RetryPolicy, aws_error, client_token, endpoint_of, tag_list
from adapters.aws.images import ImageRecord
from adapters.aws.settings import AwsSettings, aws_network_problems
from migrate.core.errors import AdapterError, InputError, Problem

__all__ = [
    "InstanceRecord",
    "NicPlacement",
    "check_launch",
    "find_instance",
    "launch_instance",
    "place_nics",
    "terminate_instance",
    "wait_instance_ready",
]

_ALIVE = ("pending", "running", "stopping", "stopped")


@dataclass(frozen=True)
class NicPlacement:
    """One NIC of the VM on EC2: its port group, subnet, security groups and (maybe) fixed private IP."""

    portgroup: str
    subnet_id: str
    security_group_ids: tuple[str, ...] = ()
    private_ip: str | None = None


@dataclass(frozen=True)
class InstanceRecord:
    """An instance we launched (or found again by its idempotency key)."""

    instance_id: str
    instance_type: str
    state: str
    subnet_id: str | None
    private_ip: str | None
    found_existing: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"instance_id": self.instance_id, "instance_type": self.instance_type, "state": self.state,
                "subnet_id": self.subnet_id, "private_ip": self.private_ip, "found_existing": self.found_existing}


def place_nics(aws: AwsSettings, vm: str, nics: Sequence[tuple[str, str | None]],
               file: str = "site.yaml") -> list[NicPlacement]:
    """NIC placements from `replatformer.networks` for (port group, IP) pairs; InputError when any is unmapped."""
    problems = aws_network_problems(aws, vm, [pg for pg, _ in nics], file)
    if not nics:
        problems.append(Problem("inventory", f"{vm}.nics", "VM has no NIC to place in a subnet"))
    if problems:
        raise InputError(problems)
    placements = []
    for portgroup, ip in nics:
        mapping = aws.networks[portgroup]
        if mapping.keep_private_ip and not ip:
            raise InputError.single(file, f"replatformer.networks.{portgroup}.keep_private_ip",
                                    f"VM {vm}: keep_private_ip is set but the NIC has no known IP")
        placements.append(NicPlacement(portgroup, mapping.subnet_id, tuple(mapping.security_group_ids),
                                       ip if mapping.keep_private_ip else None))
    return placements


def _describe(ec2: Any, op: str, **kwargs: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = getattr(ec2, op)(**kwargs)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise aws_error(exc, op, endpoint_of(ec2)) from None
    return result


def check_launch(ec2: Any, *, vm: str, instance_type: str, architecture: str, boot_mode: str | None,
                 nics: Sequence[NicPlacement]) -> None:
    """Everything run_instances would trip on, checked first; InputError listing every problem.

    The instance type must exist and support the architecture and boot mode; subnets and security
    groups must exist (groups in the subnet's VPC) and a kept private IP must lie in its subnet.
    """
    problems: list[Problem] = []
    try:
        found = ec2.describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"]
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("InvalidInstanceType", "InvalidParameterValue"):
            raise aws_error(exc, "describe_instance_types", endpoint_of(ec2)) from None
        found = []
    except botocore.exceptions.BotoCoreError as exc:
        raise aws_error(exc, "describe_instance_types", endpoint_of(ec2)) from None
    if not found:
        problems.append(Problem("plan", f"{vm}.instance_type", f"EC2 has no instance type {instance_type!r}"))
    else:
        spec = found[0]
        arches = spec.get("ProcessorInfo", {}).get("SupportedArchitectures", [])
        if arches and architecture not in arches:
            problems.append(Problem("plan", f"{vm}.instance_type",
                                    f"{instance_type} supports {', '.join(arches)}, not {architecture}"))
        modes = spec.get("SupportedBootModes", [])
        if boot_mode and modes and boot_mode not in modes:
            problems.append(Problem("plan", f"{vm}.instance_type",
                                    f"{instance_type} boots {', '.join(modes)}, not {boot_mode}"))
    problems.extend(_network_problems(ec2, vm, nics))
    if problems:
        raise InputError(problems)


def _network_problems(ec2: Any, vm: str, nics: Sequence[NicPlacement]) -> list[Problem]:
    problems: list[Problem] = []
    subnets: dict[str, dict[str, Any]] = {}
    for subnet_id in dict.fromkeys(n.subnet_id for n in nics):
        try:
            subnets[subnet_id] = _describe(ec2, "describe_subnets", SubnetIds=[subnet_id])["Subnets"][0]
        except AdapterError as exc:
            if exc.code not in ("InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed"):
                raise
    for nic in nics:
        field = f"replatformer.networks.{nic.portgroup}"
        subnet = subnets.get(nic.subnet_id)
        if subnet is None:
            problems.append(Problem("site.yaml", f"{field}.subnet_id", f"subnet {nic.subnet_id} does not exist"))
            continue
        if nic.private_ip and ipaddress.ip_address(nic.private_ip) not in ipaddress.ip_network(subnet["CidrBlock"]):
            problems.append(Problem("site.yaml", f"{field}.keep_private_ip",
                                    f"VM {vm}: IP {nic.private_ip} is outside {nic.subnet_id} ({subnet['CidrBlock']})"))
        for group_id in nic.security_group_ids:
            try:
                group = _describe(ec2, "describe_security_groups", GroupIds=[group_id])["SecurityGroups"][0]
            except AdapterError as exc:
                if exc.code not in ("InvalidGroup.NotFound", "InvalidGroupId.Malformed"):
                    raise
                problems.append(Problem("site.yaml", f"{field}.security_group_ids",
                                        f"security group {group_id} does not exist"))
                continue
            if group.get("VpcId") != subnet.get("VpcId"):
                problems.append(Problem("site.yaml", f"{field}.security_group_ids",
                                        f"security group {group_id} is not in {nic.subnet_id}'s VPC"))
    return problems


def find_instance(ec2: Any, key: str) -> dict[str, Any] | None:
    """Our not-terminated instance for `key`, found by tag; None when there is none."""
    reservations = _describe(ec2, "describe_instances", Filters=[
        {"Name": f"tag:{TAG_KEY}", "Values": [key]},
        {"Name": "instance-state-name", "Values": list(_ALIVE)}])["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    return sorted(instances, key=lambda i: i["LaunchTime"])[0] if instances else None


def _record(instance: Mapping[str, Any], found: bool) -> InstanceRecord:
    return InstanceRecord(instance_id=str(instance["InstanceId"]), instance_type=str(instance["InstanceType"]),
                          state=str(instance.get("State", {}).get("Name", "pending")),
                          subnet_id=instance.get("SubnetId"), private_ip=instance.get("PrivateIpAddress"),
                          found_existing=found)


def launch_instance(clients: AwsClients, *, vm: str, image: ImageRecord, instance_type: str,
                    nics: Sequence[NicPlacement], key: str, tags: Mapping[str, str],
                    retry: RetryPolicy | None = None) -> InstanceRecord:
    """Launch one instance of `image` (or return the one an earlier attempt with `key` launched).

    Checks type, subnets, groups and IPs first (InputError, nothing launched); NICs in mapping order
    (the first is primary); root and data volumes gp3 from the image's snapshots; `tags` (source
    instanceUuid, run id, wave) on the instance, its volumes and NICs; ClientToken from `key`.
    """
    retry = retry or RetryPolicy(attempts=3)
    ec2 = clients.ec2
    existing = find_instance(ec2, key)
    if existing is not None:
        return _record(existing, True)
    check_launch(ec2, vm=vm, instance_type=instance_type, architecture=image.architecture,
                 boot_mode=image.boot_mode, nics=nics)
    all_tags = tag_list({**tags, TAG_KEY: key, "Name": vm})
    interfaces = []
    for index, nic in enumerate(nics):
        interface: dict[str, Any] = {"DeviceIndex": index, "SubnetId": nic.subnet_id, "DeleteOnTermination": True}
        if nic.security_group_ids:
            interface["Groups"] = list(nic.security_group_ids)
        if nic.private_ip:
            interface["PrivateIpAddress"] = nic.private_ip
        interfaces.append(interface)
    response = retry.call(lambda: ec2.run_instances(
        ImageId=image.image_id, InstanceType=instance_type, MinCount=1, MaxCount=1,
        ClientToken=client_token(key, "run_instances"), NetworkInterfaces=interfaces,
        BlockDeviceMappings=image.launch_devices,
        TagSpecifications=[{"ResourceType": kind, "Tags": all_tags}
                           for kind in ("instance", "volume", "network-interface")]),
        "run_instances", endpoint_of(ec2))
    return _record(response["Instances"][0], False)


def wait_instance_ready(ec2: Any, instance_id: str, *, timeout: float = 900.0, poll: float = 5.0) -> dict[str, Any]:
    """Wait until the instance runs and both status checks are ok; its status entry. AdapterError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = _describe(ec2, "describe_instance_status", InstanceIds=[instance_id],
                             IncludeAllInstances=True)["InstanceStatuses"]
        status = statuses[0] if statuses else {}
        state = status.get("InstanceState", {}).get("Name", "unknown")
        checks = (status.get("InstanceStatus", {}).get("Status"), status.get("SystemStatus", {}).get("Status"))
        if state == "running" and checks == ("ok", "ok"):
            return status
        if state in ("shutting-down", "terminated", "stopping", "stopped") or "impaired" in checks:
            raise AdapterError("aws", "wait_instance_ready", f"{instance_id} is {state}, checks {checks}",
                               endpoint=endpoint_of(ec2), code="InstanceNotHealthy")
        if time.monotonic() > deadline:
            raise AdapterError("aws", "wait_instance_ready", f"{instance_id} not ready after {timeout:.0f} s "
                               f"(state {state}, checks {checks})", retryable=True, endpoint=endpoint_of(ec2),
                               code="Timeout")
        time.sleep(poll)


def terminate_instance(ec2: Any, instance_id: str) -> bool:
    """Terminate the instance; False when it was already gone or terminated (idempotent)."""
    try:
        result = ec2.terminate_instances(InstanceIds=[instance_id])["TerminatingInstances"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        error = aws_error(exc, "terminate_instances", endpoint_of(ec2))
        if error.code == "InvalidInstanceID.NotFound":
            return False
        raise error from None
    return bool(result) and result[0].get("PreviousState", {}).get("Name") != "terminated"
