"""The lab is real: every seeded fact reads back through pyvmomi, vAPI REST and datastore HTTP."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from pyVmomi import vim

from adapters.lab.estate import CLOUD, ONPREM, disk_bytes
from adapters.vcenter.collector import read_view
from adapters.vcenter.connection import VCenterSession, connect
from adapters.vcenter.datastore_http import DatastoreFiles
from adapters.vcenter.rest import RestClient, TaggingClient
from adapters.vcenter.settings import TlsSettings
from migrate.core.config import SiteConfig
from migrate.core.errors import AdapterError
from migrate.lab.certs import sha256_thumbprint
from migrate.lab.manager import LabInfo

from .conftest import LAB_SEED, LAB_VMS, lab_file

VM_PROPS = ["name", "config.instanceUuid", "runtime.powerState", "guest.ipAddress", "guest.hostName",
            "config.hardware.device", "config.hardware.numCPU", "config.hardware.memoryMB", "customValue",
            "resourcePool", "config.firmware", "config.guestId"]


@pytest.fixture(scope="module")
def vms(onprem: VCenterSession) -> dict[str, dict[str, Any]]:
    return {props["name"]: {**props, "ref": ref} for ref, props in read_view(onprem.si, vim.VirtualMachine, VM_PROPS)}


def test_https_with_verification_against_lab_ca(site: SiteConfig) -> None:
    """pyvmomi logs in over https, trusting only the lab's CA, and the two vCenters differ."""
    assert site.source.url.startswith("https://") and site.source.tls.verify
    assert site.target is not None
    with connect(site.source) as src, connect(site.target) as dst:
        assert src.about.apiType == "VirtualCenter"
        assert src.about.instanceUuid != dst.about.instanceUuid


def test_without_the_lab_ca_the_certificate_is_refused(site: SiteConfig) -> None:
    """Verification is really on: the system trust store does not trust the lab's certificate."""
    endpoint = site.source.model_copy(update={"tls": TlsSettings()})
    with pytest.raises(AdapterError, match="not trusted") as exc:
        connect(endpoint)
    assert exc.value.endpoint == endpoint.host and not exc.value.retryable


def test_thumbprint_pinning(lab: LabInfo, site: SiteConfig) -> None:
    """A pinned SHA-256 thumbprint connects without the CA; a wrong one is refused."""
    thumbprint = sha256_thumbprint(lab_file(lab, "tls", "server.pem").read_bytes())
    pinned = site.source.model_copy(update={"tls": TlsSettings(thumbprint=thumbprint)})
    with connect(pinned) as session:
        assert session.about.instanceUuid == lab.instance_uuids["onprem"]
    wrong = site.source.model_copy(update={"tls": TlsSettings(thumbprint=":".join(["AB"] * 32))})
    with pytest.raises(AdapterError, match="thumbprint"):
        connect(wrong)


def test_estate_size_power_and_hardware(vms: dict[str, dict[str, Any]], manifest: dict[str, Any]) -> None:
    """Every seeded VM exists with its CPU, memory, firmware, guest id and power state."""
    assert len(vms) == LAB_VMS
    for item in manifest["vms"]:
        vm = vms[item["name"]]
        assert vm["config.instanceUuid"] == item["instance_uuid"]
        assert vm["config.hardware.numCPU"] == item["cpus"]
        assert vm["config.hardware.memoryMB"] == item["memory_mb"]
        assert vm["config.firmware"] == item["firmware"]
        assert vm["config.guestId"] == item["guest_id"]
        assert vm["runtime.powerState"] == ("poweredOn" if item["powered_on"] else "poweredOff")
    assert any(vm["runtime.powerState"] == "poweredOff" for vm in vms.values())


def test_guest_ips_and_hostnames(vms: dict[str, dict[str, Any]], manifest: dict[str, Any]) -> None:
    """extraConfig SET.guest.* made guest IPs and hostnames visible like VMware Tools would."""
    for item in manifest["vms"]:
        assert vms[item["name"]]["guest.ipAddress"] == item["ip"]
        assert vms[item["name"]]["guest.hostName"] == item["hostname"]


def test_disks_nics_and_portgroups(onprem: VCenterSession, vms: dict[str, dict[str, Any]],
                                   manifest: dict[str, Any]) -> None:
    """Disk sizes and datastores, and NICs on the mapped DVS port groups, are as seeded; a VM has two disks."""
    portgroup_names = {ref._moId: props["name"] for ref, props in
                       read_view(onprem.si, vim.dvs.DistributedVirtualPortgroup, ["name"])}
    assert {n for n in portgroup_names.values() if "DVUplinks" not in n} == set(ONPREM.portgroups)
    for item in manifest["vms"]:
        devices = vms[item["name"]]["config.hardware.device"]
        disks = [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]
        assert [d.capacityInKB // (1024 * 1024) for d in disks] == [d["size_gb"] for d in item["disks"]]
        assert [d.backing.fileName for d in disks] == [f"[{d['datastore']}] {d['path']}" for d in item["disks"]]
        nics = [d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)]
        assert len(nics) == 1 and nics[0].macAddress
        assert portgroup_names[nics[0].backing.port.portgroupKey] == item["portgroup"]
    assert max(len(item["disks"]) for item in manifest["vms"]) == 2


def test_custom_attribute(onprem: VCenterSession, vms: dict[str, dict[str, Any]], manifest: dict[str, Any]) -> None:
    """The `owner` custom attribute is set on every VM."""
    fields = {f.key: f.name for f in onprem.si.content.customFieldsManager.field}
    for item in manifest["vms"]:
        values = {fields[v.key]: v.value for v in vms[item["name"]]["customValue"]}
        assert values == {"owner": item["owner"]}


def test_vapp_membership(onprem: VCenterSession, vms: dict[str, dict[str, Any]], manifest: dict[str, Any]) -> None:
    """The reporting VMs live inside the vApp (vcsim leaves parentVApp unset: membership is resourcePool)."""
    vapps = {ref._moId: props["name"] for ref, props in read_view(onprem.si, vim.VirtualApp, ["name"])}
    assert set(vapps.values()) == set(manifest["vapps"])
    members = {name for name, vm in vms.items() if vm["resourcePool"]._moId in vapps}
    assert members == {item["name"] for item in manifest["vms"] if item["vapp"]}
    assert members


def test_tags_read_back_over_rest(onprem: VCenterSession, vms: dict[str, dict[str, Any]],
                                  manifest: dict[str, Any]) -> None:
    """app/tier/env tags attached through the vAPI REST API read back for every VM in one call."""
    rest = RestClient(onprem)
    try:
        tagging = TaggingClient(rest)
        categories = {c["id"]: c["name"] for c in tagging.categories()}
        tags = {t["id"]: (categories[t["category_id"]], t["name"]) for t in tagging.tags()}
        attached = tagging.attached_tags([("VirtualMachine", vm["ref"]._moId) for vm in vms.values()])
    finally:
        rest.close()
    assert set(categories.values()) == {"app", "tier", "env"}
    for item in manifest["vms"]:
        got = dict(tags[t] for t in attached[item["moref"]])
        assert got == {"app": item["app"], "tier": item["tier"], "env": item["env"]}


def test_drs_rules_from_configuration_ex(onprem: VCenterSession, manifest: dict[str, Any]) -> None:
    """The affinity and anti-affinity rules read back from the cluster's configurationEx."""
    clusters = dict((props["name"], props["configurationEx"]) for _, props in
                    read_view(onprem.si, vim.ClusterComputeResource, ["name", "configurationEx"]))
    vm_names = {ref._moId: props["name"] for ref, props in read_view(onprem.si, vim.VirtualMachine, ["name"])}
    rules = {r.name: r for r in clusters["cl-prod"].rule}
    for expected in manifest["rules"]:
        rule = rules[expected["name"]]
        kind = vim.cluster.AffinityRuleSpec if expected["keep_together"] else vim.cluster.AntiAffinityRuleSpec
        assert isinstance(rule, kind)
        assert sorted(vm_names[v._moId] for v in rule.vm) == sorted(expected["vms"])


def test_disk_bytes_read_back_over_datastore_http(onprem: VCenterSession, manifest: dict[str, Any]) -> None:
    """Every disk's bytes, read back through datastore HTTP, hash to what was seeded (and to the generator)."""
    files = DatastoreFiles(onprem)
    try:
        for item in manifest["vms"]:
            for disk in item["disks"]:
                sha, size = files.sha256(ONPREM.datacenter, disk["datastore"], disk["path"])
                assert size == disk["seeded_bytes"]
                assert sha == disk["sha256"]
        first = manifest["vms"][0]
        expected = hashlib.sha256(b"".join(disk_bytes(LAB_SEED, first["name"], 0,
                                                      first["disks"][0]["seeded_bytes"]))).hexdigest()
        assert expected == first["disks"][0]["sha256"]
    finally:
        files.close()


def test_missing_datastore_file_is_an_adapter_error(onprem: VCenterSession) -> None:
    """A file that is not there is a clear, non-retryable error naming the path."""
    files = DatastoreFiles(onprem)
    try:
        with pytest.raises(AdapterError, match=r"404 for nope/nope\.vmdk"):
            files.sha256(ONPREM.datacenter, "ds-prod-01", "nope/nope.vmdk")
    finally:
        files.close()


def test_cloud_sddc_topology(cloud: VCenterSession) -> None:
    """The cloud vCenter has i4i.metal-named hosts sized like one, a workload datastore and its own segments."""
    hosts = {props["name"]: props for _, props in read_view(
        cloud.si, vim.HostSystem, ["name", "summary.hardware.numCpuCores", "summary.hardware.memorySize"])}
    assert sorted(hosts) == sorted(CLOUD.clusters["Cluster-1"])
    for props in hosts.values():
        assert props["summary.hardware.numCpuCores"] == CLOUD.host_cores
        assert props["summary.hardware.memorySize"] == CLOUD.host_memory_mb * 2**20
    datastores = {props["name"] for _, props in read_view(cloud.si, vim.Datastore, ["name"])}
    assert datastores == set(CLOUD.datastores)
    segments = {props["name"] for _, props in read_view(cloud.si, vim.dvs.DistributedVirtualPortgroup, ["name"])
                if "DVUplinks" not in props["name"]}
    assert segments == set(CLOUD.portgroups)
    assert not segments & set(ONPREM.portgroups)
    assert list(read_view(cloud.si, vim.VirtualMachine, ["name"])) == []
