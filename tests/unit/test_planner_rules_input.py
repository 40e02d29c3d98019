"""Policy rules as input: validation of the constraints file (every bad field, exit 2), the shipped schemas in
step with the models, classification by tag, attribute or name pattern, and rules on the 40-VM lab estate."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest
import yaml
from click.testing import CliRunner

from adapters.lab.estate import make_estate
from migrate.cli.plan_cmd import plan
from migrate.core.errors import InputError
from migrate.schemas import generate_schema, schema_text
from planners.evaluate import evaluate
from planners.plan_io import load_constraints, load_plan
from planners.plan_model import Constraints, Wave
from planners.waves import plan_waves
from tests.unit.test_plan_cli import _plan, lab  # noqa: F401 (the fixture)

BAD_RULES = """version: 1
classify:
  environment: {pattern: "([a-z"}
  criticality: {}
rules:
  environment_order: {order: [dev, Dev], weight: 5}
  no_mixed_environments: {hard: true, weight: 3}
  dependencies_first: {weight: -1}
  critical_not_before: {wave: 0}
  application_hole: {hard: true}
"""


def test_bad_rules_list_every_field(tmp_path: Path) -> None:
    """Every bad rule field is one problem naming the file and the field."""
    path = tmp_path / "constraints.yaml"
    path.write_text(BAD_RULES)
    with pytest.raises(InputError) as caught:
        load_constraints(path)
    fields = {p.field for p in caught.value.problems}
    assert {p.file for p in caught.value.problems} == {str(path)}
    assert fields == {"classify.environment.pattern", "classify.criticality", "rules.environment_order.order",
                      "rules.no_mixed_environments", "rules.dependencies_first.weight",
                      "rules.critical_not_before.wave", "rules.application_hole"}


def test_bad_rules_are_exit_2(lab: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    """`migrate plan` with bad rules exits 2, lists the fields and writes nothing."""
    lab["constraints"].write_text(BAD_RULES)
    out = tmp_path / "plan.yaml"
    result = CliRunner().invoke(plan, _plan(lab, out, "--json"))
    assert result.exit_code == 2
    assert "rules.dependencies_first.weight" in {p["field"] for p in json.loads(result.stdout)["problems"]}
    assert not out.exists()


@pytest.mark.parametrize("name", ["constraints", "plan"])
def test_shipped_schemas_match_the_models(name: str) -> None:
    """The shipped constraints and plan schemas are generated from the models, rules included."""
    assert schema_text(name) == generate_schema(name)
    assert "Rules" in json.loads(schema_text(name))["$defs"]


def _graph() -> nx.Graph:
    graph = nx.Graph()
    nodes = {"dev-a": {"attributes": {"Stage": "DEV"}}, "b-01": {"tags": {"Env": ["test"]}}, "prod-c": {}}
    for name, attrs in nodes.items():
        graph.add_node(name, name=name, app=None, gb=1.0, vcpu=1, memory_mb=1, **attrs)
    graph.add_edge("dev-a", "prod-c", weight=5.0, hard=False, kinds=["flow"], reasons=["flows"])
    graph.add_edge("b-01", "prod-c", weight=5.0, hard=False, kinds=["flow"], reasons=["flows"])
    graph.graph["keep_apart"] = []
    return graph


def test_environment_from_tag_attribute_or_name_pattern() -> None:
    """Tag category (any case), then custom attribute, then the name pattern's `value` group."""
    constraints = Constraints(
        classify={"environment": {"tag": "env", "attribute": "Stage", "pattern": "^(?P<value>prod|dev)-"}},
        rules={"environment_order": {"order": ["dev", "test", "prod"], "hard": True},
               "no_mixed_environments": {"hard": True}})
    plan = plan_waves(_graph(), constraints)
    assert [w.vm_names for w in plan.waves] == [["dev-a"], ["b-01"], ["prod-c"]]
    assert plan.metrics is not None and plan.metrics.lower_bound_by["environments"] == 3
    assert plan.waves[0].why is not None and plan.waves[0].why.rules is not None
    assert plan.waves[0].why.rules[0].startswith("one environment: dev (1 VMs)")


def test_an_edited_plan_breaking_a_hard_rule_is_a_violation() -> None:
    """evaluate() names the rule when a hand-edited plan mixes environments, moves a critical VM early or prod first."""
    constraints = Constraints(classify={"environment": {"pattern": "^(prod|dev)-"}, "criticality": {"tag": "env"}},
                              rules={"environment_order": {"order": ["dev", "prod"], "hard": True},
                                     "no_mixed_environments": {"hard": True},
                                     "critical_not_before": {"wave": 2, "values": ["test"], "hard": True}})
    plan = plan_waves(_graph(), constraints)
    assert [w.vm_names for w in plan.waves] == [["dev-a"], ["b-01", "prod-c"]]
    plan.waves = [Wave(id=1, name="w1", vms=["dev-a", "b-01", "prod-c"])]
    fields = {v.field for v in evaluate(plan, _graph()).violation_list}
    assert fields == {"constraints.rules.no_mixed_environments", "constraints.rules.critical_not_before"}
    plan.waves = [Wave(id=1, name="w1", vms=["prod-c"]), Wave(id=2, name="w2", vms=["dev-a", "b-01"])]
    found = evaluate(plan, _graph()).violation_list
    assert [v.field for v in found] == ["waves[0].vms[0]"] and "rules.environment_order" in found[0].message


def test_lab_estate_dev_waves_first(lab: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    """The 40-VM lab inventory (env tags dev/prod): hard order and no mixing put every dev VM first."""
    lab["constraints"].write_text(yaml.safe_dump({
        "version": 1, "max_vms": 15,
        "rules": {"environment_order": {"order": ["dev", "test", "prod"], "hard": True},
                  "no_mixed_environments": {"hard": True}, "dependencies_first": {"weight": 1},
                  "critical_not_before": {"wave": 2, "values": ["sales"]}, "application_whole": {"hard": True}},
        "classify": {"criticality": {"attribute": "owner"}}}))
    out = tmp_path / "plan.yaml"
    result = CliRunner().invoke(plan, _plan(lab, out))
    assert result.exit_code == 0, result.output
    written = load_plan(out)
    env = {vm.name: vm.env for vm in make_estate(40, 1).vms}
    envs = [{env[name] for name in w.vm_names or []} for w in written.waves]
    first_prod = envs.index({"prod"})
    assert first_prod > 0 and envs == [{"dev"}] * first_prod + [{"prod"}] * (len(envs) - first_prod)
    m = written.metrics
    assert m is not None and m.violations == 0 and m.rules is not None
    assert m.rules["environment_order"].violations == 0 and m.rules["application_whole"].violations == 0
