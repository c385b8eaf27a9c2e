"""Careless and hostile files: refused fast, in one line, exit 2, before any AWS call, never
quoting a file that is not a template; values reach AWS exactly as written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deploy.common import config
from deploy.common.clients import CallCounter, Clients
from deploy.common.errors import InputError
from deploy.stacksets import commands
from deploy.stacksets.manifest import load_manifest
from tests.test_deploy_e2e import run, self_managed, unique, write_manifest

CANARY = "AKIACANARYDONOTPRINT"


@pytest.fixture
def calls(monkeypatch) -> CallCounter:
    """Every AWS call the command makes (none is expected before the input is valid)."""
    counter = CallCounter()
    monkeypatch.setattr(commands, "make_clients", lambda: Clients(counter=counter))
    return counter


def refused(argv: list[str], capsys) -> str:
    code, doc, err = run([*argv, "--json"], capsys)
    assert code == 2, err
    assert doc["error"] == "invalid_input"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("command", [["plan"], ["apply", "--yes"], ["destroy", "--yes"]])
def test_a_binary_template_is_refused_naming_the_file(workdir, calls, capsys, command):
    (workdir / "templates" / "bin.yaml").write_bytes(b"\x7fELF\x00\x01" + os.urandom(64))
    manifest = write_manifest(
        workdir, [{**self_managed(unique("bin"), ["111111111111"], ["us-east-1"]), "template": "templates/bin.yaml"}]
    )
    err = refused([*command, "--manifest", manifest], capsys)
    assert "bin.yaml" in err and "binary" in err
    assert calls.calls == {}


def test_a_non_utf8_manifest_is_refused(workdir, calls, capsys):
    path = workdir / "latin1.yaml"
    path.write_bytes("admin_region: us-east-1\nstack_sets: []\n# caf\xe9\n".encode("latin-1"))
    err = refused(["plan", "--manifest", str(path)], capsys)
    assert "latin1.yaml" in err and "not UTF-8" in err
    assert calls.calls == {}


def test_an_oversized_template_is_refused_before_it_is_read(workdir, calls, capsys, monkeypatch):
    big = workdir / "templates" / "big.yaml"
    with big.open("wb") as handle:  # sparse: the size is what counts, not the content
        handle.truncate(config.MAX_TEMPLATE_BYTES + 1)
    read_bytes = Path.read_bytes

    def guarded(path: Path) -> bytes:
        assert path.name != "big.yaml", "an oversized file was read"
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", guarded)
    manifest = write_manifest(
        workdir, [{**self_managed(unique("big"), ["111111111111"], ["us-east-1"]), "template": "templates/big.yaml"}]
    )
    err = refused(["plan", "--manifest", manifest], capsys)
    assert "big.yaml" in err and "1,000,000" in err
    assert calls.calls == {}


def test_an_oversized_manifest_is_refused_before_it_is_read(workdir, capsys):
    path = workdir / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(config.MAX_CONFIG_BYTES + 1)
    err = refused(["plan", "--manifest", str(path)], capsys)
    assert "huge.yaml" in err and "at most" in err


@pytest.mark.parametrize("section", ["parameters", "tags"])
def test_an_alias_bomb_is_refused(workdir, capsys, section):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    body = "\n".join(f"      {line}" for line in levels)
    path = workdir / "bomb.yaml"
    path.write_text(
        "admin_region: us-east-1\nstack_sets:\n  - name: bomb\n    template: templates/marker.yaml\n"
        f"    regions: [us-east-1]\n    targets: {{accounts: ['111111111111']}}\n    permission_model: self_managed\n"
        f"    {section}:\n{body}\n"
    )
    err = refused(["plan", "--manifest", str(path)], capsys)
    assert "bomb.yaml" in err and "aliases" in err


def test_a_symlinked_non_template_is_never_quoted(workdir, capsys):
    secret = workdir / "credentials"
    secret.write_text(f"[default]\naws_access_key_id = {CANARY}\naws_secret_access_key: {{ {CANARY}\n")
    (workdir / "templates" / "creds.yaml").symlink_to(secret)
    manifest = write_manifest(
        workdir, [{**self_managed(unique("lnk"), ["111111111111"], ["us-east-1"]), "template": "templates/creds.yaml"}]
    )
    err = refused(["plan", "--manifest", manifest], capsys)
    assert "creds.yaml" in err and CANARY not in err


def test_a_broken_manifest_is_reported_with_its_line_not_its_content(workdir, capsys):
    path = workdir / "broken.yaml"
    path.write_text(f"admin_region: us-east-1\nstack_sets: [{{name: {CANARY}\n")
    err = refused(["plan", "--manifest", str(path)], capsys)
    assert "broken.yaml" in err and "line" in err and CANARY not in err


def test_duplicate_keys_are_refused(workdir, capsys):
    path = workdir / "dup.yaml"
    path.write_text("admin_region: us-east-1\nadmin_region: eu-west-1\nstack_sets: []\n")
    err = refused(["plan", "--manifest", str(path)], capsys)
    assert "duplicate key 'admin_region'" in err


def test_parameter_and_tag_values_are_kept_as_written(workdir):
    (workdir / "templates" / "any.yaml").write_text(
        "Parameters:\n  A: {Type: String}\n  B: {Type: String}\n  C: {Type: String}\n  D: {Type: String}\n"
        "  E: {Type: CommaDelimitedList}\nResources:\n  M: {Type: AWS::SNS::Topic}\n"
    )
    path = workdir / "values.yaml"
    path.write_text(
        "admin_region: us-east-1\nstack_sets:\n  - name: values\n    template: templates/any.yaml\n"
        "    permission_model: self_managed\n    targets: {accounts: ['111111111111']}\n    regions: [us-east-1]\n"
        "    parameters: {A: 012345670123, B: 1e3, C: yes, D: 0x1F, E: [007, 08]}\n"
        "    tags: {cost-center: 0012, enabled: on}\n"
    )
    (spec,) = load_manifest(path).stack_sets
    assert spec.parameter_dict == {"A": "012345670123", "B": "1e3", "C": "yes", "D": "0x1F", "E": "007,08"}
    assert dict(spec.tags) == {"cost-center": "0012", "enabled": "on"}


def test_a_fifty_thousand_account_list_validates_in_linear_time(workdir):
    accounts = [f"{n:012d}" for n in range(1, 50_001)]
    path = Path(write_manifest(workdir, [self_managed("big", accounts, ["us-east-1", "eu-west-1"])]))
    (spec,) = load_manifest(path).stack_sets
    assert len(spec.accounts) == 50_000
    with pytest.raises(InputError, match="listed twice: 000000000007"):
        load_manifest(write_manifest(workdir, [self_managed("dup", [*accounts, "000000000007"], ["us-east-1"])]))


def test_a_catalog_refuses_a_binary_template_and_never_quotes_a_broken_one(tmp_path):
    from deploy.catalog.model import load_catalog

    (tmp_path / "bin.yaml").write_bytes(b"\x00\x01binary")
    (tmp_path / "creds.yaml").write_text(f"aws_secret_access_key: {{ {CANARY}\n")
    for template, words in (("bin.yaml", "binary"), ("creds.yaml", "not valid YAML/JSON")):
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text(
            f"portfolio: {{name: p, provider: me}}\nproducts:\n  - {{name: x, owner: me, template: {template}}}\n"
        )
        with pytest.raises(InputError) as caught:
            load_catalog(catalog, root=tmp_path)
        assert words in str(caught.value) and template in str(caught.value) and CANARY not in str(caught.value)
