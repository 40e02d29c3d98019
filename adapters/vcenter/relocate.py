"""Cross-vCenter vMotion: the RelocateSpec with a ServiceLocator naming the target vCenter.

Only a real vCenter pair can run it (vcsim has no cross-vCenter relocate); the spec is built and
validated against the real target all the same, so a plan's live waves are checked before cutover.
The ServiceLocator carries the target's credentials: `describe_spec` is what may be logged or
journaled, never the spec itself.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pyVmomi import vim

from adapters.vcenter.client import VCenterClient
from adapters.vcenter.tls import ssl_context
from adapters.vcenter.vm_spec import nic_backing

__all__ = ["describe_spec", "relocate_spec", "service_locator", "sha1_thumbprint", "validate_spec"]


def sha1_thumbprint(url: str, client: VCenterClient) -> str:
    """SHA-1 thumbprint of the target's certificate (what ServiceLocator.sslThumbprint takes), read over TLS
    verified with the endpoint's own trust settings."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    context = ssl_context(client.endpoint.tls, host, port)
    with socket.create_connection((host, port), timeout=15) as sock, \
            context.wrap_socket(sock, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True) or b""
    digest = hashlib.sha1(der).hexdigest().upper()  # noqa: S324 - the API's thumbprint format, not security
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def service_locator(target: VCenterClient) -> Any:
    """A ServiceLocator for the target vCenter (instance uuid, URL, credentials, thumbprint)."""
    session, _ = target.session()
    about = target.call("about", lambda si: si.content.about)
    url = target.endpoint.url.removesuffix("/sdk")
    credential = vim.ServiceLocator.NamePassword(username=target.endpoint.username, password=session.password)
    return vim.ServiceLocator(instanceUuid=about.instanceUuid, url=url, credential=credential,
                              sslThumbprint=sha1_thumbprint(target.endpoint.url, target))


def relocate_spec(devices: list[Any], facts: Mapping[str, Any], locator: Any, placement: tuple[Any, Any],
                  datastore: Any, networks: Mapping[str, Mapping[str, Any]]) -> Any:
    """The RelocateSpec moving the VM (its current `devices`) to the target folder, pool and datastore,
    each NIC onto its mapped network (matched by MAC), each disk onto the datastore."""
    folder, pool = placement
    by_mac = {str(n.get("mac") or "").lower(): n["target_network"] for n in facts.get("nics", [])}
    changes = []
    for device in devices:
        if isinstance(device, vim.vm.device.VirtualEthernetCard):
            network = networks[by_mac[str(device.macAddress).lower()]]
            device.backing = nic_backing(network)
            changes.append(vim.vm.device.VirtualDeviceSpec(operation="edit", device=device))
    disks = [vim.vm.RelocateSpec.DiskLocator(diskId=d.key, datastore=datastore) for d in devices
             if isinstance(d, vim.vm.device.VirtualDisk)]
    return vim.vm.RelocateSpec(service=locator, folder=folder, pool=pool, datastore=datastore, disk=disks,
                               deviceChange=changes)


def validate_spec(spec: Any) -> list[str]:
    """What is missing or malformed in a cross-vCenter RelocateSpec."""
    problems = []
    service = spec.service
    if service is None:
        return ["no ServiceLocator: not a cross-vCenter relocate"]
    if not service.instanceUuid:
        problems.append("ServiceLocator has no target instanceUuid")
    if not str(service.url or "").startswith("https://"):
        problems.append(f"ServiceLocator url {service.url!r} is not https")
    if len(str(service.sslThumbprint or "").split(":")) != 20:
        problems.append("ServiceLocator sslThumbprint is not a SHA-1 thumbprint")
    if service.credential is None or not getattr(service.credential, "password", None):
        problems.append("ServiceLocator has no credential")
    for name in ("folder", "pool", "datastore"):
        if getattr(spec, name) is None:
            problems.append(f"no target {name}")
    if any(d.datastore is None for d in spec.disk or []):
        problems.append("a disk locator has no datastore")
    return problems


def describe_spec(spec: Any) -> dict[str, Any]:
    """The spec as plain data without secrets (for the journal and the dry-run)."""
    service = spec.service
    return {
        "service": {"instance_uuid": service.instanceUuid, "url": service.url,
                    "ssl_thumbprint": service.sslThumbprint,
                    "username": getattr(service.credential, "username", None)} if service else None,
        "folder": spec.folder._moId if spec.folder else None,
        "pool": spec.pool._moId if spec.pool else None,
        "datastore": spec.datastore._moId if spec.datastore else None,
        "disks": [{"key": d.diskId, "datastore": d.datastore._moId} for d in spec.disk or []],
        "nics": [{"mac": c.device.macAddress, "backing": type(c.device.backing).__name__}
                 for c in spec.deviceChange or []],
    }

