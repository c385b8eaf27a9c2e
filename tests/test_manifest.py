"""Manifest validation: every kind of bad input names the file, the stack set and the key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from deploy.common.config import parse_yaml as parse_template_text
from deploy.common.errors import InputError
from deploy.stacksets.manifest import dependency_order, derive_capabilities, load_manifest

TEMPLATE = textwrap.dedent(
    """\
    Parameters:
      EnvName: {Type: String, Default: mlops}
      Size: {Type: String, AllowedValues: [small, large], Default: small}
      Count: {Type: Number, Default: 1}
      Required: {Type: String}
      Secret: {Type: String, NoEcho: true, Default: x, AllowedPattern: '[a-z]+'}
    Resources:
      Marker:
        Type: AWS::SSM::Parameter
        Properties: {Type: String, Value: !Ref Size, Name: !Sub '/${EnvName}/m'}
    """
)


def base_stack_set(**extra) -> dict:
    item = {
        "name": "roles",
        "template": "t.yaml",
        "permission_model": "service_managed",
        "targets": {"organizational_units": ["ou-abcd-12345678"]},
        "regions": ["us-east-1"],
        "parameters": {"Required": "yes"},
    }
    item.update(extra)
    return item


def write(tmp_path: Path, stack_sets=None, text: str | None = None, **top) -> Path:
    (tmp_path / "t.yaml").write_text(TEMPLATE)
    path = tmp_path / "manifest.yaml"
    if text is None:
        data = {
            "admin_region": "us-east-1",
            "stack_sets": stack_sets if stack_sets is not None else [base_stack_set()],
            **top,
        }
        text = yaml.safe_dump(data, sort_keys=False)
    path.write_text(text)
    return path


def error_of(tmp_path, **kwargs) -> InputError:
    path = write(tmp_path, **kwargs)
    with pytest.raises(InputError) as info:
        load_manifest(path)
    assert info.value.exit_code == 2
    assert info.value.source == str(path)
    return info.value


def test_a_valid_manifest_loads_with_defaults(tmp_path):
    manifest = load_manifest(write(tmp_path))
    (spec,) = manifest.stack_sets
    assert spec.permission_model == "SERVICE_MANAGED" and spec.call_as == "SELF"
    assert spec.auto_deployment is True  # service-managed default
    assert spec.parameter_dict == {"Required": "yes"}
    assert spec.effective_parameters()["Size"] == "small"
    prefs = dict(spec.operation_preferences)
    assert prefs["ConcurrencyMode"] == "SOFT_FAILURE_TOLERANCE" and prefs["RegionConcurrencyType"] == "PARALLEL"
    assert spec.template.parameters["Secret"].no_echo


@pytest.mark.parametrize(
    "stack_set, where, key, words",
    [
        (base_stack_set(regions=["us-east-9"]), "stack set 'roles'", "regions", ["us-east-9"]),
        (
            base_stack_set(targets={"organizational_units": ["ou-bad"]}),
            "stack set 'roles'",
            "targets.organizational_units",
            ["ou-bad"],
        ),
        (
            base_stack_set(permission_model="self_managed", targets={"accounts": ["12345"]}),
            "stack set 'roles'",
            "targets.accounts",
            ["12345", "12-digit"],
        ),
        (
            base_stack_set(parameters={"Required": "x", "Sise": "large"}),
            "stack set 'roles'",
            "parameters.Sise",
            ["did you mean 'Size'"],
        ),
        (base_stack_set(parameters={}), "stack set 'roles'", "parameters", ["Required"]),
        (
            base_stack_set(parameters={"Required": "x", "Size": "huge"}),
            "stack set 'roles'",
            "parameters.Size",
            ["huge", "small, large"],
        ),
        (
            base_stack_set(parameters={"Required": "x", "Count": "many"}),
            "stack set 'roles'",
            "parameters.Count",
            ["not a number"],
        ),
        (
            base_stack_set(parameters={"Required": "x", "Secret": "UPPER"}),
            "stack set 'roles'",
            "parameters.Secret",
            ["****", "AllowedPattern"],
        ),
        (base_stack_set(template="missing.yaml"), "stack set 'roles'", "template", ["missing.yaml", "does not exist"]),
        (base_stack_set(regionz=["us-east-1"]), "stack set 'roles'", "regionz", ["did you mean 'regions'"]),
        (base_stack_set(regions="us-east-1"), "stack set 'roles'", "regions", ["expected array"]),
        (base_stack_set(auto_deployment="yes"), "stack set 'roles'", "auto_deployment", ["boolean"]),
        (base_stack_set(permission_model="service"), "stack set 'roles'", "permission_model", ["service_managed"]),
        (
            base_stack_set(targets={"organizational_units": ["ou-abcd-12345678"], "accounts": ["111111111111"]}),
            "stack set 'roles'",
            "targets.account_filter",
            ["intersection"],
        ),
        (
            base_stack_set(permission_model="self_managed", targets={"organizational_units": ["ou-abcd-12345678"]}),
            "stack set 'roles'",
            "targets.organizational_units",
            ["self_managed"],
        ),
        (
            base_stack_set(overrides=[{"regions": ["eu-west-1"], "parameters": {"Size": "large"}}]),
            "stack set 'roles'",
            "overrides[0].regions",
            ["eu-west-1"],
        ),
        (
            base_stack_set(overrides=[{"parameters": {"Nope": "1"}}]),
            "stack set 'roles'",
            "overrides[0].parameters.Nope",
            ["not a parameter"],
        ),
        (
            base_stack_set(operation_preferences={"max_concurrent_count": 2, "max_concurrent_percentage": 50}),
            "stack set 'roles'",
            "operation_preferences.max_concurrent_percentage",
            ["either"],
        ),
        (base_stack_set(depends_on=["ghost"]), "stack set 'roles'", "depends_on", ["ghost"]),
        (base_stack_set(depends_on=["roles"]), "stack set 'roles'", "depends_on", ["itself"]),
        (
            base_stack_set(tags={"sagemaker-stackset-deploy:managed-by": "me"}),
            "stack set 'roles'",
            "tags.sagemaker-stackset-deploy:managed-by",
            ["reserved"],
        ),
        (base_stack_set(name="bad_name"), "stack set 'bad_name'", "name", ["does not match"]),
        (
            base_stack_set(administration_role_arn="arn:aws:iam::111111111111:role/Admin"),
            "stack set 'roles'",
            "administration_role_arn",
            ["self_managed"],
        ),
    ],
)
def test_bad_stack_set_input_names_file_stack_set_and_key(tmp_path, stack_set, where, key, words):
    error = error_of(tmp_path, stack_sets=[stack_set])
    assert error.where == where
    assert error.key == key
    for word in words:
        assert word in error.message, error.message
    assert str(tmp_path) in str(error)


def test_duplicate_names_and_cycles(tmp_path):
    error = error_of(tmp_path, stack_sets=[base_stack_set(), base_stack_set()])
    assert error.key == "name" and "duplicate" in error.message
    a = base_stack_set(name="a", depends_on=["b"])
    b = base_stack_set(name="b", depends_on=["c"])
    c = base_stack_set(name="c", depends_on=["a"])
    error = error_of(tmp_path, stack_sets=[a, b, c])
    assert error.key == "depends_on" and "cycle" in error.message and "a -> b -> c -> a" in error.message


def test_malformed_yaml_and_duplicate_keys(tmp_path):
    error = error_of(tmp_path, text="admin_region: us-east-1\nstack_sets: [\n")
    assert "malformed YAML" in error.message and error.where.startswith("line ")
    error = error_of(tmp_path, text="admin_region: us-east-1\nadmin_region: eu-west-1\nstack_sets: []\n")
    assert "duplicate key 'admin_region'" in error.message


def test_top_level_problems(tmp_path):
    assert error_of(tmp_path, text="- just a list\n").where is None
    error = error_of(tmp_path, stack_sets=[base_stack_set()], admin_account_id="123")
    assert error.key == "admin_account_id"
    error = error_of(tmp_path, text="stack_sets: []\n")
    assert error.key == "admin_region" and "missing" in error.message
    error = error_of(tmp_path, stack_sets=[base_stack_set()], admin_region="mars-1")
    assert error.key == "admin_region"
    with pytest.raises(InputError) as info:
        load_manifest(tmp_path / "nope.yaml")
    assert "does not exist" in info.value.message


def test_ou_paths_are_accepted_and_recorded(tmp_path):
    manifest = load_manifest(
        write(
            tmp_path, stack_sets=[base_stack_set(targets={"organizational_units": ["ou:/workloads/staging", "r-ab12"]})]
        )
    )
    assert manifest.ou_paths() == {"ou:/workloads/staging"}
    error = error_of(tmp_path, stack_sets=[base_stack_set(targets={"organizational_units": ["ou:staging"]})])
    assert "ou:/name/child" in error.message


def test_capabilities_are_derived_from_the_template():
    named = {"Resources": {"R": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "x"}}}}
    unnamed = {"Resources": {"R": {"Type": "AWS::IAM::Role", "Properties": {}}}}
    macro = {"Transform": "AWS::Serverless-2016-10-31", "Resources": {"F": {"Type": "AWS::Serverless::Function"}}}
    assert derive_capabilities(named) == ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM")
    assert derive_capabilities(unnamed) == ("CAPABILITY_IAM",)
    assert derive_capabilities(macro) == ("CAPABILITY_AUTO_EXPAND",)
    assert derive_capabilities({"Resources": {"B": {"Type": "AWS::S3::Bucket"}}}) == ()


def test_short_form_intrinsics_parse():
    data = parse_template_text(
        "Resources:\n  A:\n    Type: X\n    Properties: {V: !GetAtt B.Arn, W: !Sub 'a', L: !Join ['', [a]]}\n"
    )
    props = data["Resources"]["A"]["Properties"]
    assert props == {"V": {"Fn::GetAtt": ["B", "Arn"]}, "W": {"Fn::Sub": "a"}, "L": {"Fn::Join": ["", ["a"]]}}


def test_dependency_order_puts_dependencies_first(tmp_path):
    stack_sets = [
        base_stack_set(name="c", depends_on=["b"]),
        base_stack_set(name="a"),
        base_stack_set(name="b", depends_on=["a"]),
    ]
    manifest = load_manifest(write(tmp_path, stack_sets=stack_sets))
    assert dependency_order(manifest.stack_sets) == ["a", "b", "c"]


def test_repository_templates_capabilities():
    """The real templates that create named roles are recognised as needing CAPABILITY_NAMED_IAM."""
    root = Path(__file__).resolve().parents[1] / "templates"
    path = root / "target-account-roles.yaml"
    assert path.exists(), "templates/ must be generated"
    assert "CAPABILITY_NAMED_IAM" in derive_capabilities(parse_template_text(path.read_text()))


def test_account_names_are_accepted_and_recorded(tmp_path):
    item = base_stack_set(
        permission_model="self_managed", targets={"accounts": ["account:ml-development", "111111111111"]}
    )
    manifest = load_manifest(write(tmp_path, stack_sets=[item]))
    assert manifest.account_names() == {"account:ml-development"}
    assert manifest.stack_sets[0].accounts == ("111111111111", "account:ml-development")


def test_the_worked_example_validates():
    """examples/manifest.yaml against the real templates: every parameter known, every required one given."""
    root = Path(__file__).resolve().parents[1]
    manifest = load_manifest(root / "examples" / "manifest.yaml")
    names = [spec.name for spec in manifest.stack_sets]
    assert names == [
        "ml-permissions-boundary",
        "ml-environment",
        "ml-target-account-roles",
        "ml-servicecatalog-launch-role",
        "ml-target-network",
        "ml-model-deploy",
        "ml-endpoint-invoke-role",
    ]
    by_name = manifest.by_name()
    assert by_name["ml-environment"].permission_model == "SELF_MANAGED"
    assert by_name["ml-environment"].template.size > 51_200  # exercised through S3
    assert by_name["ml-target-account-roles"].organizational_units == ("ou:/production", "ou:/staging")
    assert "CAPABILITY_NAMED_IAM" in by_name["ml-target-account-roles"].capabilities
    assert by_name["ml-endpoint-invoke-role"].template.parameters["ExternalId"].no_echo
    assert manifest.ou_paths() == {"ou:/development", "ou:/staging", "ou:/production"}
    # The boundary exists first wherever a role is created: every other stack set depends on
    # it, and it reaches every OU the others target (the development account is in ou:/development).
    boundary = by_name["ml-permissions-boundary"]
    assert Path(boundary.template.path).name == "permissions-boundary.yaml"
    assert set(boundary.organizational_units) == manifest.ou_paths()
    assert all("ml-permissions-boundary" in spec.depends_on for spec in manifest.stack_sets if spec is not boundary)


@pytest.mark.parametrize(
    "spec_yaml, value, words",
    [
        ("{Type: String, NoEcho: true, MinLength: 16}", "short", ["****", "MinLength 16"]),
        ("{Type: String, MaxLength: 3}", "toolong", ["'toolong'", "MaxLength 3"]),
        ("{Type: Number, MinValue: 1, MaxValue: 10}", 11, ["above", "MaxValue 10"]),
        ("{Type: Number, MinValue: 1}", 0, ["below", "MinValue 1"]),
        ("{Type: CommaDelimitedList, AllowedPattern: '^arn:.*$'}", "arn:a,*", ["'*'", "AllowedPattern"]),
    ],
)
def test_template_constraints_are_checked_before_any_call(tmp_path, spec_yaml, value, words):
    (tmp_path / "c.yaml").write_text(f"Parameters:\n  P: {spec_yaml}\nResources:\n  M: {{Type: AWS::SSM::Parameter}}\n")
    item = base_stack_set(template="c.yaml", parameters={"P": value})
    error = error_of(tmp_path, stack_sets=[item])
    assert error.key == "parameters.P"
    for word in words:
        assert word in error.message, error.message
    assert "short" not in error.message or "****" in error.message
