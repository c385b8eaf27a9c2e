"""In-process cfn-lint of rendered templates: every finding, of every severity, is fatal."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cfnlint.api import ManualArgs
from cfnlint.config import ConfigMixIn
from cfnlint.decode.decode import decode_str
from cfnlint.runner import Runner, run_template_by_data

# Regions the product supports: where SageMaker Studio, the model registry and every
# interface endpoint the templates create are offered. Templates are linted for each.
SUPPORTED_REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "eu-west-2",
    "ap-southeast-2",
    "ap-northeast-1",
)

# The product's custom security rules, appended by module name (see generator/rules/__init__.py).
RULES_MODULE = "generator.rules"
# Their directory, for callers that still pass a path: cfn-lint loads each rule file of it as a
# top-level module, which works too because the rule files import only absolute names.
RULES_DIR = Path(__file__).resolve().parent / "rules"


@dataclass(frozen=True)
class Finding:
    """One lint finding, located in a file."""

    path: str
    line: int
    rule_id: str
    severity: str
    message: str

    def __str__(self) -> str:
        # Some cfn-lint messages list every valid value (thousands of IAM actions).
        message = self.message if len(self.message) <= 400 else self.message[:400] + " ..."
        return f"{self.path}:{self.line}: [{self.rule_id}] ({self.severity}) {message}"


def _config(regions: tuple[str, ...]) -> ManualArgs:
    config = ManualArgs(regions=list(regions), include_checks=["I"])
    config["append_rules"] = [RULES_MODULE]  # type: ignore[typeddict-unknown-key]
    return config


@cache
def _rules(regions: tuple[str, ...]):
    """cfn-lint's rules, loaded once per process: loading them costs more than linting a template."""
    return Runner(ConfigMixIn(**_config(regions))).rules


def lint_text(text: str, path: str, regions=SUPPORTED_REGIONS) -> list[Finding]:
    """Lint one template's text with cfn-lint (errors, warnings and informational checks).

    Each template gets a fresh configuration (cfn-lint reads per-template settings from
    its Metadata into it); only the loaded rules are shared between templates.
    """
    regions = tuple(regions)
    template, matches = decode_str(text)
    if not matches:
        matches = list(run_template_by_data(template, ConfigMixIn(**_config(regions)), _rules(regions)))
    findings = {
        Finding(path=path, line=m.linenumber, rule_id=m.rule.id, severity=m.rule.severity, message=m.message)
        for m in matches
    }
    return sorted(findings, key=lambda f: (f.path, f.line, f.rule_id, f.message))
