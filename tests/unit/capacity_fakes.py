"""In-memory capacity ports for the engine's capacity tests: a host provisioner and a cluster."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from migrate.core.capacity_ports import ClusterInfo, HostInfo, HostLogin, ProvisionedHost
from migrate.core.errors import AdapterError

I4I = {"name": "i4i.metal", "vcpus": 128, "default_cores": 64, "memory_mib": 1048576, "architectures": ["x86_64"],
       "bare_metal": True, "instance_storage_gb": 30000}


@dataclass
class FakeProvisioner:
    """Hosts in a dict; `ready` says whether new hosts report ready; `faults` are raised by the named calls,
    one each, after the call took effect (a response lost on the way back)."""

    kind: str = "fake"
    ready: bool = True
    hosts: dict[str, ProvisionedHost] = field(default_factory=dict)
    allocations: int = 0
    faults: dict[str, list[AdapterError]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _fault(self, call: str) -> None:
        pending = self.faults.get(call)
        if pending:
            raise pending.pop(0)

    def supported_host_types(self) -> list[str] | None:
        return None

    def host_type_specs(self, host_type: str) -> Mapping[str, Any]:
        return {**I4I, "name": host_type}

    def allocate(self, count: int, host_type: str, tags: Mapping[str, str],
                 idempotency_key: str) -> list[ProvisionedHost]:
        with self.lock:
            self.allocations += 1
            have = [h for h in self.hosts.values() if h.tags.get("key") == idempotency_key]
            for _ in range(count - len(have)):
                host_id = f"h-{len(self.hosts):03d}"
                self.hosts[host_id] = ProvisionedHost(id=host_id, name=f"{host_id}.test", host_type=host_type,
                                                      state="pending", ready=False,
                                                      tags={**tags, "key": idempotency_key})
        self._fault("allocate")
        return self.find(tags)[:count]

    def find(self, tags: Mapping[str, str]) -> list[ProvisionedHost]:
        self._fault("find")
        with self.lock:
            hosts = [replace(h, ready=self.ready, state="available" if self.ready else "pending")
                     for h in self.hosts.values() if all(h.tags.get(k) == v for k, v in tags.items())]
        return sorted(hosts, key=lambda h: h.name)

    def release(self, host_ids: Sequence[str]) -> list[str]:
        with self.lock:
            return [self.hosts.pop(i).id for i in host_ids if i in self.hosts]

    def host_login(self, host: ProvisionedHost) -> HostLogin:
        return HostLogin()

    def close(self) -> None:
        pass


@dataclass
class FakeCluster:
    """A cluster of `base` connected 64-core hosts; added hosts connect at once."""

    kind: str = "fake-vcenter"
    base: int = 3
    hosts: dict[str, HostInfo] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for i in range(self.base):
            self._put(f"esx-{i}.test")

    def _put(self, name: str) -> None:
        self.hosts[name] = HostInfo(moref=f"host-{len(self.hosts)}", name=name, connection_state="connected",
                                    in_maintenance=False, cores=64, threads=128, memory_mib=1048576)

    def read(self) -> ClusterInfo:
        return ClusterInfo(datacenter=None, name="Cluster-1", moref="domain-c1", hosts=list(self.hosts.values()),
                           vms=[])

    def host(self, name: str) -> HostInfo | None:
        return self.hosts.get(name)

    def add_host(self, name: str, login: HostLogin, timeout: float) -> bool:
        if name in self.hosts:
            return False
        self._put(name)
        self.added.append(name)
        return True

    def reconnect_host(self, name: str) -> None:
        pass

    def admit_host(self, name: str, timeout: float) -> HostInfo:
        return self.hosts[name]

    def remove_host(self, name: str, timeout: float) -> bool:
        return self.hosts.pop(name, None) is not None

    def close(self) -> None:
        pass
