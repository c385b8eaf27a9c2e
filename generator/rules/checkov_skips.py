"""Every checkov skip in a template carries a written justification."""

from __future__ import annotations

import re

from cfnlint.rules import CloudFormationLintRule, RuleMatch

# A justification says why, in a sentence: a check id or "n/a" is not one.
MIN_JUSTIFICATION = 30
_CHECK_ID = re.compile(r"^CKV2?_[A-Z0-9]+_\d+$")


class CheckovSkipJustified(CloudFormationLintRule):
    """A resource's ``Metadata: checkov: skip`` entries name a check and say why it does not apply."""

    id = "E9901"
    shortdesc = "checkov skips carry a check id and a written justification"
    description = (
        "Each entry of a resource's Metadata checkov.skip list has an id (CKV_..., CKV2_...) and a comment of "
        f"at least {MIN_JUSTIFICATION} characters saying why the check does not apply. Skips live only there, "
        "next to the resource, and the README's security section lists them."
    )
    source_url = "https://www.checkov.io/2.Basics/Suppressing%20and%20Skipping%20Policies.html"
    tags = ["security", "checkov"]

    def match(self, cfn):
        matches = []
        for name, resource in (cfn.template.get("Resources") or {}).items():
            metadata = resource.get("Metadata") if isinstance(resource, dict) else None
            checkov = metadata.get("checkov") if isinstance(metadata, dict) else None
            if checkov is None:
                continue
            path = ["Resources", name, "Metadata", "checkov"]
            skips = checkov.get("skip") if isinstance(checkov, dict) else None
            if not isinstance(skips, list) or not skips:
                matches.append(RuleMatch(path, f"{name}: Metadata checkov must be {{skip: [{{id, comment}}, ...]}}"))
                continue
            for index, skip in enumerate(skips):
                check = str(skip.get("id", "")) if isinstance(skip, dict) else ""
                comment = str(skip.get("comment", "")).strip() if isinstance(skip, dict) else ""
                if not _CHECK_ID.match(check):
                    matches.append(RuleMatch(path + ["skip", index], f"{name}: checkov skip {index} has no check id (CKV_AWS_...)"))
                if len(comment) < MIN_JUSTIFICATION:
                    matches.append(RuleMatch(
                        path + ["skip", index],
                        f"{name}: checkov skip of {check or '?'} needs a comment saying why the check does not apply "
                        f"(at least {MIN_JUSTIFICATION} characters)",
                    ))
        return matches
