"""The target vCenter's cluster as the capacity step's HostCluster port (migrate.core.capacity_ports).

One SOAP session, logged in on first use. A call that fails with a provider fault becomes an AdapterError
(retryable when the classification says so) and, when the connection may be at fault, drops the session:
the next call logs in again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from adapters.faults import is_provider_fault, provider_error
from adapters.vcenter import hosts
from adapters.vcenter.connection import VCenterSession, connect
from adapters.vcenter.settings import VCenterEndpoint, vcenter_settings
from migrate.core.capacity_ports import ClusterInfo, HostInfo, HostLogin
from migrate.core.config import DriverSettings
from migrate.core.errors import InputError, MigrateError
from migrate.core.faults import is_transient

__all__ = ["VCenterCluster", "open_host_cluster"]

T = TypeVar("T")


class VCenterCluster:
    """The cluster named in the target section: its hosts and VMs, adding and removing hosts."""

    kind = "vcenter"

    def __init__(self, endpoint: VCenterEndpoint, *, session: VCenterSession | None = None) -> None:
        if not endpoint.cluster:
            raise InputError.single("site.yaml", "target.cluster", "the cloud vCenter and its cluster are needed")
        self.endpoint = endpoint
        self.datacenter = endpoint.datacenter
        self.cluster = endpoint.cluster
        self._session = session
        self._owned = session is None
        self._lock = threading.Lock()

    def _call(self, op: str, fn: Callable[[VCenterSession], T]) -> T:
        with self._lock:
            if self._session is None:
                self._session = connect(self.endpoint)
                self._owned = True
            session = self._session
        try:
            return fn(session)
        except MigrateError:
            raise
        except Exception as exc:   # a raw SDK or network error: classified (a bug of ours goes up as it is)
            if not is_provider_fault(exc):
                raise
            if is_transient(exc):
                self._drop(session)
            raise provider_error(exc, "vcenter", op, self.endpoint.host) from exc

    def _drop(self, session: VCenterSession) -> None:
        with self._lock:
            if self._session is session and self._owned:
                self._session = None
                session.close()

    def read(self) -> ClusterInfo:
        return self._call("read cluster", lambda s: hosts.read_cluster(s, self.datacenter, self.cluster))

    def host(self, name: str) -> HostInfo | None:
        return self._call("read host", lambda s: hosts.host_info(s, self.datacenter, self.cluster, name))

    def add_host(self, name: str, login: HostLogin, timeout: float) -> bool:
        return self._call("add host", lambda s: hosts.add_host(s, self.datacenter, self.cluster, name, login=login,
                                                                timeout=timeout))

    def reconnect_host(self, name: str) -> None:
        self._call("reconnect host", lambda s: hosts.reconnect_host(s, self.datacenter, self.cluster, name))

    def admit_host(self, name: str, timeout: float) -> HostInfo:
        return self._call("admit host", lambda s: hosts.admit_host(s, self.datacenter, self.cluster, name,
                                                                    timeout=timeout))

    def remove_host(self, name: str, timeout: float) -> bool:
        return self._call("remove host", lambda s: hosts.remove_host(s, self.datacenter, self.cluster, name,
                                                                      timeout=timeout))

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None and self._owned:
            session.close()


def open_host_cluster(settings: DriverSettings) -> VCenterCluster:
    """The vcenter driver's HostCluster for a target section (`Driver.host_cluster`)."""
    return VCenterCluster(vcenter_settings(settings, "target"))
