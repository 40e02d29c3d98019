"""CLI contract without the lab: exit 2 for bad input with every problem listed, --json, --help."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import run_cli


def test_help_lists_commands() -> None:
    """`migrate --help` explains the exit codes and lists the commands."""
    result = run_cli("--help")
    assert result.code == 0
    for word in ("lab", "check", "schema", "Exit codes"):
        assert word in result.stdout


def test_malformed_site_yaml_exit_2_names_every_field(tmp_path: Path) -> None:
    """A site.yaml with several mistakes gives exit 2 and names each bad field, without a traceback."""
    site = tmp_path / "site.yaml"
    site.write_text("version: 1\nsource:\n  name: a\n  url: not-a-url\n  colour: blue\ntarget: 7\n")
    result = run_cli("check", "--config", site)
    assert result.code == 2, result
    for field in ("source.url", "source.username", "source.colour", "target"):
        assert f"{site}: {field}:" in result.stderr
    assert "Traceback" not in result.output


def test_malformed_site_yaml_json(tmp_path: Path) -> None:
    """With --json the problems come as a list on stdout."""
    site = tmp_path / "site.yaml"
    site.write_text("source: [1, 2\n")
    result = run_cli("check", "--config", site, "--json")
    assert result.code == 2
    body = json.loads(result.stdout)
    assert body["error"] == "InputError"
    assert body["problems"][0]["file"] == str(site)


def test_missing_config_file_exit_2(tmp_path: Path) -> None:
    """A config path that does not exist is bad input, not a crash."""
    result = run_cli("check", "--config", tmp_path / "absent.yaml")
    assert result.code == 2
    assert "no such file" in result.stderr


def test_lab_up_rejects_too_few_vms_before_starting(tmp_path: Path) -> None:
    """`lab up --vms 3` fails as bad input and leaves nothing behind."""
    lab_dir = tmp_path / "lab"
    result = run_cli("lab", "up", "--dir", lab_dir, "--vms", "3")
    assert result.code == 2
    assert "--bare" in result.stderr
    assert not lab_dir.exists()


def test_lab_status_without_lab_exit_1(tmp_path: Path) -> None:
    """Asking for a lab that is not there is an operational error with a hint."""
    result = run_cli("lab", "status", "--dir", tmp_path / "none")
    assert result.code == 1
    assert "migrate lab up" in result.stderr


def test_schema_command_prints_shipped_schema() -> None:
    """`migrate schema site` prints valid JSON Schema for site.yaml."""
    result = run_cli("schema", "site")
    assert result.code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "SiteConfig"
    assert "source" in schema["required"]
