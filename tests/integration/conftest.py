"""A session-wide lab (vcsim on-prem + cloud, moto), on loopback, started and stopped by the tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.vcenter.connection import VCenterSession, connect
from migrate.config import load_site_config
from migrate.core.config import SiteConfig
from migrate.lab.manager import LabInfo, lab_down, lab_up

LAB_VMS = 40
LAB_SEED = 7


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    directory = tmp_path_factory.mktemp("lab")
    info = lab_up(directory, vms=LAB_VMS, seed=LAB_SEED)
    try:
        yield info
    finally:
        lab_down(directory)


@pytest.fixture(scope="session")
def site(lab: LabInfo) -> SiteConfig:
    return load_site_config(lab.site_config)


@pytest.fixture(scope="session")
def manifest(lab: LabInfo) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((lab.directory / "estate.json").read_text())
    return data


@pytest.fixture(scope="session")
def onprem(site: SiteConfig) -> Iterator[VCenterSession]:
    with connect(site.source) as session:
        yield session


@pytest.fixture(scope="session")
def cloud(site: SiteConfig) -> Iterator[VCenterSession]:
    assert site.target is not None
    with connect(site.target) as session:
        yield session


def lab_file(lab: LabInfo, *parts: str) -> Path:
    return lab.directory.joinpath(*parts)


def site_copy(lab: LabInfo, tmp_path: Path, **source_changes: object) -> Path:
    """A copy of the lab's site.yaml with absolute paths and some source fields changed."""
    doc = yaml.safe_load(lab.site_config.read_text())
    for role in ("source", "target"):
        doc[role]["tls"]["ca_file"] = str(lab_file(lab, "tls", "ca.pem"))
        doc[role]["password_file"] = str(lab_file(lab, doc[role]["password_file"]))
    doc["replatformer"]["credentials_file"] = str(lab_file(lab, "secrets", "aws-credentials"))
    doc["replatformer"]["ca_bundle"] = str(lab_file(lab, "tls", "ca.pem"))
    for key, value in source_changes.items():
        if value is None:
            doc["source"].pop(key, None)
        else:
            doc["source"][key] = value
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path
