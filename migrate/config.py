"""Site configuration (site.yaml): where the vCenters and AWS are, and how to map networks/datastores."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator, model_validator

from migrate.errors import InputError, Problem
from migrate.fileio import load_yaml_mapping, validation_problems
from migrate.models.base import StrictModel
from migrate.redact import register_secret

__all__ = [
    "AwsNetworkMapping",
    "AwsSettings",
    "Mappings",
    "SiteConfig",
    "TlsSettings",
    "VCenterEndpoint",
    "aws_network_problems",
    "load_site_config",
    "resolve_password",
]

SITE_CONFIG_VERSION: Literal[1] = 1
MAX_CLUSTER_HOSTS = 1000        # min_hosts and spare_hosts of one cluster (vSphere allows 96 hosts)
MAX_VCPU_PER_CORE = 64.0        # CPU overcommit
SHOWN_PATH = 120                # characters of a bad path shown in a message



class TlsSettings(StrictModel):
    """How to trust the server's certificate. Verification is on unless `verify: false`."""

    verify: bool = True
    ca_file: Path | None = Field(None, description="PEM bundle of CAs to trust instead of the system store")
    thumbprint: str | None = Field(
        None, description="pin the server certificate by its SHA-256 (or SHA-1) fingerprint, hex with colons"
    )

    @field_validator("thumbprint")
    @classmethod
    def _thumbprint_is_hex(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = value.replace(":", "").lower()
        if len(digits) not in (40, 64) or any(c not in "0123456789abcdef" for c in digits):
            raise ValueError("must be a SHA-1 or SHA-256 fingerprint in hex, e.g. AB:CD:...")
        return ":".join(digits[i : i + 2] for i in range(0, len(digits), 2)).upper()


class VCenterEndpoint(StrictModel):
    """One vCenter: the on-prem source or the cloud SDDC target."""

    name: str = Field(..., min_length=1, description="short label used in logs and reports")
    url: str = Field(..., description="SDK endpoint, https://host[:port]/sdk")
    username: str = Field(..., min_length=1)
    password_env: str | None = Field(None, description="name of the environment variable holding the password")
    password_file: Path | None = Field(None, description="file holding the password (mode 0600)")
    tls: TlsSettings = Field(default_factory=TlsSettings)
    datacenter: str | None = None
    cluster: str | None = Field(None, description="target cluster for placement (target only)")
    datastore: str | None = Field(None, description="default datastore for placement (target only)")
    folder: str | None = Field(None, description="VM folder for placement (target only)")
    resource_pool: str | None = Field(None, description="resource pool path under the cluster for placement, e.g. "
                                                        "Compute-ResourcePool on an SDDC (target only; default: the "
                                                        "cluster's root pool)")

    @field_validator("url")
    @classmethod
    def _url_is_sdk(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must look like https://host[:port]/sdk")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials; use username and password_env/password_file")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_password_source(self) -> VCenterEndpoint:
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError("set exactly one of password_env or password_file")
        if self.url.startswith("http://") and self.tls.verify:
            raise ValueError("url is plain http but tls.verify is true; use https")
        return self

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc


class AwsNetworkMapping(StrictModel):
    """Where a NIC on one VMware port group lands when its VM is re-platformed to a native EC2 instance."""

    subnet_id: str = Field(..., pattern=r"^subnet-[0-9a-f]+$", description="EC2 subnet for NICs on this port group")
    security_group_ids: list[str] = Field(
        default_factory=list, description="security groups for those NICs (empty: the VPC's default group)")
    keep_private_ip: bool = Field(
        False, description="launch with the VM's current IP as the NIC's private IP (it must lie in the subnet)")

    @field_validator("security_group_ids")
    @classmethod
    def _group_ids(cls, value: list[str]) -> list[str]:
        bad = [g for g in value if not g.startswith("sg-")]
        if bad:
            raise ValueError(f"not security group ids (sg-...): {', '.join(bad)}")
        return value


class AwsSettings(StrictModel):
    """AWS account access. Credentials come from the standard chain unless a profile/file is named."""

    region: str = Field(..., min_length=1)
    endpoint_url: str | None = Field(None, description="override the service endpoint (e.g. the lab's moto)")
    profile: str | None = None
    credentials_file: Path | None = Field(None, description="shared credentials file to use instead of ~/.aws")
    ca_bundle: Path | None = Field(None, description="PEM bundle to verify the endpoint's TLS certificate")
    networks: dict[str, AwsNetworkMapping] = Field(
        default_factory=dict,
        description="VMware port group name -> EC2 subnet, security groups and private-IP policy, used when "
                    "re-platforming to native EC2; every NIC's port group needs an entry")


class CapacityConfig(StrictModel):
    """Bare-metal capacity of the target cluster: what `migrate run` and `migrate capacity` add per wave."""

    host_type: str = Field("i4i.metal", description="EC2 bare-metal instance type of new hosts")
    provisioner: Literal["ec2", "evs"] = Field("ec2", description="ec2: dedicated hosts; evs: Elastic VMware Service")
    min_hosts: int | None = Field(None, ge=1, le=MAX_CLUSTER_HOSTS,
                                  description="cluster minimum (default: the vSAN policy's)")
    spare_hosts: int = Field(1, ge=0, le=MAX_CLUSTER_HOSTS, description="hosts kept free for failures (N+1)")
    vcpu_per_core: float = Field(4.0, gt=0, le=MAX_VCPU_PER_CORE, allow_inf_nan=False,
                                 description="CPU overcommit: vCPUs per physical core")
    memory_max_util: float = Field(0.7, gt=0, le=1, allow_inf_nan=False,
                                   description="highest memory use allowed per host")
    availability_zone: str | None = Field(None, description="EC2 zone of new hosts (default: the region's first)")
    host_domain: str = Field("sddc.internal", description="DNS suffix of new hosts' names in the cloud vCenter")
    evs_environment_id: str | None = None
    evs_key_name: str | None = None
    esxi_username: str = "root"
    esxi_password_env: str | None = Field(None, description="environment variable holding new hosts' root password")


class Mappings(StrictModel):
    """Source name -> target name, for port groups and datastores."""

    networks: dict[str, str] = Field(default_factory=dict)
    datastores: dict[str, str] = Field(default_factory=dict)


class SiteConfig(StrictModel):
    """The whole site.yaml."""

    version: Literal[1] = SITE_CONFIG_VERSION
    source: VCenterEndpoint
    target: VCenterEndpoint | None = None
    aws: AwsSettings | None = None
    mappings: Mappings = Field(default_factory=Mappings)
    capacity: CapacityConfig | None = Field(None, description="grow the target cluster per wave (default settings "
                                                              "when absent; `migrate run --no-capacity` skips it)")

    def relative_to(self, base: Path) -> SiteConfig:
        """Resolve every relative file path against `base` (the site.yaml's folder)."""
        data = self.model_copy(deep=True)
        for endpoint in (data.source, data.target):
            if endpoint is None:
                continue
            if endpoint.password_file and not endpoint.password_file.is_absolute():
                endpoint.password_file = base / endpoint.password_file
            if endpoint.tls.ca_file and not endpoint.tls.ca_file.is_absolute():
                endpoint.tls.ca_file = base / endpoint.tls.ca_file
        if data.aws:
            if data.aws.credentials_file and not data.aws.credentials_file.is_absolute():
                data.aws.credentials_file = base / data.aws.credentials_file
            if data.aws.ca_bundle and not data.aws.ca_bundle.is_absolute():
                data.aws.ca_bundle = base / data.aws.ca_bundle
        return data


def _govc_defaults(env: os._Environ[str] | dict[str, str]) -> dict[str, Any]:
    """The source endpoint as the govc variables describe it (GOVC_URL, GOVC_USERNAME, ...)."""
    url = env.get("GOVC_URL")
    if not url:
        return {}
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    found: dict[str, Any] = {
        "name": "source",
        "url": urlunsplit((parts.scheme, netloc, parts.path if parts.path not in ("", "/") else "/sdk", "", "")),
    }
    username = env.get("GOVC_USERNAME") or parts.username
    if username:
        found["username"] = username
    if env.get("GOVC_PASSWORD"):
        found["password_env"] = "GOVC_PASSWORD"  # noqa: S105 - a variable name, not a password
    tls: dict[str, Any] = {}
    if env.get("GOVC_INSECURE", "").lower() in ("1", "true", "yes"):
        tls["verify"] = False
    if env.get("GOVC_TLS_CA_CERTS"):
        tls["ca_file"] = env["GOVC_TLS_CA_CERTS"]
    known_hosts = env.get("GOVC_TLS_KNOWN_HOSTS")
    if known_hosts and Path(known_hosts).is_file():
        for line in Path(known_hosts).read_text().splitlines():
            fields = line.split()
            if len(fields) == 2 and fields[0] == netloc:
                tls["thumbprint"] = fields[1]
    if tls:
        found["tls"] = tls
    return found


def load_site_config(path: str | Path, env: dict[str, str] | None = None) -> SiteConfig:
    """Read and check site.yaml; raise InputError listing every problem (file and field)."""
    path = Path(path)
    environ = dict(os.environ) if env is None else env
    raw = load_yaml_mapping(path)
    govc = _govc_defaults(environ)
    if govc:
        source = raw.get("source")
        if source is None:
            raw["source"] = govc
        elif isinstance(source, dict):
            raw["source"] = {**govc, **source}
    config = validation_problems(SiteConfig, raw, str(path))
    config = config.relative_to(path.parent)
    problems = list(_file_problems(config, str(path), environ))
    if problems:
        raise InputError(problems)
    return config


def aws_network_problems(aws: AwsSettings | None, vm: str, portgroups: Iterable[str],
                         file: str = "site.yaml") -> list[Problem]:
    """One Problem per NIC port group of `vm` that has no `aws.networks` entry (checked before any launch)."""
    mapped = aws.networks if aws else {}
    return [Problem(file, f"aws.networks.{pg}", f"VM {vm}: no EC2 subnet mapped for port group {pg!r}")
            for pg in dict.fromkeys(portgroups) if pg not in mapped]


def _file_problems(config: SiteConfig, file: str, env: dict[str, str]) -> list[Problem]:
    problems: list[Problem] = []
    for role, endpoint in (("source", config.source), ("target", config.target)):
        if endpoint is None:
            continue
        if endpoint.password_env and endpoint.password_env not in env:
            problems.append(Problem(file, f"{role}.password_env",
                                    f"environment variable {endpoint.password_env} is not set"))
        if endpoint.password_file:
            problems.extend(_password_file_problems(endpoint.password_file, file, f"{role}.password_file"))
        if endpoint.tls.ca_file:
            problems.extend(_file_problem(endpoint.tls.ca_file, file, f"{role}.tls.ca_file")[0])
    if config.aws:
        for name in ("credentials_file", "ca_bundle"):
            value = getattr(config.aws, name)
            if value is not None:
                problems.extend(_file_problem(value, file, f"aws.{name}")[0])
    return problems


def _shown(path: Path) -> str:
    text = str(path)
    return text if len(text) <= SHOWN_PATH else f"{text[:SHOWN_PATH]}... ({len(text)} characters)"


def _file_problem(path: Path, file: str, field: str) -> tuple[list[Problem], os.stat_result | None]:
    """The path's stat, or the Problem of a path the OS refuses (too long, a file as a folder, a loop, ...)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return [Problem(file, field, f"no such file: {_shown(path)}")], None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return [Problem(file, field, f"cannot use {_shown(path)}: {reason}")], None
    if not stat.S_ISREG(info.st_mode):
        return [Problem(file, field, f"not a regular file: {_shown(path)}")], None
    return [], info


def _password_file_problems(path: Path, file: str, field: str) -> list[Problem]:
    problems, info = _file_problem(path, file, field)
    if info is not None and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return [Problem(file, field, f"{_shown(path)} is readable by group or others; chmod 600 it")]
    return problems


def resolve_password(endpoint: VCenterEndpoint, env: dict[str, str] | None = None) -> str:
    """Read the endpoint's password from its env variable or file and register it for redaction."""
    environ = os.environ if env is None else env
    if endpoint.password_env:
        password = environ.get(endpoint.password_env)
        if password is None:
            raise InputError.single("site config", f"{endpoint.name}.password_env",
                                    f"environment variable {endpoint.password_env} is not set")
    else:
        assert endpoint.password_file is not None
        try:
            password = endpoint.password_file.read_text().rstrip("\r\n")
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise InputError.single(_shown(endpoint.password_file), f"{endpoint.name}.password_file",
                                    f"cannot read password: {reason}") from None
    register_secret(password)
    return password
