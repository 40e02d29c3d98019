"""Playbooks: the shipped ones load, every kind of malformed playbook is refused naming file and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.core.errors import InputError
from migrate.engine.methods import Stage, get_method, registry
from migrate.engine.playbook import PLAYBOOK_DIR, Playbook, load_playbook, parse_playbook, playbook_schema


def _good() -> dict[str, Any]:
    return {"version": 1, "name": "custom", "method": "cold",
            "phases": ["precheck", "power_off_source", "copy_disks", "create_target_vm", "verify"],
            "hooks": {"wave": {"pre": [{"approval": {"prompt": "Start wave ${wave}?"}}]},
                      "vm": {"pre": [{"http": {"url": "https://lb.example/drain/${vm_name}", "expect_status": 204}}],
                             "post": [{"command": {"argv": ["/bin/echo", "${vm}", "$$HOME"]}, "blocking": False},
                                      {"wait": {"seconds": 5}}]}}}


def _problems(data: Any, tmp_path: Path) -> list[tuple[str, str, str]]:
    path = tmp_path / "pb.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    with pytest.raises(InputError) as caught:
        load_playbook(path)
    return [(p.file, p.field, p.message) for p in caught.value.problems]


COLD_PHASES = ["precheck", "power_off_source", "copy_disks", "create_target_vm", "tag_target", "power_on_target",
               "verify", "mark_source_migrated"]


@pytest.mark.parametrize("name", ["cold", "live", "noop", "replatform"])
def test_shipped_playbooks_load(name: str) -> None:
    """migrate/playbooks/<name>.yaml loads by name, for its own method, with every phase of that method in order."""
    book = load_playbook(name)
    assert book.name == name and book.method == name
    assert book.phases == [p.name for p in get_method(name).phases]


def test_installed_methods_are_consistent() -> None:
    """Every installed method (entry points) lists its phases in stage order, each needing only outputs that
    an earlier phase provides, and has a built-in playbook of its name."""
    assert {"cold", "live", "noop", "replatform"} <= set(registry())
    for name, method in registry().items():
        stages = [p.stage for p in method.phases]
        assert stages == sorted(stages, key=list(Stage).index), name
        assert method.order_problems([p.name for p in method.phases]) == [], name
        assert load_playbook(method.playbook_name).method == name


def test_good_playbook_parses(tmp_path: Path) -> None:
    """A playbook with every hook kind and placeholders is accepted as written."""
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(_good()))
    book = load_playbook(path)
    assert book.hooks.vm.post[0].command is not None and book.hooks.vm.post[0].blocking is False
    assert [h.kind for h in book.hooks.vm.pre + book.hooks.vm.post] == ["http", "command", "wait"]


CASES: list[tuple[str, Any, list[tuple[str, str]]]] = [
    ("unknown top-level field", {**_good(), "stages": []}, [("stages", "unknown field")]),
    ("missing phases", {k: v for k, v in _good().items() if k != "phases"}, [("phases", "required field is missing")]),
    ("empty phases", {**_good(), "phases": []}, [("phases", "at least 1 item")]),
    ("unknown method", {**_good(), "method": "warp"}, [("method", "unknown method 'warp' (installed: ")]),
    ("wrong version", {**_good(), "version": 2}, [("version", "Input should be 1")]),
    ("unknown phase", {**_good(), "phases": ["precheck", "copy_disk"]}, [("phases[1]", "unknown phase 'copy_disk'")]),
    ("phase of another method", {**_good(), "phases": ["precheck", "relocate"]},
     [("phases[1]", "for method 'cold'")]),
    ("duplicate phase", {**_good(), "phases": [*COLD_PHASES, "mark_source_migrated"]},
     [("phases[8]", "listed twice")]),
    ("phase out of stage order", {**_good(), "phases": [*COLD_PHASES[:5], "mark_source_migrated", "verify",
                                                        "power_on_target"]},
     [("phases[7]", "cutover phase 'power_on_target' comes after a verify phase")]),
    ("phase needing a dropped one", {**_good(), "phases": ["precheck", "power_off_source", "create_target_vm"]},
     [("phases[2]", "phase 'create_target_vm' needs CopiedDisks, the output of 'copy_disks', which the playbook "
                    "leaves out")]),
    ("phase before the one it needs", {**_good(), "phases": ["precheck", "power_off_source", "create_target_vm",
                                                             "copy_disks"]},
     [("phases[2]", "needs CopiedDisks, the output of 'copy_disks', which comes after it")]),
    ("shell string command", {**_good(), "hooks": {"vm": {"pre": [{"command": {"argv": "systemctl stop app"}}]}}},
     [("hooks.vm.pre[0].command.argv", "shell string is refused")]),
    ("empty argv", {**_good(), "hooks": {"vm": {"pre": [{"command": {"argv": []}}]}}},
     [("hooks.vm.pre[0].command.argv", "at least 1 item")]),
    ("empty program", {**_good(), "hooks": {"vm": {"pre": [{"command": {"argv": [" "]}}]}}},
     [("hooks.vm.pre[0].command.argv", "must not be empty")]),
    ("two hook kinds",
     {**_good(), "hooks": {"wave": {"post": [{"wait": {"seconds": 1}, "approval": {"prompt": "ok"}}]}}},
     [("hooks.wave.post[0]", "exactly one of http, tcp, command, wait, approval (got wait, approval)")]),
    ("no hook kind", {**_good(), "hooks": {"wave": {"post": [{"blocking": True}]}}},
     [("hooks.wave.post[0]", "got none")]),
    ("unknown hook field", {**_good(), "hooks": {"vm": {"pre": [{"http": {"url": "http://x", "verb": "GET"}}]}}},
     [("hooks.vm.pre[0].http.verb", "unknown field")]),
    ("unknown hook scope", {**_good(), "hooks": {"run": {"pre": []}}}, [("hooks.run", "unknown field")]),
    ("bad url", {**_good(), "hooks": {"vm": {"pre": [{"http": {"url": "ftp://x"}}]}}},
     [("hooks.vm.pre[0].http.url", "should match pattern")]),
    ("bad status", {**_good(), "hooks": {"vm": {"pre": [{"http": {"url": "http://x", "expect_status": 99}}]}}},
     [("hooks.vm.pre[0].http.expect_status", "greater than or equal to 100")]),
    ("zero timeout", {**_good(), "hooks": {"vm": {"pre": [{"http": {"url": "http://x", "timeout": 0}}]}}},
     [("hooks.vm.pre[0].http.timeout", "greater than 0")]),
    ("negative wait", {**_good(), "hooks": {"vm": {"pre": [{"wait": {"seconds": -1}}]}}},
     [("hooks.vm.pre[0].wait.seconds", "greater than or equal to 0")]),
    ("empty approval", {**_good(), "hooks": {"vm": {"pre": [{"approval": {"prompt": ""}}]}}},
     [("hooks.vm.pre[0].approval.prompt", "at least 1 character")]),
    ("unknown placeholder", {**_good(), "hooks": {"vm": {"pre": [{"http": {"url": "http://x/${host}"}}]}}},
     [("hooks.vm.pre[0].http.url", "unknown placeholder(s) host")]),
    ("vm placeholder in a wave hook", {**_good(), "hooks": {"wave": {"pre": [{"command": {"argv": ["x", "${vm}"]}}]}}},
     [("hooks.wave.pre[0].command.argv[1]", "allowed here: run_id, wave")]),
    ("malformed placeholder", {**_good(), "hooks": {"vm": {"pre": [{"approval": {"prompt": "cost $5"}}]}}},
     [("hooks.vm.pre[0].approval.prompt", "malformed placeholder")]),
    ("not a mapping", "- precheck\n- verify\n", [("", "top level must be a mapping")]),
    ("not YAML", "name: [unclosed\n", [("line 2, column 1", "not valid YAML")]),
]


@pytest.mark.parametrize(("case", "data", "expected"), CASES, ids=[c[0] for c in CASES])
def test_malformed_playbook(case: str, data: Any, expected: list[tuple[str, str]], tmp_path: Path) -> None:
    """Each malformed playbook is an InputError naming the file and each bad field."""
    problems = _problems(data, tmp_path)
    assert all(file == str(tmp_path / "pb.yaml") for file, _, _ in problems)
    assert len(problems) == len(expected), problems
    for (field, fragment), (_, got_field, message) in zip(expected, problems, strict=True):
        assert got_field == field and fragment in message, (got_field, message)


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    """Bad hooks and bad phases are reported together, each at its own field."""
    data = {**_good(), "phases": ["precheck", "nope"], "hooks": {"vm": {"pre": [{"command": {"argv": "rm -rf /"}}]}}}
    fields = [field for _, field, _ in _problems(data, tmp_path)]
    assert fields == ["hooks.vm.pre[0].command.argv", "phases[1]"]


def test_unknown_name_and_missing_file(tmp_path: Path) -> None:
    """An unknown playbook name lists the known ones; a missing path is named."""
    known = r"\(known: cold, live, noop, replatform, warm, warm_replatform\)"
    with pytest.raises(InputError, match=r"no playbook named 'warp' " + known):
        load_playbook("warp")
    with pytest.raises(InputError, match="no such file"):
        load_playbook(tmp_path / "absent.yaml")


def test_parse_from_data_and_directory(tmp_path: Path) -> None:
    """parse_playbook validates plain data; load_playbook finds names in another directory."""
    assert parse_playbook(_good(), "inline").name == "custom"
    (tmp_path / "custom.yaml").write_text(yaml.safe_dump(_good()))
    assert load_playbook("custom", directory=tmp_path).method == "cold"
    assert PLAYBOOK_DIR.joinpath("cold.yaml").is_file()


def test_json_schema() -> None:
    """The schema is JSON, forbids unknown fields, and names the methods and hook kinds."""
    schema = playbook_schema()
    text = json.dumps(schema)
    assert schema["title"] == "Playbook" and schema["additionalProperties"] is False
    assert {"cold", "live", "noop", "replatform"} <= set(schema["properties"]["method"]["enum"])
    assert {"HttpCheck", "CommandHook", "WaitHook", "ApprovalHook"} <= set(schema["$defs"])
    assert "$schema" in text
    assert Playbook.model_json_schema()["required"] == ["name", "method", "phases"]
