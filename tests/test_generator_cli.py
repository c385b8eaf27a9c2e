"""`python -m generator`: emits, checks, and fails on any lint finding."""

from __future__ import annotations

import pytest
from troposphere import Template
from troposphere.s3 import Bucket, VersioningConfiguration

import generator.__main__ as cli
from generator.registry import TEMPLATES


@pytest.fixture
def small_registry(monkeypatch):
    names = ["stackset-administration-role", "endpoint-consumer-policy"]
    monkeypatch.setattr(cli, "TEMPLATES", {n: TEMPLATES[n] for n in names})
    return names


def test_emit_twice_gives_identical_bytes(tmp_path, small_registry):
    assert cli.main(["--out", str(tmp_path / "a"), "--jobs", "1"]) == 0
    assert cli.main(["--out", str(tmp_path / "b"), "--jobs", "1"]) == 0
    for name in small_registry:
        assert (tmp_path / "a" / f"{name}.yaml").read_bytes() == (tmp_path / "b" / f"{name}.yaml").read_bytes()


def test_check_passes_when_current_and_fails_when_stale(tmp_path, small_registry, capsys):
    assert cli.main(["--out", str(tmp_path), "--no-lint"]) == 0
    assert cli.main(["--out", str(tmp_path), "--check", "--no-lint"]) == 0
    stale = tmp_path / f"{small_registry[0]}.yaml"
    stale.write_text(stale.read_text() + "# edited by hand\n")
    assert cli.main(["--out", str(tmp_path), "--check", "--no-lint"]) == 1
    assert f"{stale}: differs" in capsys.readouterr().err
    assert stale.read_text().endswith("# edited by hand\n"), "--check must write nothing"


def test_check_reports_missing_and_stray_files(tmp_path, small_registry, capsys):
    assert cli.main(["--out", str(tmp_path), "--no-lint"]) == 0
    (tmp_path / f"{small_registry[0]}.yaml").unlink()
    (tmp_path / "forgotten.yaml").write_text("Resources: {}\n")
    assert cli.main(["--out", str(tmp_path), "--check", "--no-lint"]) == 1
    err = capsys.readouterr().err
    assert "missing" in err and "forgotten.yaml: not emitted" in err


def _broken_template() -> Template:
    template = Template(Description="a bucket with an invalid versioning status")
    template.add_resource(Bucket("Broken", VersioningConfiguration=VersioningConfiguration(Status="On")))
    return template


def test_any_lint_finding_fails_with_file_line_and_rule(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "TEMPLATES", {"broken": _broken_template})
    assert cli.main(["--out", str(tmp_path), "--jobs", "1", "--region", "us-east-1"]) == 1
    err = capsys.readouterr().err
    line = next(text for text in err.splitlines() if "broken.yaml:" in text)
    path, lineno, rest = line.split(":", 2)
    assert path.endswith("broken.yaml") and int(lineno) > 0
    assert "[E" in rest or "[W" in rest or "[I" in rest


def test_informational_findings_fail_too(tmp_path, monkeypatch, capsys):
    from troposphere import Parameter

    def unused_parameter() -> Template:
        template = Template()
        template.add_parameter(Parameter("Unused", Type="String"))
        template.add_resource(Bucket("Logs"))
        return template

    monkeypatch.setattr(cli, "TEMPLATES", {"warns": unused_parameter})
    assert cli.main(["--out", str(tmp_path), "--jobs", "1", "--region", "us-east-1"]) == 1
    assert "W2001" in capsys.readouterr().err


def test_unknown_template_name_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match="unknown template"):
        cli.main(["--out", str(tmp_path), "no-such-template"])


def test_diagram_pages_are_emitted_with_the_templates_and_checked(tmp_path, small_registry, capsys):
    out = tmp_path / "templates"
    assert cli.main(["--out", str(out), "--no-lint"]) == 0
    pages = sorted(p.name for p in (out / "docs").glob("*.md"))
    assert pages == sorted(f"{name}.md" for name in small_registry)
    page = out / "docs" / f"{small_registry[0]}.md"
    assert "```mermaid" in page.read_text()
    page.write_text("stale\n")
    assert cli.main(["--out", str(out), "--check", "--no-lint"]) == 1
    assert f"{page}: differs" in capsys.readouterr().err
    assert page.read_text() == "stale\n"


def test_an_unknown_region_is_refused_with_a_suggestion(tmp_path, small_registry, capsys):
    assert cli.main(["--out", str(tmp_path), "--region", "us-east-9"]) == 2
    err = capsys.readouterr().err
    assert "unknown region us-east-9 (did you mean us-east-2?)" in err and "Traceback" not in err
    assert not (tmp_path / f"{small_registry[0]}.yaml").exists()


def test_no_lint_does_not_claim_lint_clean(tmp_path, small_registry, capsys):
    assert cli.main(["--out", str(tmp_path), "--no-lint"]) == 0
    assert "not linted (--no-lint)" in capsys.readouterr().err
