"""Settings of the vcenter driver: one vCenter (the on-prem source or the cloud SDDC target)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from migrate.core.config import DriverSettings, Placement, file_problems, password_file_problems, read_secret
from migrate.core.errors import InputError, Problem
from migrate.core.models.base import StrictModel

__all__ = ["TlsSettings", "VCenterEndpoint", "resolve_password", "vcenter_settings"]


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


class VCenterEndpoint(DriverSettings):
    """One vCenter: the on-prem source or the cloud SDDC target."""

    driver: Literal["vcenter"] = "vcenter"
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

    def serves(self, source: str) -> bool:
        """VMs read from this vCenter: `Vm.source` is its name, its host[:port] (discovery) or its host name
        (RVTools' "VI SDK Server")."""
        return source in (self.name, self.host, urlsplit(self.url).hostname)

    def relative_to(self, base: Path) -> VCenterEndpoint:
        update: dict[str, object] = {}
        if self.password_file and not self.password_file.is_absolute():
            update["password_file"] = base / self.password_file
        if self.tls.ca_file and not self.tls.ca_file.is_absolute():
            update["tls"] = self.tls.model_copy(update={"ca_file": base / self.tls.ca_file})
        return self.model_copy(update=update)

    def placement(self) -> Placement:
        return Placement(cluster=self.cluster, folder=self.folder, resource_pool=self.resource_pool,
                         datastore=self.datastore)

    def file_problems(self, file: str, field: str, env: dict[str, str]) -> list[Problem]:
        problems: list[Problem] = []
        if self.password_env and self.password_env not in env:
            problems.append(Problem(file, f"{field}.password_env",
                                    f"environment variable {self.password_env} is not set"))
        if self.password_file:
            problems.extend(password_file_problems(self.password_file, file, f"{field}.password_file"))
        if self.tls.ca_file:
            problems.extend(file_problems(self.tls.ca_file, file, f"{field}.tls.ca_file")[0])
        return problems


def resolve_password(endpoint: VCenterEndpoint, env: dict[str, str] | None = None) -> str:
    """Read the endpoint's password from its env variable or file and register it for redaction."""
    return read_secret(endpoint.password_env, endpoint.password_file, f"{endpoint.name}.password", env)


def vcenter_settings(settings: DriverSettings | None, role: str, file: str = "site.yaml") -> VCenterEndpoint:
    """`settings` as a vCenter endpoint; InputError when the role has none or another driver."""
    if isinstance(settings, VCenterEndpoint):
        return settings
    found = "no section" if settings is None else f"driver {settings.driver!r}"
    raise InputError.single(file, role, f"needs a vCenter (driver: vcenter), found {found}")
