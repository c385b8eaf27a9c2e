"""Create a rendered template as a stack on moto in-process, with the local AWS's patches;
and the smallest template moto creates for real (one SSM parameter)."""

from __future__ import annotations

import warnings

import boto3

from localaws.patches import apply_all

REGION = "us-east-1"


def ssm_parameter_template(parameters: dict, name: dict, value: dict, logical_id: str = "Value") -> dict:
    """A template whose one resource is an SSM parameter named ``name`` holding ``value``."""
    return {
        "Parameters": parameters,
        "Resources": {
            logical_id: {"Type": "AWS::SSM::Parameter", "Properties": {"Name": name, "Type": "String", "Value": value}},
        },
    }


def create_stack(body: str, parameters: dict | None = None, name: str = "stack", before=None) -> dict:
    """Create the stack (template uploaded to S3: the environment exceeds the inline limit).

    Must run inside ``mock_aws()``. ``before(session)`` may create prerequisites and return
    extra parameters. Returns the stack description plus its ``Resources`` summaries.
    """
    apply_all()  # the same moto patches the local server runs (README: local AWS table)
    session = boto3.session.Session(region_name=REGION)
    parameters = dict(parameters or {})
    if before is not None:
        parameters.update(before(session) or {})
    s3 = session.client("s3")
    s3.create_bucket(Bucket="templates")
    s3.put_object(Bucket="templates", Key=name, Body=body.encode())
    cloudformation = session.client("cloudformation")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moto warns about each type it does not implement
        cloudformation.create_stack(
            StackName=name,
            TemplateURL=f"https://templates.s3.amazonaws.com/{name}",
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM"],
        )
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    stack["Resources"] = cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
    stack["OutputValues"] = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return stack
