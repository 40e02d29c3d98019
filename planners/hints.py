"""Dependency hints: soft edges from how people arrange an application when no flows say it.

Opt-in (`migrate graph|plan --hints folder,pool,vapp,name,annotation`). VMs that share a *key* of a
kind form a group; each group is linked like an app tag (planners.graph): separating one VM from the
rest of its group costs the kind's weight (MiB-equivalent, like flows), spread over a clique for up to
9 VMs and a ring of HINT_NEIGHBOURS neighbours per side beyond (edges stay linear in the VM count).

Kinds, the key a group shares, and the keys that never make a group (generic containers):
- folder: the VM folder path (exact leaf folder); not a datacenter's root VM folder (`.../vm`),
  `Discovered virtual machine` or `vCLS`.
- pool: the resource pool path (exact); not a root pool (`.../Resources`).
- vapp: the vApp (by name, by id when names repeat). vApp members are already hard ties, so in a
  graph built from an inventory this kind adds no edge (accepted for completeness, reported).
- name: name_stem(), the name minus its counter and tier/role suffixes; not a stem made only of
  tier or environment words.
- annotation: annotation_key(), an app custom attribute, else an `app=`/`application:`/`service:`
  token of the notes, else the notes' first line unless it is generic.

Rules that keep hints honest:
- *Cap*: a group of more than `max_group` VMs (default 50) is skipped and reported: a folder or pool
  that large is an estate's dumping ground, not an application.
- *Hard ties first*: no hint between VMs that hard ties already keep in one wave.
- *Flows outweigh hints*: no hint on a pair that has a flow edge, and when the graph has flows (of
  weight > 0) every hint weight is scaled by `min(1, FLOW_SHARE * lightest flow edge / sum of the
  enabled weights)`. All the hints of any one VM together then weigh at most a quarter of the lightest
  flow edge, those of both ends of a flow at most half of it: cutting every hint of a flow's two VMs
  costs less than cutting the flow.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from migrate.core.errors import InputError, Problem
from migrate.core.models.inventory import Inventory, Vm

__all__ = [
    "DEFAULT_HINT_WEIGHTS",
    "DEFAULT_MAX_GROUP",
    "FLOW_SHARE",
    "HINT_KINDS",
    "HINT_NEIGHBOURS",
    "HINT_REASON",
    "HintLink",
    "HintOptions",
    "HintResult",
    "annotation_key",
    "hint_kind",
    "hint_links",
    "name_stem",
    "parse_hints",
    "ring_pairs",
]

HINT_KINDS = ("folder", "pool", "vapp", "name", "annotation")
DEFAULT_HINT_WEIGHTS: Mapping[str, float] = {"annotation": 40.0, "folder": 20.0, "name": 20.0, "pool": 10.0,
                                             "vapp": 20.0}
DEFAULT_MAX_GROUP = 50
FLOW_SHARE = 0.25
HINT_NEIGHBOURS = 4
HINT_REASON = "hint "        # every hint edge's reason starts with it (a soft reason)
MAX_HINT_WEIGHT = 1e12
SHOWN_SKIPPED = 20

_TIER_WORDS = frozenset((
    "web", "www", "app", "apps", "api", "db", "dbs", "sql", "mssql", "mysql", "pg", "pgsql", "ora", "oracle", "mongo",
    "redis", "cache", "mq", "fe", "be", "front", "back", "frontend", "backend", "srv", "svr", "server", "vm", "node",
    "worker", "wrk", "batch", "job", "lb", "proxy", "gw", "mid", "dns", "ldap", "ad", "dc", "ntp", "monitor", "mon",
    "log", "file", "fs", "nfs"))
_ENV_WORDS = frozenset(("prod", "prd", "production", "dev", "devel", "test", "tst", "uat", "qa", "stg", "stage",
                        "staging", "sbx", "sandbox", "dr", "lab", "poc"))
_SEPARATORS = re.compile(r"[-_.\s]+")
_COUNTER = re.compile(r"[-_.\s]*\d+$")
_TIER = re.compile(r"^([a-z]+)\d*$")
_APP_KEY = r"app(?:lication)?(?:[ _-]?name)?|service"
_APP_TOKEN = re.compile(rf"(?i)(?<![a-z])(?:{_APP_KEY})\s*[:=]\s*([^;,|\n]+)")
_APP_ATTRIBUTE = re.compile(rf"(?i)^(?:{_APP_KEY})$")
_GENERIC_LINE = re.compile(r"(?i)^(created|deployed|provisioned|managed|built|cloned|migrated|do not|template)\b")
_ROOT_FOLDERS = frozenset({"discovered virtual machine", "vcls"})


def hint_kind(kind: str) -> str:
    """The edge kind of a hint kind: `hint-folder`, ..."""
    return f"hint-{kind}"


@dataclass(frozen=True)
class HintOptions:
    """The hint kinds to use with their weights (MiB-equivalent), and the largest group linked."""

    weights: Mapping[str, float]
    max_group: int = DEFAULT_MAX_GROUP

    def describe(self) -> str:
        """`folder=20,name=20;max_group=50`: what plan.yaml's source.hints records."""
        return ",".join(f"{k}={self.weights[k]:g}" for k in HINT_KINDS if k in self.weights) \
            + f";max_group={self.max_group}"


def parse_hints(kinds: str | None, weights: Sequence[str] = (), max_group: int = DEFAULT_MAX_GROUP,
                ) -> HintOptions | None:
    """HintOptions from `--hints a,b` (or `all`), `--hint-weight kind=W`...; None without --hints."""
    problems: list[Problem] = []
    chosen: list[str] = []
    for part in (kinds or "").split(","):
        part = part.strip().lower()
        if part == "all":
            chosen.extend(HINT_KINDS)
        elif part in HINT_KINDS:
            chosen.append(part)
        elif part:
            problems.append(Problem("--hints", "--hints", f"unknown hint {part!r}: use {', '.join(HINT_KINDS)} or all"))
    table = {k: DEFAULT_HINT_WEIGHTS[k] for k in dict.fromkeys(chosen)}
    for item in weights:
        kind, sep, value = item.partition("=")
        kind = kind.strip().lower()
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or kind not in HINT_KINDS:
            problems.append(Problem("--hint-weight", "--hint-weight", f"{item!r}: use KIND=WEIGHT with KIND one of "
                                    f"{', '.join(HINT_KINDS)}"))
        elif not 0 <= number <= MAX_HINT_WEIGHT:
            problems.append(Problem("--hint-weight", f"--hint-weight {kind}",
                                    f"{value.strip()!r}: must be a number from 0 to {MAX_HINT_WEIGHT:g}"))
        elif kind not in table:
            problems.append(Problem("--hint-weight", f"--hint-weight {kind}", f"{kind} is not in --hints"))
        else:
            table[kind] = number
    if max_group < 2:
        problems.append(Problem("--hint-max-group", "--hint-max-group", "must be at least 2"))
    if problems:
        raise InputError(problems)
    return HintOptions(weights=table, max_group=max_group) if table else None


# --- keys --------------------------------------------------------------------------------------

def _parts(path: str | None) -> list[str]:
    return [p for p in (path or "").strip().split("/") if p]


def _folder_key(vm: Vm) -> tuple[str | None, str | None]:
    parts = _parts(vm.folder)
    if not parts:
        return None, None
    key = "/" + "/".join(parts)
    if parts[-1].lower() in _ROOT_FOLDERS:
        return key, f"generic folder {parts[-1]!r}"
    if parts[-1] == "vm":
        return key, "a datacenter's root VM folder"
    return key, None


def _pool_key(vm: Vm) -> tuple[str | None, str | None]:
    parts = _parts(vm.resource_pool)
    if not parts:
        return None, None
    key = "/" + "/".join(parts)
    return key, ("a root resource pool" if parts[-1] == "Resources" else None)


def name_stem(name: str) -> str | None:
    """The application part of a VM name, or None when nothing specific is left.

    Lower-cased host part (before the first dot); its trailing counter (`-01`, `01`) removed; then
    trailing tokens (split on - _ . space) that are numbers or tier/role words (web, app, db, sql, ...,
    optionally numbered: `web2`) dropped, keeping at least one token. None when the stem is only tier
    or environment words (prod, dev, ...) or shorter than 2 characters:
    shop-web-01, shop-db-02 -> shop; shop2-app-01 -> shop2; appsrv01 -> appsrv; web01 -> None.
    """
    host = name.strip().lower().split(".", 1)[0]
    tokens = [t for t in _SEPARATORS.split(_COUNTER.sub("", host)) if t]
    while len(tokens) > 1 and (tokens[-1].isdigit() or _is_tier(tokens[-1])):
        tokens.pop()
    if not tokens or all(_is_tier(t) or t in _ENV_WORDS or t.isdigit() for t in tokens):
        return None
    stem = "-".join(tokens)
    return stem if len(stem) >= 2 else None


def _is_tier(token: str) -> bool:
    match = _TIER.match(token)
    return match is not None and match.group(1) in _TIER_WORDS


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def annotation_key(vm: Vm) -> str | None:
    """The application a VM's notes or custom attributes name, or None.

    In order: a custom attribute named app, application, app name, application name or service; an
    `app=`/`application:`/`service:`... token in the notes (value up to ; , | or the line's end); the
    notes' first non-empty line, unless it is generic (created/deployed/managed by ..., do not ...,
    template), holds a `key: value` of another key, or is over 80 characters. Compared lower-cased
    with whitespace collapsed.
    """
    for key, value in sorted(vm.custom_attributes.items()):
        if _APP_ATTRIBUTE.match(key.strip()) and _norm(value):
            return f"app={_norm(value)}"
    notes = vm.annotation or ""
    token = _APP_TOKEN.search(notes)
    if token and _norm(token.group(1)):
        return f"app={_norm(token.group(1))}"
    line = next((_norm(x) for x in notes.splitlines() if x.strip()), "")
    if len(line) < 3 or len(line) > 80 or _GENERIC_LINE.match(line) or re.search(r"[:=]", line):
        return None
    return f"notes={line}"


def _vapp_groups(inventory: Inventory) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    named = Counter(vapp.name for vapp in inventory.vapps)
    for vapp in inventory.vapps:
        groups[vapp.name if named[vapp.name] == 1 else vapp.id].extend(vapp.vms)
    for vm in inventory.vms:
        if vm.vapp:
            groups[vm.vapp].append(vm.id)
    return groups


_KEYS: dict[str, Callable[[Vm], tuple[str | None, str | None]]] = {
    "folder": _folder_key,
    "pool": _pool_key,
    "name": lambda vm: (name_stem(vm.name), None),
    "annotation": lambda vm: (annotation_key(vm), None),
}


# --- links -------------------------------------------------------------------------------------

def ring_pairs(members: Sequence[str], neighbours: int = HINT_NEIGHBOURS) -> tuple[list[tuple[str, str]], int]:
    """Pairs (a < b) linking `members` (in the given order): a clique up to 2*neighbours+1 members, else a ring
    where each links to its `neighbours` nearest on each side; and each member's degree."""
    n = len(members)
    if n < 2:
        return [], 0
    reach = min(neighbours, n // 2)
    pairs = {(a, b) if a < b else (b, a) for i in range(n) for k in range(1, reach + 1)
             for a, b in [(members[i], members[(i + k) % n])]}
    return sorted(pairs), min(2 * reach, n - 1)


@dataclass(frozen=True)
class HintLink:
    """One soft hint edge: a < b, its hint kind, its weight and its reason."""

    a: str
    b: str
    kind: str
    weight: float
    reason: str


@dataclass
class HintResult:
    """The hint edges and what people read about them (graph.graph['hints'])."""

    links: list[HintLink] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)


def _groups(inventory: Inventory, kind: str) -> tuple[dict[str, list[str]], dict[str, str]]:
    """key -> member ids, and key -> why it is never a group."""
    if kind == "vapp":
        return _vapp_groups(inventory), {}
    groups: dict[str, list[str]] = defaultdict(list)
    generic: dict[str, str] = {}
    for vm in inventory.vms:
        key, why = _KEYS[kind](vm)
        if key is None:
            continue
        groups[key].append(vm.id)
        if why:
            generic[key] = why
    return groups, generic


def hint_links(inventory: Inventory, options: HintOptions, *, together: Callable[[str, str], bool],
               flow_weights: Mapping[tuple[str, str], float]) -> HintResult:
    """The hint edges of `inventory` (see the module docstring for the rules).

    `together(a, b)`: hard ties already keep a and b in one wave; `flow_weights`: the flow edges' weights
    by (a, b) with a < b.
    """
    enabled = {k: w for k, w in options.weights.items() if w > 0}
    total = sum(enabled.values())
    lightest = min((w for w in flow_weights.values() if w > 0), default=0.0)
    scale = min(1.0, FLOW_SHARE * lightest / total) if lightest and total else 1.0
    names = {vm.id: vm.name for vm in inventory.vms}
    result = HintResult()
    skipped: list[dict[str, Any]] = []
    edges_by_kind: dict[str, int] = {}
    groups_by_kind: dict[str, int] = {}
    skipped_pairs = {"must_move": 0, "flow": 0}
    for kind in (k for k in HINT_KINDS if k in enabled):
        groups, generic = _groups(inventory, kind)
        edges_by_kind[kind] = groups_by_kind[kind] = 0
        for key, ids in sorted(groups.items()):
            members = sorted((m for m in dict.fromkeys(ids) if m in names), key=lambda m: (names[m], m))
            if len(members) < 2:
                continue
            if key in generic or len(members) > options.max_group:
                why = generic.get(key) or f"more than {options.max_group} VMs"
                skipped.append({"kind": kind, "key": key, "size": len(members), "reason": why})
                continue
            pairs, degree = ring_pairs(members)
            per_edge = enabled[kind] * scale / degree
            linked = 0
            for a, b in pairs:
                if together(a, b):
                    skipped_pairs["must_move"] += 1
                elif (a, b) in flow_weights:
                    skipped_pairs["flow"] += 1
                else:
                    result.links.append(HintLink(a, b, hint_kind(kind), per_edge, f"{HINT_REASON}{kind} {key}"))
                    linked += 1
            edges_by_kind[kind] += linked
            groups_by_kind[kind] += 1 if linked else 0
    skipped.sort(key=lambda s: (-s["size"], s["kind"], s["key"]))
    result.report = {
        "weights": {k: float(options.weights[k]) for k in HINT_KINDS if k in options.weights},
        "max_group": options.max_group, "scale": round(scale, 9),
        "lightest_flow": round(lightest, 6) if lightest else None,
        "edges_by_kind": edges_by_kind, "groups_by_kind": groups_by_kind,
        "skipped_groups": skipped[:SHOWN_SKIPPED], "skipped_group_count": len(skipped),
        "skipped_pairs": skipped_pairs,
    }
    return result

