"""`migrate check` against the lab: success, wrong password, unreachable endpoint; the password never leaks."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate.lab.manager import LabInfo
from tests.helpers import run_cli

from .conftest import lab_file, site_copy


def test_check_succeeds_on_the_lab(lab: LabInfo) -> None:
    """Every endpoint of the lab's own site.yaml answers; --json reports each."""
    result = run_cli("check", "--config", lab.site_config, "--json")
    assert result.code == 0, result
    body = result.json()
    assert body["source"]["ok"] and body["target"]["ok"] and body["replatformer"]["ok"]
    assert body["source"]["instance_uuid"] == lab.instance_uuids["onprem"]
    assert body["target"]["instance_uuid"] == lab.instance_uuids["cloud"]


@pytest.mark.parametrize(("logs", "extra"), [("--log-json", []), ("--log-json", ["--json"]),
                                             ("--no-log-json", [])])
def test_wrong_password_exit_1_names_endpoint_and_never_prints_it(lab: LabInfo, tmp_path: Path, logs: str,
                                                                  extra: list[str]) -> None:
    """A wrong password is an operational failure naming the endpoint; the password is in no output."""
    wrong = "Wr0ng-Passw0rd-Sentinel"
    site = site_copy(lab, tmp_path, password_file=None, password_env="SRC_PASSWORD")
    result = run_cli("--log-level", "debug", logs, "check", "--config", site, *extra,
                     env={"SRC_PASSWORD": wrong})
    assert result.code == 1, result
    endpoint = lab.endpoints["onprem"].split("//")[1].split("/")[0]
    assert endpoint in result.output
    assert "invalid user name or password" in result.output
    assert wrong not in result.output
    assert "Traceback" not in result.output


def test_real_password_never_printed(lab: LabInfo) -> None:
    """Even on success with debug logs, the lab's passwords appear nowhere in the output."""
    result = run_cli("--log-level", "debug", "check", "--config", lab.site_config)
    assert result.code == 0, result
    for name in ("onprem", "cloud"):
        password = lab_file(lab, "secrets", f"{name}.password").read_text().strip()
        assert password not in result.output


def test_unreachable_vcenter_exit_1_without_traceback(lab: LabInfo, tmp_path: Path) -> None:
    """A vCenter nobody listens on gives exit 1, names host:port, no traceback."""
    site = site_copy(lab, tmp_path, url="https://127.0.0.1:9/sdk")
    result = run_cli("check", "--config", site)
    assert result.code == 1, result
    assert "127.0.0.1:9" in result.stdout and "cannot reach" in result.stdout
    assert "Traceback" not in result.output
