"""JSON Schemas of the file formats, generated from the pydantic models and shipped in the package."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from pydantic import BaseModel

from migrate.config import site_model
from migrate.core.drivers import driver_registry
from migrate.core.models.inventory import Inventory
from migrate.engine.playbook import Playbook
from migrate.engine.readiness_assess import Assessment
from migrate.report.model import Report
from planners.instance_types import InstanceTypesFile
from planners.plan_model import Constraints, Plan

__all__ = ["SCHEMAS", "generate_schema", "schema_text"]

BUILT_IN = ("adapters.",)   # the drivers this package ships: the shipped site schema covers those

# the site schema (None here) is built from the drivers when asked for: loading them is not free
SCHEMAS: dict[str, type[BaseModel] | None] = {"site": None, "inventory": Inventory,
                                              "instance-types": InstanceTypesFile, "plan": Plan,
                                              "constraints": Constraints, "playbook": Playbook, "report": Report,
                                              "assess": Assessment}


def generate_schema(name: str, *, built_in: bool = False) -> str:
    """The schema text the model defines now; with `built_in`, the site schema of the shipped drivers only
    (what the shipped file must equal)."""
    model = SCHEMAS[name]
    if model is None:
        installed = driver_registry().values()
        model = site_model([d for d in installed if d.connect.__module__.startswith(BUILT_IN)] if built_in else None)
    document: dict[str, Any] = model.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def schema_text(name: str) -> str:
    """The shipped schema file for `name`."""
    return resources.files("migrate.schemas").joinpath(f"{name}.schema.json").read_text()
