"""EC2 right-sizing against the instance types moto's DescribeInstanceTypes returned (tests/unit/test_sizing.py).

Catalog (current generation, not bare metal, no accelerator, not burstable, x86_64):
  m7i.large 2/8 GiB, m7i.xlarge 4/16, m7i.2xlarge 8/32, c7i.large 2/4, c7i.xlarge 4/8, r7i.large 2/16,
  r7i.xlarge 4/32, x2iedn.xlarge 4/128; arm64 (uefi only): m7g.large 2/8, m7g.xlarge 4/16, c7g.large 2/4.
Excluded by the data: g5.xlarge (GPU, previous generation), m4.large (previous generation), t3.* (burstable),
i4i.metal / i3en.metal / m7i.metal-24xl (bare metal).
"""

from __future__ import annotations

import random

import pytest

from migrate.core.guest import architecture_of, boot_mode_of
from migrate.core.models.inventory import Guest, Utilisation, Vm
from planners.rightsizing import requirement, rightsize, rightsize_vm
from tests.unit.test_sizing import moto_type, moto_types

TYPES = moto_types()


def make_vm(cpus: int, memory_mb: int, *, guest_id: str | None = "rhel8_64Guest", firmware: str | None = "efi",
            cpu_pct: float | None = None, active_mb: float | None = None, mem_pct: float | None = None,
            vm_id: str = "vm-1") -> Vm:
    util = None
    if cpu_pct is not None or active_mb is not None or mem_pct is not None:
        util = Utilisation(window_seconds=3600, samples=180, cpu_usage_percent=cpu_pct, memory_active_mb=active_mb,
                           memory_usage_percent=mem_pct)
    return Vm(id=vm_id, name=vm_id, cpus=cpus, memory_mb=memory_mb, guest=Guest(guest_id=guest_id),
              firmware=firmware, utilisation=util)


def test_configured_size() -> None:
    """4 vCPU / 16 GiB with no utilisation: m7i.xlarge (4/16 GiB) fits exactly; r7i.xlarge is the r alternative."""
    result = rightsize_vm(make_vm(4, 16384), TYPES)
    assert (result.instance_type, result.vcpus, result.memory_mib) == ("m7i.xlarge", 4, 16384)
    assert result.requirement.cpu_basis == "configured: 4 vCPU (no CPU utilisation)"
    assert result.alternatives == {"r": "r7i.xlarge"}
    assert result.rejected == {"previous_generation": 2, "bare_metal": 3, "burstable": 2, "architecture": 3,
                               "too_small": 4}
    assert result.candidates == 4   # m7i.xlarge, m7i.2xlarge, r7i.xlarge, x2iedn.xlarge
    assert "m7i.xlarge (4 vCPU, 16384 MiB) is the smallest general-purpose" in result.why


def test_utilisation_driven() -> None:
    """25 % of 4 vCPU = 1.0 +20 % = 1.2 -> 2 vCPU; 4096 MiB active +20 % = 4915.2 -> 4916 MiB: m7i.large (2/8 GiB)."""
    result = rightsize_vm(make_vm(4, 16384, cpu_pct=25, active_mb=4096), TYPES)
    assert (result.requirement.vcpus, result.requirement.memory_mib) == (2, 4916)
    assert result.instance_type == "m7i.large"
    assert result.alternatives == {"c": "c7i.xlarge", "r": "r7i.large"}
    assert "25% of 4 vCPU = 1.00 +20% = 1.20 -> 2" in result.why and "active 4096 MiB +20%" in result.why


def test_configured_mode_ignores_utilisation() -> None:
    """mode=configured sizes from the VM's configuration even when utilisation was measured."""
    vm = make_vm(4, 16384, cpu_pct=25, active_mb=4096)
    assert rightsize_vm(vm, TYPES, mode="configured").instance_type == "m7i.xlarge"


def test_headroom_and_caps() -> None:
    """Headroom is a parameter; the need never exceeds the configured size; memory % is used without active MB."""
    busy = requirement(make_vm(4, 8192, cpu_pct=95, active_mb=8000))
    assert (busy.vcpus, busy.memory_mib) == (4, 8192)           # 3.8*1.2 = 4.56 and 9600 capped to configured
    no_margin = requirement(make_vm(4, 16384, cpu_pct=25, active_mb=4096), headroom=0)
    assert (no_margin.vcpus, no_margin.memory_mib) == (1, 4096)
    by_percent = requirement(make_vm(2, 10000, mem_pct=50))    # 5000 MiB * 1.2 = 6000; CPU unknown -> configured
    assert (by_percent.vcpus, by_percent.memory_mib) == (2, 6000) and by_percent.cpu_basis.startswith("configured")
    with pytest.raises(ValueError, match="headroom"):
        requirement(make_vm(2, 1024), headroom=-0.1)


def test_fewest_vcpus_wins_over_family() -> None:
    """1 vCPU / 16 GiB: r7i.large (2 vCPU) beats m7i.xlarge (4 vCPU) because fewer vCPUs come first."""
    assert rightsize_vm(make_vm(1, 16384), TYPES).instance_type == "r7i.large"


def test_general_purpose_preferred_at_equal_vcpus() -> None:
    """2 vCPU / 2 GiB: m7i.large and c7i.large both have 2 vCPU; the m family is preferred, c is the alternative."""
    result = rightsize_vm(make_vm(2, 2048), TYPES)
    assert result.instance_type == "m7i.large" and result.alternatives["c"] == "c7i.large"


def test_ratio_orders_c_and_r() -> None:
    """2 vCPU / 12 GiB (6 GiB per vCPU) does not fit m7i.large, so r7i.large (2/16) comes before m7i.xlarge."""
    result = rightsize_vm(make_vm(2, 12288), TYPES)
    assert result.instance_type == "r7i.large" and result.alternatives == {"m": "m7i.xlarge"}


def test_arm64_guest() -> None:
    """An ARM guest id gets arm64 types only: 2 vCPU / 4 GiB -> m7g.large (m preferred over c7g.large)."""
    result = rightsize_vm(make_vm(2, 4096, guest_id="arm-ubuntu-64"), TYPES)
    assert result.requirement.architecture == "arm64"
    assert result.instance_type == "m7g.large" and result.alternatives == {"c": "c7g.large"}
    assert result.rejected["architecture"] > 0


def test_boot_mode_must_be_supported() -> None:
    """arm64 types here list only uefi: a BIOS ARM guest fits nothing, and the reason says boot mode."""
    result = rightsize_vm(make_vm(2, 4096, guest_id="arm-ubuntu-64", firmware="bios"), TYPES)
    assert result.instance_type is None and result.rejected["boot_mode"] == 3
    assert result.why.startswith("no type fits 2 vCPU / 4096 MiB, arm64, legacy-bios boot")


def test_boot_modes_unknown_in_data_are_accepted() -> None:
    """A type whose data lists no SupportedBootModes is not rejected for boot mode."""
    no_modes = moto_type("m7g.large").model_copy(update={"boot_modes": []})
    result = rightsize_vm(make_vm(2, 4096, guest_id="arm-ubuntu-64", firmware="bios"), [no_modes])
    assert result.instance_type == "m7g.large"


def test_efi_maps_to_uefi_and_mapping_helpers() -> None:
    """firmware efi -> uefi, bios -> legacy-bios; guest ids naming arm/aarch64 -> arm64, others x86_64."""
    assert requirement(make_vm(2, 4096, firmware="efi")).boot_mode == "uefi"
    assert (boot_mode_of("bios"), boot_mode_of(None)) == ("legacy-bios", None)
    assert architecture_of("arm-debian-64") == architecture_of("otherAarch64Linux") == "arm64"
    assert architecture_of("windows2019srv_64Guest") == architecture_of(None) == "x86_64"
    unknown = requirement(make_vm(0, 4096, guest_id=None, firmware=None))
    assert unknown.vcpus == 1 and unknown.boot_mode is None and len(unknown.notes) == 3


def test_falls_back_to_other_families() -> None:
    """4 vCPU / 100 GiB fits no m, c or r type here, so the memory-optimised x2iedn.xlarge is chosen and says why."""
    result = rightsize_vm(make_vm(4, 102400), TYPES)
    assert result.instance_type == "x2iedn.xlarge" and "no m, c or r type fits" in result.why


def test_excluded_types_never_chosen() -> None:
    """Bare-metal, previous-generation, GPU and burstable types are never picked, even when they would fit best."""
    picks = {r.instance_type for r in rightsize([make_vm(c, m, vm_id=f"v{c}-{m}") for c in (1, 2, 4, 8)
                                                 for m in (512, 1024, 8192, 16384, 32768)], TYPES)}
    assert not picks & {"i4i.metal", "i3en.metal", "m7i.metal-24xl", "m4.large", "g5.xlarge", "t3.micro", "t3.large"}
    tiny = rightsize_vm(make_vm(1, 512), TYPES, allow_burstable=True)
    assert "burstable" not in tiny.rejected and tiny.instance_type == "m7i.large"   # t is not general-purpose m/c/r


def test_deterministic_tie_break() -> None:
    """Equal vCPU, family and memory: the name decides, whatever the catalog order."""
    twin = moto_type("m7i.large").model_copy(update={"name": "m7a.large"})
    catalog = [*TYPES, twin]
    for seed in range(5):
        random.Random(seed).shuffle(catalog)
        assert rightsize_vm(make_vm(2, 8192), catalog).instance_type == "m7a.large"


def test_batch_keeps_per_vm_explanations() -> None:
    """VMs sharing a requirement share the search, but each result explains its own inputs."""
    a = make_vm(4, 16384, cpu_pct=25, active_mb=4096, vm_id="a")
    b = make_vm(2, 8192, cpu_pct=50, active_mb=4096, vm_id="b")
    ra, rb = rightsize([a, b], TYPES)
    assert ra.instance_type == rb.instance_type == "m7i.large"
    assert (ra.vm_id, rb.vm_id) == ("a", "b")
    assert "of 4 vCPU" in ra.why and "of 2 vCPU" in rb.why
    assert rb.to_dict()["requirement"]["memory_mib"] == 4916
