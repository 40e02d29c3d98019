"""Fuzzing the offline verbs with mutated input files: exit 0/1/2, never an internal error, bounded memory.

Each test mutates one valid file (tests/unit/fuzz_bases.py) and runs the verbs that read it in-process.
Small in CI; `FUZZ_EXAMPLES=3000 .venv/bin/pytest tests/unit/test_fuzz_inputs.py` runs a bigger campaign.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.fuzz_bases import bases
from tests.unit.fuzz_support import (
    check_outcome,
    csv_text,
    fuzz_settings,
    invoke,
    json_text,
    mutated,
    mutated_rows,
    text_damage,
    yaml_text,
)

TRACE = os.environ.get("FUZZ_TRACE")    # campaigns by hand: file of the last example's input
LOG = os.environ.get("FUZZ_LOG")        # campaigns by hand: log failures here instead of stopping
NAMES = {"inventory": "inventory.json", "flows": "flows.csv", "links": "links.yaml", "constraints": "constraints.yaml",
         "plan": "plan.yaml", "types": "instance-types.json", "graph": "graph.json"}


@contextmanager
def files(**override: bytes) -> Iterator[dict[str, Path]]:
    """Every base file in a temporary folder, with `override` replacing some of them."""
    b = bases()
    texts = {"inventory": json_text(b.inventory), "flows": csv_text(b.flows), "links": yaml_text(b.links),
             "constraints": yaml_text(b.constraints), "plan": yaml_text(b.plan), "types": json_text(b.types),
             "graph": json_text(b.graph)}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {key: Path(tmp) / name for key, name in NAMES.items()}
        for key, path in paths.items():
            path.write_bytes(override[key] if key in override else texts[key].encode())
        paths["out"] = Path(tmp) / "out"
        paths["out"].mkdir()
        yield paths


def verb(name: str, f: dict[str, Path]) -> list[str | Path]:
    """The command line of one offline verb over the files in `f`."""
    out = f["out"]
    commands: dict[str, list[str | Path]] = {
        "graph": ["graph", "--inventory", f["inventory"], "--flows", f["flows"], "--links", f["links"],
                  "--out", out / "g.json"],
        "graphml": ["graph", "--inventory", f["inventory"], "--hints", "all", "--out", out / "g.graphml", "--json"],
        "plan": ["plan", "--inventory", f["inventory"], "--flows", f["flows"], "--links", f["links"],
                 "--constraints", f["constraints"], "--out", out / "p.yaml"],
        "plan-graph": ["plan", "--graph", f["graph"], "--constraints", f["constraints"], "--out", out / "p.yaml",
                       "--json"],
        "validate": ["validate", f["plan"], "--inventory", f["inventory"], "--flows", f["flows"]],
        "validate-constraints": ["validate", f["plan"], "--inventory", f["inventory"], "--flows", f["flows"],
                                 "--constraints", f["constraints"], "--json"],
        "size": ["size", "--inventory", f["inventory"], "--instance-types", f["types"], "--plan", f["plan"],
                 "--rightsize", "--json"],
    }
    return commands[name]


def run_verb(name: str, f: dict[str, Path]) -> None:
    """Run a verb and check the contract (files it may name: every input)."""
    args = verb(name, f)
    inputs = [p for p in args if isinstance(p, Path) and p.parent != f["out"]]
    if TRACE:   # the last example's files, to find what hangs in a campaign
        Path(TRACE).write_text(repr(args) + "\n" + "\n".join(f"== {p}\n{p.read_bytes()[:20000]!r}" for p in inputs))
    if not LOG:
        check_outcome(invoke(args, inputs), [str(p) for p in inputs])
        return
    try:   # a campaign logs every failure and goes on
        check_outcome(invoke(args, inputs), [str(p) for p in inputs])
    except AssertionError as exc:
        with open(LOG, "a") as log:
            log.write(f"FAIL {name}: {str(exc)[:600]}\n")


def test_base_files_pass_every_verb() -> None:
    """The unmutated files give exit 0 for every verb (so the fuzz tests start from valid input)."""
    with files() as f:
        for name in ("graph", "graphml", "plan", "plan-graph", "validate", "validate-constraints", "size"):
            outcome = invoke(verb(name, f), [])
            assert outcome.result.exit_code == 0, (name, outcome.result.output)


@fuzz_settings(ci_examples=25)
@given(data=st.data(), name=st.sampled_from(["graph", "graphml", "plan", "size", "validate"]))
def test_fuzz_inventory(data: st.DataObject, name: str) -> None:
    """Mutated inventory.json."""
    doc = data.draw(mutated(bases().inventory))
    with files(inventory=data.draw(text_damage(json_text(doc)))) as f:
        run_verb(name, f)


@fuzz_settings(ci_examples=15)
@given(data=st.data(), name=st.sampled_from(["graph", "plan"]))
def test_fuzz_flows(data: st.DataObject, name: str) -> None:
    """Mutated flows.csv."""
    rows = data.draw(mutated_rows(bases().flows))
    with files(flows=data.draw(text_damage(csv_text(rows)))) as f:
        run_verb(name, f)


@fuzz_settings(ci_examples=15)
@given(data=st.data(), name=st.sampled_from(["graph", "plan"]))
def test_fuzz_links(data: st.DataObject, name: str) -> None:
    """Mutated links.yaml."""
    doc = data.draw(mutated(bases().links))
    with files(links=data.draw(text_damage(yaml_text(doc)))) as f:
        run_verb(name, f)


@fuzz_settings(ci_examples=25)
@given(data=st.data(), name=st.sampled_from(["plan", "plan-graph", "validate-constraints"]))
def test_fuzz_constraints(data: st.DataObject, name: str) -> None:
    """Mutated constraints file of `migrate plan` (and `validate --constraints`)."""
    doc = data.draw(mutated(bases().constraints, extra=[10_000, 10_001, 10**6, 10**6 + 1]))
    with files(constraints=data.draw(text_damage(yaml_text(doc)))) as f:
        run_verb(name, f)


@fuzz_settings(ci_examples=25)
@given(data=st.data(), name=st.sampled_from(["validate", "size"]))
def test_fuzz_plan(data: st.DataObject, name: str) -> None:
    """Mutated plan.yaml."""
    doc = data.draw(mutated(bases().plan, extra=[10_000, 10_001]))
    with files(plan=data.draw(text_damage(yaml_text(doc)))) as f:
        run_verb(name, f)


@fuzz_settings(ci_examples=12)
@given(data=st.data())
def test_fuzz_instance_types(data: st.DataObject) -> None:
    """Mutated instance-types.json of `migrate size`."""
    doc = data.draw(mutated(bases().types))
    with files(types=data.draw(text_damage(json_text(doc)))) as f:
        run_verb("size", f)


@fuzz_settings(ci_examples=15)
@given(data=st.data())
def test_fuzz_graph(data: st.DataObject) -> None:
    """Mutated graph.json of `migrate plan --graph`."""
    doc = data.draw(mutated(bases().graph))
    with files(graph=data.draw(text_damage(json_text(doc)))) as f:
        run_verb("plan-graph", f)
