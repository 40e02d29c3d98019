"""Amazon Elastic VMware Service (EVS) hosts as bare-metal capacity, through boto3's `evs` client.

CreateEnvironmentHost creates one ESX host in an EVS environment; ListEnvironmentHosts and
DeleteEnvironmentHost find and remove them. EVS hosts carry no tags, so a host's identity is its name:
`<prefix>-<plan digest>-<wave digest>-<nn>` (EVS host names allow only letters, digits and hyphens), so
that `find` by plan (and wave) is a name-prefix match and `allocate` creates exactly the missing
numbers. Each creation also sends a clientToken derived from the idempotency key and the host number,
which EVS uses to deduplicate a repeated request. The name in the cloud vCenter is `<host name>.<domain>`.

EVS hosts are usually commissioned into the cluster by EVS/SDDC Manager itself; adding one that is
already in the vCenter cluster is a no-op in adapters.vcenter.hosts, so both paths work. Delete
requires the host to be decommissioned from the cluster first (EVS documents this).

Testing: moto has no EVS backend, so tests/unit/test_capacity_evs.py drives this module through
botocore's Stubber, which validates every request against the real EVS service model shipped with
botocore (operation and member names, required members, types, minimum lengths; botocore checks no
patterns or enums, so the host-name prefix is checked here); no EVS endpoint is contacted.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import botocore.exceptions

from adapters.aws.session import aws_client
from adapters.capacity.base import TAG_PLAN, TAG_WAVE, ProvisionedHost, aws_failure, client_token, describe_host_type
from adapters.capacity.settings import EvsProvisionerSettings
from migrate.core.capacity_ports import HostLogin, ProvisionerSettings
from migrate.core.errors import AdapterError
from migrate.core.log import get_logger

__all__ = ["NAME_TAGS", "EvsHostProvisioner"]

log = get_logger(__name__)
NAME_TAGS = (TAG_PLAN, TAG_WAVE)   # the tags encoded in a host's name, in order
_GONE = {"DELETING", "DELETED"}
_FAILED = {"CREATE_FAILED"}
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,30}")   # EVS HostName allows [a-zA-Z0-9-]


def _digest(value: str, length: int) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:length]


class EvsHostProvisioner:
    """HostProvisioner for hosts of one Amazon EVS environment."""

    kind = "evs"

    def __init__(self, client: Any, *, environment_id: str, key_name: str, domain: str = "sddc.internal",
                 prefix: str = "mig", esx_version: str | None = None, endpoint: str | None = None,
                 ec2: Any = None, login: ProvisionerSettings | None = None) -> None:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(f"prefix {prefix!r}: EVS host names allow letters, digits and hyphens (max 31 here)")
        self.client = client
        self.environment_id = environment_id
        self.key_name = key_name
        self.domain = domain
        self.prefix = prefix
        self.esx_version = esx_version
        self.endpoint = endpoint or client.meta.endpoint_url
        self.ec2 = ec2              # DescribeInstanceTypes: the specs of the host types
        self._login = login

    @classmethod
    def from_settings(cls, settings: EvsProvisionerSettings) -> EvsHostProvisioner:
        """From site.yaml's `capacity.provisioner`: the EVS environment to grow and its AWS account."""
        environment_id, key_name = settings.environment()
        account = settings.account()
        endpoint = account.endpoint_url or f"evs.{account.region}.amazonaws.com"
        return cls(aws_client(account, "evs"), environment_id=environment_id, key_name=key_name,
                   domain=settings.host_domain, esx_version=settings.esx_version, endpoint=endpoint,
                   ec2=aws_client(account, "ec2"), login=settings)

    def supported_host_types(self) -> list[str] | None:
        """The instance types EVS accepts, from the service model botocore ships (not hard-coded here)."""
        shape = self.client.meta.service_model.shape_for("InstanceType")
        return list(getattr(shape, "enum", []) or []) or None

    def host_type_specs(self, host_type: str) -> dict[str, Any]:
        if self.ec2 is None:
            raise AdapterError("evs", "describe_instance_types", "no EC2 client to read host types with",
                               endpoint=self.endpoint)
        return describe_host_type(self.ec2, host_type, "evs")

    def host_login(self, host: ProvisionedHost) -> HostLogin:
        return self._login.login() if self._login else HostLogin()

    def close(self) -> None:
        self.client.close()
        if self.ec2 is not None:
            self.ec2.close()

    def name_prefix(self, tags: Mapping[str, str]) -> str:
        """`<prefix>-<plan>-[<wave>-]`: the name every host carrying these name tags starts with."""
        parts = [self.prefix]
        for i, key in enumerate(NAME_TAGS):
            if key in tags:
                if i and NAME_TAGS[i - 1] not in tags:
                    raise ValueError(f"EVS hosts are found by {' then '.join(NAME_TAGS)}: {key} needs "
                                     f"{NAME_TAGS[i - 1]}")
                parts.append(_digest(tags[key], 8 if i == 0 else 6))
        return "-".join(parts) + "-"

    def find(self, tags: Mapping[str, str]) -> list[ProvisionedHost]:
        start = self.name_prefix(tags)
        hosts = [self._host(item) for item in self._list() if str(item.get("hostName", "")).startswith(start)]
        return sorted((h for h in hosts if h.state not in _GONE), key=lambda h: h.id)

    def allocate(self, count: int, host_type: str, tags: Mapping[str, str],
                 idempotency_key: str) -> list[ProvisionedHost]:
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        if TAG_PLAN not in tags or TAG_WAVE not in tags:
            raise ValueError(f"EVS host names encode {TAG_PLAN} and {TAG_WAVE}: both tags are needed")
        start = self.name_prefix(tags)
        have = {h.id: h for h in self.find(tags)}
        out: list[ProvisionedHost] = []
        for number in range(1, count + 1):
            name = f"{start}{number:02d}"
            if name in have:
                out.append(have[name])
                continue
            log.info("creating EVS host", host=name, host_type=host_type, environment=self.environment_id)
            request: dict[str, Any] = {"clientToken": client_token(idempotency_key, number, 100),
                                       "environmentId": self.environment_id,
                                       "host": {"hostName": name, "keyName": self.key_name, "instanceType": host_type}}
            if self.esx_version:
                request["esxVersion"] = self.esx_version
            result = self._call("create_environment_host", **request)
            out.append(self._host(result.get("host") or {"hostName": name, "instanceType": host_type,
                                                         "hostState": "CREATING"}))
        return out

    def release(self, host_ids: Sequence[str]) -> list[str]:
        done = []
        for name in dict.fromkeys(host_ids):
            try:
                self.client.delete_environment_host(clientToken=client_token(f"delete:{name}", 0, 100),
                                                    environmentId=self.environment_id, hostName=name)
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    continue   # already gone
                raise aws_failure(exc, "evs", "delete_environment_host", self.endpoint) from None
            except botocore.exceptions.BotoCoreError as exc:
                raise aws_failure(exc, "evs", "delete_environment_host", self.endpoint) from None
            done.append(name)
        return done

    # -- helpers -------------------------------------------------------------------------------------

    def _list(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        try:
            for page in self.client.get_paginator("list_environment_hosts").paginate(environmentId=self.environment_id):
                out.extend(page.get("environmentHosts", []))
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise AdapterError("evs", "list_environment_hosts", f"no EVS environment {self.environment_id!r}",
                                   endpoint=self.endpoint, code="ResourceNotFoundException") from None
            raise aws_failure(exc, "evs", "list_environment_hosts", self.endpoint) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise aws_failure(exc, "evs", "list_environment_hosts", self.endpoint) from None
        return out

    def _host(self, item: Mapping[str, Any]) -> ProvisionedHost:
        name = str(item.get("hostName", ""))
        state = str(item.get("hostState") or "UNKNOWN")
        return ProvisionedHost(id=name, name=f"{name}.{self.domain}", host_type=str(item.get("instanceType", "")),
                               state=state, ready=state == "CREATED", failed=state in _FAILED,
                               tags={}, detail=item.get("stateDetails"))

    def _call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = getattr(self.client, op)(**kwargs)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise aws_failure(exc, "evs", op, self.endpoint) from None
        return result
