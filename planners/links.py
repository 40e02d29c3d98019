"""Declared links (links.yaml): what people know about dependencies that flows and tags do not show.

```yaml
version: 1
links:                 # a, b: VM name or VM id (instanceUuid)
  - {a: shop-app-01, b: billing-app-01, weight: 50, reason: "batch export"}
  - {a: crm-db-01, b: crm-db-02, hard: true, reason: "log shipping pair"}
keep_apart:            # never in the same wave
  - {a: shop-db-01, b: shop-db-02, reason: "HA pair must not be down together"}
```

- `links[]`: `a`, `b` (required), `weight` (optional, >= 0, in the graph's unit: MiB of traffic
  per observation window; default 100 for a soft link, 0 for a hard one), `hard` (default false:
  true means the two VMs must move in the same wave), `reason` (optional text, shown in plans).
- `keep_apart[]`: `a`, `b` (required), `reason` (optional).
- Unknown keys are errors. A name matching no VM, or several VMs (names are only unique per folder:
  use the id then), is an error naming the entry, e.g. `links[2].a`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator

from migrate.core.errors import InputError, Problem
from migrate.core.fileio import load_yaml_mapping, validation_problems
from migrate.core.models.base import StrictModel
from migrate.core.models.inventory import Inventory
from planners.flows import EndpointIndex

__all__ = [
    "DEFAULT_LINK_WEIGHT",
    "MAX_LINK_WEIGHT",
    "KeepApart",
    "Link",
    "LinksFile",
    "ResolvedLink",
    "ResolvedLinks",
    "load_links",
    "parse_links",
    "resolve_links",
]

DEFAULT_LINK_WEIGHT = 100.0
MAX_LINK_WEIGHT = 1e12          # MiB: about an exabyte of traffic, so sums of weights stay finite



class _Pair(StrictModel):
    a: str = Field(..., min_length=1, description="VM name or id")
    b: str = Field(..., min_length=1, description="VM name or id")
    reason: str = ""

    @field_validator("a", "b")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must name a VM")
        return value


class Link(_Pair):
    """A declared dependency between two VMs: soft (weighted) or hard (must move together)."""

    weight: float | None = Field(None, ge=0, le=MAX_LINK_WEIGHT, allow_inf_nan=False,
                                 description="soft weight, MiB-equivalent")
    hard: bool = False

    @property
    def effective_weight(self) -> float:
        if self.weight is not None:
            return self.weight
        return 0.0 if self.hard else DEFAULT_LINK_WEIGHT


class KeepApart(_Pair):
    """Two VMs that must not move in the same wave."""


class LinksFile(StrictModel):
    """The whole links.yaml."""

    version: Literal[1]
    links: list[Link] = Field(default_factory=list)
    keep_apart: list[KeepApart] = Field(default_factory=list)
    _file: str = PrivateAttr(default="links.yaml")

    @property
    def file(self) -> str:
        """The file it was read from (used to name problems)."""
        return self._file


def parse_links(data: Mapping[str, Any], file: str = "links.yaml") -> LinksFile:
    """Validate an already-parsed links document; InputError names every bad field."""
    parsed = validation_problems(LinksFile, dict(data), file)
    parsed._file = file
    return parsed


def load_links(path: str | Path) -> LinksFile:
    """Read and validate links.yaml (VM names are checked later, against the inventory)."""
    path = Path(path)
    return parse_links(load_yaml_mapping(path), str(path))


@dataclass(frozen=True)
class ResolvedLink:
    """A declared link or keep-apart pair with both ends as VM ids (a < b); `reason` as the user wrote it."""

    a: str
    b: str
    weight: float
    hard: bool
    reason: str


@dataclass(frozen=True)
class ResolvedLinks:
    """Every entry of a links file, resolved."""

    links: tuple[ResolvedLink, ...]
    keep_apart: tuple[ResolvedLink, ...]


def resolve_links(links: LinksFile, inventory: Inventory, index: EndpointIndex | None = None) -> ResolvedLinks:
    """Map every a/b to a VM id; InputError lists every name that is unknown, ambiguous or doubled."""
    index = index or EndpointIndex(inventory)
    names = {vm.id: vm.name for vm in inventory.vms}
    problems: list[Problem] = []
    out: dict[str, list[ResolvedLink]] = {"links": [], "keep_apart": []}
    entries: list[tuple[str, list[Link] | list[KeepApart]]] = [("links", links.links),
                                                               ("keep_apart", links.keep_apart)]
    for section, items in entries:
        for i, item in enumerate(items):
            ends: list[str] = []
            for side in ("a", "b"):
                endpoint = getattr(item, side)
                found = index.by_id_or_name(endpoint)
                where = f"{section}[{i}].{side}"
                if found.vm is not None:
                    ends.append(found.vm)
                elif found.candidates:
                    problems.append(Problem(links.file, where, f"name {endpoint!r} matches "
                                            f"{len(found.candidates)} VMs ({', '.join(found.candidates)}): "
                                            "use the VM id"))
                else:
                    problems.append(Problem(links.file, where, f"no VM named {endpoint!r} (name or id) "
                                            "in the inventory"))
            if len(ends) != 2:
                continue
            if ends[0] == ends[1]:
                problems.append(Problem(links.file, f"{section}[{i}].b",
                                        f"names the same VM as a ({names[ends[0]]})"))
                continue
            weight, hard = (item.effective_weight, item.hard) if isinstance(item, Link) else (0.0, False)
            out[section].append(ResolvedLink(a=min(ends), b=max(ends), weight=weight, hard=hard,
                                             reason=item.reason.strip()))
    if problems:
        raise InputError(problems)
    return ResolvedLinks(links=tuple(out["links"]), keep_apart=tuple(out["keep_apart"]))
