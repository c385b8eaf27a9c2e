"""Customer managed KMS keys of the environment: S3 data, models, EBS volumes, Studio EFS.

Every key policy has the same shape (see :func:`key_policy`):

1. the account (IAM) administers and may use the key: every key-level action, enumerated
   (``KEY_ACCOUNT_ACTIONS``, shared with ``generator.encrypted_storage``), for the account
   root, so IAM policies decide who administers it;
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
from awacs.aws import Allow, Bool, Condition, PolicyDocument, Principal, Statement
from troposphere import GetAtt, Ref, Sub, Template
from troposphere.kms import Alias, Key

from generator.encrypted_storage import KEY_ACCOUNT_ACTIONS
from generator.model_readers import HAS_TARGET_KMS_ENDPOINTS, ModelReaders
from generator.parameters import Environment, account_root_arn, partition_arn
from generator.policies import VERSION, deny_outside_network_perimeter

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


def key_policy(users, kms_endpoint_id, extra_statements=()) -> PolicyDocument:
    """The policy of an environment key; ``users`` are principal ARN expressions (roles)."""
    statements = [
        Statement(
            Sid="AccountAdministersKeyThroughIam",
            Effect=Allow,
            Principal=Principal("AWS", [account_root_arn("${AWS::AccountId}")]),
            Action=list(KEY_ACCOUNT_ACTIONS),
            Resource=["*"],
        ),
        Statement(
            Sid="AllowUseByEnvironmentRoles",
            Effect=Allow,
            Principal=Principal("AWS", list(users)),
            Action=list(USE_ACTIONS),
            Resource=["*"],
        ),
        Statement(
            Sid="AllowGrantsForAwsResources",
            Effect=Allow,
            Principal=Principal("AWS", list(users)),
            Action=list(GRANT_ACTIONS),
            Resource=["*"],
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
    ]
    return PolicyDocument(Version=VERSION, Statement=statements)


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


def add_key(
    template: Template, env: Environment, logical_id: str, alias: str, purpose: str, policy: PolicyDocument
) -> Key:
    """One symmetric key with yearly rotation and an alias ``alias/<env-name>-<env-type>-<alias>``."""
    key = template.add_resource(
        Key(
            logical_id,
            # The buckets are retained on delete; their objects must stay decryptable.
            DeletionPolicy="Retain",
            UpdateReplacePolicy="Retain",
            Description=Sub("${EnvName}-${EnvType}: " + purpose),
            EnableKeyRotation=True,
            PendingWindowInDays=30,
            KeyPolicy=policy,
            Tags=env.tags(),
        )
    )
    template.add_resource(
        Alias(f"{logical_id}Alias", AliasName=Sub("alias/${EnvName}-${EnvType}-" + alias), TargetKeyId=Ref(key))
    )
    return key


def add_keys(template: Template, env: Environment, users, kms_endpoint, readers: ModelReaders) -> Keys:
    """The four environment keys; ``users`` are the environment roles (ARN expressions)."""
    endpoint_id = Ref(kms_endpoint)
    created = {}
    for name, (logical_id, purpose) in KEY_PURPOSES.items():
        extra = model_reader_statements(readers) if name == "models" else ()
        created[name] = add_key(template, env, logical_id, name, purpose, key_policy(users, endpoint_id, extra))
    return Keys(**created)


def key_arn(key: Key) -> GetAtt:
    return GetAtt(key, "Arn")
