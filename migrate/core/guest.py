"""What a VM's vSphere guest facts mean elsewhere: CPU architecture and boot mode (EC2's names)."""

from __future__ import annotations

__all__ = ["architecture_of", "boot_mode_of"]

_BOOT_MODES = {"efi": "uefi", "bios": "legacy-bios"}


def architecture_of(guest_id: str | None) -> str:
    """arm64 when the vSphere guest id names ARM (e.g. contains "arm" or "aarch64"), else x86_64."""
    text = (guest_id or "").lower()
    return "arm64" if "arm" in text or "aarch64" in text else "x86_64"


def boot_mode_of(firmware: str | None) -> str | None:
    """EC2 boot mode for a vSphere firmware setting: efi -> uefi, bios -> legacy-bios, unknown -> None."""
    return _BOOT_MODES.get((firmware or "").lower())
