"""site.yaml loading: every bad field is named, paths resolve, secrets stay references."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adapters.vcenter.settings import resolve_password
from migrate.config import load_site_config
from migrate.core.errors import InputError
from migrate.schemas import generate_schema, schema_text

GOOD = """\
version: 1
source:
  name: onprem
  url: https://vc.corp.local/sdk
  username: svc-migrate@vsphere.local
  password_env: SRC_PW
  tls: {ca_file: ca.pem}
target:
  name: cloud
  url: https://vcenter.sddc.example.com:443/sdk
  username: cloudadmin@vmc.local
  password_file: secrets/cloud.pw
  tls: {thumbprint: "aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd"}
aws: {region: eu-west-1}
mappings:
  networks: {pg-web: seg-web}
  datastores: {ds-01: WorkloadDatastore}
"""


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "cloud.pw").write_text("cloud-secret-value\n")
    os.chmod(tmp_path / "secrets" / "cloud.pw", 0o600)
    return tmp_path


def write(directory: Path, text: str) -> Path:
    path = directory / "site.yaml"
    path.write_text(text)
    return path


def problems(exc: pytest.ExceptionInfo[InputError]) -> dict[str, str]:
    return {p.field: p.message for p in exc.value.problems}


def test_good_config_loads_and_resolves_paths(site_dir: Path) -> None:
    """A complete site.yaml loads; relative files resolve against its folder."""
    config = load_site_config(write(site_dir, GOOD), env={"SRC_PW": "x"})
    assert config.source.tls.ca_file == site_dir / "ca.pem"
    assert config.target is not None and config.target.password_file == site_dir / "secrets" / "cloud.pw"
    assert config.target.tls.thumbprint is not None and config.target.tls.thumbprint.startswith("AA:BB")
    assert config.source.tls.verify is True
    assert config.mappings.networks == {"pg-web": "seg-web"}


def test_every_bad_field_is_named(site_dir: Path) -> None:
    """All problems come back at once, each with its dotted field path."""
    text = """\
version: 3
source:
  url: ftp://nowhere
  username: ""
  pasword: oops
target:
  name: cloud
  url: https://h:99999/sdk
  username: u
  password_env: X
  tls: {thumbprint: "not-hex"}
aws: {endpoint_url: http://x}
"""
    with pytest.raises(InputError) as exc:
        load_site_config(write(site_dir, text), env={})
    found = problems(exc)
    assert set(found) >= {"version", "source.name", "source.url", "source.username", "source.pasword",
                          "target.url", "target.tls.thumbprint", "aws.region"}
    assert found["source.pasword"] == "unknown field"
    assert found["source.name"] == "required field is missing"
    assert all(p.file == str(site_dir / "site.yaml") for p in exc.value.problems)


def test_yaml_syntax_error_names_line(site_dir: Path) -> None:
    """Broken YAML reports the line and column."""
    with pytest.raises(InputError) as exc:
        load_site_config(write(site_dir, "source:\n  name: [unclosed\n"), env={})
    assert exc.value.problems[0].field.startswith("line ")


@pytest.mark.parametrize("text", ["", "- a list\n", "just a string\n"])
def test_top_level_must_be_mapping(site_dir: Path, text: str) -> None:
    """Empty files and non-mappings are rejected with a clear message."""
    with pytest.raises(InputError, match="top level must be a mapping"):
        load_site_config(write(site_dir, text), env={})


def test_missing_file(tmp_path: Path) -> None:
    """A missing site.yaml is bad input naming the file."""
    with pytest.raises(InputError, match="no such file"):
        load_site_config(tmp_path / "nope.yaml", env={})


def test_password_sources_checked(site_dir: Path) -> None:
    """An unset password variable, a missing CA file and a world-readable password file are all reported."""
    os.chmod(site_dir / "secrets" / "cloud.pw", 0o644)
    (site_dir / "ca.pem").unlink()
    with pytest.raises(InputError) as exc:
        load_site_config(write(site_dir, GOOD), env={})
    found = problems(exc)
    assert "SRC_PW is not set" in found["source.password_env"]
    assert "chmod 600" in found["target.password_file"]
    assert "no such file" in found["source.tls.ca_file"]


def test_both_or_no_password_source_rejected(site_dir: Path) -> None:
    """Exactly one of password_env/password_file."""
    text = GOOD.replace("  password_env: SRC_PW\n", "")
    with pytest.raises(InputError, match="exactly one of password_env or password_file"):
        load_site_config(write(site_dir, text), env={})


def test_credentials_in_url_rejected(site_dir: Path) -> None:
    """A password embedded in the URL is refused rather than silently used."""
    text = GOOD.replace("https://vc.corp.local/sdk", "https://admin:hunter22@vc.corp.local/sdk")
    with pytest.raises(InputError, match="must not carry credentials"):
        load_site_config(write(site_dir, text), env={"SRC_PW": "x"})


def test_plain_http_needs_verify_off(site_dir: Path) -> None:
    """http:// with verification on is a contradiction, reported as such."""
    text = GOOD.replace("https://vc.corp.local/sdk", "http://vc.corp.local/sdk")
    with pytest.raises(InputError, match="plain http"):
        load_site_config(write(site_dir, text), env={"SRC_PW": "x"})


def test_govc_variables_fill_the_source(site_dir: Path) -> None:
    """Without a source section, GOVC_URL/USERNAME/PASSWORD/INSECURE describe it."""
    text = "version: 1\n"
    env = {"GOVC_URL": "vc.example.com:8443", "GOVC_USERNAME": "admin", "GOVC_PASSWORD": "pw-value",
           "GOVC_INSECURE": "1"}
    config = load_site_config(write(site_dir, text), env=env)
    assert config.source.url == "https://vc.example.com:8443/sdk"
    assert config.source.username == "admin"
    assert config.source.password_env == "GOVC_PASSWORD"
    assert config.source.tls.verify is False
    assert resolve_password(config.source, env) == "pw-value"


def test_govc_known_hosts_pins_thumbprint(site_dir: Path) -> None:
    """GOVC_TLS_KNOWN_HOSTS supplies the thumbprint for the source host."""
    known = site_dir / "known_hosts"
    thumb = ":".join(["AB"] * 32)
    known.write_text(f"other.host {':'.join(['CD'] * 32)}\nvc.example.com {thumb}\n")
    env = {"GOVC_URL": "https://vc.example.com/sdk", "GOVC_USERNAME": "a", "GOVC_PASSWORD": "p",
           "GOVC_TLS_KNOWN_HOSTS": str(known)}
    config = load_site_config(write(site_dir, "version: 1\n"), env=env)
    assert config.source.tls.thumbprint == thumb


def test_resolve_password_from_file(site_dir: Path) -> None:
    """password_file is read without its trailing newline."""
    config = load_site_config(write(site_dir, GOOD), env={"SRC_PW": "x"})
    assert config.target is not None
    assert resolve_password(config.target) == "cloud-secret-value"


def test_shipped_schema_matches_model() -> None:
    """The JSON Schema in the package is what the model generates (regenerate it when the model changes)."""
    assert schema_text("site") == generate_schema("site", built_in=True)


def test_driver_sections_resolve_relative_paths_and_read_legacy_aws(site_dir: Path) -> None:
    """`aws:` is the aws driver's replatformer section; a provisioner's own account resolves its paths too."""
    from adapters.aws.settings import AwsSettings
    from adapters.capacity.settings import Ec2ProvisionerSettings

    (site_dir / "creds").write_text("[default]\n")
    text = GOOD + ("aws: {region: us-east-1, credentials_file: creds}\n"
                   "capacity: {provisioner: {driver: ec2, aws: {region: eu-west-1, credentials_file: creds}}}\n")
    config = load_site_config(write(site_dir, text), env={"SRC_PW": "x"})
    assert isinstance(config.replatformer, AwsSettings) and config.replatformer.credentials_file == site_dir / "creds"
    assert config.capacity is not None
    provisioner = config.capacity.provisioner
    assert isinstance(provisioner, Ec2ProvisionerSettings) and provisioner.aws is not None
    assert provisioner.aws.credentials_file == site_dir / "creds"


def test_legacy_aws_problems_are_named_as_written(site_dir: Path) -> None:
    """A problem in an `aws:` section names `aws.<field>`, as the file has it; both keys at once is refused."""
    with pytest.raises(InputError) as caught:
        load_site_config(write(site_dir, GOOD + "aws: {region: us-east-1, colour: red}\n"), env={"SRC_PW": "x"})
    assert [p.field for p in caught.value.problems] == ["aws.colour"]
    with pytest.raises(InputError) as both:
        load_site_config(write(site_dir, GOOD + "aws: {region: a}\nreplatformer: {region: b}\n"), env={"SRC_PW": "x"})
    assert [p.field for p in both.value.problems] == ["aws"]
