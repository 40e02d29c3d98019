"""JSON Schemas of the file formats, generated from the pydantic models and shipped in the package."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from pydantic import BaseModel

from migrate.config import SiteConfig
from migrate.engine.playbook import Playbook
from migrate.models.inventory import Inventory
from migrate.report.model import Report
from planners.instance_types import InstanceTypesFile
from planners.plan_model import Constraints, Plan

__all__ = ["SCHEMAS", "generate_schema", "schema_text"]

SCHEMAS: dict[str, type[BaseModel]] = {"site": SiteConfig, "inventory": Inventory,
                                       "instance-types": InstanceTypesFile, "plan": Plan, "constraints": Constraints,
                                       "playbook": Playbook, "report": Report}


def generate_schema(name: str) -> str:
    """The schema text the model defines now (what the shipped file must equal)."""
    document: dict[str, Any] = SCHEMAS[name].model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def schema_text(name: str) -> str:
    """The shipped schema file for `name`."""
    return resources.files("migrate.schemas").joinpath(f"{name}.schema.json").read_text()
