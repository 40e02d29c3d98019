"""Reading through the PropertyCollector (never per-attribute) and waiting for tasks."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from pyVmomi import vim, vmodl

from adapters.faults import VSPHERE_TRANSIENT
from migrate.core.errors import AdapterError

__all__ = ["fault_error", "fault_name", "read_properties", "read_view", "wait_for_task"]


def read_properties(si: Any, obj: Any, paths: Sequence[str]) -> dict[str, Any]:
    """Read `paths` of one managed object in a single RetrievePropertiesEx call."""
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=obj, skip=False)],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=type(obj), pathSet=list(paths), all=False)],
    )
    result = si.content.propertyCollector.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions())
    values: dict[str, Any] = dict.fromkeys(paths)
    if result and result.objects:
        for prop in result.objects[0].propSet or []:
            values[prop.name] = prop.val
    return values


def read_view(si: Any, vim_type: type, paths: Sequence[str],
              root: Any = None) -> Iterable[tuple[Any, dict[str, Any]]]:
    """Yield (object, properties) for every object of `vim_type` under `root`, following paging tokens."""
    content = si.content
    view = content.viewManager.CreateContainerView(root or content.rootFolder, [vim_type], True)
    try:
        traversal = vmodl.query.PropertyCollector.TraversalSpec(
            name="view", path="view", skip=False, type=vim.view.ContainerView)
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[traversal])],
            propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim_type, pathSet=list(paths), all=False)],
        )
        collector = content.propertyCollector
        result = collector.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions())
        while result:
            for item in result.objects or []:
                yield item.obj, {p.name: p.val for p in item.propSet or []}
            if not result.token:
                break
            result = collector.ContinueRetrievePropertiesEx(result.token)
    finally:
        view.DestroyView()


def fault_name(fault: BaseException) -> str:
    """The vSphere fault type (e.g. `InvalidLogin`), the stable key for mapping faults."""
    name = type(fault).__name__
    return name.rsplit(".", 1)[-1]


def fault_error(fault: BaseException, op: str, endpoint: str | None) -> AdapterError:
    """An AdapterError for a vSphere fault: its type as the code, retryable by type (adapters.faults)."""
    message = getattr(fault, "msg", None) or fault_name(fault)
    invalid = getattr(fault, "invalidProperty", None)
    if invalid:
        message += f" (property {invalid})"
    return AdapterError("vcenter", op, f"{fault_name(fault)}: {message}", endpoint=endpoint, code=fault_name(fault),
                        retryable=isinstance(fault, VSPHERE_TRANSIENT))


def wait_for_task(si: Any, task: vim.Task, op: str, *, timeout: float = 600.0,
                  endpoint: str | None = None) -> Any:
    """Poll a task's info through the collector; return its result or raise AdapterError."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        info = read_properties(si, task, ["info"])["info"]
        if info.state == vim.TaskInfo.State.success:
            return info.result
        if info.state == vim.TaskInfo.State.error:
            raise fault_error(info.error, op, endpoint)
        if time.monotonic() > deadline:
            raise AdapterError("vcenter", op, f"task still {info.state} after {timeout:.0f} s",
                               retryable=True, endpoint=endpoint)
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
