"""Importing the CLI (every `migrate ...` process does) loads no SDK, planner or engine: commands import those."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# what commands load when they run, never `import migrate.cli.main` (nor `migrate --help`)
HEAVY = ("boto3", "botocore", "pyVmomi", "pyVim", "networkx", "temporalio", "openpyxl", "kahip", "moto",
         "cryptography", "flask", "planners", "adapters", "migrate.engine", "migrate.schemas", "migrate.importers",
         "migrate.capacity", "migrate.config", "migrate.discovery", "migrate.temporal", "migrate.lab.manager",
         "migrate.lab.churn")


def _loaded(code: str) -> list[str]:
    """The HEAVY modules (or their submodules) loaded once `code` has run in a fresh interpreter."""
    probe = (f"import json, sys\n{code}\nheavy = {HEAVY!r}\n"
             "print(json.dumps(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') "
             "for h in heavy))))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=True)
    found: list[str] = json.loads(done.stdout.splitlines()[-1])
    return found


def test_importing_the_cli_loads_no_heavy_module() -> None:
    """`import migrate.cli.main` defines every command and loads none of the SDKs, planners or engine."""
    assert _loaded("import migrate.cli.main") == []


@pytest.mark.parametrize("args", [["--help"], ["lab", "up", "--help"], ["capacity", "plan", "--help"],
                                  ["import", "rvtools", "--help"]])
def test_help_loads_no_heavy_module(args: list[str]) -> None:
    """`migrate ... --help` (option defaults such as the lab's directory included) loads no heavy module."""
    code = ("from migrate.cli.main import cli\n"
            f"try:\n    cli({args!r}, prog_name='migrate')\nexcept SystemExit as exc:\n    assert exc.code == 0\n")
    assert _loaded(code) == []
