"""EC2 invariant: no security group admits traffic from the whole internet."""

from __future__ import annotations

import re

from cfnlint.rules import CloudFormationLintRule

from generator import policy_analysis as analysis
from generator.rules._walk import resource_problems

_OPEN_IPV4 = "0.0.0.0/0"
_OPEN_IPV6 = "::/0"


def _open_cidrs(cfn, rule: dict) -> list[str]:
    """The internet-wide CIDRs ``rule`` admits, following Refs to parameters (their default and allowed values)."""
    found = []
    for key, everyone in (("CidrIp", _OPEN_IPV4), ("CidrIpv6", _OPEN_IPV6)):
        if key not in rule:
            continue
        via = analysis.symbol(rule[key])
        for value in _possible_values(cfn, rule[key]):
            if _is_everyone(value, everyone):
                found.append(f"{key} {value}" + (f" (parameter {via[2:-1]} admits it)" if via != value else ""))
                break
    return found


def _is_everyone(value: str, everyone: str) -> bool:
    value = value.strip().lower()
    if everyone == _OPEN_IPV4:
        return value == _OPEN_IPV4
    return value.endswith("/0") and ":" in value


def _possible_values(cfn, value) -> list[str]:
    """A literal; or what a parameter may be given: Default and AllowedValues, the open CIDRs its
    AllowedPattern admits, and "an unconstrained value" when it has neither pattern nor values."""
    sym = analysis.symbol(value)
    parameter = None
    if sym.startswith("${") and sym.endswith("}") and sym.count("${") == 1:
        parameter = (cfn.template.get("Parameters") or {}).get(sym[2:-1])
    if not isinstance(parameter, dict):
        return [sym]
    if str(parameter.get("Type", "String")).startswith("AWS::SSM::Parameter::Value<"):
        return []  # set by the account's administrators in SSM, not by whoever launches the stack
    values = [analysis.symbol(v) for v in analysis.as_list(parameter.get("AllowedValues"))]
    if "Default" in parameter:
        values.append(analysis.symbol(parameter["Default"]))
    pattern = parameter.get("AllowedPattern")
    if pattern is not None:
        values.extend(cidr for cidr in (_OPEN_IPV4, _OPEN_IPV6) if re.fullmatch(str(pattern), cidr))
    elif not parameter.get("AllowedValues"):
        values.extend([_OPEN_IPV4, _OPEN_IPV6])  # unconstrained: a launch may pass either
    return values


class NoIngressFromInternet(CloudFormationLintRule):
    """No security group ingress rule from 0.0.0.0/0 or ::/0."""

    id = "E9501"
    shortdesc = "EC2: no security group ingress from 0.0.0.0/0 or ::/0"
    description = (
        "No AWS::EC2::SecurityGroup SecurityGroupIngress rule and no AWS::EC2::SecurityGroupIngress has "
        "CidrIp 0.0.0.0/0 or CidrIpv6 ::/0, also through a parameter whose Default, AllowedValues or "
        "AllowedPattern admits it or that is unconstrained. The environment is reached only from inside its VPC."
    )
    source_url = "https://docs.aws.amazon.com/vpc/latest/userguide/vpc-security-best-practices.html"
    tags = ["security", "ec2", "network"]

    def match(self, cfn):
        def group_problems(name, _rtype, props):
            for index, rule in enumerate(analysis.as_list(props.get("SecurityGroupIngress"))):
                if isinstance(rule, dict):
                    for cidr in _open_cidrs(cfn, rule):
                        yield (
                            ["SecurityGroupIngress"],
                            f"Security group {name} admits {cidr} (ingress rule {index}): "
                            "allow only the VPC's CIDR or a source security group",
                        )

        def ingress_problems(name, _rtype, props):
            for cidr in _open_cidrs(cfn, props):
                yield (
                    f"Security group ingress {name} admits {cidr}: allow only the VPC's CIDR or a source security group"
                )

        return resource_problems(cfn, ["AWS::EC2::SecurityGroup"], group_problems) + resource_problems(
            cfn, ["AWS::EC2::SecurityGroupIngress"], ingress_problems
        )
