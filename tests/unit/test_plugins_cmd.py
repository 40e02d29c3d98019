"""`migrate plugins` lists what the entry points installed: every built-in method and driver, with its package."""

from __future__ import annotations

import json
import subprocess
import sys


def test_lists_built_in_methods_and_drivers() -> None:
    ran = subprocess.run([sys.executable, "-m", "migrate", "plugins", "--json"], capture_output=True, text=True,
                         timeout=120, check=True)
    data = json.loads(ran.stdout)
    methods = {m["name"]: m for m in data["methods"]}
    drivers = {d["name"]: d for d in data["drivers"]}
    assert {"cold", "live", "noop", "replatform"} <= set(methods)
    assert {"vcenter", "aws", "noop"} <= set(drivers)
    assert methods["cold"]["phases"][0] == "precheck" and methods["cold"]["package"].startswith("vmware-cloud-migrate")
    assert drivers["vcenter"]["roles"] == ["source", "target"] and "url" in drivers["vcenter"]["settings"]
    human = subprocess.run([sys.executable, "-m", "migrate", "plugins"], capture_output=True, text=True,
                           timeout=120, check=True).stdout
    assert "methods (plan.yaml waves[].method):" in human and "drivers (site.yaml <role>.driver):" in human
