"""The EVS host provisioner through botocore's Stubber (moto has no EVS backend).

The Stubber validates every request this code sends against the real EVS service model in botocore
(operation and member names, required members, types, minimum lengths; botocore does not check
patterns or enums) and fails on any call not expected, in order; no endpoint is contacted.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from adapters.capacity.base import TAG_PLAN, TAG_WAVE, HostProvisioner, client_token
from adapters.capacity.evs import EvsHostProvisioner
from adapters.capacity.settings import EvsProvisionerSettings
from migrate.core.errors import AdapterError, InputError

ENV = "env-abcdef1234"
TAGS = {TAG_PLAN: "run-1", TAG_WAVE: "2"}


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[EvsHostProvisioner, Stubber]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("evs", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield EvsHostProvisioner(client, environment_id=ENV, key_name="ops-key"), stubber
        stubber.assert_no_pending_responses()


def host(name: str, state: str = "CREATED", **extra: Any) -> dict[str, Any]:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return {"hostName": name, "instanceType": "i4i.metal", "keyName": "ops-key", "hostState": state,
            "createdAt": now, "modifiedAt": now, **extra}


def test_is_a_host_provisioner(stubbed: tuple[EvsHostProvisioner, Stubber]) -> None:
    """It satisfies the HostProvisioner protocol and reads the host types from the service model."""
    evs, _ = stubbed
    assert isinstance(evs, HostProvisioner)
    types = evs.supported_host_types()
    assert types is not None and "i4i.metal" in types and "i3en.metal" not in types


def test_allocate_creates_only_missing_numbers(stubbed: tuple[EvsHostProvisioner, Stubber]) -> None:
    """Host 01 exists: allocate(3) creates 02 and 03 with key-derived client tokens; names match the model."""
    evs, stub = stubbed
    start = evs.name_prefix(TAGS)
    other = evs.name_prefix({TAG_PLAN: "run-1", TAG_WAVE: "3"})
    stub.add_response("list_environment_hosts",
                      {"environmentHosts": [host(f"{start}01"), host(f"{other}01"), host("unrelated-host")]},
                      {"environmentId": ENV})
    for number in (2, 3):
        stub.add_response(
            "create_environment_host",
            {"host": host(f"{start}{number:02d}", "CREATING")},
            {"clientToken": client_token("key-1", number, 100), "environmentId": ENV,
             "host": {"hostName": f"{start}{number:02d}", "keyName": "ops-key", "instanceType": "i4i.metal"}})
    hosts = evs.allocate(3, "i4i.metal", TAGS, "key-1")
    assert [h.id for h in hosts] == [f"{start}01", f"{start}02", f"{start}03"]
    assert [h.ready for h in hosts] == [True, False, False]
    assert hosts[0].name == f"{start}01.sddc.internal"


def test_repeat_allocates_nothing(stubbed: tuple[EvsHostProvisioner, Stubber]) -> None:
    """All numbers exist: no CreateEnvironmentHost at all (the Stubber would fail on an unexpected call)."""
    evs, stub = stubbed
    start = evs.name_prefix(TAGS)
    stub.add_response("list_environment_hosts", {"environmentHosts": [host(f"{start}01"), host(f"{start}02")]},
                      {"environmentId": ENV})
    assert len(evs.allocate(2, "i4i.metal", TAGS, "key-1")) == 2


def test_find_by_plan_and_paging_and_gone_hosts(stubbed: tuple[EvsHostProvisioner, Stubber]) -> None:
    """find(plan) matches every wave of the plan across pages; DELETING/DELETED hosts are not live."""
    evs, stub = stubbed
    w2, w3 = evs.name_prefix(TAGS), evs.name_prefix({TAG_PLAN: "run-1", TAG_WAVE: "3"})
    stub.add_response("list_environment_hosts", {"environmentHosts": [host(f"{w2}01")], "nextToken": "t1"},
                      {"environmentId": ENV})
    stub.add_response("list_environment_hosts",
                      {"environmentHosts": [host(f"{w3}01"), host(f"{w3}02", "DELETED"), host(f"{w2}02", "DELETING")]},
                      {"environmentId": ENV, "nextToken": "t1"})
    assert [h.id for h in evs.find({TAG_PLAN: "run-1"})] == sorted([f"{w2}01", f"{w3}01"])


def test_failed_creation_is_reported(stubbed: tuple[EvsHostProvisioner, Stubber]) -> None:
    """A CREATE_FAILED host is returned as failed, with EVS's state details."""
    evs, stub = stubbed
    start = evs.name_prefix(TAGS)
    stub.add_response("list_environment_hosts",
                      {"environmentHosts": [host(f"{start}01", "CREATE_FAILED", stateDetails="no capacity")]},
                      {"environmentId": ENV})
    (only,) = evs.allocate(1, "i4i.metal", TAGS, "key-1")
    assert only.failed and only.detail == "no capacity"


def test_errors_map_by_code(stubbed: tuple[EvsHostProvisioner, Stubber]) -> None:
    """ValidationException -> AdapterError(code=ValidationException), not retryable; throttling is retryable."""
    evs, stub = stubbed
    stub.add_response("list_environment_hosts", {"environmentHosts": []}, {"environmentId": ENV})
    stub.add_client_error("create_environment_host", service_error_code="ValidationException",
                          service_message="instance type not allowed", http_status_code=400)
    with pytest.raises(AdapterError) as caught:
        evs.allocate(1, "i4i.metal", TAGS, "key-1")
    assert caught.value.code == "ValidationException" and not caught.value.retryable
    assert "instance type not allowed" in str(caught.value)
    stub.add_client_error("list_environment_hosts", service_error_code="ThrottlingException", http_status_code=400)
    with pytest.raises(AdapterError) as caught:
        evs.find(TAGS)
    assert caught.value.retryable


def test_unknown_environment(stubbed: tuple[EvsHostProvisioner, Stubber]) -> None:
    """ResourceNotFoundException on listing names the environment."""
    evs, stub = stubbed
    stub.add_client_error("list_environment_hosts", service_error_code="ResourceNotFoundException",
                          http_status_code=404)
    with pytest.raises(AdapterError, match=ENV):
        evs.find(TAGS)


def test_release_skips_hosts_already_gone(stubbed: tuple[EvsHostProvisioner, Stubber]) -> None:
    """DeleteEnvironmentHost per host; ResourceNotFoundException means already gone, not an error."""
    evs, stub = stubbed
    stub.add_response("delete_environment_host", {"host": host("mig-a-01", "DELETING")},
                      {"clientToken": client_token("delete:mig-a-01", 0, 100), "environmentId": ENV,
                       "hostName": "mig-a-01"})
    stub.add_client_error("delete_environment_host", service_error_code="ResourceNotFoundException",
                          http_status_code=404)
    assert evs.release(["mig-a-01", "mig-a-02"]) == ["mig-a-01"]


def test_model_validation_is_real(stubbed: tuple[EvsHostProvisioner, Stubber]) -> None:
    """The Stubber validates against the model: an empty keyName breaks KeyName's minimum length."""
    evs, stub = stubbed
    evs.key_name = ""
    stub.add_response("list_environment_hosts", {"environmentHosts": []}, {"environmentId": ENV})
    stub.add_response("create_environment_host", {"host": host("x", "CREATING")})   # never returned
    with pytest.raises(AdapterError, match="ParamValidationError"):
        evs.allocate(1, "i4i.metal", TAGS, "key-1")
    stub._queue.clear()   # the create response was never used: the request failed validation first


def test_bad_prefix_is_refused() -> None:
    """botocore does not check patterns, so the provisioner checks the host-name prefix itself."""
    client = boto3.client("evs", region_name="us-east-1")
    with pytest.raises(ValueError, match="prefix"):
        EvsHostProvisioner(client, environment_id=ENV, key_name="k", prefix="bad.prefix")


def test_wave_tag_needs_plan_tag(stubbed: tuple[EvsHostProvisioner, Stubber]) -> None:
    """Names encode plan then wave: finding by wave alone is refused."""
    evs, _ = stubbed
    with pytest.raises(ValueError, match="needs"):
        evs.find({TAG_WAVE: "2"})


def test_host_type_specs_from_ec2_and_the_login_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host type's specs come from EC2 DescribeInstanceTypes (an unknown type is bad input); vCenter logs in
    to new hosts with the section's ESXi user and the password its variable holds."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("EVS_TEST_ESXI_PASSWORD", "s3cret")
    ec2 = boto3.client("ec2", region_name="us-east-1")
    settings = EvsProvisionerSettings(environment_id=ENV, key_name="ops-key", esxi_username="admin",
                                      esxi_password_env="EVS_TEST_ESXI_PASSWORD")
    evs = EvsHostProvisioner(boto3.client("evs", region_name="us-east-1"), environment_id=ENV, key_name="ops-key",
                             ec2=ec2, login=settings)
    item = {"InstanceType": "i4i.metal", "BareMetal": True, "VCpuInfo": {"DefaultVCpus": 128, "DefaultCores": 64},
            "MemoryInfo": {"SizeInMiB": 1048576}, "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]},
            "InstanceStorageInfo": {"TotalSizeInGB": 30000}}
    with Stubber(ec2) as stub:
        stub.add_response("describe_instance_types", {"InstanceTypes": [item]}, {"InstanceTypes": ["i4i.metal"]})
        stub.add_client_error("describe_instance_types", service_error_code="InvalidInstanceType",
                              http_status_code=400)
        specs = evs.host_type_specs("i4i.metal")
        assert (specs["name"], specs["default_cores"], specs["bare_metal"]) == ("i4i.metal", 64, True)
        with pytest.raises(InputError, match=r"i3\.metal"):
            evs.host_type_specs("i3.metal")
    login = evs.host_login(evs._host({"hostName": "mig-x-01", "hostState": "CREATED"}))
    assert (login.username, login.password) == ("admin", "s3cret") and "s3cret" not in repr(login)
