"""A vCenter client for long runs: one SOAP session, re-established after expiry, calls retried by one classification.

Every call the migration adapters make goes through `VCenterClient.call`, under one retry classification
(migrate.core.faults, with the SDK rules of adapters.faults): reads
(and anything else marked idempotent) are retried with backoff until a per-operation deadline on a
dropped connection, a cut or unparsable response, a timeout or a busy object; an expired session logs in
again and retries any call (the server refused it before it ran). What is still failing at the deadline,
and transient failures of calls that change something, become retryable AdapterErrors: the engine then
re-runs the idempotent phase. The provider's real answers fail at once. Long tasks are returned as
`TaskOperation`s the engine polls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pyVmomi import vim, vmodl

from adapters.faults import is_provider_fault
from adapters.vcenter.collector import fault_error, read_properties
from adapters.vcenter.connection import VCenterSession, connect
from adapters.vcenter.datastore_http import DatastoreFiles
from adapters.vcenter.settings import VCenterEndpoint
from migrate.core.errors import AdapterError
from migrate.core.faults import LOGIN_BACKOFF, Backoff, call_with_retry, is_transient
from migrate.core.ports import OperationState, OperationStatus

__all__ = ["TaskOperation", "VCenterClient", "fault_error"]

T = TypeVar("T")


class VCenterClient:
    """A lazily (re)connected vCenter session shared by the threads of a run."""

    def __init__(self, endpoint: VCenterEndpoint, password: str | None = None, *,
                 backoff: Backoff | None = None) -> None:
        self.endpoint = endpoint
        self.backoff = backoff or Backoff()
        self.login_backoff = LOGIN_BACKOFF
        self._password = password
        self._lock = threading.Lock()
        self._session: VCenterSession | None = None
        self._files: DatastoreFiles | None = None
        self._generation = 0

    @property
    def where(self) -> str:
        """host:port, for errors."""
        return self.endpoint.host

    def session(self) -> tuple[VCenterSession, int]:
        """The current session (logging in if there is none) and its generation."""
        with self._lock:
            if self._session is None:
                self._session = connect(self.endpoint, self._password)
                self._password = self._session.password
                self._files = None
                self._generation += 1
            return self._session, self._generation

    @property
    def si(self) -> Any:
        """The ServiceInstance of the current session."""
        return self.session()[0].si

    def files(self) -> DatastoreFiles:
        """Datastore HTTP with the current session's cookie (logging in first, under the login deadline)."""
        session, _ = call_with_retry(self.session, backoff=self.login_backoff)
        with self._lock:
            if self._files is None:
                self._files = DatastoreFiles(session)
            return self._files

    def drop(self, generation: int) -> None:
        """Forget the session of `generation` (if still current): the next call logs in again."""
        with self._lock:
            if self._session is not None and generation == self._generation:
                old, self._session = self._session, None
                if self._files is not None:
                    self._files.close()
                    self._files = None
                threading.Thread(target=old.close, daemon=True).start()

    def call(self, op: str, fn: Callable[[Any], T], *, idempotent: bool = True) -> T:
        """Run `fn(si)` under the retry classification; what still fails becomes an AdapterError."""
        generation = tries = 0

        def attempt() -> T:
            nonlocal generation, tries
            tries += 1
            # a login is safe to retry; an endpoint that refuses logins for its whole deadline is exhausted
            session, generation = call_with_retry(self.session, backoff=self.login_backoff)
            return fn(session.si)

        try:
            return call_with_retry(attempt, backoff=self.backoff, idempotent=idempotent,
                                   on_session=lambda: self.drop(generation), what=f"{op} at {self.where}")
        except vim.fault.NotAuthenticated:
            raise AdapterError("vcenter", op, "session expired", retryable=True, endpoint=self.where) from None
        except vmodl.MethodFault as fault:
            raise fault_error(fault, op, self.where) from None
        except AdapterError:
            raise
        except Exception as exc:
            if not is_provider_fault(exc):
                raise   # a bug of ours, not the vCenter's answer
            transient = is_transient(exc)
            what = f"connection lost ({type(exc).__name__})" if transient else f"{type(exc).__name__}: {exc}"
            raise AdapterError("vcenter", op, what, retryable=transient, endpoint=self.where,
                               code=type(exc).__name__, exhausted=transient and idempotent and tries > 1) from None

    def task(self, op: str, start: Callable[[Any], Any]) -> TaskOperation:
        """Start a task with `start(si)` and return it as an operation to poll."""
        return TaskOperation(self, op, self.call(op, start, idempotent=False))

    def close(self) -> None:
        """Log out."""
        with self._lock:
            session, self._session = self._session, None
            if self._files is not None:
                self._files.close()
                self._files = None
        if session is not None:
            session.close()


@dataclass
class TaskOperation:
    """A vCenter task as an engine Operation; its result is the task's result (a moref value for objects)."""

    client: VCenterClient
    op: str
    task: Any

    @property
    def id(self) -> str:
        """The task's moref (task-123)."""
        return str(self.task._moId)

    def poll(self) -> OperationStatus:
        """Read the task's info (a dropped connection while polling is a retryable AdapterError)."""
        info = self.client.call(self.op, lambda si: read_properties(si, self.task, ["info"])["info"])
        if info.state == vim.TaskInfo.State.success:
            result = info.result
            return OperationStatus(OperationState.SUCCESS, 100, result._moId if hasattr(result, "_moId") else result)
        if info.state == vim.TaskInfo.State.error:
            return OperationStatus(OperationState.ERROR, info.progress,
                                   error=fault_error(info.error, self.op, self.client.where))
        return OperationStatus(OperationState.RUNNING, info.progress)
