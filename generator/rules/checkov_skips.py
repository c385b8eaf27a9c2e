"""Every linter skip in a template (checkov, parliament) carries a written justification."""

from __future__ import annotations

import re

from cfnlint.rules import CloudFormationLintRule, RuleMatch

# A justification says why, in a sentence: a check id or "n/a" is not one.
MIN_JUSTIFICATION = 30
# The linters that read skips from a resource's Metadata, and what their check ids look like.
SKIP_SECTIONS = {
    "checkov": re.compile(r"^CKV2?_[A-Z0-9]+_\d+$"),
    "parliament": re.compile(r"^[A-Z][A-Z_]+[A-Z]$"),
}


class LinterSkipJustified(CloudFormationLintRule):
    """A resource's ``Metadata: {checkov|parliament}: skip`` entries name a check and say why it does not apply."""

    id = "E9901"
    shortdesc = "checkov and parliament skips carry a check id and a written justification"
    description = (
        "Each entry of a resource's Metadata checkov.skip (or parliament.skip) list has an id (CKV_AWS_..., or "
        f"a parliament issue such as RESOURCE_STAR) and a comment of at least {MIN_JUSTIFICATION} characters "
        "saying why the check does not apply. Skips live only there, next to the resource, and the README's "
        "security section lists them."
    )
    source_url = "https://www.checkov.io/2.Basics/Suppressing%20and%20Skipping%20Policies.html"
    tags = ["security", "checkov", "parliament"]

    def match(self, cfn):
        matches = []
        for name, resource in (cfn.template.get("Resources") or {}).items():
            metadata = resource.get("Metadata") if isinstance(resource, dict) else None
            for tool, id_pattern in SKIP_SECTIONS.items():
                section = metadata.get(tool) if isinstance(metadata, dict) else None
                if section is not None:
                    matches.extend(_check_section(name, tool, section, id_pattern))
        return matches


def _check_section(name: str, tool: str, section, id_pattern) -> list:
    path = ["Resources", name, "Metadata", tool]
    skips = section.get("skip") if isinstance(section, dict) else None
    if not isinstance(skips, list) or not skips:
        return [RuleMatch(path, f"{name}: Metadata {tool} must be {{skip: [{{id, comment}}, ...]}}")]
    matches = []
    for index, skip in enumerate(skips):
        check = str(skip.get("id", "")) if isinstance(skip, dict) else ""
        comment = str(skip.get("comment", "")).strip() if isinstance(skip, dict) else ""
        if not id_pattern.match(check):
            matches.append(
                RuleMatch(
                    path + ["skip", index], f"{name}: {tool} skip {index} has no valid check id (got {check or 'none'})"
                )
            )
        if len(comment) < MIN_JUSTIFICATION:
            matches.append(
                RuleMatch(
                    path + ["skip", index],
                    f"{name}: {tool} skip of {check or '?'} needs a comment saying why the check does not apply "
                    f"(at least {MIN_JUSTIFICATION} characters)",
                )
            )
    return matches
