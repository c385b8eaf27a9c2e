"""Customer managed KMS keys of the environment: S3 data, models, EBS volumes, Studio EFS.

Every key policy has the same shape (see :func:`environment_key_policy`):

1. the account (IAM) administers and may use the key: every key-level action, enumerated
   (``generator.keys.account_administers_key``, the first statement of every key), for
   the account root, so IAM policies decide who administers it;
2. the environment's roles use it, and create grants only for AWS resources (EBS, EFS,
   SageMaker jobs);
3. optional cross-account statements (the models key: the target accounts' model
   execution role decrypts model artifacts through S3);
4. a deny of the *data* operations for this account's principals whose request does not
   arrive through the environment's KMS interface endpoint. Management operations
   (``PutKeyPolicy``, ``DescribeKey``, ``ScheduleKeyDeletion``...) are never denied, so
   CloudFormation and the key administrators cannot be locked out; AWS services acting
   for a caller (S3 for SSE-KMS, EBS, EFS) carry no endpoint and are exempt, as are the
   account's service-linked roles.

The models key is separate from the data key so that sharing models never shares the
key of the training data.
"""

from __future__ import annotations

from dataclasses import dataclass

from awacs import kms
from awacs.aws import Allow, Bool, Condition, Policy, Principal, Statement
from troposphere import GetAtt, Ref, Sub, Template
from troposphere.kms import Key

from generator.keys import add_key, environment_key_alias, key_policy
from generator.model_readers import HAS_TARGET_KMS_ENDPOINTS, ModelReaders
from generator.parameters import Environment, partition_arn
from generator.policies import deny_outside_network_perimeter

# Operations that use key material: the only ones the endpoint deny covers.
DATA_ACTIONS = (
    kms.Encrypt,
    kms.Decrypt,
    kms.ReEncryptFrom,
    kms.ReEncryptTo,
    kms.GenerateDataKey,
    kms.GenerateDataKeyWithoutPlaintext,
    kms.GenerateDataKeyPair,
    kms.GenerateDataKeyPairWithoutPlaintext,
)
USE_ACTIONS = DATA_ACTIONS[:6] + (kms.DescribeKey,)
GRANT_ACTIONS = (kms.CreateGrant, kms.ListGrants, kms.RevokeGrant)


def service_linked_roles_pattern() -> Sub:
    """This account's service-linked roles (Auto Scaling, SageMaker...), which act from AWS networks."""
    return partition_arn("iam", "role/aws-service-role/*", region="")


def _allow_key_users(sid: str, users, actions, **condition) -> Statement:
    """Allow the principals ``users`` (ARN expressions) ``actions`` on the key (``Condition=`` optional)."""
    return Statement(
        Sid=sid,
        Effect=Allow,
        Principal=Principal("AWS", list(users)),
        Action=list(actions),
        Resource=["*"],
        **condition,
    )


def environment_key_policy(users, kms_endpoint_id, extra_statements=()) -> Policy:
    """The policy of an environment key; ``users`` are principal ARN expressions (roles)."""
    return key_policy(
        _allow_key_users("AllowUseByEnvironmentRoles", users, USE_ACTIONS),
        _allow_key_users(
            "AllowGrantsForAwsResources",
            users,
            GRANT_ACTIONS,
            Condition=Condition(Bool({"kms:GrantIsForAWSResource": "true"})),
        ),
        *extra_statements,
        deny_outside_network_perimeter(
            resources=["*"],
            actions=DATA_ACTIONS,
            vpce_ids=[kms_endpoint_id],
            principal_account=Ref("AWS::AccountId"),
            exempt_principal_arns=[service_linked_roles_pattern()],
            exempt_aws_service_calls=True,
            sid="DenyDataOperationsOutsideKmsEndpoint",
        ),
    )


def model_reader_statements(readers: ModelReaders) -> list[Statement]:
    """Target accounts' model execution roles decrypt model artifacts: through S3, or their own KMS endpoints."""
    through_s3 = readers.statements(
        "AllowModelReadersThroughS3",
        [kms.Decrypt, kms.DescribeKey],
        ["*"],
        condition={"StringEquals": {"kms:ViaService": Sub("s3.${AWS::Region}.${AWS::URLSuffix}")}},
    )
    through_endpoints = readers.statements(
        "AllowModelReadersThroughTheirKmsEndpoints",
        [kms.Decrypt, kms.DescribeKey],
        ["*"],
        condition={"StringEquals": {"aws:SourceVpce": Ref(readers.kms_endpoint_ids)}},
        requires=HAS_TARGET_KMS_ENDPOINTS,
    )
    return through_s3 + through_endpoints


@dataclass(frozen=True)
class Keys:
    data: Key
    models: Key
    ebs: Key
    efs: Key


KEY_PURPOSES = {
    "data": ("DataKey", "S3 data bucket: training and processing data"),
    "models": ("ModelsKey", "models bucket and model images: shared with the target accounts' model execution role"),
    "ebs": ("EbsKey", "EBS volumes of SageMaker training, processing and notebook instances"),
    "efs": ("StudioEfsKey", "the SageMaker Studio domain's EFS home directories"),
}


def add_keys(template: Template, env: Environment, users, kms_endpoint, readers: ModelReaders) -> Keys:
    """The four environment keys; ``users`` are the environment roles (ARN expressions)."""
    endpoint_id = Ref(kms_endpoint)
    created = {}
    for name, (logical_id, purpose) in KEY_PURPOSES.items():
        extra = model_reader_statements(readers) if name == "models" else ()
        created[name] = add_key(
            template,
            logical_id,
            Sub("${EnvName}-${EnvType}: " + purpose),
            env.tags(),
            environment_key_policy(users, endpoint_id, extra),
            alias=environment_key_alias(name),
            pending_window_days=30,
        )
    return Keys(**created)


def key_arn(key: Key) -> GetAtt:
    return GetAtt(key, "Arn")
