"""`migrate lab up|down|status`: start, seed, describe and stop the lab in one directory."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.lab.estate import CLOUD, DATASTORE_MAP, NETWORK_MAP, ONPREM, TEST_NETWORK_MAP, make_estate
from adapters.lab.estate_readiness import with_readiness
from migrate.config import load_site_config
from migrate.core.errors import InputError, LabError
from migrate.core.fileio import atomic_write, load_yaml_mapping, write_json, write_yaml
from migrate.core.log import get_logger
from migrate.lab import DEFAULT_LAB_DIR
from migrate.lab.extra import require_lab_extra
from migrate.lab.flows import flows_csv
from migrate.lab.processes import ManagedProcess, free_port, start_process, wait_for_file, wait_for_port
from migrate.lab.temporal_server import (
    DB_FILES,
    TemporalServer,
    engine_section,
    launch_temporal,
    temporal_binary,
    wait_serving,
)
from migrate.lab.vcsim_build import vcsim_binary
from migrate.progress import progress_bar

__all__ = ["DEFAULT_LAB_DIR", "LabInfo", "lab_down", "lab_status", "lab_up", "source_names"]

STATE_FILE = "lab.json"
MAX_LAB_SOURCES = 4
LAB_REGION = "us-east-1"
_OWNED = ("site.yaml", "flows.csv", "estate.json", STATE_FILE, ".lock", *DB_FILES)
SITE_HEADER = "# Written by `migrate lab up`: the built-in lab.\n"
_OWNED_DIRS = ("tls", "secrets", "run", "logs", "datastores")
log = get_logger(__name__)

if TYPE_CHECKING:
    from adapters.lab.aws_network import LabNetworks


@dataclass
class LabInfo:
    """What a running lab holds and where to reach it."""

    directory: Path
    vms: int
    seed: int
    bare: bool
    endpoints: dict[str, str]
    instance_uuids: dict[str, str]
    processes: list[ManagedProcess]
    startup_seconds: float
    ready: bool = False
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def sources(self) -> int:
        """How many on-prem vCenters the lab runs."""
        return int(self.extras.get("sources", 1))

    @property
    def site_config(self) -> Path:
        return self.directory / "site.yaml"

    @property
    def flows(self) -> Path | None:
        path = self.directory / "flows.csv"
        return path if path.exists() else None

    def running(self) -> bool:
        return self.ready and all(p.alive() for p in self.processes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory), "vms": self.vms, "seed": self.seed, "bare": self.bare,
            "endpoints": self.endpoints, "instance_uuids": self.instance_uuids,
            "processes": [p.to_dict() for p in self.processes], "startup_seconds": self.startup_seconds,
            "ready": self.ready, "site_config": str(self.site_config),
            "flows": str(self.flows) if self.flows else None, **self.extras,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabInfo:
        known = {"site_config", "flows", "directory", "vms", "seed", "bare", "endpoints", "instance_uuids",
                 "processes", "startup_seconds", "ready"}
        return cls(
            directory=Path(data["directory"]), vms=data["vms"], seed=data["seed"], bare=data["bare"],
            endpoints=data["endpoints"], instance_uuids=data["instance_uuids"],
            processes=[ManagedProcess(**p) for p in data["processes"]],
            startup_seconds=data["startup_seconds"], ready=data.get("ready", False),
            extras={k: v for k, v in data.items() if k not in known},
        )


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _read_state(directory: Path) -> LabInfo | None:
    path = directory / STATE_FILE
    if not path.exists():
        return None
    try:
        return LabInfo.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise LabError(f"{path} is corrupt ({exc}); stop its servers by hand and delete it") from None


def lab_status(directory: Path = DEFAULT_LAB_DIR) -> LabInfo | None:
    """The lab in `directory`, or None when there is none."""
    return _read_state(directory.resolve())


def lab_up(directory: Path = DEFAULT_LAB_DIR, *, vms: int = 40, seed: int = 1, bare: bool = False,
           readiness: bool = False, temporal: bool = False, sources: int = 1) -> LabInfo:
    """Start (or find running) the lab in `directory` and write its site.yaml. Idempotent. With `readiness`,
    the seeded estate also holds the readiness VMs (adapters/lab/estate_readiness.py). With `temporal`, the lab
    also runs a Temporal dev server (added to a running lab that has none) and site.yaml gets `engine`. With
    `sources` > 1, that many on-prem vCenters (onprem, onprem2, ...) share the estate by application and
    site.yaml lists them under `sources` (a bare lab: each simulates `vms` VMs)."""
    if vms < 1:
        raise InputError.single("--vms", "vms", "must be at least 1")
    if not 1 <= sources <= MAX_LAB_SOURCES:
        raise InputError.single("--sources", "sources", f"must be between 1 and {MAX_LAB_SOURCES}")
    estate = None if bare else make_estate(vms, seed)   # validates --vms before anything starts
    if estate is not None and readiness:
        estate = with_readiness(estate)
    require_lab_extra()
    temporal_cli = temporal_binary() if temporal else None
    directory = directory.resolve()
    with _locked(directory):
        current = _read_state(directory)
        if current is not None:
            if current.running():
                if (current.vms, current.seed, current.bare, bool(current.extras.get("readiness")),
                        current.sources) != (vms, seed, bare, readiness and not bare, sources):
                    raise InputError.single("--vms/--seed/--bare/--sources", "",
                                            f"a lab with vms={current.vms} seed={current.seed} "
                                            f"bare={current.bare} sources={current.sources} is already running "
                                            f"in {directory}; run `migrate lab down` first")
                if temporal_cli is not None:
                    _add_temporal(current, temporal_cli)
                return current
            log.info("lab state is stale; cleaning up", directory=str(directory))
            _stop_and_clean(directory, current)
        try:
            return _start(directory, vms=vms, seed=seed, bare=bare, estate=estate, temporal_cli=temporal_cli,
                          sources=sources)
        except BaseException:
            _stop_and_clean(directory, _read_state(directory))
            raise


def lab_down(directory: Path = DEFAULT_LAB_DIR) -> bool:
    """Stop every process the lab started and remove its files; False when there was no lab."""
    directory = directory.resolve()
    if not directory.exists():
        return False
    with _locked(directory):
        current = _read_state(directory)
        _stop_and_clean(directory, current)
    with contextlib.suppress(OSError):   # the user keeps other files there
        directory.rmdir()
    return current is not None


def _stop_and_clean(directory: Path, info: LabInfo | None) -> None:
    for proc in info.processes if info else []:
        proc.stop()
    for name in _OWNED_DIRS:
        shutil.rmtree(directory / name, ignore_errors=True)
    for name in _OWNED:
        if name != ".lock":
            (directory / name).unlink(missing_ok=True)
    (directory / ".lock").unlink(missing_ok=True)


def _write_password(path: Path) -> str:
    password = secrets.token_urlsafe(18)
    atomic_write(path, password + "\n", mode=0o600)
    return password


def _start(directory: Path, *, vms: int, seed: int, bare: bool, estate: Any, temporal_cli: Path | None,
           sources: int) -> LabInfo:
    from migrate.lab.certs import make_lab_certificates  # cryptography: the lab extra, checked by lab_up

    started = time.monotonic()
    binary = vcsim_binary()
    (directory / "secrets").mkdir(mode=0o700, exist_ok=True)
    certs = make_lab_certificates(directory / "tls")
    vcenters = [*source_names(sources), "cloud"]
    uuids = {name: str(uuid.uuid4()) for name in vcenters}
    info = LabInfo(directory=directory, vms=vms, seed=seed, bare=bare, endpoints={}, instance_uuids=uuids,
                   processes=[], startup_seconds=0.0)
    if sources > 1:
        info.extras["sources"] = sources
    if estate is not None and any(vm.rules is not None for vm in estate.vms):
        info.extras["readiness"] = True

    passwords: dict[str, str] = {}
    url_files: dict[str, Path] = {}
    for name in vcenters:
        passwords[name] = _write_password(directory / "secrets" / f"{name}.password")
        url_files[name] = directory / "run" / f"{name}.url"
        url_files[name].parent.mkdir(exist_ok=True)
        url_files[name].unlink(missing_ok=True)
        topo = CLOUD if name == "cloud" else ONPREM
        cmd = [str(binary), "-listen", "127.0.0.1:0", "-cert", str(certs.cert_file), "-key", str(certs.key_file),
               "-uuid", uuids[name], "-url-file", str(url_files[name]),
               "-host-cores", str(topo.host_cores), "-host-memory-mb", str(topo.host_memory_mb)]
        cmd += ["-vm", str(vms), "-cluster", "1", "-host", "8"] if (bare and name != "cloud") else ["-empty"]
        env = {"PATH": os.environ.get("PATH", ""), "VCSIM_PASSWORD": passwords[name], "TMPDIR": str(
            (directory / "datastores" / name).resolve())}
        Path(env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
        info.processes.append(start_process(f"vcsim-{name}", cmd, directory / "logs" / f"{name}.log", env=env))
        _save(info)

    moto_port = free_port()
    aws_credentials = directory / "secrets" / "aws-credentials"
    atomic_write(aws_credentials, "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
                 mode=0o600)
    moto_env = {**os.environ, "MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION": "true",
                "MOTO_ENABLE_AMI_VALIDATION": "true"}
    moto = start_process("moto", [sys.executable, "-m", "migrate.lab.moto_ebs", "-H", "127.0.0.1", "-p", str(moto_port),
                                  "-c", str(certs.cert_file), "-k", str(certs.key_file)],
                         directory / "logs" / "moto.log", env=moto_env)
    info.processes.append(moto)
    _save(info)
    temporal = _launch_temporal(info, temporal_cli) if temporal_cli else None

    startup_timeout = 60 + vms / 100
    for proc, name in zip(info.processes, vcenters, strict=False):
        info.endpoints[name] = wait_for_file(url_files[name], proc, startup_timeout)
    wait_for_port(moto_port, moto, 60)
    info.endpoints["aws"] = f"https://127.0.0.1:{moto_port}"
    if temporal is not None:
        wait_serving(temporal)
        info.endpoints["temporal"] = temporal.address

    networks = _aws_networks(info, aws_credentials, certs.ca_file, bare)
    site = _site_document(info, certs.ca_file, bare, networks)
    write_yaml(directory / "site.yaml", site, header=SITE_HEADER)
    config = load_site_config(directory / "site.yaml")

    from adapters.lab.seed import seed_lab  # only adapters/ touches pyvmomi

    with progress_bar("seeding on-prem estate", 2 * len(estate.vms) if estate else 0) as advance:
        manifest = seed_lab(config, estate, datastore_roots={n: directory / "datastores" / n for n in uuids},
                            passwords=passwords, advance=advance)
    if estate is not None:
        write_json(directory / "estate.json", manifest)
        atomic_write(directory / "flows.csv", flows_csv(estate))
    info.startup_seconds = round(time.monotonic() - started, 2)
    info.ready = True
    _save(info)
    return info


def source_names(count: int) -> list[str]:
    """The lab's on-prem vCenters: onprem, then onprem2, onprem3 ..."""
    return ["onprem", *(f"onprem{i}" for i in range(2, count + 1))]


def _save(info: LabInfo) -> None:
    write_json(info.directory / STATE_FILE, info.to_dict())


def _launch_temporal(info: LabInfo, binary: Path) -> TemporalServer:
    """Start the Temporal dev server and record its process at once (so `lab down` stops it whatever follows)."""
    server = launch_temporal(info.directory, binary)
    info.processes.append(server.process)
    _save(info)
    return server


def _add_temporal(info: LabInfo, binary: Path) -> None:
    """Add the Temporal dev server to a running lab and `engine` to its site.yaml; a no-op when it has one.
    If the server does not come up, it is stopped and the rest of the lab keeps running."""
    if "temporal" in info.endpoints:
        return
    server = _launch_temporal(info, binary)
    try:
        wait_serving(server)
    except BaseException:
        server.process.stop()
        info.processes.remove(server.process)
        _save(info)
        raise
    info.endpoints["temporal"] = server.address
    _save(info)
    site = load_yaml_mapping(info.site_config)
    site["engine"] = engine_section(server.address, source_names(info.sources))
    write_yaml(info.site_config, site, header=SITE_HEADER)
    load_site_config(info.site_config)   # the section must pass EngineConfig


def _network_map(bare: bool) -> dict[str, str]:
    """On-prem port group -> cloud segment (site.yaml `mappings.networks`)."""
    return {"DC0_DVPG0": "seg-app", "VM Network": "seg-app"} if bare else dict(NETWORK_MAP)


def _aws_networks(info: LabInfo, credentials: Path, ca_file: Path, bare: bool) -> LabNetworks:
    """The VPC, one subnet per mapped segment, the isolated test subnet and the security groups, in moto."""
    from adapters.aws.settings import AwsSettings
    from adapters.lab.aws_network import ensure_lab_networks

    settings = AwsSettings(region=LAB_REGION, endpoint_url=info.endpoints["aws"], credentials_file=credentials,
                           ca_bundle=ca_file)
    segments = {segment: CLOUD.portgroups[segment] for segment in sorted(set(_network_map(bare).values()))}
    networks = ensure_lab_networks(settings, segments)
    info.extras["aws_networks"] = networks.to_dict()
    _save(info)
    return networks


def _replatform_networks(networks: LabNetworks, bare: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """site.yaml `replatformer.networks` and `test_networks`: every port group a lab VM sits on (on-prem port
    groups, to re-platform from the on-prem vCenter, and cloud segments, from the cloud one) -> its segment's
    subnet, or the isolated test subnet."""
    portgroups = {**_network_map(bare), **{s: s for s in networks.subnets}}
    production = {pg: {"subnet_id": networks.subnets[segment], "security_group_ids": [networks.security_group_id]}
                  for pg, segment in portgroups.items()}
    test = {pg: {"subnet_id": networks.test_subnet_id, "security_group_ids": [networks.test_security_group_id]}
            for pg in portgroups}
    return production, test


def _site_document(info: LabInfo, ca_file: Path, bare: bool, aws_networks: LabNetworks) -> dict[str, Any]:
    def endpoint(name: str, topo_target: bool) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": name,
            "url": info.endpoints[name],
            "username": "administrator@vsphere.local",
            "password_file": f"secrets/{name}.password",
            "tls": {"verify": True, "ca_file": os.path.relpath(ca_file, info.directory)},
        }
        if topo_target:
            doc.update(datacenter=CLOUD.datacenter, cluster=next(iter(CLOUD.clusters)),
                       datastore=next(iter(CLOUD.datastores)), folder=CLOUD.vm_folder,
                       resource_pool=CLOUD.resource_pool)
        else:
            doc["datacenter"] = "DC0" if bare else ONPREM.datacenter
        return doc

    datastores = {"LocalDS_0": "WorkloadDatastore"} if bare else DATASTORE_MAP
    production, test = _replatform_networks(aws_networks, bare)
    return {
        "version": 1,
        **({"sources": [endpoint(name, False) for name in source_names(info.sources)]} if info.sources > 1
           else {"source": endpoint("onprem", False)}),
        "target": endpoint("cloud", True),
        "replatformer": {"driver": "aws", "region": LAB_REGION, "endpoint_url": info.endpoints["aws"],
                         "credentials_file": "secrets/aws-credentials",
                         "ca_bundle": os.path.relpath(ca_file, info.directory),
                         "networks": production, "test_networks": test},
        "mappings": {"networks": _network_map(bare), "datastores": dict(datastores),
                     **({} if bare else {"test_networks": dict(TEST_NETWORK_MAP)})},
        **({"engine": engine_section(info.endpoints["temporal"], source_names(info.sources))}
           if "temporal" in info.endpoints else {}),
    }
