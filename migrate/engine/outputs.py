"""Typed phase outputs: what one phase hands to later ones, journaled as JSON and read back typed.

A phase that `provides` an output returns it (or a mapping that validates as it); the runner validates it
before the journal records the phase finished. A later phase that `requires` it reads it with
`ctx.output(Kind)`. Fields a phase adds beyond its model are journaled too (extra="allow"), for people
reading the journal; code reads only the declared fields.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["CopiedDisk", "CopiedDisks", "CopiedFile", "PhaseOutput", "SourceState", "TargetVm"]


class PhaseOutput(BaseModel):
    """Base of every typed phase output."""

    model_config = ConfigDict(extra="allow", frozen=True)

    # the field naming where the VM now lives (status and report show it), on the output that has one
    target_field: ClassVar[str | None] = None


PowerState = Literal["poweredOn", "poweredOff", "suspended"]


class SourceState(PhaseOutput):
    """What a precheck saw of the source before anything changed: the power state a target must get back."""

    power_state: PowerState


class TargetVm(PhaseOutput):
    """The VM (or instance) that now holds the source."""

    target_field = "target_id"
    target_id: str


class CopiedFile(PhaseOutput):
    """One file of a disk (descriptor or extent) on the target datastore."""

    target: str


class CopiedDisk(PhaseOutput):
    """One disk copied to the target datastore: its device key, the descriptor path on the target, its files."""

    key: int
    file: str
    files: list[CopiedFile]


class CopiedDisks(PhaseOutput):
    """Every disk of the VM, copied."""

    disks: list[CopiedDisk]
