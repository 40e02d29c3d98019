"""EC2 Dedicated Hosts as bare-metal capacity: AllocateHosts / DescribeHosts / ReleaseHosts.

Idempotency has two layers. First the look-up: hosts carry the plan, wave and idempotency-key tags
from creation (TagSpecifications, atomic with the allocation), so `allocate` first finds what an
earlier call allocated under the key and only asks for the rest. Then the ClientToken, derived from
the key and the number of hosts already found, which real EC2 uses to return the same hosts for a
repeated request. Seen with moto 5.2.5 (the lab): it ignores ClientToken, does not validate the
instance type or zone of AllocateHosts, ignores the `tag:<key>` filter of DescribeHosts (only
`tag-key`, `state`, `instance-type`, `availability-zone` work), keeps released hosts listed with state
`released`, and fails with HTTP 500 when ReleaseHosts names an unknown id. So tags are matched here,
after a `tag-key` filter, and the look-up alone keeps the lab idempotent.

The DNS name a host gets in the cloud vCenter is derived from its id (`h-0abc....sddc.internal`): a
dedicated host has no name of its own. On a real SDDC the name comes from the provisioning system
(the ESXi image and DNS record it sets up for the host).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import botocore.exceptions

from adapters.aws.session import aws_client
from adapters.capacity.base import TAG_KEY, TAG_NAME, ProvisionedHost, aws_failure, client_token, describe_host_type
from adapters.capacity.settings import Ec2ProvisionerSettings
from migrate.core.capacity_ports import HostLogin, ProvisionerSettings
from migrate.core.errors import AdapterError
from migrate.core.log import get_logger

__all__ = ["Ec2HostProvisioner", "ec2_host_name"]

log = get_logger(__name__)
_GONE = {"released", "released-permanent-failure"}
_FAILED = {"permanent-failure", "released-permanent-failure"}


def ec2_host_name(host_id: str, domain: str) -> str:
    """The stable DNS-like name of a dedicated host in the cloud vCenter."""
    return f"{host_id}.{domain}"


class Ec2HostProvisioner:
    """HostProvisioner for EC2 dedicated hosts of a metal instance type."""

    kind = "ec2"

    def __init__(self, client: Any, *, availability_zone: str | None = None, domain: str = "sddc.internal",
                 endpoint: str | None = None, login: ProvisionerSettings | None = None) -> None:
        self.client = client
        self.domain = domain
        self.endpoint = endpoint or client.meta.endpoint_url
        self._zone = availability_zone
        self._login = login

    @classmethod
    def from_settings(cls, settings: Ec2ProvisionerSettings) -> Ec2HostProvisioner:
        """From site.yaml's `capacity.provisioner` (TLS verification as aws_client sets it)."""
        account = settings.account()
        endpoint = account.endpoint_url or f"ec2.{account.region}.amazonaws.com"
        return cls(aws_client(account, "ec2"), availability_zone=settings.availability_zone,
                   domain=settings.host_domain, endpoint=endpoint, login=settings)

    def supported_host_types(self) -> list[str] | None:
        return None   # any bare-metal type DescribeInstanceTypes knows

    def host_type_specs(self, host_type: str) -> dict[str, Any]:
        return describe_host_type(self.client, host_type, "ec2")

    def host_login(self, host: ProvisionedHost) -> HostLogin:
        return self._login.login() if self._login else HostLogin()

    def close(self) -> None:
        self.client.close()

    def availability_zone(self) -> str:
        """The configured zone, else the region's first available one (by name)."""
        if self._zone is None:
            zones = self._call("describe_availability_zones", Filters=[{"Name": "state", "Values": ["available"]}])
            names = sorted(z["ZoneName"] for z in zones.get("AvailabilityZones", []))
            if not names:
                raise AdapterError("ec2", "describe_availability_zones", "the region has no available zone",
                                   endpoint=self.endpoint)
            self._zone = names[0]
        return self._zone

    def find(self, tags: Mapping[str, str]) -> list[ProvisionedHost]:
        hosts = []
        for item in self._describe(tags):
            host = self._host(item)
            if host.state not in _GONE and all(host.tags.get(k) == v for k, v in tags.items()):
                hosts.append(host)
        return sorted(hosts, key=lambda h: (h.name, h.id))

    def allocate(self, count: int, host_type: str, tags: Mapping[str, str],
                 idempotency_key: str) -> list[ProvisionedHost]:
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        wanted = {**tags, TAG_KEY: idempotency_key}
        have = self.find(wanted)
        missing = count - len(have)
        if missing <= 0:
            return have[:count]
        token = client_token(idempotency_key, len(have))
        all_tags = {TAG_NAME: f"migrate {tags.get('migrate:plan', '')} wave {tags.get('migrate:wave', '')}".strip(),
                    **wanted}
        log.info("allocating dedicated hosts", count=missing, host_type=host_type, key=idempotency_key)
        result = self._call("allocate_hosts", InstanceType=host_type, Quantity=missing,
                            AvailabilityZone=self.availability_zone(), AutoPlacement="off", ClientToken=token,
                            TagSpecifications=[{"ResourceType": "dedicated-host",
                                                "Tags": [{"Key": k, "Value": v} for k, v in all_tags.items()]}])
        ids = list(result.get("HostIds", []))
        new = [self._host(item) for item in self._call("describe_hosts", HostIds=ids).get("Hosts", [])] if ids else []
        by_id = {h.id: h for h in [*have, *new]}
        return sorted(by_id.values(), key=lambda h: (h.name, h.id))[:count]

    def release(self, host_ids: Sequence[str]) -> list[str]:
        ids = list(dict.fromkeys(host_ids))
        if not ids:
            return []
        # moto answers HTTP 500 for an unknown id: release only what exists and is not released yet
        live = {h["HostId"] for h in self._call("describe_hosts").get("Hosts", []) if h.get("State") not in _GONE}
        todo = [i for i in ids if i in live]
        if not todo:
            return []
        result = self._call("release_hosts", HostIds=todo)
        failed = result.get("Unsuccessful") or []
        if failed:
            first = failed[0].get("Error", {})
            raise AdapterError("ec2", "release_hosts",
                               f"{len(failed)} host(s) not released, e.g. {failed[0].get('ResourceId')}: "
                               f"{first.get('Code')}: {first.get('Message')}", endpoint=self.endpoint,
                               code=first.get("Code"))
        return list(result.get("Successful", todo))

    # -- helpers -------------------------------------------------------------------------------------

    def _describe(self, tags: Mapping[str, str]) -> list[dict[str, Any]]:
        filters = [{"Name": "tag-key", "Values": [next(iter(tags))]}] if tags else []
        out: list[dict[str, Any]] = []
        try:
            for page in self.client.get_paginator("describe_hosts").paginate(Filter=filters):
                out.extend(page.get("Hosts", []))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise aws_failure(exc, "ec2", "describe_hosts", self.endpoint) from None
        return out

    def _host(self, item: Mapping[str, Any]) -> ProvisionedHost:
        tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
        state = str(item.get("State", "unknown"))
        props = item.get("HostProperties", {})
        return ProvisionedHost(id=item["HostId"], name=ec2_host_name(item["HostId"], self.domain),
                               host_type=str(props.get("InstanceType") or props.get("InstanceFamily") or ""),
                               state=state, ready=state == "available", failed=state in _FAILED,
                               zone=item.get("AvailabilityZone"), tags=tags,
                               detail=None if state in ("available", "pending") else f"EC2 host state {state}")

    def _call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = getattr(self.client, op)(**kwargs)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise aws_failure(exc, "ec2", op, self.endpoint) from None
        return result
