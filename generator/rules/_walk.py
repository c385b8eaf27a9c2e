"""The walks every rule shares: resources of some types (each variant of their properties), Allow statements.

A module of functions, no rule class: cfn-lint takes every ``CloudFormationLintRule`` subclass in
``generator.rules``' namespace as a rule, so a shared base class would be one too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from cfnlint.rules import RuleMatch

from generator import policy_analysis as analysis

# What a check yields: a message about the resource's Properties, or (path below Properties, message).
Problem = str | tuple[Sequence[str | int], str]


def resource_problems(
    cfn, types: Iterable[str], check: Callable[[str, str, dict], Iterable[Problem]]
) -> list[RuleMatch]:
    """A match for each problem ``check(name, resource_type, props)`` yields, for each variant of the
    properties of each resource of ``types`` (type by type, in template order), without repeats."""
    matches = []
    for rtype in types:
        for name, resource in cfn.get_resources([rtype]).items():
            for props in analysis.variants(resource.get("Properties") or {}):
                for problem in check(name, rtype, props):
                    below, message = ((), problem) if isinstance(problem, str) else problem
                    matches.append(RuleMatch(["Resources", name, "Properties", *below], message))
    return analysis.unique_matches(matches)


def allow_statements(template: dict, kinds: set[str]):
    """(policy, variant, statement) for each Allow statement of the policies of ``kinds``."""
    for policy in analysis.policy_documents(template):
        if policy.kind not in kinds:
            continue
        for variant in analysis.variants(policy.document):
            for statement in analysis.statements(variant):
                if statement.allows():
                    yield policy, variant, statement


def statement_problems(cfn, kinds: set[str], check: Callable[..., Iterable[str]]) -> list[RuleMatch]:
    """A match at the statement for each message ``check(policy, statement)`` yields, for each Allow
    statement (each variant) of the policies of ``kinds``, without repeats."""
    matches = []
    for policy, variant, statement in allow_statements(cfn.template, kinds):
        for message in check(policy, statement):
            matches.append(RuleMatch(list(analysis.statement_path(policy, variant, statement)), message))
    return analysis.unique_matches(matches)
