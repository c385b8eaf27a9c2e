"""The stack sets' template bucket: created hardened, and every request pinned to our account
(the default name is predictable, so a bucket someone else created must never serve templates)."""

from __future__ import annotations

import boto3
from botocore.stub import ANY, Stubber

from deploy.common.clients import CallCounter, Clients
from deploy.stacksets.aws import StackSets
from deploy.stacksets.manifest import Manifest
from tests.test_plan import spec

ACCOUNT = "123456789012"
BUCKET = f"sagemaker-stackset-deploy-{ACCOUNT}-eu-west-1"


class StubbedS3(Clients):
    def __init__(self):
        super().__init__(counter=CallCounter())
        self.session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="y", region_name="eu-west-1")
        self.s3 = self.client("s3", "eu-west-1")
        self.sts = self.client("sts", "eu-west-1")
        self.stubbers = Stubber(self.s3), Stubber(self.sts)


def test_a_missing_bucket_is_created_hardened_and_every_request_names_the_expected_owner():
    s = spec(regions=("eu-west-1",))
    clients = StubbedS3()
    s3, sts = clients.stubbers
    sts.add_response("get_caller_identity", {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:root", "UserId": "x"})
    owner = {"ExpectedBucketOwner": ACCOUNT}
    s3.add_client_error("head_bucket", "404", http_status_code=404, expected_params={"Bucket": BUCKET, **owner})
    s3.add_response(
        "create_bucket",
        {},
        {"Bucket": BUCKET, "CreateBucketConfiguration": {"LocationConstraint": "eu-west-1"}},
    )
    for operation in ("put_public_access_block", "put_bucket_encryption", "put_bucket_versioning"):
        s3.add_response(operation, {}, {"Bucket": BUCKET, **owner, **_detail(operation)})
    key = f"templates/{s.name}/{s.template.sha256}.yaml"
    s3.add_client_error(
        "head_object", "404", http_status_code=404, expected_params={"Bucket": BUCKET, "Key": key, **owner}
    )
    s3.add_response(
        "put_object",
        {},
        {
            "Bucket": BUCKET,
            "Key": key,
            "Body": ANY,
            "ContentType": "text/yaml",
            "ServerSideEncryption": "AES256",
            **owner,
        },
    )
    manifest = Manifest(
        path="m.yaml", admin_region="eu-west-1", admin_account_id=None, template_bucket=None, stack_sets=(s,)
    )
    with s3, sts:
        url = StackSets(clients, manifest)._upload_template(s)
        s3.assert_no_pending_responses()
    assert url == f"https://{BUCKET}.s3.eu-west-1.amazonaws.com/{key}"


def _detail(operation: str) -> dict:
    return {
        "put_public_access_block": {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            }
        },
        "put_bucket_encryption": {
            "ServerSideEncryptionConfiguration": {
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]
            }
        },
        "put_bucket_versioning": {"VersioningConfiguration": {"Status": "Enabled"}},
    }[operation]
