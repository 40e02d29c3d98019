"""Impossible input is exit-2 material: InputError naming every problem, its field and the VMs involved."""

from __future__ import annotations

from typing import Any

import pytest

from migrate.core.errors import InputError, Problem
from planners.plan_model import Constraints
from planners.waves import plan_waves
from tests.unit.test_planner import graph_of


def problems_of(graph: Any, constraints: Constraints, **kwargs: Any) -> list[Problem]:
    """The problems plan_waves reports (it must raise)."""
    with pytest.raises(InputError) as info:
        plan_waves(graph, constraints, constraints_file="c.yaml", graph_file="g.json", **kwargs)
    return info.value.problems


def test_group_bigger_than_max_vms() -> None:
    """A must-move group of 3 under max_vms 2 is named with its VMs and the rule that joins them."""
    graph = graph_of("abcd", [("a", "b", 0, True), ("b", "c", 0, True)])
    [problem] = problems_of(graph, Constraints(max_vms=2))
    assert (problem.file, problem.field) == ("c.yaml", "max_vms")
    assert "group of 3 VMs (a, b, c)" in problem.message and "DRS rule a-b" in problem.message


def test_group_bigger_than_max_gb() -> None:
    """A group of 2 x 60 GB under max_gb 100 is reported on max_gb."""
    graph = graph_of({"a": {"gb": 60.0}, "b": {"gb": 60.0}}, [("a", "b", 0, True)])
    [problem] = problems_of(graph, Constraints(max_gb=100))
    assert problem.field == "max_gb" and "120 GB" in problem.message and "(a, b)" in problem.message


def test_precedence_cycle_names_the_loop_and_rules() -> None:
    """a before b, b before c, c before a: one problem naming the loop and the three rules."""
    rules = [{"before": "a", "after": "b"}, {"before": "b", "after": "c"}, {"before": "c", "after": "a"}]
    [problem] = problems_of(graph_of("abc"), Constraints(precedence=rules))
    assert "precedence cycle" in problem.message
    assert set(problem.field.split(", ")) == {"precedence[0]", "precedence[1]", "precedence[2]"}
    for name in "abc":
        assert name in problem.message


def test_precedence_inside_one_group() -> None:
    """A before B while a hard tie joins them cannot be met."""
    graph = graph_of("ab", [("a", "b", 0, True)])
    [problem] = problems_of(graph, Constraints(precedence=[{"before": "a", "after": "b"}]))
    assert problem.field == "precedence[0]" and "cannot move before itself" in problem.message


def test_keep_apart_inside_a_group_from_graph_and_constraints() -> None:
    """Keep-apart pairs joined by hard edges: one from the graph file, one from the constraints file."""
    graph = graph_of("abc", [("a", "b", 0, True), ("b", "c", 0, True)], keep_apart=[("a", "c")])
    problems = problems_of(graph, Constraints(keep_apart=[{"a": "a", "b": "b"}]))
    assert [(p.file, p.field) for p in problems] == [("g.json", "keep_apart"), ("c.yaml", "keep_apart[0]")]
    assert all("must move together" in p.message and "group of 3 VMs" in p.message for p in problems)


def test_pin_contradicting_precedence() -> None:
    """b pinned to wave 1 but after a: the chain is shown."""
    rules = [{"before": "a", "after": "b"}]
    [problem] = problems_of(graph_of("ab"), Constraints(precedence=rules, pins=[{"vm": "b", "wave": 1}]))
    assert problem.field == "pins[0].vm" and "a -> b" in problem.message and "wave 2 at the earliest" in problem.message


def test_pins_over_a_ramp_cap() -> None:
    """Three VMs pinned to wave 1 under ramp [2]."""
    pins = [{"vm": n, "wave": 1} for n in "abc"]
    [problem] = problems_of(graph_of("abcd"), Constraints(max_vms=5, ramp=[2], pins=pins))
    assert "wave 1 would hold 3 pinned VMs (a, b, c)" in problem.message and "pins[0].vm" in problem.field


def test_keep_apart_pair_pinned_together() -> None:
    """Both VMs of a keep-apart pair pinned to one wave."""
    graph = graph_of("ab", keep_apart=[("a", "b")])
    [problem] = problems_of(graph, Constraints(pins=[{"vm": "a", "wave": 2}, {"vm": "b", "wave": 2}]))
    assert "must stay apart but are both pinned to wave 2" in problem.message


def test_excluding_part_of_a_group() -> None:
    """Excluding one VM of a must-move group is refused."""
    graph = graph_of("abc", [("a", "b", 0, True)])
    [problem] = problems_of(graph, Constraints(pins=[{"vm": "a", "exclude": "retired"}]))
    assert problem.field == "pins[0].vm" and "must move with b" in problem.message


def test_unknown_and_ambiguous_references() -> None:
    """Unknown names, unknown apps, doubled names and contradicting pins: each named by its field."""
    graph = graph_of({"a": {}, "b": {}, "c": {"name": "a"}})
    constraints = Constraints(precedence=[{"before": "app:nope", "after": "zz"}],
                              pins=[{"vm": "a", "wave": 1}, {"vm": "b", "wave": 1}, {"vm": "b", "wave": 2}],
                              keep_apart=[{"a": "b", "b": "b"}])
    problems = problems_of(graph, constraints)
    fields = {p.field: p.message for p in problems}
    assert set(fields) == {"precedence[0].before", "precedence[0].after", "pins[0].vm", "pins[2].vm",
                           "keep_apart[0]"}
    assert "no VM has app 'nope'" in fields["precedence[0].before"]
    assert "2 VMs are named 'a'" in fields["pins[0].vm"]
    assert "pinned differently" in fields["pins[2].vm"]


def test_overlapping_windows() -> None:
    """Windows out of order are reported on the later one."""
    windows = [{"start": "2025-03-01T20:00:00Z", "end": "2025-03-02T04:00:00Z"},
               {"start": "2025-03-01T22:00:00Z", "end": "2025-03-03T04:00:00Z"}]
    [problem] = problems_of(graph_of("ab"), Constraints(windows=windows))
    assert problem.field == "windows[1]" and "chronological" in problem.message


def test_every_problem_at_once() -> None:
    """Capacity, cycle and keep-apart problems of one input come back together."""
    graph = graph_of("abcde", [("a", "b", 0, True), ("b", "c", 0, True)], keep_apart=[("a", "c")])
    rules = [{"before": "d", "after": "e"}, {"before": "e", "after": "d"}]
    problems = problems_of(graph, Constraints(max_vms=2, precedence=rules))
    text = "\n".join(p.message for p in problems)
    assert "must stay apart" in text
    assert "more than max_vms 2" in text and "precedence cycle" in text
