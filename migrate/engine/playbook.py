"""Playbooks (migrate/playbooks/*.yaml, package data): the ordered phases of a migration method and their hooks.

```yaml
version: 1
name: cold
method: cold                        # an installed method: cold | live | noop | replatform | ...
description: Power off, copy, create, power on.
phases: [precheck, power_off_source, copy_disks, create_target_vm, tag_target,
         power_on_target, verify, mark_source_migrated]
hooks:
  wave:                             # once per wave: pre before its prechecks, post after its last VM
    pre:
      - approval: {prompt: "Start wave ${wave}?"}
  vm:                               # per VM: pre right before cutover, post after verification
    pre:
      - http: {url: "https://lb.example/drain/${vm_name}", expect_status: 200, timeout: 10}
      - command: {argv: [/usr/local/bin/notify, "${vm}"], timeout: 60}
    post:
      - wait: {seconds: 30}
        blocking: false             # a failing non-blocking hook is journaled and logged, nothing more
```

Hook strings may use `${run_id}` and `${wave}`, and in VM hooks `${vm}` (id) and `${vm_name}`. A
command is an argv list run without a shell; a string is refused. Phases must be phases of the method,
each once, in stage order (prechecks, then cutover, then verification).

A method installed by another package ships its default playbook as package data and names it in its
`Method.playbook` as a resource, `package:path/name.yaml`; `load_playbook(<method name>)` reads it from there.
"""

from __future__ import annotations

import re
import string
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from migrate.core.errors import InputError, Problem
from migrate.core.fileio import load_yaml_mapping, validation_problems
from migrate.core.models.base import FrozenModel
from migrate.engine.methods import Stage, get_method, registry
from migrate.engine.validation import Loc, raise_problems

__all__ = [
    "PLAYBOOK_DIR",
    "PLAYBOOK_VERSION",
    "ApprovalHook",
    "CommandHook",
    "Hook",
    "HookSet",
    "Hooks",
    "HttpCheck",
    "Playbook",
    "WaitHook",
    "load_playbook",
    "parse_playbook",
    "phase_problems",
    "playbook_schema",
]

PLAYBOOK_VERSION: Literal[1] = 1
# The built-in playbooks ship inside the package: found through importlib.resources, not the checkout.
PLAYBOOK_DIR: Traversable = resources.files("migrate.playbooks")
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
# A playbook shipped as package data: `package:path/inside/it.yaml` (like an entry point's module:attr).
_RESOURCE = re.compile(r"^(?P<package>[A-Za-z_][\w.]*):(?P<path>[\w.-]+(?:/[\w.-]+)*\.ya?ml)$")
WAVE_PLACEHOLDERS = frozenset({"run_id", "wave"})
VM_PLACEHOLDERS = WAVE_PLACEHOLDERS | {"vm", "vm_name"}
# After cutover the VM's new home is known: the target VM (or instance) id and, where there is one, its IP.
VM_POST_PLACEHOLDERS = VM_PLACEHOLDERS | {"target_id", "target_ip"}



class HttpCheck(FrozenModel):
    """GET `url` and expect `expect_status` within `timeout` seconds."""

    url: str = Field(..., pattern=r"^https?://", description="http:// or https:// URL")
    expect_status: int = Field(200, ge=100, le=599)
    timeout: float = Field(10.0, gt=0, le=600)
    verify_tls: bool = True


class TcpCheck(FrozenModel):
    """Connect to `host`:`port`, retrying until it accepts or `timeout` seconds pass (a service is up)."""

    host: str = Field(..., min_length=1, description="host name or IP; placeholders allowed, e.g. ${vm_name}")
    port: int = Field(..., ge=1, le=65535)
    timeout: float = Field(60.0, gt=0, le=3600)


class CommandHook(FrozenModel):
    """Run a program (argv list, no shell) and expect exit status 0 within `timeout` seconds."""

    argv: list[str] = Field(..., min_length=1)
    timeout: float = Field(300.0, gt=0, le=86400)

    @field_validator("argv", mode="before")
    @classmethod
    def _no_shell_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("must be a list of arguments (e.g. [systemctl, stop, app]); a shell string is refused")
        return value

    @field_validator("argv")
    @classmethod
    def _program(cls, value: list[str]) -> list[str]:
        if not value[0].strip():
            raise ValueError("argv[0] (the program) must not be empty")
        return value


class WaitHook(FrozenModel):
    """Wait `seconds` (interrupted by cancel)."""

    seconds: float = Field(..., ge=0, le=86400)


class ApprovalHook(FrozenModel):
    """Ask a person (through the runner's approver) and go on only if they approve."""

    prompt: str = Field(..., min_length=1)


_KINDS = ("http", "tcp", "command", "wait", "approval")


class Hook(FrozenModel):
    """One hook: exactly one of http, tcp, command, wait, approval."""

    name: str | None = None
    blocking: bool = Field(True, description="a failing blocking hook fails its VM (or wave)")
    http: HttpCheck | None = None
    tcp: TcpCheck | None = None
    command: CommandHook | None = None
    wait: WaitHook | None = None
    approval: ApprovalHook | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Hook:
        kinds = [k for k in _KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"give exactly one of {', '.join(_KINDS)} (got {', '.join(kinds) or 'none'})")
        return self

    @property
    def kind(self) -> str:
        """Which kind of hook this is."""
        return next(k for k in _KINDS if getattr(self, k) is not None)

    def templates(self) -> list[tuple[Loc, str]]:
        """Every string that may hold placeholders, with its location inside the hook."""
        if self.http is not None:
            return [(("http", "url"), self.http.url)]
        if self.tcp is not None:
            return [(("tcp", "host"), self.tcp.host)]
        if self.command is not None:
            return [(("command", "argv", i), arg) for i, arg in enumerate(self.command.argv)]
        if self.approval is not None:
            return [(("approval", "prompt"), self.approval.prompt)]
        return []


class HookSet(FrozenModel):
    """Hooks that run before and after."""

    pre: list[Hook] = Field(default_factory=list)
    post: list[Hook] = Field(default_factory=list)


class Hooks(FrozenModel):
    """Per-wave and per-VM hooks."""

    wave: HookSet = Field(default_factory=HookSet)
    vm: HookSet = Field(default_factory=HookSet)


class Playbook(FrozenModel):
    """A migration method's ordered phases and hooks."""

    version: Literal[1] = PLAYBOOK_VERSION
    name: str = Field(..., min_length=1)
    method: str = Field(..., description="an installed migration method (entry points `migrate.methods`)")
    description: str = ""
    phases: list[str] = Field(..., min_length=1)
    hooks: Hooks = Field(default_factory=Hooks)

    @field_validator("method")
    @classmethod
    def _installed(cls, value: str) -> str:
        if value not in registry():
            raise ValueError(f"unknown method {value!r} (installed: {', '.join(sorted(registry()))})")
        return value

    @model_validator(mode="after")
    def _semantics(self) -> Playbook:
        problems = phase_problems(self.method, self.phases)
        for scope, when, allowed in (("wave", "pre", WAVE_PLACEHOLDERS), ("wave", "post", WAVE_PLACEHOLDERS),
                                     ("vm", "pre", VM_PLACEHOLDERS), ("vm", "post", VM_POST_PLACEHOLDERS)):
            hook_set: HookSet = getattr(self.hooks, scope)
            for i, hook in enumerate(getattr(hook_set, when)):
                for loc, text in hook.templates():
                    message = _placeholder_problem(text, allowed)
                    if message:
                        problems.append((("hooks", scope, when, i, *loc), message))
        raise_problems(type(self).__name__, problems)
        return self


def _placeholder_problem(text: str, allowed: frozenset[str]) -> str | None:
    """Why `text` is not a valid hook template (unknown or malformed ${...}), or None."""
    template = string.Template(text)
    if not template.is_valid():
        return "malformed placeholder; write ${name} (and $$ for a literal $)"
    unknown = sorted(set(template.get_identifiers()) - allowed)
    if unknown:
        return f"unknown placeholder(s) {', '.join(unknown)}; allowed here: {', '.join(sorted(allowed))}"
    return None


def phase_problems(method_name: str, phases: list[str]) -> list[tuple[Loc, str]]:
    """Phases that are not phases of the method, listed twice, out of stage order, or that need the output
    of a phase the playbook leaves out or puts after them."""
    problems: list[tuple[Loc, str]] = []
    method = get_method(method_name)
    order = list(Stage)
    seen: set[str] = set()
    last = 0
    for i, phase in enumerate(phases):
        if not method.has_phase(phase):
            problems.append((("phases", i), f"unknown phase {phase!r} for method {method_name!r} "
                                            f"(known: {', '.join(p.name for p in method.phases)})"))
            continue
        if phase in seen:
            problems.append((("phases", i), f"phase {phase!r} is listed twice"))
        seen.add(phase)
        index = order.index(method.phase(phase).stage)
        if index < last:
            problems.append((("phases", i), f"{order[index].value} phase {phase!r} comes after a "
                                            f"{order[last].value} phase"))
        last = max(last, index)
    problems.extend((("phases", i), why) for i, why in method.order_problems(phases))
    return problems


def parse_playbook(data: Any, file: str) -> Playbook:
    """Validate parsed YAML as a playbook; InputError naming `file` and every bad field."""
    try:
        return validation_problems(Playbook, data, file)
    except InputError as exc:
        # Other fields' errors stop pydantic before the phase checks: add those so every problem shows at once.
        method, phases = data.get("method"), data.get("phases")
        if method in registry() and isinstance(phases, list) and all(isinstance(p, str) for p in phases):
            listed = {p.field for p in exc.problems}
            extra = [Problem(file, f"phases[{loc[1]}]", message)
                     for loc, message in phase_problems(method, phases) if f"phases[{loc[1]}]" not in listed]
            if extra:
                raise InputError([*exc.problems, *extra]) from None
        raise


def load_playbook(name_or_path: str | Path, *, directory: Path | Traversable | None = None) -> Playbook:
    """Load a playbook by name (`cold` -> the built-in migrate/playbooks/cold.yaml; an installed method whose
    `playbook` is a package resource -> that resource), by resource (`package:file.yaml`) or by path."""
    text = str(name_or_path)
    if isinstance(name_or_path, str) and directory is None:
        method = registry().get(text) if _NAME.match(text) else None
        reference = _RESOURCE.match(method.playbook_name if method is not None else text)
        if reference is not None and (method is not None or not Path(text).exists()):
            return _load_resource(reference["package"], reference["path"])
    if not (isinstance(name_or_path, str) and _NAME.match(text)):
        path = Path(text)
        return parse_playbook(load_yaml_mapping(path), str(path))
    folder = PLAYBOOK_DIR if directory is None else directory
    resource = folder / f"{text}.yaml"
    if not resource.is_file():
        known = sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))
        raise InputError.single(text, "", f"no playbook named {text!r} (known: {', '.join(known) or 'none'})")
    with resources.as_file(resource) as path:   # a real file (a zipped package gives a temporary copy)
        return parse_playbook(load_yaml_mapping(path), str(path))


def _load_resource(package: str, path: str) -> Playbook:
    """The playbook `path` inside installed `package`; InputError if either is missing."""
    where = f"{package}:{path}"
    try:
        resource = resources.files(package).joinpath(*path.split("/"))
    except ModuleNotFoundError:
        raise InputError.single(where, "", f"no installed package {package!r}") from None
    if not resource.is_file():
        raise InputError.single(where, "", f"package {package!r} has no file {path!r}")
    with resources.as_file(resource) as file:
        return parse_playbook(load_yaml_mapping(file), where)


def playbook_schema() -> dict[str, Any]:
    """The JSON Schema of the playbook format (for `migrate schema playbook`)."""
    document: dict[str, Any] = Playbook.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["properties"]["method"]["enum"] = sorted(registry())   # the methods installed here
    return document
