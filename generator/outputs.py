"""Publish a value twice: as an exported stack output and as an SSM parameter.

Exports (``<env-name>-<env-type>-<name>``) serve ``Fn::ImportValue`` in the same account
and region; SSM parameters (``/<env-name>/<env-type>/<path>``) serve SSM-typed template
parameters (``AWS::SSM::Parameter::Value<...>``), which also work from Service Catalog
products and StackSets without knowing the producing stack.
"""

from __future__ import annotations

from troposphere import Export, Join, Output, Ref, Template
from troposphere.ssm import Parameter as SsmParameter

from generator.parameters import Environment


def publish(
    template: Template,
    env: Environment,
    logical_name: str,
    value,
    description: str,
    path: str,
    is_list: bool = False,
    condition: str | None = None,
) -> Output:
    """Add output ``logical_name`` exported as ``<env>-<type>-<path with / as ->`` and SSM ``/<env>/<type>/<path>``.

    ``is_list``: ``value`` is a list, published comma-joined (SSM ``StringList``).
    """
    text = Join(",", value) if is_list else value
    export_suffix = path.replace("/", "-")
    extra = {"Condition": condition} if condition else {}
    template.add_resource(
        SsmParameter(
            f"{logical_name}Parameter",
            Name=env.ssm_name(path),
            Type="StringList" if is_list else "String",
            Value=text,
            Description=description,
            Tags={"sagemaker:environment-name": Ref(env.name), "sagemaker:environment-type": Ref(env.type)},
            **extra,
        )
    )
    return template.add_output(
        Output(
            logical_name, Description=description, Value=text, Export=Export(env.export_name(export_suffix)), **extra
        )
    )


def group_parameters(template: Template, groups: dict[str, list[str]]) -> None:
    """Console and Service Catalog parameter groups (``AWS::CloudFormation::Interface``), in order.

    Every parameter of the template must be in exactly one group, so that a parameter
    added later cannot silently fall outside the form's sections.
    """
    listed = [name for names in groups.values() for name in names]
    missing = set(template.parameters) - set(listed)
    unknown = set(listed) - set(template.parameters)
    if missing or unknown or len(listed) != len(set(listed)):
        raise ValueError(f"parameter groups: missing {sorted(missing)}, unknown {sorted(unknown)}, or listed twice")
    template.set_metadata(
        {
            "AWS::CloudFormation::Interface": {
                "ParameterGroups": [
                    {"Label": {"default": label}, "Parameters": names} for label, names in groups.items()
                ]
            }
        }
    )
