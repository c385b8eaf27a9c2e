"""Issue 20, the last leniencies of the local AWS: opt-in eventual consistency of
SearchProductsAsAdmin (``search_lag``), Organizations access UNDER_CHANGE (``access_polls``),
bucket policies whose principals must exist (by default), a launch constraint's LocalRoleName
checked in the launching account at ProvisionProduct, and template objects encrypted under a
KMS key the caller cannot use. Each calls the local AWS directly, and the
publisher is shown to cope with the opt-in realism."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml
from botocore.exceptions import ClientError

from tests.test_publish_e2e import _portfolio_id, _products, publish, workspace  # noqa: F401 (fixture)

TEMPLATE = "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  Topic:\n    Type: AWS::SNS::Topic\n"


@pytest.fixture
def options(local_aws):
    """Set Service Catalog options for the test; back to the defaults after it."""
    yield lambda **values: local_aws.control("servicecatalog", **values)
    local_aws.control("servicecatalog", search_lag=0, access_polls=0)


def _product_request(name: str, url: str) -> dict:
    """CreateProduct's arguments for one template URL (a fresh IdempotencyToken)."""
    return {
        "Name": name,
        "Owner": "Platform team",
        "ProductType": "CLOUD_FORMATION_TEMPLATE",
        "ProvisioningArtifactParameters": {
            "Name": "v1",
            "Type": "CLOUD_FORMATION_TEMPLATE",
            "Info": {"LoadTemplateFromURL": url},
        },
        "IdempotencyToken": uuid.uuid4().hex,
    }


def _search(sc, name: str) -> list[str]:
    views = sc.search_products_as_admin(Filters={"FullTextSearch": [name]})["ProductViewDetails"]
    return [v["ProductViewSummary"]["ProductId"] for v in views if v["ProductViewSummary"]["Name"] == name]


def test_search_lag_hides_a_new_product_for_n_searches(local_aws, options):
    s3 = local_aws.client("s3")
    bucket = f"lag-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="t.yaml", Body=TEMPLATE.encode())
    sc = local_aws.client("servicecatalog")
    assert options(search_lag=2)["search_lag"] == 2
    name = f"lagging-{uuid.uuid4().hex[:8]}"
    product_id = sc.create_product(**_product_request(name, f"{local_aws.endpoint_url}/{bucket}/t.yaml"))[
        "ProductViewDetail"
    ]["ProductViewSummary"]["ProductId"]
    assert [_search(sc, name) for _ in range(3)] == [[], [], [product_id]]
    assert sc.describe_product_as_admin(Id=product_id)["ProductViewDetail"]["ProductViewSummary"]["Name"] == name


def _publish_under_search_lag(local_aws, workspace, options) -> tuple:  # noqa: F811
    path, _doc, _names = workspace
    options(search_lag=5)
    status, first, stderr = publish(path, root=path.parent)
    assert status == 0, stderr
    second = publish(path, root=path.parent)  # the products are not found by search yet: created again
    options(search_lag=0)
    return first, second


def test_publishing_twice_with_search_lag_creates_no_duplicate_product(local_aws, workspace, options):  # noqa: F811
    path, doc, names = workspace
    first, _second = _publish_under_search_lag(local_aws, workspace, options)
    sc = local_aws.client("servicecatalog")
    products = _products(sc, _portfolio_id(sc, doc["portfolio"]["name"]))
    assert products == {p["name"]: p["id"] for p in first["products"]}
    for name in names.values():  # the retried CreateProduct returned the same product (IdempotencyToken)
        assert len(_search(sc, name)) == 1
    status, third, stderr = publish(path, root=path.parent)  # once search has caught up, a re-run finishes
    assert status == 0, stderr
    assert {p["name"]: p["id"] for p in third["products"]} == products


def test_a_second_publish_under_search_lag_succeeds(local_aws, workspace, options):  # noqa: F811
    _first, (status, _second, stderr) = _publish_under_search_lag(local_aws, workspace, options)
    assert status == 0, stderr


def test_organizations_access_is_under_change_for_n_reads(local_aws, options):
    sc = local_aws.client("servicecatalog")
    sc.disable_aws_organizations_access()
    options(access_polls=2)
    sc.enable_aws_organizations_access()
    reads = [sc.get_aws_organizations_access_status()["AccessStatus"] for _ in range(3)]
    assert reads == ["UNDER_CHANGE", "UNDER_CHANGE", "ENABLED"]


def test_publish_waits_for_organizations_access_under_change(local_aws, workspace, options):  # noqa: F811
    path, doc, names = workspace
    sc = local_aws.client("servicecatalog")
    sc.disable_aws_organizations_access()
    options(access_polls=2)
    status, result, stderr = publish(path, root=path.parent)
    assert status == 0, stderr
    assert sc.get_aws_organizations_access_status()["AccessStatus"] == "ENABLED"
    assert set(_products(sc, _portfolio_id(sc, doc["portfolio"]["name"]))) == set(names.values())


def _policy(bucket: str, principal) -> str:
    statement = {
        "Effect": "Allow",
        "Principal": principal,
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.fixture
def bucket(local_aws):
    name = f"principals-{uuid.uuid4().hex[:8]}"
    local_aws.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def check_principals(local_aws):
    """Principals must exist: the default (issue 20), asserted rather than set."""
    assert local_aws.control("s3_bucket_policies") == {"check_principals": True}


def _stack_policy(local_aws, bucket: str, principal) -> str | None:
    """Create a stack whose only resource is a policy of ``bucket`` naming ``principal``: the refusal, or None."""
    statement = json.loads(_policy(bucket, principal))["Statement"][0]
    resource = {"Bucket": bucket, "PolicyDocument": {"Version": "2012-10-17", "Statement": [statement]}}
    template = {"Resources": {"Policy": {"Type": "AWS::S3::BucketPolicy", "Properties": resource}}}
    try:
        local_aws.client("cloudformation").create_stack(
            StackName=f"principal-{uuid.uuid4().hex[:8]}", TemplateBody=json.dumps(template)
        )
    except ClientError as error:
        return error.response["Error"]["Message"]
    return None


def test_bucket_policies_refuse_principals_that_do_not_exist(local_aws, bucket, check_principals):
    iam = local_aws.client("iam")
    management = local_aws.management_account_id
    role = f"reader-{uuid.uuid4().hex[:8]}"
    role_arn = iam.create_role(RoleName=role, Path="/team/", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    missing = [
        {"AWS": "arn:aws:iam::999999999999:root"},  # not an account of the local AWS
        {"AWS": "999999999999"},
        {"AWS": f"arn:aws:iam::{management}:role/no-such-role"},
        {"AWS": f"arn:aws:iam::{management}:role/{role}"},  # the role has a path: not this ARN
        {"AWS": f"arn:aws:iam::{management}:user/no-such-user"},
        {"AWS": [f"arn:aws:iam::{management}:root", "arn:aws:iam::999999999999:root"]},
        {"AWS": f"arn:aws:sts::{management}:assumed-role/no-such-role/a-session"},
        {"AWS": "arn:aws:sts::999999999999:federated-user/alice"},
        {"AWS": f"arn:aws:iam::{management}:group/admins"},
    ]
    for principal in missing:
        refusal = _stack_policy(local_aws, bucket, principal)
        assert refusal and '"Invalid principal in policy (Service: S3, Status Code: 400)"' in refusal, principal
    with pytest.raises(ClientError) as caught:
        local_aws.client("s3").get_bucket_policy(Bucket=bucket)
    assert caught.value.response["Error"]["Code"] == "NoSuchBucketPolicy"
    accepted = [
        "*",
        {"AWS": "*"},
        {"AWS": f"arn:aws:iam::{local_aws.account_id('ml-staging')}:root"},
        {"AWS": local_aws.account_id("ml-development")},
        {"AWS": "arn:aws:iam::123456789012:root"},  # moto's default account
        {"AWS": role_arn},
        {"AWS": f"arn:aws:sts::{management}:assumed-role/{role}/a-session"},  # the session ARN has no path
        {"AWS": f"arn:aws:sts::{management}:federated-user/alice"},
        {"Service": "cloudformation.amazonaws.com"},
        {"CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},
    ]
    for principal in accepted:
        assert _stack_policy(local_aws, bucket, principal) is None, principal
        policy = json.loads(local_aws.client("s3").get_bucket_policy(Bucket=bucket)["Policy"])
        assert policy["Statement"][0]["Principal"] == principal


def test_put_bucket_policy_refuses_principals_that_do_not_exist(local_aws, bucket, check_principals):
    s3 = local_aws.client("s3")
    management = local_aws.management_account_id
    for principal in ({"AWS": "arn:aws:iam::999999999999:root"}, {"AWS": f"arn:aws:iam::{management}:role/absent"}):
        with pytest.raises(ClientError) as caught:
            s3.put_bucket_policy(Bucket=bucket, Policy=_policy(bucket, principal))
        error = caught.value.response["Error"]
        assert (error["Code"], error["Message"]) == ("MalformedPolicy", "Invalid principal in policy"), principal
    s3.put_bucket_policy(Bucket=bucket, Policy=_policy(bucket, {"AWS": f"arn:aws:iam::{management}:root"}))


def test_put_bucket_policy_refuses_a_malformed_principal(local_aws, bucket):
    s3 = local_aws.client("s3")
    with pytest.raises(ClientError) as caught:
        s3.put_bucket_policy(Bucket=bucket, Policy=_policy(bucket, {"AWS": "not-an-account"}))
    error = caught.value.response["Error"]
    assert (error["Code"], error["Message"]) == ("MalformedPolicy", "Invalid principal in policy")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    for principal in ("*", {"AWS": f"arn:aws:iam::{local_aws.account_id('ml-staging')}:root"}):
        s3.put_bucket_policy(Bucket=bucket, Policy=_policy(bucket, principal))
        assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"][0]["Principal"] == principal


def test_put_bucket_policy_keeps_the_other_s3_errors(local_aws, bucket):
    s3 = local_aws.client("s3")
    cases = {
        "not json": "Policies must be valid JSON and the first byte must be '{'",
        _policy("some-other-bucket", "*"): "Policy has invalid resource",
    }
    for policy, message in cases.items():
        with pytest.raises(ClientError) as caught:
            s3.put_bucket_policy(Bucket=bucket, Policy=policy)
        assert caught.value.response["Error"]["Code"] == "MalformedPolicy"
        assert caught.value.response["Error"]["Message"] == message
    with pytest.raises(ClientError) as caught:
        s3.put_bucket_policy(Bucket=f"missing-{uuid.uuid4().hex[:8]}", Policy=_policy(bucket, "*"))
    assert caught.value.response["Error"]["Code"] == "NoSuchBucket"


def test_a_stack_bucket_policy_naming_a_missing_role_fails(local_aws, check_principals):
    cfn = local_aws.client("cloudformation")
    name = f"bad-principal-{uuid.uuid4().hex[:8]}"
    template = {
        "Resources": {
            "Bucket": {"Type": "AWS::S3::Bucket"},
            "Policy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": {"Ref": "Bucket"},
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"AWS": {"Fn::Sub": "arn:aws:iam::${AWS::AccountId}:role/absent"}},
                                "Action": "s3:GetObject",
                                "Resource": {"Fn::Sub": "${Bucket.Arn}/*"},
                            }
                        ],
                    },
                },
            },
        }
    }
    with pytest.raises(ClientError) as caught:  # the local CloudFormation fails the create at once
        cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    assert '"Invalid principal in policy (Service: S3, Status Code: 400)"' in caught.value.response["Error"]["Message"]


def _launchable_product(local_aws, sc) -> tuple[str, str, str]:
    """A product with one version in a new portfolio: (portfolio id, product id, version id)."""
    s3 = local_aws.client("s3")
    bucket = f"launch-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="t.yaml", Body=TEMPLATE.encode())
    portfolio = sc.create_portfolio(
        DisplayName=f"launch-{uuid.uuid4().hex[:8]}", ProviderName="Platform team", IdempotencyToken=uuid.uuid4().hex
    )["PortfolioDetail"]["Id"]
    created = sc.create_product(
        **_product_request(f"launched-{uuid.uuid4().hex[:8]}", f"{local_aws.endpoint_url}/{bucket}/t.yaml")
    )
    product = created["ProductViewDetail"]["ProductViewSummary"]["ProductId"]
    sc.associate_product_with_portfolio(ProductId=product, PortfolioId=portfolio)
    return portfolio, product, created["ProvisioningArtifactDetail"]["Id"]


def test_provisioning_needs_the_local_launch_role_in_the_launching_account(local_aws):
    sc, iam = local_aws.client("servicecatalog"), local_aws.client("iam")
    portfolio, product, version = _launchable_product(local_aws, sc)
    role = f"launch-{uuid.uuid4().hex[:8]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "servicecatalog.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }  # noqa: E501
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    sc.create_constraint(
        PortfolioId=portfolio,
        ProductId=product,
        Type="LAUNCH",
        Parameters=json.dumps({"LocalRoleName": role}),
        IdempotencyToken=uuid.uuid4().hex,
    )
    iam.delete_role(RoleName=role)  # the launching account (here the same) no longer has the role

    def provision():
        return sc.provision_product(
            ProductId=product,
            ProvisioningArtifactId=version,
            ProvisionedProductName=f"pp-{uuid.uuid4().hex[:6]}",
            ProvisionToken=uuid.uuid4().hex,
        )

    with pytest.raises(ClientError) as caught:
        provision()
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidParametersException"
    assert role in error["Message"] and local_aws.management_account_id in error["Message"]
    scanned = sc.scan_provisioned_products(AccessLevelFilter={"Key": "Account", "Value": "self"})
    assert product not in {p["ProductId"] for p in scanned["ProvisionedProducts"]}  # nothing recorded
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    assert provision()["RecordDetail"]["Status"] == "SUCCEEDED"


def test_provisioning_a_product_of_two_portfolios_needs_a_path(local_aws):
    sc = local_aws.client("servicecatalog")
    portfolio, product, version = _launchable_product(local_aws, sc)
    other = sc.create_portfolio(
        DisplayName=f"second-{uuid.uuid4().hex[:8]}", ProviderName="Platform team", IdempotencyToken=uuid.uuid4().hex
    )["PortfolioDetail"]["Id"]
    sc.associate_product_with_portfolio(ProductId=product, PortfolioId=other)
    request = {"ProductId": product, "ProvisioningArtifactId": version, "ProvisionToken": "t"}
    with pytest.raises(ClientError) as caught:
        sc.provision_product(ProvisionedProductName=f"pp-{uuid.uuid4().hex[:6]}", **request)
    assert caught.value.response["Error"]["Code"] == "InvalidParametersException"
    record = sc.provision_product(ProvisionedProductName=f"pp-{uuid.uuid4().hex[:6]}", PathId=other, **request)
    assert record["RecordDetail"]["Status"] == "SUCCEEDED"


def test_principal_existence_is_checked_by_default_and_can_be_turned_off(local_aws, bucket):
    s3 = local_aws.client("s3")
    missing = _policy(bucket, {"AWS": "arn:aws:iam::999999999999:root"})
    with pytest.raises(ClientError) as caught:
        s3.put_bucket_policy(Bucket=bucket, Policy=missing)
    assert caught.value.response["Error"]["Message"] == "Invalid principal in policy"
    # The documented escape hatch, for a test that must name a principal the local AWS lacks.
    try:
        assert local_aws.control("s3_bucket_policies", check_principals="false") == {"check_principals": False}
        s3.put_bucket_policy(Bucket=bucket, Policy=missing)
    finally:
        assert local_aws.control("s3_bucket_policies", check_principals="true") == {"check_principals": True}
    with pytest.raises(ClientError):
        s3.put_bucket_policy(Bucket=bucket, Policy=missing)


def _key_policy(account: str, *statements: dict) -> str:
    admin = {
        "Sid": "KeyAdministration",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:role/key-admins"},
        "Action": ["kms:Describe*", "kms:Put*", "kms:Get*"],
        "Resource": "*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [admin, *statements]})


def _encrypted_template(local_aws, key_id: str | None) -> str:
    s3 = local_aws.client("s3")
    bucket = f"kms-template-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(
        Bucket=bucket,
        Key="t.yaml",
        Body=TEMPLATE.encode(),
        ServerSideEncryption="aws:kms",
        **({"SSEKMSKeyId": key_id} if key_id else {}),
    )
    return f"{local_aws.endpoint_url}/{bucket}/t.yaml"


def _create_product(sc, url: str) -> str | None:
    """CreateProduct from ``url``: the refusal's (code, message), or None when it succeeds."""
    try:
        sc.create_product(**_product_request(f"kms-{uuid.uuid4().hex[:8]}", url))
    except ClientError as error:
        return error.response["Error"]["Code"], error.response["Error"]["Message"]
    return None


def test_a_template_under_a_kms_key_the_caller_cannot_use_is_refused(local_aws):
    kms, sc = local_aws.client("kms"), local_aws.client("servicecatalog")
    account = local_aws.management_account_id
    key = kms.create_key(Policy=_key_policy(account))["KeyMetadata"]["Arn"]  # no statement lets the caller decrypt
    url = _encrypted_template(local_aws, key)
    code, message = _create_product(sc, url)
    assert code == "InvalidParametersException"
    assert key in message and "kms:Decrypt" in message
    readable = _product_request(f"kms-{uuid.uuid4().hex[:8]}", _encrypted_template(local_aws, None))
    product = sc.create_product(**readable)[  # the same with a readable template works: only the key was refused
        "ProductViewDetail"
    ]["ProductViewSummary"]["ProductId"]
    code, _ = _error_of(
        lambda: sc.create_provisioning_artifact(
            ProductId=product,
            Parameters={"Name": "v2", "Info": {"LoadTemplateFromURL": url}, "DisableTemplateValidation": True},
            IdempotencyToken=uuid.uuid4().hex,
        )
    )
    assert code == "InvalidParametersException"  # Service Catalog must read the template even unvalidated
    assert [a["Name"] for a in sc.list_provisioning_artifacts(ProductId=product)["ProvisioningArtifactDetails"]] == [
        "v1"
    ]
    root = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"}
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=_key_policy(account, root))
    kms.disable_key(KeyId=key.split("/")[-1])  # moto 5.2.5 answers 500 to a key ARN here
    code, message = _create_product(sc, url)
    assert code == "InvalidParametersException" and "Disabled" in message
    kms.enable_key(KeyId=key.split("/")[-1])
    assert _create_product(sc, url) is None


def _error_of(call) -> tuple[str, str] | None:
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"], error.response["Error"]["Message"]
    return None


def test_key_policy_forms_for_template_objects(local_aws):
    kms, sc = local_aws.client("kms"), local_aws.client("servicecatalog")
    account = local_aws.management_account_id
    via_s3 = {
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
        "Condition": {
            "StringEquals": {"kms:CallerAccount": account, "kms:ViaService": f"s3.{local_aws.region}.amazonaws.com"}
        },
    }
    other_account = dict(via_s3, Condition={"StringEquals": {"kms:CallerAccount": "999999999999"}})
    not_understood = dict(via_s3, Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})
    root = {"Effect": "Allow", "Principal": {"AWS": account}, "Action": "kms:*", "Resource": "*"}
    deny_unclear = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    cases = {
        "the caller's account through S3": ([via_s3], True),
        "another account through S3": ([other_account], False),
        "a condition the emulator does not evaluate": ([not_understood], False),
        "the account root": ([root], True),
        "a Deny it cannot evaluate, beside an Allow": ([root, deny_unclear], False),
    }
    for case, (statements, allowed) in cases.items():
        key = kms.create_key(Policy=_key_policy(account, *statements))["KeyMetadata"]["KeyId"]
        refusal = _create_product(sc, _encrypted_template(local_aws, key))
        assert (refusal is None) == allowed, (case, refusal)


def test_a_member_account_cannot_read_a_template_under_another_accounts_aws_s3_key(local_aws):
    url = _encrypted_template(local_aws, None)  # the management account's aws/s3 key
    assert _create_product(local_aws.client("servicecatalog"), url) is None
    member = local_aws.accounts_in("development")[0]
    code, message = _create_product(local_aws.client("servicecatalog", member), url)
    assert code == "InvalidParametersException" and "aws/s3" in message


def test_publish_checks_the_catalog_kms_key_before_any_write(local_aws, workspace):  # noqa: F811
    path, doc, names = workspace
    kms, s3 = local_aws.client("kms"), local_aws.client("s3")
    account = local_aws.management_account_id
    key = kms.create_key(Policy=_key_policy(account))["KeyMetadata"]["Arn"]  # lets nobody use the key
    doc["bucket"]["kms_key_id"] = key
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    status, _result, stderr = publish(path, root=path.parent)
    assert status == 2, stderr
    assert key in stderr and "kms:GenerateDataKey, kms:Decrypt" in stderr and "bucket.kms_key_id" in stderr
    with pytest.raises(ClientError):  # nothing was written: not even the bucket
        s3.head_bucket(Bucket=doc["bucket"]["name"])
    root = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"}
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=_key_policy(account, root))
    status, result, stderr = publish(path, root=path.parent)
    assert status == 0, stderr
    sc = local_aws.client("servicecatalog")
    assert set(_products(sc, _portfolio_id(sc, doc["portfolio"]["name"]))) == set(names.values())
    assert len(result["products"]) == 3  # Service Catalog read the templates encrypted under the catalog's key
    objects = s3.list_objects_v2(Bucket=doc["bucket"]["name"])["Contents"]
    assert len(objects) == 3
    for listed in objects:
        head = s3.head_object(Bucket=doc["bucket"]["name"], Key=listed["Key"])
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key
