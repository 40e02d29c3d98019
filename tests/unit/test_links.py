"""links.yaml: declared links and keep-apart pairs, validated strictly and resolved against the inventory."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from migrate.core.errors import InputError
from migrate.core.models.inventory import Inventory, Provenance, Vm
from planners.links import DEFAULT_LINK_WEIGHT, ResolvedLink, load_links, parse_links, resolve_links


def _provenance(source: str) -> Provenance:
    return Provenance(source=source, kind="vcenter", collected_at=datetime(2024, 1, 1, tzinfo=UTC))



def _inventory(*names: str) -> Inventory:
    return Inventory(provenance=_provenance("test"),
                     vms=[Vm(id=f"uuid-{n}", name=n) for n in names])


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "links.yaml"
    path.write_text(text)
    return path


def test_valid_file_resolves_names_and_ids(tmp_path: Path) -> None:
    """Names and ids both resolve; weights default by kind; pairs come out with a < b."""
    path = _write(tmp_path, """
version: 1
links:
  - {a: shop-app-01, b: billing-app-01, weight: 50, reason: "batch export"}
  - {a: uuid-crm-db-02, b: crm-db-01, hard: true, reason: "log shipping pair"}
  - {a: shop-app-01, b: crm-db-01}
keep_apart:
  - {a: shop-db-01, b: shop-db-02, reason: "HA pair must not be down together"}
""")
    links = load_links(path)
    assert links.file == str(path)
    resolved = resolve_links(links, _inventory("shop-app-01", "billing-app-01", "crm-db-01", "crm-db-02",
                                               "shop-db-01", "shop-db-02"))
    assert resolved.links == (
        ResolvedLink("uuid-billing-app-01", "uuid-shop-app-01", 50.0, False, "batch export"),
        ResolvedLink("uuid-crm-db-01", "uuid-crm-db-02", 0.0, True, "log shipping pair"),
        ResolvedLink("uuid-crm-db-01", "uuid-shop-app-01", DEFAULT_LINK_WEIGHT, False, ""),
    )
    assert resolved.keep_apart == (ResolvedLink("uuid-shop-db-01", "uuid-shop-db-02", 0.0, False,
                                                "HA pair must not be down together"),)


def test_schema_errors_name_every_field(tmp_path: Path) -> None:
    """Unknown keys, missing ends, negative weights and a wrong version are all listed with their path."""
    path = _write(tmp_path, """
version: 2
links:
  - {a: x, b: y, colour: red}
  - {a: x, weight: -1}
keep_apart:
  - {a: x, b: "  "}
extra: 1
""")
    with pytest.raises(InputError) as exc:
        load_links(path)
    fields = {p.field for p in exc.value.problems}
    assert {"version", "links[0].colour", "links[1].b", "links[1].weight", "keep_apart[0].b", "extra"} <= fields
    assert all(p.file == str(path) for p in exc.value.problems)


def test_unknown_ambiguous_and_same_vm_entries(tmp_path: Path) -> None:
    """Every unknown name, ambiguous name and self-link is named by its entry, e.g. links[2].a."""
    inventory = _inventory("a", "b", "c")
    inventory.vms.append(Vm(id="uuid-twin-2", name="a"))     # two VMs named "a" (different folders)
    links = parse_links({"version": 1,
                         "links": [{"a": "b", "b": "c"}, {"a": "b", "b": "nope"}, {"a": "ghost", "b": "c"},
                                   {"a": "a", "b": "c"}],
                         "keep_apart": [{"a": "uuid-b", "b": "b"}]}, "links.yaml")
    with pytest.raises(InputError) as exc:
        resolve_links(links, inventory)
    problems = {p.field: p.message for p in exc.value.problems}
    assert set(problems) == {"links[1].b", "links[2].a", "links[3].a", "keep_apart[0].b"}
    assert "'nope'" in problems["links[1].b"]
    assert "use the VM id" in problems["links[3].a"]
    assert "same VM" in problems["keep_apart[0].b"]


def test_not_yaml_or_not_a_mapping(tmp_path: Path) -> None:
    """Broken YAML and a top-level list are bad input with the file named."""
    with pytest.raises(InputError, match="not valid YAML"):
        load_links(_write(tmp_path, "links: [\n"))
    with pytest.raises(InputError, match="mapping"):
        load_links(_write(tmp_path, "- a\n- b\n"))
