"""What an installed wheel needs: package data found through importlib.resources, and the lab as an extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
import zipfile
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

import migrate
from migrate.cli.main import cli
from migrate.engine.playbook import PLAYBOOK_DIR, load_playbook
from migrate.lab.extra import LAB_EXTRA_HINT, missing_lab_modules
from migrate.lab.vcsim_build import vcsim_source

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("migrate", "planners", "adapters")
BUILT_IN = ("cold", "live", "noop", "replatform")
# A meta path finder that makes the lab extra's modules unimportable, as in an install without [lab].
BLOCK_LAB = textwrap.dedent("""
    import sys
    class _NoLabExtra:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("moto", "cryptography", "flask", "flask_cors"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, _NoLabExtra())
""")


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)


def test_resources_live_in_the_package() -> None:
    """Playbooks and main.go are package resources of `migrate`, not files of the checkout's top level."""
    package_dir = Path(migrate.__file__).parent
    assert Path(str(PLAYBOOK_DIR)) == package_dir / "playbooks"
    assert resources.files("migrate.playbooks") == PLAYBOOK_DIR
    for name in BUILT_IN:
        assert (PLAYBOOK_DIR / f"{name}.yaml").is_file()
        assert load_playbook(name).name == name
    source = vcsim_source()
    assert Path(str(source)) == package_dir / "lab" / "vcsim" / "main.go"
    assert b"package main" in source.read_bytes()
    assert not (ROOT / "playbooks").exists() and not (ROOT / "tests" / "lab" / "main.go").exists()


def test_package_data_declares_every_resource() -> None:
    """pyproject's package-data globs cover every playbook, schema and the simulator source (so the wheel has them)."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["migrate"]
    package_dir = Path(migrate.__file__).parent
    declared = {path for pattern in globs for path in package_dir.glob(pattern)}
    wanted = [*package_dir.glob("playbooks/*.yaml"), *package_dir.glob("schemas/*.json"),
              package_dir / "lab" / "vcsim" / "main.go"]
    assert len(wanted) >= len(BUILT_IN) + 6
    assert [str(p) for p in wanted if p not in declared] == []


def test_resources_load_from_a_zipped_package(tmp_path: Path) -> None:
    """Imported from a zip (no checkout, no files on disk), playbooks load and main.go reads: importlib.resources."""
    archive = tmp_path / "packages.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for package in PACKAGES:
            for path in sorted((ROOT / package).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    zf.write(path, path.relative_to(ROOT).as_posix())
    code = textwrap.dedent(f"""
        import sys
        sys.meta_path[:] = [f for f in sys.meta_path if not type(f).__module__.startswith("__editable__")]
        sys.path[:] = [{str(archive)!r}] + [p for p in sys.path if p not in ("", ".", {str(ROOT)!r})]
        import migrate
        from migrate.engine.playbook import load_playbook
        from migrate.lab.vcsim_build import vcsim_source
        assert migrate.__file__.startswith({str(archive)!r}), migrate.__file__
        print(",".join(load_playbook(name).name for name in {list(BUILT_IN)!r}))
        print(len(vcsim_source().read_bytes()))
    """)
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    names, size = proc.stdout.split()
    assert names == ",".join(BUILT_IN)
    assert int(size) == len((Path(migrate.__file__).parent / "lab" / "vcsim" / "main.go").read_bytes())


def test_missing_extra_is_a_one_line_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With `import moto` failing, `migrate lab up` prints the install hint and exits 1; nothing is started."""
    monkeypatch.setitem(sys.modules, "moto", None)  # `import moto` raises ImportError
    assert missing_lab_modules() == ["moto"]
    lab_dir = tmp_path / "lab"
    result = CliRunner().invoke(cli, ["lab", "up", "--dir", str(lab_dir), "--vms", "10"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and LAB_EXTRA_HINT in lines[0] and "missing: moto" in lines[0]
    assert "Traceback" not in result.output
    assert not lab_dir.exists()


def test_cli_works_without_the_lab_extra(tmp_path: Path) -> None:
    """Where moto, flask and cryptography cannot be imported, the CLI loads and `lab up` gives the hint, exit 1."""
    code = BLOCK_LAB + textwrap.dedent("""
        import migrate.cli.main
        loaded = sorted({m.split(".")[0] for m in sys.modules} & {"moto", "cryptography", "flask"})
        assert not loaded, loaded
        sys.argv = ["migrate", "lab", "up", "--dir", "lab", "--vms", "10"]
        migrate.cli.main.main()
    """)
    proc = _python(code, tmp_path)
    assert proc.returncode == 1, proc
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {LAB_EXTRA_HINT}"), proc.stderr
    assert "moto" in lines[0] and "cryptography" in lines[0]
    assert not (tmp_path / "lab").exists()
