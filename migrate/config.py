"""Reading site.yaml: each role's section validated by the settings model of the driver it names.

    source:        {driver: vcenter, name: onprem, url: https://vc/sdk, ...}   # driver defaults to vcenter
    sources:       [{name: dc-east, url: ...}, {name: dc-west, url: ...}]      # or several, each named
    target:        {driver: vcenter, ...}
    replatformer:  {driver: aws, region: ..., networks: ...}                   # `aws:` is read as this
    capacity:      {...}

The govc variables (GOVC_URL, GOVC_USERNAME, ...) fill in a vCenter source's missing fields.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Union
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field, create_model

from migrate.core.config import MAX_SOURCES, DriverSettings, SiteConfig
from migrate.core.drivers import DEFAULT_DRIVERS, Driver, Role, driver_registry, get_driver
from migrate.core.errors import InputError, Problem
from migrate.core.fileio import load_yaml_mapping, validation_problems

__all__ = ["ROLE_SECTIONS", "load_site_config", "site_model"]

# site.yaml key of each driver-backed role (the capacity provisioner is read by the capacity step)
ROLE_SECTIONS: dict[str, Role] = {"source": Role.SOURCE, "target": Role.TARGET, "replatformer": Role.REPLATFORMER}
SOURCES = "sources"             # several sources: a list of source sections (then `source` is their first)
LEGACY_REPLATFORMER = "aws"     # site.yaml files before drivers: `aws:` is the aws driver's replatformer section


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
    file = str(path)
    environ = dict(os.environ) if env is None else env
    raw = load_yaml_mapping(path)
    legacy = LEGACY_REPLATFORMER in raw
    if legacy:
        if "replatformer" in raw:
            raise InputError.single(file, LEGACY_REPLATFORMER, "give either aws or replatformer, not both")
        section = raw.pop(LEGACY_REPLATFORMER)
        raw["replatformer"] = {"driver": "aws", **section} if isinstance(section, dict) else section
    problems: list[Problem] = []
    sections: dict[str, Any] = {}
    many = raw.pop(SOURCES, None)
    if many is not None:
        sources, problems = _source_list(many, "source" in raw, file)
        sections[SOURCES] = sources
        if sources:
            raw["source"] = sources[0]
    for key, role in ROLE_SECTIONS.items():
        section = raw.pop(key, None)
        if isinstance(section, DriverSettings):   # the first of `sources`
            sections[key] = section
            continue
        if key == "source" and many is None:
            section = _with_govc(section, environ)
        if section is None:
            if key == "source" and many is None:
                problems.append(Problem(file, key, "required field is missing"))
            continue
        try:
            sections[key] = _driver_settings(section, key, role, file)
        except InputError as exc:
            problems.extend(_as_written(p, legacy) for p in exc.problems)
    config = None
    try:   # the sections are validated instances already; their problems are reported above
        config = validation_problems(SiteConfig, {**raw, **sections}, file)
    except InputError as exc:
        problems.extend(p for p in exc.problems if p.field.split(".")[0] not in ROLE_SECTIONS)
    if problems or config is None:
        raise InputError(problems)
    config = config.relative_to(path.parent)
    checked = {key: getattr(config, key) for key in sections if key != SOURCES}
    if config.sources:
        del checked["source"]
        checked.update({f"{SOURCES}[{i}]": section for i, section in enumerate(config.sources)})
    for key, settings in checked.items():
        problems.extend(_as_written(p, legacy) for p in settings.file_problems(file, key, environ))
    if problems:
        raise InputError(problems)
    return config


def _source_list(value: Any, with_source: bool, file: str) -> tuple[list[DriverSettings], list[Problem]]:
    """site.yaml `sources`: each item a source section (problems named `sources[i].field`)."""
    if with_source:
        return [], [Problem(file, SOURCES, "give either source or sources, not both")]
    if not isinstance(value, list) or not value:
        return [], [Problem(file, SOURCES, "must be a non-empty list of source sections")]
    if len(value) > MAX_SOURCES:
        return [], [Problem(file, SOURCES, f"at most {MAX_SOURCES} sources, not {len(value)}")]
    sources: list[DriverSettings] = []
    problems: list[Problem] = []
    for index, section in enumerate(value):
        try:
            source = _driver_settings(section, f"{SOURCES}[{index}]", Role.SOURCE, file)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        if any(source.source_name() == other.source_name() for other in sources):
            problems.append(Problem(file, f"{SOURCES}[{index}].name",
                                    f"{source.source_name()!r} names an earlier source too; give each its own name"))
        else:
            sources.append(source)
    return sources, problems


def _as_written(problem: Problem, legacy: bool) -> Problem:
    """A replatformer problem named as the file has it (`aws.` in a file from before drivers)."""
    if legacy and problem.field.split(".")[0] == "replatformer":
        return Problem(problem.file, LEGACY_REPLATFORMER + problem.field.removeprefix("replatformer"), problem.message)
    return problem


def _with_govc(section: Any, env: dict[str, str]) -> Any:
    """A vCenter source section with the govc variables filling in what it leaves out."""
    govc = _govc_defaults(env)
    if not govc:
        return section
    if section is None:
        return govc
    if isinstance(section, dict) and section.get("driver", DEFAULT_DRIVERS[Role.SOURCE]) == "vcenter":
        return {**govc, **section}
    return section


def _driver_settings(section: Any, key: str, role: Role, file: str) -> DriverSettings:
    """One role's section as its driver's settings model (problems named `key.field`)."""
    if not isinstance(section, dict):
        raise InputError.single(file, key, f"must be a mapping, not {type(section).__name__}")
    name = section.get("driver", DEFAULT_DRIVERS[role])
    if not isinstance(name, str):
        raise InputError.single(file, f"{key}.driver", "must be a driver name")
    driver = get_driver(name, role, file=file, field_name=f"{key}.driver")
    try:
        return validation_problems(driver.settings, {**section, "driver": name}, file)
    except InputError as exc:
        raise InputError([Problem(p.file, f"{key}.{p.field}" if p.field != "(top level)" else key, p.message)
                          for p in exc.problems]) from None


def site_model(drivers: Iterable[Driver] | None = None) -> type[BaseModel]:
    """SiteConfig with each role's section as the settings of the drivers that implement the role (by
    default the installed ones): what `migrate schema site` prints."""
    drivers = list(driver_registry().values() if drivers is None else drivers)
    fields: dict[str, Any] = {}
    for key, role in ROLE_SECTIONS.items():
        models = tuple(d.settings for d in sorted(drivers, key=lambda d: d.name) if role in d.roles)
        if not models:
            continue
        union: Any = models[0] if len(models) == 1 else Annotated[Union[models], Field(discriminator="driver")]  # noqa: UP007
        required = key == "source"
        described = SiteConfig.model_fields[key]
        fields[key] = ((union if required else union | None),
                       Field(... if required else None, description=described.description))
        if key == "source":
            fields[SOURCES] = (list[union], Field(default_factory=list, max_length=MAX_SOURCES,
                                                  description=SiteConfig.model_fields[SOURCES].description))
    legacy = next((d for d in drivers if d.name == LEGACY_REPLATFORMER and Role.REPLATFORMER in d.roles), None)
    if legacy is not None:   # files from before drivers: read as `replatformer:` with the aws driver
        fields[LEGACY_REPLATFORMER] = (legacy.settings | None, Field(
            None, description="the replatformer section of the aws driver, as files before drivers name it "
                              "(give either this or replatformer)"))
    return create_model("SiteConfig", __base__=SiteConfig, __doc__=SiteConfig.__doc__, **fields)
